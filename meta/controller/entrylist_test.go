package controller

import (
	"math/rand/v2"
	"slices"
	"testing"

	"sluice.dev/meta"
)

// TestEntryListAgainstSlice drives an entryList and a plain slice with
// the same random appends, trims and replaces, and checks every read
// (len, at, find, copyRange) against the slice, and that a view taken
// before an operation still reads what it read before (FindTimestamp
// reads a view without the lock).
func TestEntryListAgainstSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var l entryList
	var want []meta.IndexEntry
	next := int64(0)
	mk := func(base, last int64) meta.IndexEntry {
		return meta.IndexEntry{BaseOffset: base, LastOffset: last, Length: last - base + 1}
	}
	for step := range 3000 {
		view := entryList{blocks: slices.Clone(l.blocks), off: l.off, n: l.n}
		before := view.copyRange(nil, 0, view.len())
		switch op := rng.IntN(10); {
		case op < 5:
			k := 1 + rng.IntN(700)
			var es []meta.IndexEntry
			for range k {
				n := 1 + rng.Int64N(5)
				es = append(es, mk(next, next+n-1))
				next += n
			}
			l.append(es...)
			want = append(want, es...)
		case op < 8 && len(want) > 0:
			k := rng.IntN(min(len(want), 1500) + 1)
			l.trimFront(k)
			want = want[k:]
		case len(want) > 0:
			i := rng.IntN(len(want))
			j := i + 1 + rng.IntN(min(len(want)-i, 600))
			// Merge [i, j) into 1..3 entries covering the same offsets.
			lo, hi := want[i].BaseOffset, want[j-1].LastOffset
			var with []meta.IndexEntry
			parts := 1 + rng.IntN(3)
			for p := range parts {
				a := lo + (hi-lo+1)*int64(p)/int64(parts)
				b := lo + (hi-lo+1)*int64(p+1)/int64(parts) - 1
				if b >= a {
					with = append(with, mk(a, b))
				}
			}
			l.replace(i, j, with)
			want = slices.Concat(want[:i], with, want[j:])
		}
		if got := view.copyRange(nil, 0, view.len()); !slices.Equal(got, before) {
			t.Fatalf("step %d: a view changed under an operation", step)
		}
		if l.len() != len(want) {
			t.Fatalf("step %d: len %d, want %d", step, l.len(), len(want))
		}
		if step%50 == 0 || l.len() < 2000 {
			if got := l.copyRange(nil, 0, l.len()); !slices.Equal(got, want) {
				t.Fatalf("step %d: contents differ", step)
			}
		}
		for range 5 {
			if len(want) == 0 {
				if l.find(rng.Int64N(next+1)) != -1 {
					t.Fatalf("step %d: find in an empty list", step)
				}
				break
			}
			i := rng.IntN(len(want))
			if *l.at(i) != want[i] {
				t.Fatalf("step %d: at(%d) = %+v, want %+v", step, i, *l.at(i), want[i])
			}
			off := want[i].BaseOffset + rng.Int64N(want[i].LastOffset-want[i].BaseOffset+1)
			if got := l.find(off); got != i {
				t.Fatalf("step %d: find(%d) = %d, want %d", step, off, got, i)
			}
			if want[0].BaseOffset > 0 && l.find(want[0].BaseOffset-1) != -1 {
				t.Fatalf("step %d: find before the first entry", step)
			}
		}
	}
}

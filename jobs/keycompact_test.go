package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"sluice.dev/codec"
	"sluice.dev/meta"
)

func kv(k, v string, ts int64) tRec {
	r := tRec{ts: ts}
	if k != "\x00" {
		r.key = []byte(k)
	}
	if v != "\x00" {
		r.value = []byte(v)
	}
	return r
}

const null = "\x00"

// oracle is the cleaning rule written the obvious way: over the flat
// records of the input, with the map complete up to complete, which
// records the output range [.., outEnd] keeps.
func oracle(in []flatRec, cfg CleanConfig, complete, outEnd int64) []flatRec {
	upTo := min(cfg.CleanUpTo, complete)
	aborted := func(r flatRec) bool {
		for _, a := range cfg.Aborted {
			if r.txnal && !r.control && r.pid == a.ProducerID && r.off >= a.FirstOffset && r.off < a.LastOffset {
				return true
			}
		}
		return false
	}
	latest := map[string]int64{}
	for _, r := range in {
		if !r.control && !r.nullKey && r.off >= cfg.DirtyStart && r.off <= upTo && !aborted(r) {
			latest[r.key] = max(latest[r.key], r.off)
		}
	}
	var out []flatRec
	kept := map[int64]bool{}   // producer -> its current transaction kept a record
	marked := map[int64]bool{} // producer -> a marker of it came before
	for _, r := range in {
		if r.off > outEnd {
			break
		}
		switch {
		case r.control:
			txnKept, begun := kept[r.pid], cfg.FromLogStart || marked[r.pid]
			delete(kept, r.pid)
			marked[r.pid] = true
			if r.key == "\x00\x00\x00\x01" && !txnKept && begun && r.off < cfg.DirtyStart && r.off <= upTo && r.tsSeen < cfg.TombstoneHorizon {
				continue // an emptied transaction's commit marker
			}
		case aborted(r):
			continue
		case r.off > upTo, r.nullKey:
		case latest[r.key] > r.off:
			continue
		case r.nullValue && r.off < cfg.DirtyStart && r.tsSeen < cfg.TombstoneHorizon:
			continue
		}
		if r.txnal && !r.control {
			kept[r.pid] = true
		}
		out = append(out, r)
	}
	return out
}

// outEndFor is where the output must stop: the end of the input batch
// holding upTo, or the last input offset.
func outEndFor(t testing.TB, in []Batch, start, upTo int64) int64 {
	end := start - 1
	for _, e := range batchEnds(t, in) {
		if end >= upTo {
			break
		}
		end = e
	}
	return end
}

// The folding of emptied batches, case by case, with the exact output
// layout.
func TestCompactKeysLayout(t *testing.T) {
	type layout struct{ base, lod, n int64 }
	full := CleanConfig{Start: 100, DirtyStart: 100, CleanUpTo: math.MaxInt64, TombstoneHorizon: math.MinInt64}
	for _, tc := range []struct {
		name string
		in   []tBatch
		cfg  CleanConfig
		want []layout
		keep []string // key=value of kept records, in order
	}{
		{
			name: "leading batch emptied: next batch moves back",
			in: []tBatch{
				{recs: []tRec{kv("a", "1", 1), kv("b", "1", 1)}},
				{recs: []tRec{kv("a", "2", 2), kv("b", "2", 2), kv("c", "2", 2)}},
			},
			cfg:  full,
			want: []layout{{100, 4, 3}},
			keep: []string{"a=2", "b=2", "c=2"},
		},
		{
			name: "trailing batches emptied: kept batch widens",
			in: []tBatch{
				{recs: []tRec{kv("a", "1", 1), kv("z", "1", 1)}},
				{recs: []tRec{kv("b", "1", 2)}},
				{recs: []tRec{kv("b", "2", 3), kv("c", "1", 3)}, codec: codec.CompressionLZ4},
				{recs: []tRec{kv("c", "2", 4)}},
			},
			cfg: full,
			// Batch 2 (b=1) folds into batch 1; batch 3 keeps b=2
			// only, recompressed; batch 4 is unchanged.
			want: []layout{{100, 2, 2}, {103, 1, 1}, {105, 0, 1}},
			keep: []string{"a=1", "z=1", "b=2", "c=2"},
		},
		{
			name: "nothing kept: one empty batch over the range",
			// Old tombstones in the clean part: they go, and the
			// empty batch has no codec and no records section.
			in: []tBatch{
				{recs: []tRec{kv("a", null, 2)}, codec: codec.CompressionZstd},
				{recs: []tRec{kv("b", null, 3)}},
			},
			cfg:  CleanConfig{Start: 100, DirtyStart: 102, CleanUpTo: 101, TombstoneHorizon: 10},
			want: []layout{{100, 1, 0}},
		},
		{
			name: "control batches and null keys are kept",
			in: []tBatch{
				{recs: []tRec{kv("a", "1", 1), kv(null, "x", 1)}},
				{recs: []tRec{kv("\x00\x00\x00\x01", "m", 2)}, control: true},
				{recs: []tRec{kv("a", "2", 3)}},
			},
			cfg:  full,
			want: []layout{{100, 1, 1}, {102, 0, 1}, {103, 0, 1}},
			keep: []string{"<nil>=x", "\x00\x00\x00\x01=m", "a=2"},
		},
		{
			name: "records above cleanUpTo are not judged; output ends with its batch",
			in: []tBatch{
				{recs: []tRec{kv("a", "1", 1), kv("a", "2", 1)}},
				{recs: []tRec{kv("a", "3", 2), kv("a", "4", 2)}},
				{recs: []tRec{kv("a", "5", 3)}},
			},
			cfg:  CleanConfig{Start: 100, DirtyStart: 100, CleanUpTo: 102, TombstoneHorizon: math.MinInt64},
			want: []layout{{100, 3, 2}},
			keep: []string{"a=3", "a=4"},
		},
		{
			name: "tombstones: dirty kept, clean and old dropped, clean and recent kept",
			in: []tBatch{
				{recs: []tRec{kv("old", null, 5)}},
				{recs: []tRec{kv("recent", null, 50)}},
				{recs: []tRec{kv("dirty", null, 5)}},
			},
			cfg:  CleanConfig{Start: 100, DirtyStart: 102, CleanUpTo: math.MaxInt64, TombstoneHorizon: 20},
			want: []layout{{100, 1, 1}, {102, 0, 1}},
			keep: []string{"recent=<nil>", "dirty=<nil>"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := partition(t, 100, tc.in)
			var out []Batch
			st, err := CompactKeys(NewKeyMap(1<<16), in, tc.cfg, collectEmit(&out))
			if err != nil {
				t.Fatal(err)
			}
			recs, end := flatten(t, out, 100)
			_, inEnd := flatten(t, in, 100)
			if want := outEndFor(t, in, 100, tc.cfg.CleanUpTo); end != want || st.End != want {
				t.Fatalf("output ends at %d (stats %d), want %d (input ends at %d)", end, st.End, want, inEnd)
			}
			var got []layout
			for _, b := range out {
				h, _ := codec.ParseBatchHeader(b.Data)
				got = append(got, layout{b.Base, int64(h.LastOffsetDelta), int64(h.NumRecords)})
				if h.NumRecords == 0 && (h.Compression() != codec.CompressionNone || len(b.Data) != codec.BatchHeaderSize) {
					t.Fatalf("empty batch with codec %d, %d bytes", h.Compression(), len(b.Data))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("layout %v, want %v", got, tc.want)
			}
			var kept []string
			for _, r := range recs {
				s := r.String()
				kept = append(kept, s[bytes.IndexByte([]byte(s), ':')+1:bytes.IndexByte([]byte(s), '@')])
			}
			if fmt.Sprint(kept) != fmt.Sprint(tc.keep) {
				t.Fatalf("kept %q, want %q", kept, tc.keep)
			}
			if st.RecordsOut != int64(len(recs)) || st.BatchesOut != len(out) {
				t.Fatalf("stats %+v for %d records in %d batches", st, len(recs), len(out))
			}
		})
	}
}

// A batch that keeps every record at its own base is the producer's bytes.
func TestCompactKeysCopiesUnchangedBatches(t *testing.T) {
	in := partition(t, 0, []tBatch{
		{recs: []tRec{kv("a", "1", 1), kv("b", "1", 1)}, codec: codec.CompressionGzip},
		{recs: []tRec{kv("a", "2", 2)}, codec: codec.CompressionSnappy},
	})
	var out []Batch
	if _, err := CompactKeys(NewKeyMap(1<<16), in, CleanConfig{DirtyStart: 0, CleanUpTo: 10}, collectEmit(&out)); err != nil {
		t.Fatal(err)
	}
	// Batch 2 is unchanged (only its baseOffset field, outside the CRC,
	// is set); batch 1 lost a=1 and was rebuilt.
	want := slices.Clone(in[1].Data)
	codec.SetBaseOffset(want, 2)
	if len(out) != 2 || !bytes.Equal(out[1].Data, want) {
		t.Fatalf("unchanged batch not copied as is")
	}
}

// Offset spans past what an int32 lastOffsetDelta holds (emptied batches
// of a billion offsets each, as earlier cleanings can leave) are split
// into several batches instead of overflowing.
func TestCompactKeysHugeSpans(t *testing.T) {
	var bb codec.BatchBuilder
	src, _ := codec.ParseBatchHeader(encodeBatch(t, tBatch{recs: []tRec{kv("x", "1", 1)}}))
	const span = 1 << 30
	var in []Batch
	base := int64(0)
	addEmpty := func() {
		bb.Reset(src, base)
		b, err := bb.AppendTo(nil, span-1)
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, Batch{Base: base, Data: b})
		base += span
	}
	addRec := func(k string) {
		in = append(in, Batch{Base: base, Data: encodeBatch(t, tBatch{recs: []tRec{kv(k, "v", 1)}})})
		base++
	}
	// Gap first (the next kept batch cannot move back that far), then a
	// kept batch widened over three spans.
	addEmpty()
	addEmpty()
	addEmpty()
	addRec("a")
	addEmpty()
	addEmpty()
	addEmpty()
	addRec("b")
	var out []Batch
	st, err := CompactKeys(NewKeyMap(1<<12), in, CleanConfig{CleanUpTo: math.MaxInt64}, collectEmit(&out))
	if err != nil {
		t.Fatal(err)
	}
	// The gap [0, 3·2^30) cannot move "a" back: an empty batch takes as
	// much as an int32 holds and "a"'s batch moves back over the rest;
	// "a"'s batch widens until it cannot, then an empty batch and "b"
	// take the rest the same way.
	var layout []string
	for _, b := range out {
		h, _ := codec.ParseBatchHeader(b.Data)
		layout = append(layout, fmt.Sprintf("%d+%d:%d", b.Base, h.LastOffsetDelta, h.NumRecords))
	}
	if want := "[0+2147483647:0 2147483648+1073741824:1 3221225473+2147483647:0 5368709121+1073741824:1]"; fmt.Sprint(layout) != want {
		t.Fatalf("layout %v, want %s", layout, want)
	}
	recs, end := flatten(t, out, 0)
	if end != base-1 || st.End != end || len(recs) != 2 || recs[0].off != 3*span || recs[1].off != 6*span+1 {
		t.Fatalf("output ends at %d of %d, records %v", end, base-1, recs)
	}
}

// Bad input is an error, never a bad output.
func TestCompactKeysRefusesGaps(t *testing.T) {
	in := partition(t, 0, []tBatch{{recs: []tRec{kv("a", "1", 1)}}, {recs: []tRec{kv("a", "2", 2)}}})
	in[1].Base = 5
	_, err := CompactKeys(NewKeyMap(1<<16), in, CleanConfig{CleanUpTo: 10}, collectEmit(new([]Batch)))
	if err == nil {
		t.Fatal("gap between batches accepted")
	}
	in = partition(t, 0, []tBatch{{recs: []tRec{kv("a", "1", 1)}}})
	in[0].Data[len(in[0].Data)-1] ^= 1
	if _, err := CompactKeys(NewKeyMap(1<<16), in, CleanConfig{CleanUpTo: 10}, collectEmit(new([]Batch))); !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("corrupt batch: %v", err)
	}
	boom := errors.New("boom")
	in = partition(t, 0, []tBatch{{recs: []tRec{kv("a", "1", 1)}}})
	_, err = CompactKeys(NewKeyMap(1<<16), in, CleanConfig{CleanUpTo: 10}, func(int64, []byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("emit error: %v", err)
	}
}

// randomPartition makes a partition of random batches: keys from a small
// set (so that most records are superseded), some null keys, tombstones,
// LogAppendTime batches, every codec, and transactions of three producers
// interleaved with plain batches, committed or aborted, some empty (a
// marker alone). Every transaction ends within the partition (the
// cleaning stays below the last stable offset); the aborted ones are
// returned as meta's aborted transactions index holds them.
func randomPartition(t testing.TB, rng *rand.Rand, start int64) ([]Batch, []meta.AbortedTxn) {
	nb := 1 + rng.IntN(14)
	var tbs []tBatch
	var aborted []meta.AbortedTxn
	ts := int64(1000)
	next := start
	first := map[int64]int64{} // open transactions: producer -> first offset
	marker := func(pid int64) {
		commit := rng.IntN(2) == 0
		tbs = append(tbs, tBatch{control: true, pid: pid,
			recs: []tRec{{key: []byte{0, 0, 0, map[bool]byte{false: 0, true: 1}[commit]}, value: []byte{0, 0, 0, 0, 0, 7}, ts: ts}}})
		if f, ok := first[pid]; ok && !commit {
			aborted = append(aborted, meta.AbortedTxn{ProducerID: pid, FirstOffset: f, LastOffset: next})
		}
		delete(first, pid)
		next++
	}
	for range nb {
		tb := tBatch{codec: int8(rng.IntN(5))}
		switch rng.IntN(14) {
		case 0:
			marker(100 + rng.Int64N(3)) // ends a transaction, or an empty one
			continue
		case 1:
			tb.logTime = true
			tb.maxTS = ts + 50
		}
		if rng.IntN(2) == 0 {
			tb.pid, tb.txnal = 100+rng.Int64N(3), true
			if _, ok := first[tb.pid]; !ok {
				first[tb.pid] = next
			}
		}
		n := 1 + rng.IntN(8)
		for range n {
			r := tRec{key: fmt.Appendf(nil, "k%d", rng.IntN(6)), ts: ts + int64(rng.IntN(20)) - 5}
			if rng.IntN(20) == 0 {
				r.key = nil
			}
			if rng.IntN(5) > 0 {
				r.value = fmt.Appendf(nil, "v%d-%s", rng.Int64(), bytes.Repeat([]byte{'x'}, rng.IntN(40)))
			}
			tb.recs = append(tb.recs, r)
		}
		ts += int64(rng.IntN(30))
		tbs = append(tbs, tb)
		next += int64(len(tb.recs))
	}
	for _, pid := range []int64{100, 101, 102} {
		if _, ok := first[pid]; ok {
			marker(pid)
		}
	}
	slices.SortFunc(aborted, func(a, b meta.AbortedTxn) int { return int(a.LastOffset - b.LastOffset) })
	return partition(t, start, tbs), aborted
}

// checkCompaction runs CompactKeys on a random partition and checks the
// output against the oracle: valid batches that tile the range, exactly
// the records the rule keeps, and the same output when run again.
func checkCompaction(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const start = 1000
	in, aborted := randomPartition(t, rng, start)
	inRecs, inEnd := flatten(t, in, start)
	cfg := CleanConfig{
		Start:            start,
		DirtyStart:       start + rng.Int64N(inEnd-start+2),
		CleanUpTo:        start - 1 + rng.Int64N(inEnd-start+4),
		TombstoneHorizon: []int64{math.MinInt64, 1000, 1100, 1200, math.MaxInt64}[rng.IntN(5)],
		Aborted:          aborted,
		FromLogStart:     rng.IntN(4) > 0,
	}
	if rng.IntN(3) == 0 {
		cfg.CleanUpTo = math.MaxInt64
	}
	mem := 1 << 12
	if rng.IntN(3) == 0 {
		mem = keyMapSlotSize * (2 + rng.IntN(4)) // 1 to 4 keys: partial maps
	}
	m := NewKeyMap(mem)
	complete, err := BuildKeyMap(m, NewSliceBatches(in), cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	if complete > min(cfg.CleanUpTo, inEnd) {
		t.Fatalf("seed %d: map complete up to %d, past the range (cfg %+v, input ends %d)", seed, complete, cfg, inEnd)
	}
	if first := firstKeyed(inRecs, cfg.DirtyStart, cfg.CleanUpTo); complete < first {
		// Even a map of one key gets past the first dirty record:
		// every run makes progress.
		t.Fatalf("seed %d: map complete up to %d, before the first dirty record %d", seed, complete, first)
	}
	if mem >= 1<<12 && complete != min(cfg.CleanUpTo, inEnd) {
		t.Fatalf("seed %d: roomy map complete up to %d, want %d", seed, complete, min(cfg.CleanUpTo, inEnd))
	}
	run := cfg
	run.CleanUpTo = min(cfg.CleanUpTo, complete)
	var out []Batch
	st, err := CleanRange(m, NewSliceBatches(in), run, collectEmit(&out))
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	outRecs, outEnd := flatten(t, out, start)
	wantEnd := outEndFor(t, in, start, run.CleanUpTo)
	if outEnd != wantEnd || st.End != wantEnd {
		t.Fatalf("seed %d: output tiles [%d, %d] (stats %d), want [%d, %d]", seed, start, outEnd, st.End, start, wantEnd)
	}
	want := oracle(inRecs, cfg, complete, wantEnd)
	if fmt.Sprint(outRecs) != fmt.Sprint(want) {
		t.Fatalf("seed %d: cfg %+v complete %d\ninput %v\n  got %v\n want %v", seed, cfg, complete, inRecs, outRecs, want)
	}
	var bytesOut int64
	for _, b := range out {
		bytesOut += int64(len(b.Data))
		// A control batch in the output is a marker as written: one
		// record at its own offset, never widened or moved back, and
		// an empty batch is never a control batch.
		if h, _ := codec.ParseBatchHeader(b.Data); h.IsControl() && (h.NumRecords != 1 || h.LastOffsetDelta != 0) {
			t.Fatalf("seed %d: control batch at %d with %d records over %d offsets", seed, b.Base, h.NumRecords, h.LastOffsetDelta+1)
		}
	}
	if st.RecordsOut != int64(len(outRecs)) || st.BytesOut != bytesOut || st.Keys != m.Len() {
		t.Fatalf("seed %d: stats %+v, %d records, %d bytes", seed, st, len(outRecs), bytesOut)
	}
	// A window: the map holds the keys of the whole dirty range, the
	// cleaning rewrites only a prefix of the batches (a window of a
	// pass, meta's cleanPass). It keeps exactly what the whole cleaning
	// keeps in that prefix.
	w := 1 + rng.IntN(len(in))
	var win []Batch
	wst, err := CleanRange(m, NewSliceBatches(in[:w]), run, collectEmit(&win))
	if err != nil {
		t.Fatalf("seed %d: window: %v", seed, err)
	}
	winRecs, winEnd := flatten(t, win, start)
	if wantWin := outEndFor(t, in[:w], start, run.CleanUpTo); winEnd != wantWin || wst.End != wantWin {
		t.Fatalf("seed %d: window of %d batches tiles [%d, %d] (stats %d), want [%d, %d]", seed, w, start, winEnd, wst.End, start, wantWin)
	}
	if want := oracle(inRecs, cfg, complete, winEnd); fmt.Sprint(winRecs) != fmt.Sprint(want) {
		t.Fatalf("seed %d: window of %d batches, cfg %+v complete %d\n  got %v\n want %v", seed, w, cfg, complete, winRecs, want)
	}
	if complete == min(cfg.CleanUpTo, inEnd) {
		// Idempotent: cleaning the output with the same inputs
		// changes nothing, byte for byte.
		var again []Batch
		if _, err := CompactKeys(m, out, cfg, collectEmit(&again)); err != nil {
			t.Fatalf("seed %d: second pass: %v", seed, err)
		}
		if len(again) != len(out) {
			t.Fatalf("seed %d: second pass made %d batches of %d", seed, len(again), len(out))
		}
		for i := range out {
			if again[i].Base != out[i].Base || !bytes.Equal(again[i].Data, out[i].Data) {
				h1, _ := codec.ParseBatchHeader(out[i].Data)
				h2, _ := codec.ParseBatchHeader(again[i].Data)
				r1, _ := flatten(t, out[i:i+1], out[i].Base)
				r2, _ := flatten(t, again[i:i+1], again[i].Base)
				t.Fatalf("seed %d: second pass changed batch %d at %d: %+v %v\nto %+v %v", seed, i, out[i].Base, h1, r1, h2, r2)
			}
		}
	}
}

// firstKeyed returns the offset of the first keyed data record in
// [from, to], or math.MinInt64 if there is none.
func firstKeyed(recs []flatRec, from, to int64) int64 {
	for _, r := range recs {
		if r.off >= from && r.off <= to && !r.nullKey && !r.control {
			return r.off
		}
	}
	return math.MinInt64
}

// The property: random partitions, random dirty starts, clean limits,
// horizons and map sizes, every codec; see checkCompaction. A failure
// names its seed; FuzzCompactKeys replays one.
func TestCompactKeysRandom(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	if raceEnabled {
		n = 20
	}
	for seed := range uint64(n) {
		checkCompaction(t, seed)
	}
}

func FuzzCompactKeys(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(checkCompaction)
}

// When the map is too small for the dirty range, a run cleans what it
// indexed, correctly, and runs after it finish the job: the result of the
// passes is the result of one pass with a map large enough.
func TestCompactKeysMultiPass(t *testing.T) {
	n := uint64(60)
	if raceEnabled {
		n = 6
	}
	for seed := range n {
		rng := rand.New(rand.NewPCG(seed, 7))
		in, aborted := randomPartition(t, rng, 0)
		_, inEnd := flatten(t, in, 0)
		cfg := CleanConfig{TombstoneHorizon: math.MinInt64, CleanUpTo: math.MaxInt64, Aborted: aborted}

		var whole []Batch
		if _, err := CompactKeys(NewKeyMap(1<<12), in, cfg, collectEmit(&whole)); err != nil {
			t.Fatal(err)
		}
		want, _ := flatten(t, whole, 0)

		small := NewKeyMap(keyMapSlotSize * 3) // 2 keys of the 6
		cur := in
		for pass := 0; ; pass++ {
			if pass > 100 {
				t.Fatalf("seed %d: no progress after 100 passes", seed)
			}
			var out []Batch
			st, err := CompactKeys(small, cur, cfg, collectEmit(&out))
			if err != nil {
				t.Fatalf("seed %d pass %d: %v", seed, pass, err)
			}
			if st.CleanedUpTo < cfg.DirtyStart && cfg.DirtyStart <= inEnd {
				t.Fatalf("seed %d pass %d: cleaned up to %d from a dirty start of %d", seed, pass, st.CleanedUpTo, cfg.DirtyStart)
			}
			// The output replaces cur up to st.End; the rest of cur
			// follows untouched.
			for _, b := range cur {
				if b.Base > st.End {
					out = append(out, b)
				}
			}
			if _, end := flatten(t, out, 0); end != inEnd {
				t.Fatalf("seed %d pass %d: partition ends at %d, want %d", seed, pass, end, inEnd)
			}
			cur = out
			if st.CleanedUpTo >= inEnd {
				break
			}
			cfg.DirtyStart = st.CleanedUpTo + 1 // what this pass judged is clean now
		}
		got, _ := flatten(t, cur, 0)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: multi-pass\n got %v\nwant %v", seed, got, want)
		}
	}
}

// BenchmarkCompactKeys measures cleaning throughput: both passes over a
// 16 MiB (uncompressed) partition of ~16 KiB batches of 100-byte values
// under 100,000 keys (so about half the records are superseded), nothing
// clean yet. MB/s counts the stored input bytes; raw-MB/s the
// uncompressed records.
func BenchmarkCompactKeys(b *testing.B) {
	for _, c := range []struct {
		name  string
		codec int8
	}{{"none", codec.CompressionNone}, {"lz4", codec.CompressionLZ4}, {"zstd", codec.CompressionZstd}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			const rawTarget = 16 << 20
			var tbs []tBatch
			raw := 0
			ts := int64(1_700_000_000_000)
			for raw < rawTarget {
				tb := tBatch{codec: c.codec}
				for range 140 {
					v := make([]byte, 100)
					for i := range v {
						v[i] = "abcdefghij"[rng.IntN(10)]
					}
					tb.recs = append(tb.recs, tRec{key: fmt.Appendf(nil, "user-%08d", rng.IntN(100_000)), value: v, ts: ts})
					raw += 100 + 13 + 12
					ts++
				}
				tbs = append(tbs, tb)
			}
			in := partition(b, 0, tbs)
			stored := 0
			for _, bt := range in {
				stored += len(bt.Data)
			}
			m := NewKeyMap(16 << 20)
			cfg := CleanConfig{CleanUpTo: math.MaxInt64, TombstoneHorizon: math.MinInt64}
			var out []byte
			emit := func(_ int64, batch []byte) error { out = append(out[:0], batch...); return nil }
			b.ReportAllocs()
			b.SetBytes(int64(stored))
			var st CleanStats
			for b.Loop() {
				var err error
				if st, err = CompactKeys(m, in, cfg, emit); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(raw)*float64(b.N)/b.Elapsed().Seconds()/1e6, "raw-MB/s")
			b.ReportMetric(float64(st.RecordsOut)/float64(st.RecordsIn), "kept")
		})
	}
}

package jobs

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// The pace holds over the long run however the calls are sized, the
// first call does not wait, and a cancelled wait returns at once.
func TestPacerSpreadsBytesOverTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPacer(1<<20, nil) // 1 MiB/s
		start := time.Now()
		if err := p.wait(context.Background(), 3<<20); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("first wait took %v, want none", d)
		}
		for range 4 {
			if err := p.wait(context.Background(), 512<<10); err != nil {
				t.Fatal(err)
			}
		}
		// 3 MiB then 1.5 MiB more before the last one's turn: it starts
		// at 4.5 s.
		if d := time.Since(start); d != 4500*time.Millisecond {
			t.Fatalf("5 MiB at 1 MiB/s: last wait ended after %v, want 4.5s", d)
		}
		// The pacer's clock is now 0.5 s ahead: a wait for a turn 10.5 s
		// away, cancelled after 1 s.
		if err := p.wait(context.Background(), 10<<20); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel() }()
		before := time.Now()
		if err := p.wait(ctx, 1<<20); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait = %v", err)
		}
		if d := time.Since(before); d != time.Second {
			t.Fatalf("cancelled wait returned after %v, want 1s", d)
		}
	})
	if newPacer(0, nil) != nil {
		t.Fatal("rate 0 must be unlimited (nil pacer)")
	}
	var p *pacer
	if err := p.wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
	// Not busy: no pace, and nothing reserved for when it is busy again.
	synctest.Test(t, func(t *testing.T) {
		busy := false
		p := newPacer(1<<20, func() bool { return busy })
		start := time.Now()
		for range 3 {
			if err := p.wait(context.Background(), 10<<20); err != nil {
				t.Fatal(err)
			}
		}
		busy = true
		for range 2 {
			if err := p.wait(context.Background(), 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("30 MiB idle, then 2 MiB busy at 1 MiB/s took %v, want 1s", d)
		}
	})
}

// A paced compaction takes the time its bytes need at the pace: what it
// reads and what it writes, together.
func TestCompactionIsPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := objstore.NewMemory()
		srcs, _ := testSegments(t, store, 3)
		var read int64
		for _, s := range srcs {
			read += s.Length
		}
		out := meta.NewSegmentID(time.Now(), [8]byte{9})
		fm := &fakeMeta{jobs: []meta.Job{{ID: 7, Kind: meta.JobCompact, LeaseTTL: time.Hour,
			Compact: &meta.CompactJob{Level: 1, Output: out, Sources: srcs}}}}
		r, err := New(Config{AgentID: "a1", Meta: fm, Store: store, MaxBytesPerSecond: MinBytesPerSecond, ReadConcurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		// Make the job large enough to pace visibly: charge the pacer
		// as if a MinBytesPerSecond burst had just run.
		if err := r.pace.wait(context.Background(), MinBytesPerSecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if ran, err := r.RunOne(context.Background(), meta.JobCompact); !ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
		took := time.Since(start)
		if len(fm.compacted) != 1 {
			t.Fatalf("got %d results", len(fm.compacted))
		}
		// The burst charged before holds the reads back 1 s, and the PUT
		// waits for every byte read.
		// (Each reservation rounds down to the nanosecond.)
		written := fm.compacted[0].Size
		at := func(n int64) time.Duration {
			return time.Second + time.Duration(float64(n)/float64(MinBytesPerSecond)*float64(time.Second)) - time.Microsecond
		}
		if took < at(read) {
			t.Fatalf("paced compaction of %d read + %d written bytes took %v, want at least %v", read, written, took, at(read))
		}
		// And the bytes it wrote are charged to the next job.
		if next := r.pace.next.Sub(start); next < at(read+written) {
			t.Fatalf("pace's clock is %v past the start, want at least %v (reads and the write)", next, at(read+written))
		}
	})
}

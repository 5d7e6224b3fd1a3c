package controller

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sluice.dev/meta"
)

// TestConcurrentCommitsDense: many goroutines commit random segments at
// once (some of them twice, as retries). The oracle: per partition, the
// offset ranges handed out in answers are disjoint and cover
// [0, HighWatermark) exactly; the index entries chain with no gap; each
// entry lies inside its segment; and a producer's batches on a partition
// got increasing offsets in sequence order. A failure prints the seed.
func TestConcurrentCommitsDense(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	var tops []meta.Topic
	for _, name := range []string{"a", "b", "c"} {
		tops = append(tops, createTopic(t, s, name, 4))
	}
	const (
		workers = 24
		perW    = 25
	)
	type got struct {
		tp   tpKey
		base int64
		n    int32
		pid  int64
		seq  int32
	}
	var (
		mu      sync.Mutex
		answers []got
		segSize = map[meta.SegmentID]int64{}
	)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			pid := int64(1000 + w) // one idempotent producer per worker, on every partition
			seqs := map[tpKey]int32{}
			for i := 0; i < perW; i++ {
				sg := newSegment()
				for c := rng.IntN(8); c >= 0; c-- {
					top := tops[rng.IntN(len(tops))]
					part := rng.Int32N(top.Partitions)
					n := 1 + rng.Int32N(20)
					if rng.IntN(3) == 0 {
						sg.gap(int64(rng.IntN(5)))
					}
					if rng.IntN(2) == 0 {
						k := tpKey{top.ID, part}
						sg.addP(top.ID, part, n, 10*n, pid, 0, seqs[k])
						seqs[k] = seqAdd(seqs[k], n)
					} else {
						sg.add(top.ID, part, n, 10*n)
					}
				}
				r, err := s.CommitSegment(ctx, sg.SegmentCommit)
				if err != nil {
					t.Errorf("commit: %v", err)
					return
				}
				if rng.IntN(5) == 0 { // a retry must get the same answer
					r2, err := s.CommitSegment(ctx, sg.SegmentCommit)
					if err != nil || !slices.Equal(r.Chunks, r2.Chunks) {
						t.Errorf("retry: %v %+v %+v", err, r, r2)
					}
				}
				mu.Lock()
				segSize[sg.SegmentID] = sg.Size
				for j, c := range sg.Chunks {
					if r.Chunks[j].Status != meta.ChunkAppended {
						t.Errorf("seed %d: chunk %+v: %+v", seed, c, r.Chunks[j])
						continue
					}
					answers = append(answers, got{tp: tpKey{c.TopicID, c.Partition}, base: r.Chunks[j].BaseOffset,
						n: c.RecordCount, pid: c.ProducerID, seq: c.BaseSequence})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	byTP := map[tpKey][]got{}
	for _, a := range answers {
		byTP[a.tp] = append(byTP[a.tp], a)
	}
	for _, top := range tops {
		for p := int32(0); p < top.Partitions; p++ {
			tp := tpKey{top.ID, p}
			as := byTP[tp]
			slices.SortFunc(as, func(x, y got) int { return int(x.base - y.base) })
			var next int64
			lastSeq := map[int64]int32{}
			for _, a := range as {
				if a.base != next {
					t.Fatalf("seed %d: %s/%d: batch at %d, want %d (gap or overlap)", seed, top.Name, p, a.base, next)
				}
				next += int64(a.n)
				if a.pid >= 0 {
					if want, ok := lastSeq[a.pid]; ok && a.seq != want {
						t.Fatalf("seed %d: %s/%d: producer %d sequence %d at offset %d, want %d", seed, top.Name, p, a.pid, a.seq, a.base, want)
					}
					lastSeq[a.pid] = seqAdd(a.seq, a.n)
				}
			}
			if h := hwm(t, s, top.ID, p); h != next {
				t.Fatalf("seed %d: %s/%d: high watermark %d, answers cover %d", seed, top.Name, p, h, next)
			}
			var want int64
			for _, e := range allEntries(t, s, top.ID, p) {
				if e.BaseOffset != want || e.LastOffset < e.BaseOffset {
					t.Fatalf("seed %d: %s/%d: entry [%d, %d], want base %d", seed, top.Name, p, e.BaseOffset, e.LastOffset, want)
				}
				if e.Start < 0 || e.Length < 1 || e.Start+e.Length > segSize[e.SegmentID] || e.ObjectSize != segSize[e.SegmentID] {
					t.Fatalf("seed %d: entry %+v outside its segment of %d bytes", seed, e, segSize[e.SegmentID])
				}
				want = e.LastOffset + 1
			}
			if want != next {
				t.Fatalf("seed %d: %s/%d: entries end at %d, want %d", seed, top.Name, p, want, next)
			}
		}
	}
	checkInvariants(t, s)
	reopen(t, s)
}

// TestGroupCommitGroups: 200 concurrent commits take far fewer store
// transactions than 200. The first group's transaction is held until
// every other commit is queued, so the count does not depend on how fast
// this machine's fsync is.
func TestGroupCommitGroups(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 16)
	const n = 200
	release, open := newGate(t)
	var calls atomic.Int32
	setWriteHook(t, s, func() error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	})
	tx0 := s.txCount.Load()
	var wg sync.WaitGroup
	commit := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.CommitSegment(ctx, newSegment().add(a.ID, int32(i%16), 1, 10).SegmentCommit); err != nil {
				t.Error(err)
			}
		}()
	}
	// One commit first, so the held group is exactly that one whatever
	// the scheduler does; the rest queue behind it.
	commit(0)
	waitFor(t, "first group in its write", func() bool { return calls.Load() == 1 })
	for i := 1; i < n; i++ {
		commit(i)
	}
	waitFor(t, "queued commits", func() bool { return len(s.ops) == n-1 })
	open()
	wg.Wait()
	txs := s.txCount.Load() - tx0
	t.Logf("%d commits in %d transactions", n, txs)
	if txs > 3 {
		t.Fatalf("%d commits took %d transactions, want at most 3", n, txs)
	}
	var total int64
	for p := int32(0); p < 16; p++ {
		total += hwm(t, s, a.ID, p)
	}
	if total != n {
		t.Fatalf("%d offsets assigned, want %d", total, n)
	}
}

// TestGroupCommitUnforced: without any hook, concurrent commits still
// share transactions (fsync is what makes them queue up).
func TestGroupCommitUnforced(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 16)
	const n = 200
	tx0 := s.txCount.Load()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := s.CommitSegment(ctx, newSegment().add(a.ID, int32(i%16), 1, 10).SegmentCommit); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	txs := s.txCount.Load() - tx0
	t.Logf("%d commits in %d transactions", n, txs)
	if txs >= n/2 {
		t.Fatalf("%d commits took %d transactions", n, txs)
	}
}

// TestWatchVisibility: a watcher gets a group's events only after the
// group is durable and visible: while the transaction is held, neither
// Lookup nor the watcher sees anything; when an event arrives, Lookup
// returns its entry and a high watermark at least the event's.
func TestWatchVisibility(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 4)
	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Held transaction: nothing visible.
	release, open := newGate(t)
	var held atomic.Bool
	held.Store(true)
	setWriteHook(t, s, func() error {
		if held.Load() {
			<-release
		}
		return nil
	})
	errc := make(chan error, 1)
	go func() {
		_, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 3, 30).SegmentCommit)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // give a wrong implementation the chance to show it
	if h := hwm(t, s, a.ID, 0); h != 0 {
		t.Fatalf("high watermark %d before the write is durable", h)
	}
	select {
	case evs := <-w:
		t.Fatalf("event before the write is durable: %+v", evs)
	default:
	}
	held.Store(false)
	open()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// Concurrent writers; check each event as it arrives.
	var wg sync.WaitGroup
	const writers, each = 8, 20
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				sg := newSegment().add(a.ID, int32(i%4), 2, 20).add(a.ID, int32((i+1)%4), 1, 10)
				if _, err := s.CommitSegment(ctx, sg.SegmentCommit); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	want := 1 + writers*each*2 // entries: the first commit's, then two per segment
	seen := 0
	for seen < want {
		var evs []meta.CommitEvent
		select {
		case evs = <-w:
		case <-ctx.Done():
			t.Fatalf("saw %d of %d events", seen, want)
		}
		for _, ev := range evs {
			tp := meta.TopicPartition{TopicID: ev.Entry.TopicID, Partition: ev.Entry.Partition}
			r, err := s.Lookup(ctx, tp, ev.Entry.BaseOffset, 1)
			if err != nil || len(r.Entries) != 1 || r.Entries[0] != ev.Entry || r.HighWatermark < ev.HighWatermark {
				t.Fatalf("event %+v not visible: %+v %v", ev, r, err)
			}
			if ev.HighWatermark <= ev.Entry.LastOffset {
				t.Fatalf("event %+v: high watermark not past the entry", ev)
			}
			seen++
		}
	}
	wg.Wait()
}

// TestWatchSlowDropped: a watcher that does not read is dropped when its
// buffer is full (its channel closes after the buffered batches); the
// committer never waits for it and other watchers go on receiving.
func TestWatchSlowDropped(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.WatchBuffer = 2 })
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	slow, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fastBatches []([]meta.CommitEvent)
	for i := 0; i < 5; i++ {
		commit(t, s, newSegment().add(a.ID, 0, 1, 10)) // returns: the committer was not blocked
		fastBatches = append(fastBatches, <-fast)
	}
	for i, b := range fastBatches {
		if len(b) != 1 || b[0].Entry.BaseOffset != int64(i) {
			t.Fatalf("fast watcher batch %d: %+v", i, b)
		}
	}
	// The slow one has its two buffered batches, then is closed.
	for i := 0; i < 2; i++ {
		b, ok := <-slow
		if !ok || b[0].Entry.BaseOffset != int64(i) {
			t.Fatalf("slow watcher batch %d: %+v %v", i, b, ok)
		}
	}
	if _, ok := <-slow; ok {
		t.Fatal("slow watcher not closed")
	}
	s.wmu.Lock()
	n := len(s.watchers)
	s.wmu.Unlock()
	if n != 1 {
		t.Fatalf("%d watchers registered, want 1", n)
	}
}

// TestWatchContext: the channel closes when the watcher's context ends.
func TestWatchContext(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-w:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not closed after its context ended")
	}
	waitFor(t, "watcher removed", func() bool {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return len(s.watchers) == 0
	})
	if _, err := s.Watch(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch with a done context: %v", err)
	}
}

// TestWatchOwnSlices: two watchers get equal batches in separate memory.
func TestWatchOwnSlices(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	w1, _ := s.Watch(ctx)
	w2, _ := s.Watch(ctx)
	commit(t, s, newSegment().add(a.ID, 0, 1, 10))
	b1, b2 := <-w1, <-w2
	if !slices.Equal(b1, b2) || &b1[0] == &b2[0] {
		t.Fatalf("batches: %p %p", &b1[0], &b2[0])
	}
}

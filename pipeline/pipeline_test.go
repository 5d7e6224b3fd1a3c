package pipeline_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/codec"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// Most tests run in a synctest bubble: the meta service is opened inside
// it, so its committer goroutine belongs to the bubble too (its bbolt file
// I/O is plain syscalls, which synctest treats as running, not blocked).
// synctest.Wait then means "every upload and commit that can happen has
// happened".

// TestSealByInterval: a few small Appends become exactly one segment, sealed
// when the flush interval has passed and not before; done is called once
// per Append, results in batch order, offsets dense per partition; the
// object holds every batch, grouped by partition, arrival order within.
func TestSealByInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 4)
		mem := objstore.NewMemory()
		const interval = 100 * time.Millisecond
		p := e.start(pipeline.Config{FlushInterval: interval}, mem, nil)

		appends := [][]pipeline.Batch{
			{e.batch(1, 3, 10), e.batch(0, 2, 10)},
			{e.batch(0, 1, 10)},
			{e.batch(3, 4, 10), e.batch(1, 1, 10), e.batch(0, 5, 10), e.batch(1, 2, 10)},
		}
		acks := make([]*ack, len(appends))
		for i, bs := range appends {
			acks[i] = mustAppend(t, p, bs)
		}

		time.Sleep(interval - time.Millisecond)
		synctest.Wait()
		if segs := listSegments(t, mem); len(segs) != 0 {
			t.Fatalf("%d segments before the flush interval passed", len(segs))
		}
		for i, a := range acks {
			if a.called() {
				t.Fatalf("Append %d answered before its segment was sealed", i)
			}
		}

		time.Sleep(time.Millisecond)
		synctest.Wait()
		segs := listSegments(t, mem)
		if len(segs) != 1 {
			t.Fatalf("%d segments after the flush interval, want 1", len(segs))
		}
		checkAcks(t, appends, acks)

		// Body order: partitions ascending, arrival order within each.
		var arrival []pipeline.Batch
		for _, bs := range appends {
			arrival = append(arrival, bs...)
		}
		want := slices.Clone(arrival)
		slices.SortStableFunc(want, func(a, b pipeline.Batch) int { return int(a.Partition - b.Partition) })
		seg := segs[0]
		if len(seg.chunks) != len(want) {
			t.Fatalf("segment holds %d chunks, want %d", len(seg.chunks), len(want))
		}
		for i, c := range seg.chunks {
			b := want[i]
			if c.TopicID != e.topic || c.Partition != b.Partition || c.FirstTimestamp != tagOf(b) {
				t.Errorf("chunk %d: partition %d tag %d, want partition %d tag %d", i, c.Partition, c.FirstTimestamp, b.Partition, tagOf(b))
			}
			if !bytes.Equal(seg.obj[c.Start:c.End()], b.Data) {
				t.Errorf("chunk %d: bytes differ from the batch appended", i)
			}
		}
		hw := map[int32]int64{}
		for _, b := range arrival {
			hw[b.Partition] += recordsOf(b)
		}
		for part := range e.parts {
			checkLog(t, e, mem, part, hw[part])
		}
		if n := p.InFlightBytes(); n != 0 {
			t.Errorf("InFlightBytes = %d after every Append completed", n)
		}
	})
}

// TestSealBySize: with a small MaxSegmentBytes, a stream of Appends is cut
// into several segments without waiting for the interval, each as full as
// the next Append allows and never over the limit; an Append larger than
// the limit gets a segment of its own.
func TestSealBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 3)
		mem := objstore.NewMemory()
		probe := e.batch(0, 1, 200)
		chunk := len(probe.Data) + 66 // a batch plus its index entry
		// Four chunks fit; the limit falls where the fifth batch would fit
		// without its index entry but not with it.
		maxBytes := 24 + 36 + 4*chunk + len(probe.Data) + 30
		p := e.start(pipeline.Config{FlushInterval: time.Hour, MaxSegmentBytes: maxBytes}, mem, nil)

		var appends [][]pipeline.Batch
		var acks []*ack
		for i := range 31 {
			bs := []pipeline.Batch{e.batch(int32(i%3), 1, 200)}
			appends = append(appends, bs)
			acks = append(acks, mustAppend(t, p, bs))
		}
		synctest.Wait()
		segs := listSegments(t, mem)
		if len(segs) < 5 {
			t.Fatalf("%d segments sealed by size, want several", len(segs))
		}
		for _, s := range segs {
			if len(s.obj) > maxBytes {
				t.Errorf("segment of %d bytes with %d chunks over the limit %d", len(s.obj), len(s.chunks), maxBytes)
			}
			if len(s.obj)+chunk <= maxBytes {
				t.Errorf("segment of %d bytes sealed early: another batch (%d) fits under %d", len(s.obj), chunk, maxBytes)
			}
		}
		// Those Appends are answered; the rest wait for the interval.
		bySeg := segmentOfTags(t, segs)
		for i, bs := range appends {
			_, sealed := bySeg[tagOf(bs[0])]
			if acks[i].called() != sealed {
				t.Errorf("Append %d: answered %v, in a sealed segment %v", i, acks[i].called(), sealed)
			}
		}
		waiting := 0
		for _, a := range acks {
			if !a.called() {
				waiting++
			}
		}
		if waiting == 0 {
			t.Fatal("every Append answered before the interval: the test needs a partly filled segment")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		checkAcks(t, appends, acks)
		if n := len(listSegments(t, mem)); n != len(segs)+1 {
			t.Errorf("%d segments after the interval, want %d", n, len(segs)+1)
		}

		// An Append larger than the limit: what is open is sealed first,
		// and the big one gets a segment of its own at once.
		before := len(listSegments(t, mem))
		small := []pipeline.Batch{e.batch(0, 1, 10)}
		big := []pipeline.Batch{e.batch(1, 1, 2*maxBytes)}
		aSmall := mustAppend(t, p, small)
		aBig := mustAppend(t, p, big)
		synctest.Wait()
		segs = listSegments(t, mem)
		if len(segs) != before+2 {
			t.Fatalf("%d new segments after a small and an oversized Append, want 2", len(segs)-before)
		}
		for _, s := range segs {
			if s.has(tagOf(big[0])) && len(s.chunks) != 1 {
				t.Errorf("oversized batch shares its segment with %d others", len(s.chunks)-1)
			}
			if s.has(tagOf(small[0])) && len(s.chunks) != 1 {
				t.Errorf("small batch's segment holds %d chunks, want 1", len(s.chunks))
			}
		}
		if !aSmall.called() || !aBig.called() {
			t.Errorf("answered: small %v big %v; both segments were sealed by size", aSmall.called(), aBig.called())
		}
		// And an oversized Append into an empty pipeline.
		big2 := []pipeline.Batch{e.batch(2, 1, 2*maxBytes)}
		aBig2 := mustAppend(t, p, big2)
		synctest.Wait()
		if !aBig2.called() {
			t.Errorf("oversized Append into an empty pipeline waited for the interval")
		}
		if n, res := aBig2.state(); n != 1 || res[0].Err != nil {
			t.Errorf("oversized Append: %d calls, %+v", n, res)
		}
	})
}

// TestAppendStaysInOneSegment: every batch of one Append lands in the same
// segment even when the Append straddles the size limit.
func TestAppendStaysInOneSegment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 8)
		mem := objstore.NewMemory()
		p := e.start(pipeline.Config{FlushInterval: time.Hour, MaxSegmentBytes: 2000}, mem, nil)
		rng := rand.New(rand.NewPCG(1, 2))
		var appends [][]pipeline.Batch
		var acks []*ack
		for range 60 {
			var bs []pipeline.Batch
			for range 1 + rng.IntN(5) {
				bs = append(bs, e.batch(rng.Int32N(8), 1+rng.IntN(3), 50+rng.IntN(100)))
			}
			appends = append(appends, bs)
			acks = append(acks, mustAppend(t, p, bs))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		segs := listSegments(t, mem)
		if len(segs) < 5 {
			t.Fatalf("only %d segments: the test needs Appends to straddle the limit", len(segs))
		}
		bySeg := segmentOfTags(t, segs)
		for i, bs := range appends {
			first, ok := bySeg[tagOf(bs[0])]
			for j, b := range bs {
				s, found := bySeg[tagOf(b)]
				if !ok || !found || s != first {
					t.Errorf("Append %d: batch %d in segment %d (found %v), batch 0 in %d", i, j, s, found, first)
				}
			}
		}
		checkAcks(t, appends, acks)
	})
}

// TestAckAfterCommit: done is not called while the upload is held, nor
// while the meta commit is held; when it is called the object is in the
// store and the offsets are committed.
func TestAckAfterCommit(t *testing.T) {
	t.Run("upload held", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			gs := newGateStore(objstore.NewMemory())
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond}, gs, nil)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 3, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Second)
			synctest.Wait()
			if gs.held.Load() != 1 {
				t.Fatalf("%d Puts held, want 1", gs.held.Load())
			}
			if a.called() {
				t.Fatal("done called while the segment's upload is held")
			}
			if hw := e.hwm(0); hw != 0 {
				t.Fatalf("high watermark %d before the upload finished", hw)
			}
			gs.open()
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
		})
	})
	t.Run("commit held", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			mem := objstore.NewMemory()
			hm := &hookMeta{Client: e.svc}
			hm.shut()
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond}, mem, hm)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 3, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Second)
			synctest.Wait()
			if calls, _ := hm.snapshot(); len(calls) != 1 {
				t.Fatalf("%d commits started, want 1 (held)", len(calls))
			}
			if len(listSegments(t, mem)) != 1 {
				t.Fatal("segment not uploaded before its commit")
			}
			if a.called() {
				t.Fatal("done called while the segment's commit is held")
			}
			hm.open()
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
		})
	})
	t.Run("durable at done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			mem := objstore.NewMemory()
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond}, mem, nil)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 3, 10)}
			a := &ack{}
			var inStore, committed bool
			a.onDone = func([]pipeline.Result) {
				// Inside done: the object must already be in the bucket and
				// the offsets in meta.
				for _, s := range listSegments(t, mem) {
					inStore = inStore || (s.has(tagOf(bs[0])) && s.has(tagOf(bs[1])))
				}
				committed = e.hwm(0) == 2 && e.hwm(1) == 3
			}
			if err := p.Append(context.Background(), bs, a.done); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
			if !inStore || !committed {
				t.Errorf("at done: object in store %v, committed in meta %v", inStore, committed)
			}
		})
	})
}

// TestCommitInSealOrder: the first segment's upload finishes after the
// second's, yet commits go in seal order, so an idempotent producer's
// sequence numbers that continue across the two segments are all appended.
func TestCommitInSealOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2)
		ds := &delayStore{Store: objstore.NewMemory(), delays: []time.Duration{time.Second}}
		hm := &hookMeta{Client: e.svc}
		const interval = 10 * time.Millisecond
		p := e.start(pipeline.Config{FlushInterval: interval, MaxConcurrentUploads: 4}, ds, hm)

		const pid = 7
		seq := map[int32]int32{}
		idem := func(part int32, records int) pipeline.Batch {
			b := e.batchOpts(part, kafkatest.BatchOpts{Records: records, ValueSize: 8, ProducerID: pid, BaseSeq: seq[part]})
			seq[part] += int32(records)
			return b
		}
		var appends [][]pipeline.Batch
		var acks []*ack
		add := func(bs ...pipeline.Batch) {
			appends = append(appends, bs)
			acks = append(acks, mustAppend(t, p, bs))
		}
		// Segment 1.
		add(idem(0, 2), idem(1, 1))
		add(idem(0, 3))
		time.Sleep(interval)
		synctest.Wait() // sealed; its Put is the first and takes a second
		// Segment 2.
		add(idem(0, 1), idem(1, 4))
		add(idem(1, 2), idem(0, 2))
		time.Sleep(interval)
		synctest.Wait()

		if got := ds.completed(); len(got) != 1 {
			t.Fatalf("%d uploads finished, want the second segment's alone", len(got))
		}
		if calls, _ := hm.snapshot(); len(calls) != 0 {
			t.Fatalf("%d commits while the first segment is still uploading", len(calls))
		}
		for i, a := range acks {
			if a.called() {
				t.Fatalf("Append %d answered before the first segment committed", i)
			}
		}

		time.Sleep(time.Second)
		synctest.Wait()
		segs := listSegments(t, ds)
		if len(segs) != 2 {
			t.Fatalf("%d segments, want 2", len(segs))
		}
		bySeg := segmentOfTags(t, segs)
		first, second := bySeg[tagOf(appends[0][0])], bySeg[tagOf(appends[2][0])]
		if first == second {
			t.Fatal("the test needs two segments")
		}
		if done := ds.completed(); len(done) != 2 || done[0] != segs[second].key {
			t.Errorf("upload completion order %v: want the second segment first", done)
		}
		calls, committed := hm.snapshot()
		if len(calls) != 2 || len(committed) != 2 {
			t.Fatalf("%d commit calls, %d succeeded, want 2", len(calls), len(committed))
		}
		if committed[0].SegmentID != segs[first].id || committed[1].SegmentID != segs[second].id {
			t.Errorf("commit order %v, %v: want seal order %v, %v",
				committed[0].SegmentID, committed[1].SegmentID, segs[first].id, segs[second].id)
		}
		if !idBefore(committed[0].SegmentID, committed[1].SegmentID) {
			t.Errorf("segment ids committed out of creation order: %v then %v", committed[0].SegmentID, committed[1].SegmentID)
		}
		checkAcks(t, appends, acks) // all ChunkAppended at the offsets of seal order
	})
}

// TestUploadFailure: a store that fails every Put makes every batch fail
// with ErrUpload after retries, commits nothing and releases the bytes; the
// pipeline keeps working afterwards. Transient failures are retried.
func TestUploadFailure(t *testing.T) {
	t.Run("permanent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			mem := objstore.NewMemory()
			f := objstore.NewFaulty(mem, 1)
			f.SetRule(objstore.OpPut, objstore.Rule{FailRate: 1})
			hm := &hookMeta{Client: e.svc}
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, UploadTimeout: time.Second}, f, hm)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 1, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Minute)
			synctest.Wait()
			n, res := a.state()
			if n != 1 || len(res) != len(bs) {
				t.Fatalf("done called %d times with %d results", n, len(res))
			}
			for i, r := range res {
				if !errors.Is(r.Err, pipeline.ErrUpload) {
					t.Errorf("result %d: %+v, want ErrUpload", i, r)
				}
			}
			if c := f.Calls(objstore.OpPut); c < 2 {
				t.Errorf("%d Put attempts, want retries", c)
			}
			if calls, _ := hm.snapshot(); len(calls) != 0 {
				t.Errorf("%d commits of a segment that was never uploaded", len(calls))
			}
			if e.hwm(0) != 0 || e.hwm(1) != 0 {
				t.Errorf("high watermarks %d, %d after a failed upload", e.hwm(0), e.hwm(1))
			}
			if n := p.InFlightBytes(); n != 0 {
				t.Errorf("InFlightBytes = %d after the failure", n)
			}

			// The store recovers; so does the pipeline.
			f.Reset()
			bs2 := []pipeline.Batch{e.batch(0, 3, 10)}
			a2 := mustAppend(t, p, bs2)
			time.Sleep(time.Second)
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs2}, []*ack{a2})
		})
	})
	t.Run("transient", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			mem := objstore.NewMemory()
			f := objstore.NewFaulty(mem, 1)
			f.FailNext(objstore.OpPut, 2)
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, UploadTimeout: 10 * time.Second}, f, nil)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 1, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Minute)
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
			if c := f.Calls(objstore.OpPut); c != 3 {
				t.Errorf("%d Put attempts, want 3", c)
			}
			checkLog(t, e, mem, 0, 2)
		})
	})
}

// TestCommitFailure: a failing commit is retried with the same segment id
// and ends in ErrCommit; a lost reply is retried without storing twice.
func TestCommitFailure(t *testing.T) {
	t.Run("permanent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			hm := &hookMeta{Client: e.svc, fail: func(int) (error, bool) { return meta.ErrUnavailable, false }}
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, CommitTimeout: time.Second}, objstore.NewMemory(), hm)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 1, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Minute)
			synctest.Wait()
			n, res := a.state()
			if n != 1 || len(res) != len(bs) {
				t.Fatalf("done called %d times with %d results", n, len(res))
			}
			for i, r := range res {
				if !errors.Is(r.Err, pipeline.ErrCommit) {
					t.Errorf("result %d: %+v, want ErrCommit", i, r)
				}
			}
			calls, _ := hm.snapshot()
			if len(calls) < 2 || !sameID(calls) {
				t.Errorf("%d commit calls (same id: %v), want retries of one segment", len(calls), sameID(calls))
			}
			if e.hwm(0) != 0 || p.InFlightBytes() != 0 {
				t.Errorf("high watermark %d, in flight %d after the failure", e.hwm(0), p.InFlightBytes())
			}
		})
	})
	t.Run("lost reply", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			hm := &hookMeta{Client: e.svc, fail: func(n int) (error, bool) {
				if n < 2 {
					return context.DeadlineExceeded, true // applied, reply lost
				}
				return nil, false
			}}
			mem := objstore.NewMemory()
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond}, mem, hm)
			bs := []pipeline.Batch{e.batch(0, 2, 10), e.batch(1, 1, 10)}
			a := mustAppend(t, p, bs)
			time.Sleep(time.Minute)
			synctest.Wait()
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
			calls, _ := hm.snapshot()
			if len(calls) != 3 || !sameID(calls) {
				t.Errorf("%d commit calls (same id: %v), want 3 of one segment", len(calls), sameID(calls))
			}
			checkLog(t, e, mem, 0, 2) // stored once
			checkLog(t, e, mem, 1, 1)
		})
	})
	t.Run("meta closed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			hm := &hookMeta{Client: e.svc, fail: func(int) (error, bool) { return meta.ErrClosed, false }}
			p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond}, objstore.NewMemory(), hm)
			a := mustAppend(t, p, []pipeline.Batch{e.batch(0, 2, 10)})
			time.Sleep(time.Second)
			synctest.Wait()
			if n, res := a.state(); n != 1 || !errors.Is(res[0].Err, pipeline.ErrCommit) {
				t.Errorf("done: %d calls, %+v; want ErrCommit", n, res)
			}
			if calls, _ := hm.snapshot(); len(calls) != 1 {
				t.Errorf("%d commit calls, want 1: a closed meta is not retried", len(calls))
			}
		})
	})
}

// TestBackpressure: Append waits once the in-flight bound is reached,
// InFlightBytes stays under the bound (an oversized Append is admitted
// alone), an Append whose ctx ends while waiting returns its error and is
// never answered, and releasing the store lets everything complete.
func TestBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2)
		gs := newGateStore(objstore.NewMemory())
		size := int64(len(e.batch(0, 1, 100).Data))
		bound := 3 * size
		const interval = 10 * time.Millisecond
		p := e.start(pipeline.Config{FlushInterval: interval, MaxInFlightBytes: bound}, gs, nil)
		var peak atomic.Int64
		sample := func() {
			n := p.InFlightBytes()
			for {
				old := peak.Load()
				if n <= old || peak.CompareAndSwap(old, n) {
					return
				}
			}
		}

		var appends [][]pipeline.Batch
		var acks []*ack
		for i := range 3 {
			bs := []pipeline.Batch{e.batch(int32(i%2), 1, 100)}
			appends = append(appends, bs)
			acks = append(acks, mustAppend(t, p, bs))
			sample()
		}
		if n := p.InFlightBytes(); n != bound {
			t.Fatalf("InFlightBytes = %d, want %d", n, bound)
		}

		// The fourth Append waits for room.
		bs4 := []pipeline.Batch{e.batch(0, 1, 100)}
		a4 := &ack{}
		var returned atomic.Bool
		var err4 error
		go func() {
			err4 = p.Append(context.Background(), bs4, a4.done)
			returned.Store(true)
			sample()
		}()
		time.Sleep(time.Second) // the first segment is sealed; its Put is held
		synctest.Wait()
		if returned.Load() {
			t.Fatal("Append returned although the in-flight bound was reached")
		}
		if gs.held.Load() != 1 {
			t.Fatalf("%d Puts held, want 1", gs.held.Load())
		}

		// An Append whose ctx ends while it waits fails and is never answered.
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		a5 := &ack{}
		if err := p.Append(ctx, []pipeline.Batch{e.batch(1, 1, 100)}, a5.done); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Append with an expiring ctx: %v, want DeadlineExceeded", err)
		}
		cancel()
		if n := p.InFlightBytes(); n != bound {
			t.Errorf("InFlightBytes = %d after a refused Append, want %d", n, bound)
		}

		gs.open()
		time.Sleep(time.Second)
		synctest.Wait()
		if !returned.Load() || err4 != nil {
			t.Fatalf("waiting Append: returned %v, err %v", returned.Load(), err4)
		}
		appends = append(appends, bs4)
		acks = append(acks, a4)
		checkAcks(t, appends, acks)
		if a5.called() {
			t.Error("done called for an Append that returned an error")
		}
		if n := p.InFlightBytes(); n != 0 {
			t.Errorf("InFlightBytes = %d after everything completed", n)
		}
		if n := peak.Load(); n > bound {
			t.Errorf("InFlightBytes reached %d over the bound %d", n, bound)
		}

		// An oversized Append is admitted alone when nothing is in flight...
		gs.shut()
		big := []pipeline.Batch{e.batch(1, 1, int(4*bound))}
		aBig := mustAppend(t, p, big)
		bigSize := int64(len(big[0].Data))
		if n := p.InFlightBytes(); n != bigSize {
			t.Errorf("InFlightBytes = %d with the oversized Append, want %d", n, bigSize)
		}
		// ...and nothing else is admitted beside it.
		var smallDone atomic.Bool
		aSmall := &ack{}
		go func() {
			if err := p.Append(context.Background(), []pipeline.Batch{e.batch(0, 1, 10)}, aSmall.done); err != nil {
				t.Errorf("Append: %v", err)
			}
			smallDone.Store(true)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if smallDone.Load() {
			t.Error("Append admitted beside an oversized one in flight")
		}
		if n := p.InFlightBytes(); n != bigSize {
			t.Errorf("InFlightBytes = %d, want %d", n, bigSize)
		}
		// An oversized Append must wait while anything is in flight.
		gs.open()
		time.Sleep(time.Second)
		synctest.Wait()
		if !aBig.called() || !smallDone.Load() || !aSmall.called() {
			t.Fatalf("after release: big answered %v, small admitted %v answered %v", aBig.called(), smallDone.Load(), aSmall.called())
		}
		gs.shut()
		aSmall2 := mustAppend(t, p, []pipeline.Batch{e.batch(0, 1, 10)})
		var big2Done atomic.Bool
		go func() {
			if err := p.Append(context.Background(), []pipeline.Batch{e.batch(1, 1, int(4*bound))}, func([]pipeline.Result) {}); err != nil {
				t.Errorf("Append: %v", err)
			}
			big2Done.Store(true)
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if big2Done.Load() {
			t.Error("oversized Append admitted while other bytes were in flight")
		}
		gs.open()
		time.Sleep(time.Second)
		synctest.Wait()
		if !aSmall2.called() || !big2Done.Load() {
			t.Errorf("after release: small answered %v, big admitted %v", aSmall2.called(), big2Done.Load())
		}
	})
}

// TestClose: Appends admitted before Close are all answered; Append after
// Close and Appends waiting for room at Close get ErrClosed and no answer;
// Close with a stuck store returns when its ctx ends, every time it is
// called, until the work is really done.
func TestClose(t *testing.T) {
	t.Run("drains", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			mem := objstore.NewMemory()
			p := e.start(pipeline.Config{FlushInterval: time.Hour}, mem, nil)
			var appends [][]pipeline.Batch
			var acks []*ack
			for i := range 5 {
				bs := []pipeline.Batch{e.batch(int32(i%2), 1+i, 10)}
				appends = append(appends, bs)
				acks = append(acks, mustAppend(t, p, bs))
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatalf("Close: %v", err)
			}
			checkAcks(t, appends, acks)
			if n := len(listSegments(t, mem)); n != 1 {
				t.Errorf("%d segments, want 1 sealed by Close", n)
			}
			a := &ack{}
			if err := p.Append(context.Background(), []pipeline.Batch{e.batch(0, 1, 10)}, a.done); !errors.Is(err, pipeline.ErrClosed) {
				t.Errorf("Append after Close: %v, want ErrClosed", err)
			}
			synctest.Wait()
			if a.called() {
				t.Error("done called for an Append refused after Close")
			}
			if err := p.Close(context.Background()); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	})
	t.Run("stuck store", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			e := newEnv(t, 2)
			gs := newGateStore(objstore.NewMemory())
			size := int64(len(e.batch(0, 1, 100).Data))
			p := e.start(pipeline.Config{FlushInterval: time.Hour, MaxInFlightBytes: size}, gs, nil)
			bs := []pipeline.Batch{e.batch(0, 1, 100)}
			a := mustAppend(t, p, bs)
			// This one waits for room, and is refused by Close.
			var waitErr error
			var waitReturned atomic.Bool
			aWait := &ack{}
			go func() {
				waitErr = p.Append(context.Background(), []pipeline.Batch{e.batch(1, 1, 100)}, aWait.done)
				waitReturned.Store(true)
			}()
			synctest.Wait()
			if waitReturned.Load() {
				t.Fatal("second Append admitted over the bound")
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := p.Close(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close with a stuck store: %v, want DeadlineExceeded", err)
			}
			synctest.Wait()
			if !waitReturned.Load() || !errors.Is(waitErr, pipeline.ErrClosed) {
				t.Errorf("Append waiting at Close: returned %v, err %v; want ErrClosed", waitReturned.Load(), waitErr)
			}
			if a.called() {
				t.Fatal("done called while the upload is stuck")
			}
			// Close again: still not done, so it must not report success.
			ctx, cancel = context.WithTimeout(context.Background(), time.Second)
			err = p.Close(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("second Close with the store still stuck: %v, want DeadlineExceeded", err)
			}

			gs.open()
			if err := p.Close(context.Background()); err != nil {
				t.Errorf("Close after the store recovered: %v", err)
			}
			checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
			if aWait.called() {
				t.Error("done called for an Append refused by Close")
			}
		})
	})
}

// TestConcurrentAppends: 8 goroutines append to 16 partitions with a small
// segment size and in-flight bound and a flaky, slow store; every Append
// is answered once, every partition's offsets are dense, each goroutine's
// batches keep their order within a partition, the index points at the
// right bytes, and the in-flight bound holds throughout. Real time: this
// is about true parallelism (run it with -race).
func TestConcurrentAppends(t *testing.T) {
	const (
		workers    = 8
		perWorker  = 150
		partitions = 16
		bound      = 64 << 10
	)
	e := newEnv(t, partitions)
	mem := objstore.NewMemory()
	f := objstore.NewFaulty(mem, 42)
	f.SetRule(objstore.OpPut, objstore.Rule{FailRate: 0.1, Latency: time.Millisecond})
	p := e.start(pipeline.Config{
		FlushInterval:        2 * time.Millisecond,
		MaxSegmentBytes:      16 << 10,
		MaxInFlightBytes:     bound,
		MaxConcurrentUploads: 3,
		UploadTimeout:        time.Minute,
	}, f, nil)

	type sent struct {
		worker, seq int
		b           pipeline.Batch
	}
	var (
		wg       sync.WaitGroup
		answered sync.WaitGroup
		mu       sync.Mutex
		all      [][]sent
		acks     []*ack
		overs    atomic.Int64
	)
	stop := make(chan struct{})
	sampler := make(chan struct{})
	go func() { // the bound holds whenever we look
		defer close(sampler)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := p.InFlightBytes(); n > bound {
				overs.Store(n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range perWorker {
				var bs []pipeline.Batch
				var ss []sent
				for range 1 + rng.IntN(4) {
					b := e.batch(rng.Int32N(partitions), 1+rng.IntN(5), 64+rng.IntN(448))
					bs = append(bs, b)
					ss = append(ss, sent{worker: w, seq: i, b: b})
				}
				a := &ack{}
				answered.Add(1)
				a.onDone = func([]pipeline.Result) { answered.Done() }
				if err := p.Append(context.Background(), bs, a.done); err != nil {
					t.Errorf("Append: %v", err)
					answered.Done()
					return
				}
				mu.Lock()
				all = append(all, ss)
				acks = append(acks, a)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	answered.Wait()
	close(stop)
	<-sampler
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := overs.Load(); n != 0 {
		t.Errorf("InFlightBytes reached %d over the bound %d", n, bound)
	}
	if n := p.InFlightBytes(); n != 0 {
		t.Errorf("InFlightBytes = %d at the end", n)
	}

	type placed struct {
		sent
		base, n int64
	}
	byPart := map[int32][]placed{}
	for i, ss := range all {
		n, res := acks[i].state()
		if n != 1 || len(res) != len(ss) {
			t.Fatalf("Append: done called %d times with %d results for %d batches", n, len(res), len(ss))
		}
		for j, s := range ss {
			if res[j].Err != nil || res[j].Status != meta.ChunkAppended {
				t.Fatalf("batch: %+v", res[j])
			}
			byPart[s.b.Partition] = append(byPart[s.b.Partition], placed{s, res[j].BaseOffset, recordsOf(s.b)})
		}
	}
	for part := range int32(partitions) {
		ps := byPart[part]
		sort.Slice(ps, func(i, j int) bool { return ps[i].base < ps[j].base })
		next := int64(0)
		last := map[int]int{} // worker → seq of its latest batch here
		for _, x := range ps {
			if x.base != next {
				t.Fatalf("partition %d: batch at %d, want %d (offsets not dense)", part, x.base, next)
			}
			next += x.n
			if s, ok := last[x.worker]; ok && x.seq < s {
				t.Errorf("partition %d: worker %d's Append %d stored after its Append %d", part, x.worker, x.seq, s)
			}
			last[x.worker] = x.seq
		}
		checkLog(t, e, mem, part, next)
	}
}

// TestSealedSegmentsDoNotBlockAppend: while commits stall, Appends within
// the in-flight bound keep being admitted however many segments they seal,
// and once commits resume everything completes. (The sealed-segment queue
// must not fill up under the pipeline's lock.) Real time with a fake meta:
// thousands of segments, and a deadlock must fail the test, not hang it.
func TestSealedSegmentsDoNotBlockAppend(t *testing.T) {
	fm := newFakeMeta()
	fm.gate = make(chan struct{})
	mem := objstore.NewMemory()
	p := pipeline.New(pipeline.Config{
		FlushInterval:   time.Hour,
		MaxSegmentBytes: 1, // every Append seals its own segment
		Logger:          quietLog,
	}, mem, fm)
	data := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 1, ProducerID: -1})
	b := fakeBatch(t, data)
	const n = 5000 // more segments than any fixed queue would hold
	var appended, answered atomic.Int64
	go func() {
		for range n {
			if err := p.Append(context.Background(), []pipeline.Batch{b}, func([]pipeline.Result) { answered.Add(1) }); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
			appended.Add(1)
		}
	}()
	ok := true
	deadline := time.Now().Add(30 * time.Second)
	for appended.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := appended.Load(); got < n {
		ok = false
		// (Not InFlightBytes here: with the bug it would block on the
		// pipeline's lock too.)
		t.Errorf("only %d of %d Appends of %d bytes admitted while commits stall (in-flight bound %d bytes)",
			got, n, len(data), p.Config().MaxInFlightBytes)
	}
	close(fm.gate)
	deadline = time.Now().Add(30 * time.Second)
	for answered.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := answered.Load(); got < n {
		t.Fatalf("only %d of %d Appends answered after commits resumed: deadlock", got, n)
	}
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func fakeBatch(t testing.TB, data []byte) pipeline.Batch {
	t.Helper()
	h, err := codec.ValidateBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Batch{TopicID: meta.TopicID{1}, Partition: 0, Data: data, Header: h}
}

// ---- Test-only helpers (also used by bench_test.go). ----

var quietLog = slog.New(slog.DiscardHandler)

// env is a real meta service in a temporary directory with one topic.
type env struct {
	t     testing.TB
	svc   *controller.Service
	topic meta.TopicID
	parts int32
	tag   atomic.Int64 // last batch tag handed out
}

func newEnv(t testing.TB, partitions int32) *env {
	t.Helper()
	// Retention off: in a synctest bubble meta's retention check runs on
	// fake time, and the tests' batches carry fixed timestamps.
	svc, err := controller.Open(controller.Config{Dir: t.TempDir(), Logger: quietLog, DefaultRetentionMs: -1})
	if err != nil {
		t.Fatalf("controller.Open: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	res, err := svc.CreateTopics(context.Background(), []meta.TopicSpec{{Name: "t", Partitions: partitions}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("CreateTopics: %v", res[0].Err)
	}
	return &env{t: t, svc: svc, topic: res[0].Topic.ID, parts: partitions}
}

// start starts a pipeline over store and mc (the env's meta when nil) and
// closes it at cleanup, before the meta service.
func (e *env) start(cfg pipeline.Config, store objstore.Store, mc meta.Client) *pipeline.Pipeline {
	e.t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	if mc == nil {
		mc = e.svc
	}
	p := pipeline.New(cfg, store, mc)
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			e.t.Errorf("cleanup: Close: %v", err)
		}
	})
	return p
}

// tagOf is how a test recognises a batch anywhere (segment index, commit,
// log): its first timestamp.
func tagOf(b pipeline.Batch) int64 { return b.Header.FirstTimestamp }

// batch returns a valid non-idempotent batch for partition part with a
// new tag.
func (e *env) batch(part int32, records, valueSize int) pipeline.Batch {
	return e.batchOpts(part, kafkatest.BatchOpts{Records: records, ValueSize: valueSize, ProducerID: -1})
}

// batchOpts returns a valid batch built from o with a new tag as its
// first timestamp.
func (e *env) batchOpts(part int32, o kafkatest.BatchOpts) pipeline.Batch {
	e.t.Helper()
	o.FirstTS = e.tag.Add(1) * 1_000_000
	data := kafkatest.AppendBatch(nil, o)
	h, err := codec.ValidateBatch(data)
	if err != nil {
		e.t.Fatalf("ValidateBatch: %v", err)
	}
	return pipeline.Batch{TopicID: e.topic, Partition: part, Data: data, Header: h}
}

func (e *env) tp(part int32) meta.TopicPartition {
	return meta.TopicPartition{TopicID: e.topic, Partition: part}
}

func (e *env) hwm(part int32) int64 {
	e.t.Helper()
	ps, err := e.svc.PartitionStates(context.Background(), []meta.TopicPartition{e.tp(part)})
	if err != nil || ps[0].Err != nil {
		e.t.Fatalf("PartitionStates: %v %v", err, ps)
	}
	return ps[0].HighWatermark
}

func recordsOf(b pipeline.Batch) int64 { return int64(b.Header.LastOffsetDelta) + 1 }

// ack records the done calls of one Append.
type ack struct {
	onDone func([]pipeline.Result) // optional, runs inside done

	mu    sync.Mutex
	calls int
	res   []pipeline.Result
}

func (a *ack) done(r []pipeline.Result) {
	if a.onDone != nil {
		a.onDone(r)
	}
	a.mu.Lock()
	a.calls++
	a.res = slices.Clone(r)
	a.mu.Unlock()
}

func (a *ack) state() (int, []pipeline.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, a.res
}

func (a *ack) called() bool { n, _ := a.state(); return n > 0 }

func mustAppend(t testing.TB, p *pipeline.Pipeline, batches []pipeline.Batch) *ack {
	t.Helper()
	a := &ack{}
	if err := p.Append(context.Background(), batches, a.done); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return a
}

// checkAcks checks that every Append of appends (made one after the other)
// got exactly one done call with one successful Result per batch, in batch
// order, with the offsets that arrival order gives (partitions start
// empty).
func checkAcks(t testing.TB, appends [][]pipeline.Batch, acks []*ack) {
	t.Helper()
	next := map[int32]int64{}
	for i, bs := range appends {
		n, res := acks[i].state()
		if n != 1 {
			t.Errorf("Append %d: done called %d times, want 1", i, n)
			continue
		}
		if len(res) != len(bs) {
			t.Errorf("Append %d: %d results for %d batches", i, len(res), len(bs))
			continue
		}
		for j, b := range bs {
			r := res[j]
			want := next[b.Partition]
			next[b.Partition] += recordsOf(b)
			if r.Err != nil || r.Status != meta.ChunkAppended || r.BaseOffset != want {
				t.Errorf("Append %d batch %d (partition %d): result %+v, want appended at %d", i, j, b.Partition, r, want)
			}
		}
	}
}

// segObj is one segment object found in a store.
type segObj struct {
	key    string
	id     meta.SegmentID
	obj    []byte
	chunks []codec.ChunkMeta // body order
}

// has reports whether the segment holds the batch with tag.
func (s *segObj) has(tag int64) bool {
	for _, c := range s.chunks {
		if c.FirstTimestamp == tag {
			return true
		}
	}
	return false
}

// listSegments reads and checks every segment object in store.
func listSegments(t testing.TB, store objstore.Store) []segObj {
	t.Helper()
	ctx := context.Background()
	var keys []string
	if err := store.List(ctx, "", func(info objstore.ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []segObj
	for _, k := range keys {
		obj, err := store.GetRange(ctx, k, 0, -1)
		if err != nil {
			t.Fatalf("GetRange(%s): %v", k, err)
		}
		id, chunks, err := codec.OpenSegment(obj)
		if err != nil {
			t.Fatalf("OpenSegment(%s): %v", k, err)
		}
		if want := pipeline.ObjectKey(id); k != want {
			t.Errorf("segment %x stored under %q, want %q", id, k, want)
		}
		out = append(out, segObj{key: k, id: id, obj: obj, chunks: chunks})
	}
	return out
}

// segmentOfTags maps each batch tag to the index of the segment holding it;
// a tag in two segments is an error.
func segmentOfTags(t testing.TB, segs []segObj) map[int64]int {
	t.Helper()
	m := map[int64]int{}
	for i := range segs {
		for _, c := range segs[i].chunks {
			if j, ok := m[c.FirstTimestamp]; ok {
				t.Errorf("batch %d in segments %s and %s", c.FirstTimestamp, segs[j].key, segs[i].key)
			}
			m[c.FirstTimestamp] = i
		}
	}
	return m
}

// countRecords walks the batches of a byte range and returns their record
// count, validating each batch.
func countRecords(t testing.TB, b []byte) int64 {
	t.Helper()
	var n int64
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d stray bytes after the last batch", len(b))
		}
		size := 12 + int(binary.BigEndian.Uint32(b[8:12]))
		if size > len(b) {
			t.Fatalf("batch of %d bytes in a range of %d", size, len(b))
		}
		h, err := codec.ValidateBatch(b[:size])
		if err != nil {
			t.Fatalf("ValidateBatch: %v", err)
		}
		n += int64(h.LastOffsetDelta) + 1
		b = b[size:]
	}
	return n
}

// checkLog walks a partition's index in meta from offset 0: the entries
// must be dense up to the high watermark want, and each entry's bytes in
// the store must hold exactly its offsets' records.
func checkLog(t testing.TB, e *env, store objstore.Store, part int32, want int64) {
	t.Helper()
	ctx := context.Background()
	if got := e.hwm(part); got != want {
		t.Errorf("partition %d: high watermark %d, want %d", part, got, want)
		return
	}
	off := int64(0)
	for off < want {
		r, err := e.svc.Lookup(ctx, e.tp(part), off, 1000)
		if err != nil {
			t.Fatalf("Lookup(%d, %d): %v", part, off, err)
		}
		if len(r.Entries) == 0 {
			t.Fatalf("Lookup(%d, %d): no entries below high watermark %d", part, off, r.HighWatermark)
		}
		for _, en := range r.Entries {
			if en.BaseOffset != off {
				t.Fatalf("partition %d: entry at %d, want %d (offsets not dense)", part, en.BaseOffset, off)
			}
			data, err := store.GetRange(ctx, en.ObjectKey, en.Start, en.Length)
			if err != nil {
				t.Fatalf("partition %d: entry %d: GetRange: %v", part, off, err)
			}
			if n := countRecords(t, data); n != en.LastOffset-en.BaseOffset+1 {
				t.Fatalf("partition %d: entry [%d, %d] holds %d records", part, en.BaseOffset, en.LastOffset, n)
			}
			off = en.LastOffset + 1
		}
	}
	if off != want {
		t.Errorf("partition %d: index ends at %d, high watermark %d", part, off, want)
	}
}

// gateStore holds Puts while its gate is shut.
type gateStore struct {
	objstore.Store
	held atomic.Int32 // Puts waiting at the gate

	mu   sync.Mutex
	gate chan struct{} // closed when open
	puts []string      // keys of completed Puts, in completion order
}

func newGateStore(inner objstore.Store) *gateStore {
	return &gateStore{Store: inner, gate: make(chan struct{})}
}

// open lets held and future Puts through.
func (s *gateStore) open() {
	s.mu.Lock()
	select {
	case <-s.gate:
	default:
		close(s.gate)
	}
	s.mu.Unlock()
}

// shut holds future Puts again.
func (s *gateStore) shut() {
	s.mu.Lock()
	select {
	case <-s.gate:
		s.gate = make(chan struct{})
	default:
	}
	s.mu.Unlock()
}

func (s *gateStore) Put(ctx context.Context, key string, data []byte) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	s.held.Add(1)
	select {
	case <-gate:
		s.held.Add(-1)
	case <-ctx.Done():
		s.held.Add(-1)
		return ctx.Err()
	}
	if err := s.Store.Put(ctx, key, data); err != nil {
		return err
	}
	s.mu.Lock()
	s.puts = append(s.puts, key)
	s.mu.Unlock()
	return nil
}

// delayStore delays the i-th Put by delays[i] and records completions.
type delayStore struct {
	objstore.Store
	delays []time.Duration
	calls  atomic.Int32

	mu   sync.Mutex
	puts []string // keys of completed Puts, in completion order
}

func (s *delayStore) Put(ctx context.Context, key string, data []byte) error {
	i := int(s.calls.Add(1)) - 1
	if i < len(s.delays) {
		tm := time.NewTimer(s.delays[i])
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
	if err := s.Store.Put(ctx, key, data); err != nil {
		return err
	}
	s.mu.Lock()
	s.puts = append(s.puts, key)
	s.mu.Unlock()
	return nil
}

func (s *delayStore) completed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts)
}

// hookMeta wraps a meta.Client's CommitSegment: it records every call,
// can hold calls at a gate and can fail them.
type hookMeta struct {
	meta.Client
	// fail, if set, decides the fate of call n (0-based): a non-nil error
	// fails it, after passing it on to the inner client when apply is set
	// (a lost reply).
	fail func(n int) (err error, apply bool)

	mu        sync.Mutex
	gate      chan struct{} // nil or closed: calls pass
	calls     []meta.SegmentCommit
	committed []meta.SegmentCommit // successful calls, in order
}

func (m *hookMeta) shut() {
	m.mu.Lock()
	m.gate = make(chan struct{})
	m.mu.Unlock()
}

func (m *hookMeta) open() {
	m.mu.Lock()
	if m.gate != nil {
		close(m.gate)
		m.gate = nil
	}
	m.mu.Unlock()
}

func (m *hookMeta) CommitSegment(ctx context.Context, c meta.SegmentCommit) (meta.CommitResult, error) {
	m.mu.Lock()
	n := len(m.calls)
	m.calls = append(m.calls, c)
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return meta.CommitResult{}, ctx.Err()
		}
	}
	if m.fail != nil {
		if err, apply := m.fail(n); err != nil {
			if apply {
				_, _ = m.Client.CommitSegment(ctx, c)
			}
			return meta.CommitResult{}, err
		}
	}
	res, err := m.Client.CommitSegment(ctx, c)
	if err == nil {
		m.mu.Lock()
		m.committed = append(m.committed, c)
		m.mu.Unlock()
	}
	return res, err
}

func (m *hookMeta) snapshot() (calls, committed []meta.SegmentCommit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls), slices.Clone(m.committed)
}

// fakeMeta answers CommitSegment from memory (every chunk appended), for
// tests that commit thousands of segments and must not pay an fsync each.
// Its other methods are not implemented.
type fakeMeta struct {
	meta.Client

	mu   sync.Mutex
	gate chan struct{} // nil or closed: calls pass
	next map[meta.TopicPartition]int64
	segs map[meta.SegmentID]meta.CommitResult
}

func newFakeMeta() *fakeMeta {
	return &fakeMeta{next: map[meta.TopicPartition]int64{}, segs: map[meta.SegmentID]meta.CommitResult{}}
}

func (m *fakeMeta) CommitSegment(ctx context.Context, c meta.SegmentCommit) (meta.CommitResult, error) {
	m.mu.Lock()
	gate := m.gate
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return meta.CommitResult{}, ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.segs[c.SegmentID]; ok {
		return r, nil
	}
	r := meta.CommitResult{Chunks: make([]meta.ChunkResult, len(c.Chunks))}
	for i, ch := range c.Chunks {
		tp := meta.TopicPartition{TopicID: ch.TopicID, Partition: ch.Partition}
		r.Chunks[i] = meta.ChunkResult{Status: meta.ChunkAppended, BaseOffset: m.next[tp]}
		m.next[tp] += int64(ch.RecordCount)
	}
	m.segs[c.SegmentID] = r
	return r, nil
}

// sameID reports whether every commit names the same segment id.
func sameID(cs []meta.SegmentCommit) bool {
	for _, c := range cs {
		if c.SegmentID != cs[0].SegmentID {
			return false
		}
	}
	return true
}

// idBefore reports whether a sorts before b (ids sort by creation time).
func idBefore(a, b meta.SegmentID) bool { return bytes.Compare(a[:], b[:]) < 0 }

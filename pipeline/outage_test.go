package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/meta"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// Issue 11, item 7: during a control-plane outage every produce request is
// answered within its own timeout. Before the fix, segments were committed
// one after another with a CommitTimeout each, counted from the start of
// each commit: five segments queued during an outage were answered 10 s
// apart (9.6, 18.8, 28.1, 37.3, 46.6 s in the report), far past the
// clients' timeouts.

// timedAck is an ack that also records when done was called.
type timedAck struct {
	ack
	at time.Time
}

func appendTimed(t *testing.T, p *pipeline.Pipeline, ctx context.Context, bs []pipeline.Batch) *timedAck {
	t.Helper()
	a := &timedAck{}
	a.onDone = func([]pipeline.Result) { a.at = time.Now() }
	if err := p.Append(ctx, bs, a.done); err != nil {
		t.Fatalf("Append: %v", err)
	}
	return a
}

// TestOutageFailsQueuedSegmentsAtOnce: five segments sealed 100 ms apart
// while meta does not answer (black hole) or refuses connections. The
// first is tried until CommitTimeout after its seal; the four behind it
// fail at that same moment without being sent, with a retriable error;
// nothing is acknowledged or stored; and the first segment sealed once
// meta is back commits at the offsets the failed ones never took.
func TestOutageFailsQueuedSegmentsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		down func(hm *hookMeta)
	}{
		{"black hole", func(hm *hookMeta) { hm.shut() }},
		{"refused", func(hm *hookMeta) {
			hm.fail = func(int) (error, bool) { return meta.ErrUnavailable, false }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const commitTimeout = 10 * time.Second
				e := newEnv(t, 2)
				hm := &hookMeta{Client: e.svc}
				mem := objstore.NewMemory()
				p := e.start(pipeline.Config{FlushInterval: time.Hour, CommitTimeout: commitTimeout}, mem, hm)
				tc.down(hm)

				// Clients with a generous timeout: it is the pipeline's
				// own bound that must answer them, not their timers.
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				start := time.Now()
				var acks []*timedAck
				for i := range 5 {
					acks = append(acks, appendTimed(t, p, ctx, []pipeline.Batch{e.batch(int32(i%2), 2, 10)}))
					p.SealIfAtLeast(0)
					time.Sleep(100 * time.Millisecond)
				}
				time.Sleep(time.Minute)
				synctest.Wait()

				for i, a := range acks {
					n, res := a.state()
					if n != 1 {
						t.Fatalf("segment %d: done called %d times", i, n)
					}
					if !errors.Is(res[0].Err, pipeline.ErrCommit) {
						t.Errorf("segment %d: result %+v, want a retriable ErrCommit", i, res[0])
					}
					// All are answered when the first one gives up,
					// within CommitTimeout of its seal (at start).
					if took := a.at.Sub(start); took > commitTimeout || !a.at.Equal(acks[0].at) {
						t.Errorf("segment %d answered after %v, want with the first (%v), within %v",
							i, took, acks[0].at.Sub(start), commitTimeout)
					}
				}
				calls, committed := hm.snapshot()
				if len(calls) == 0 || !sameID(calls) || len(committed) != 0 {
					t.Errorf("%d commit calls (one segment: %v), %d committed; want only the first segment tried", len(calls), sameID(calls), len(committed))
				}
				if n := p.InFlightBytes(); n != 0 {
					t.Errorf("InFlightBytes = %d after every segment failed", n)
				}

				// Meta returns: the next segment is tried and commits at
				// offset 0, since nothing before it was committed.
				hm.open()
				hm.fail = nil
				bs := []pipeline.Batch{e.batch(0, 3, 10), e.batch(1, 1, 10)}
				a := mustAppend(t, p, bs)
				p.SealIfAtLeast(0)
				time.Sleep(time.Second)
				synctest.Wait()
				checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
				checkLog(t, e, mem, 0, 3)
				checkLog(t, e, mem, 1, 1)
			})
		})
	}
}

// TestRequestAnsweredAtItsDeadline: a request whose ctx deadline passes
// while meta is down is answered then, with ErrTimedOut (retriable), even
// though its segment is still being tried; when meta returns before the
// segment's own deadline the segment commits, and the request is not
// answered a second time.
func TestRequestAnsweredAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2)
		hm := &hookMeta{Client: e.svc}
		mem := objstore.NewMemory()
		p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, CommitTimeout: 10 * time.Second}, mem, hm)
		hm.shut()

		start := time.Now()
		short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		bs := []pipeline.Batch{e.batch(0, 2, 10)}
		aShort := appendTimed(t, p, short, bs)
		aLong := mustAppend(t, p, []pipeline.Batch{e.batch(1, 1, 10)}) // no deadline, same segment
		time.Sleep(3 * time.Second)
		synctest.Wait()
		n, res := aShort.state()
		if n != 1 || !errors.Is(res[0].Err, pipeline.ErrTimedOut) || !errors.Is(res[0].Err, pipeline.ErrCommit) {
			t.Fatalf("short request: %d done calls, %+v; want one ErrTimedOut", n, res)
		}
		if took := aShort.at.Sub(start); took != 2*time.Second {
			t.Errorf("short request answered after %v, want at its 2s deadline", took)
		}
		if aLong.called() {
			t.Fatal("a request without a deadline answered while meta is down")
		}

		hm.open()
		time.Sleep(time.Second)
		synctest.Wait()
		if n, _ := aShort.state(); n != 1 {
			t.Errorf("short request answered %d times", n)
		}
		if n, res := aLong.state(); n != 1 || res[0].Err != nil || res[0].BaseOffset != 0 {
			t.Errorf("long request: %d done calls, %+v; want committed at 0", n, res)
		}
		// The timed-out request's batch did commit: it was never
		// acknowledged, and a retry by an idempotent producer would be
		// a duplicate. Offsets stay dense either way.
		checkLog(t, e, mem, 0, 2)
		checkLog(t, e, mem, 1, 1)
		if n := p.InFlightBytes(); n != 0 {
			t.Errorf("InFlightBytes = %d", n)
		}
	})
}

// TestShortTimeoutDoesNotFailOthers: a client asking for a tiny timeout
// cuts its own segment's commit short, but that is not "meta is down":
// the segment queued behind it, from a patient client, is still tried and
// commits. (Treating any deadline as an outage would let one client fail
// everyone's produces.)
func TestShortTimeoutDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 2)
		hm := &hookMeta{Client: e.svc}
		p := e.start(pipeline.Config{FlushInterval: time.Hour, CommitTimeout: 10 * time.Second}, objstore.NewMemory(), hm)
		hm.shut() // meta slow for a second

		short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		aShort := appendTimed(t, p, short, []pipeline.Batch{e.batch(0, 1, 10)})
		p.SealIfAtLeast(0)
		aLong := mustAppend(t, p, []pipeline.Batch{e.batch(1, 2, 10)})
		p.SealIfAtLeast(0)
		time.Sleep(time.Second)
		hm.open()
		time.Sleep(time.Second)
		synctest.Wait()

		// Its timer and its segment's (capped) deadline fire at the same
		// instant: either answer is the retriable ErrCommit.
		if n, res := aShort.state(); n != 1 || !errors.Is(res[0].Err, pipeline.ErrCommit) {
			t.Errorf("short request: %d done calls, %+v; want ErrCommit", n, res)
		}
		if n, res := aLong.state(); n != 1 || res[0].Err != nil || res[0].BaseOffset != 0 {
			t.Errorf("patient request behind it: %d done calls, %+v; want committed at 0", n, res)
		}
	})
}

// TestUploadSharesTheSealDeadline: the same bug class on the upload side.
// An object store that does not answer held a segment for the whole
// UploadTimeout (30 s by default) and only then did its commit deadline
// start; segments waiting for an upload slot behind it added theirs. Now
// the upload stops at the segment's deadline (CommitTimeout after the
// seal), a segment whose deadline passed while it waited for a slot is
// not uploaded at all, and every request is answered by then.
func TestUploadSharesTheSealDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const commitTimeout = 5 * time.Second
		e := newEnv(t, 2)
		gs := newGateStore(objstore.NewMemory()) // shut: Puts hang
		hm := &hookMeta{Client: e.svc}
		p := e.start(pipeline.Config{FlushInterval: time.Hour, CommitTimeout: commitTimeout,
			UploadTimeout: 30 * time.Second, MaxConcurrentUploads: 1}, gs, hm)
		start := time.Now()
		var acks []*timedAck
		for i := range 3 {
			acks = append(acks, appendTimed(t, p, context.Background(), []pipeline.Batch{e.batch(int32(i%2), 1, 10)}))
			p.SealIfAtLeast(0)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		for i, a := range acks {
			n, res := a.state()
			if n != 1 || res[0].Err == nil {
				t.Fatalf("segment %d: %d done calls, %+v; want one failure", i, n, res)
			}
			if took := a.at.Sub(start); took > commitTimeout {
				t.Errorf("segment %d answered after %v, want within %v of its seal", i, took, commitTimeout)
			}
		}
		if calls, _ := hm.snapshot(); len(calls) != 0 {
			t.Errorf("%d commits of segments never uploaded", len(calls))
		}
		if n := p.InFlightBytes(); n != 0 {
			t.Errorf("InFlightBytes = %d", n)
		}
		// The store recovers: produce works again.
		gs.open()
		bs := []pipeline.Batch{e.batch(0, 2, 10)}
		a := mustAppend(t, p, bs)
		p.SealIfAtLeast(0)
		time.Sleep(time.Second)
		synctest.Wait()
		checkAcks(t, [][]pipeline.Batch{bs}, []*ack{a})
	})
}

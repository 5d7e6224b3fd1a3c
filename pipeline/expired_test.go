package pipeline_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/meta"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// TestSegmentExpiredNotRetried: meta refuses a segment as too old
// (meta.ErrSegmentExpired, e.g. this agent's clock is behind meta's). The
// commit can never succeed with that id, so it is tried once, its
// requests fail at once with ErrSegmentRefused (retriable for the
// client), well before CommitTimeout, and the next segment commits as
// usual: the refusal says nothing about the segments behind it.
func TestSegmentExpiredNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1)
		expired := fmt.Errorf("%w: segment made long ago", meta.ErrSegmentExpired)
		hm := &hookMeta{Client: e.svc, fail: func(n int) (error, bool) {
			if n == 0 {
				return expired, false
			}
			return nil, false
		}}
		p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, CommitTimeout: time.Minute}, objstore.NewMemory(), hm)
		start := time.Now()
		a := mustAppend(t, p, []pipeline.Batch{e.batch(0, 2, 10)})
		time.Sleep(time.Second)
		synctest.Wait()
		n, res := a.state()
		if n != 1 || len(res) != 1 {
			t.Fatalf("done called %d times with %d results, want once within a second (commit timeout is a minute)", n, len(res))
		}
		if !errors.Is(res[0].Err, pipeline.ErrSegmentRefused) || !errors.Is(res[0].Err, meta.ErrSegmentExpired) {
			t.Fatalf("result %+v, want ErrSegmentRefused wrapping meta.ErrSegmentExpired", res[0])
		}
		if calls, _ := hm.snapshot(); len(calls) != 1 {
			t.Fatalf("%d commit calls, want 1: an expired segment id is never retried", len(calls))
		}
		if took := time.Since(start); took >= time.Minute {
			t.Fatalf("answered after %v, at the commit timeout", took)
		}
		if e.hwm(0) != 0 || p.InFlightBytes() != 0 {
			t.Fatalf("high watermark %d, in flight %d after the refusal", e.hwm(0), p.InFlightBytes())
		}

		// The client's retry goes into a new segment, which commits.
		b := mustAppend(t, p, []pipeline.Batch{e.batch(0, 2, 10)})
		time.Sleep(time.Second)
		synctest.Wait()
		if n, res := b.state(); n != 1 || res[0].Err != nil || res[0].BaseOffset != 0 {
			t.Fatalf("retry: done %d times, %+v; want offset 0", n, res)
		}
		calls, _ := hm.snapshot()
		if len(calls) != 2 || calls[0].SegmentID == calls[1].SegmentID {
			t.Fatalf("%d commit calls (second with a new id: %v), want 2", len(calls), len(calls) == 2 && calls[0].SegmentID != calls[1].SegmentID)
		}
	})
}

// TestSegmentExpiredAfterUnknownOutcome: a refusal after an attempt whose
// outcome was unknown is not ErrSegmentRefused (nothing says the first
// attempt did not store it); it is the usual ErrCommit, still not
// retried.
func TestSegmentExpiredAfterUnknownOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1)
		hm := &hookMeta{Client: e.svc, fail: func(n int) (error, bool) {
			if n == 0 {
				return meta.ErrUnavailable, false
			}
			return meta.ErrSegmentExpired, false
		}}
		p := e.start(pipeline.Config{FlushInterval: 10 * time.Millisecond, CommitTimeout: time.Minute}, objstore.NewMemory(), hm)
		a := mustAppend(t, p, []pipeline.Batch{e.batch(0, 2, 10)})
		time.Sleep(time.Second)
		synctest.Wait()
		n, res := a.state()
		if n != 1 || !errors.Is(res[0].Err, pipeline.ErrCommit) || errors.Is(res[0].Err, pipeline.ErrSegmentRefused) {
			t.Fatalf("done %d times, %+v; want ErrCommit, not ErrSegmentRefused", n, res)
		}
		if calls, _ := hm.snapshot(); len(calls) != 2 {
			t.Fatalf("%d commit calls, want 2 (one retry after the unknown outcome, none after the refusal)", len(calls))
		}
	})
}

// TestLongOpenSegmentNotExpired: a segment open for longer than half of
// meta's GC grace (a --flush-interval of 10 minutes; the grace is 5) is
// named when it is sealed, not when it opened, so meta accepts it. Named
// at open, it was refused as expired (and, before that refusal was
// recognised, retried until its deadline); TestSealBySize, with its
// hour-long interval, failed the same way.
func TestLongOpenSegmentNotExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 1)
		p := e.start(pipeline.Config{FlushInterval: 10 * time.Minute}, objstore.NewMemory(), nil)
		a := mustAppend(t, p, []pipeline.Batch{e.batch(0, 3, 10)})
		time.Sleep(11 * time.Minute)
		synctest.Wait()
		if n, res := a.state(); n != 1 || res[0].Err != nil || res[0].BaseOffset != 0 {
			t.Fatalf("done %d times, %+v; want appended at 0", n, res)
		}
		if e.hwm(0) != 3 {
			t.Fatalf("high watermark %d, want 3", e.hwm(0))
		}
	})
}

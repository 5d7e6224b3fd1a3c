package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/internal/bufpool"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// TestAppendReleasePooledBuffers: batches in pooled buffers (as the
// server's produce frames are) are released exactly once per Append, not
// before their segment is laid out, even when the request is answered
// first at its own deadline; the buffers are poisoned on release and
// reused by later Appends, and every stored segment still holds exactly
// the bytes that were appended. A release that came too early would show
// as PoisonByte garbage (or another Append's bytes) in an object.
func TestAppendReleasePooledBuffers(t *testing.T) {
	defer bufpool.Poison()()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 4)
		mem := objstore.NewMemory()
		const interval = 100 * time.Millisecond
		p := e.start(pipeline.Config{FlushInterval: interval}, mem, nil)
		pool := bufpool.New(64 << 20)

		want := map[int64][]byte{} // batch tag → bytes appended
		var released atomic.Int32
		appendPooled := func(ctx context.Context, part int32, valueSize int) (*ack, *atomic.Int32) {
			t.Helper()
			b := e.batch(part, 3, valueSize)
			want[tagOf(b)] = bytes.Clone(b.Data)
			buf := pool.Get(len(b.Data))
			copy(buf, b.Data)
			b.Data = buf
			a := &ack{}
			var mine atomic.Int32
			err := p.AppendRelease(ctx, []pipeline.Batch{b}, a.done, func() {
				if mine.Add(1) > 1 {
					t.Errorf("release of batch %d called twice", tagOf(b))
				}
				released.Add(1)
				pool.Put(buf)
			})
			if err != nil {
				t.Fatalf("AppendRelease: %v", err)
			}
			return a, &mine
		}

		const rounds, perRound = 4, 12
		for round := 0; round < rounds; round++ {
			var acks []*ack
			for i := 0; i < perRound; i++ {
				a, _ := appendPooled(context.Background(), int32(i%4), 5000+i*700)
				acks = append(acks, a)
			}
			// Answered by its own deadline long before its segment is
			// sealed: its buffer must stay with the segment.
			ctx, cancel := context.WithTimeout(context.Background(), interval/4)
			late, lateRel := appendPooled(ctx, 2, 9000)
			time.Sleep(interval / 2)
			synctest.Wait()
			cancel()
			if n, res := late.state(); n != 1 || !errors.Is(res[0].Err, pipeline.ErrTimedOut) {
				t.Fatalf("round %d: the timed-out Append got %d answers %v", round, n, res)
			}
			if lateRel.Load() != 0 || released.Load() != int32(round*(perRound+1)) {
				t.Fatalf("round %d: buffers released before their segment was laid out", round)
			}
			time.Sleep(interval)
			synctest.Wait()
			if got := released.Load(); got != int32((round+1)*(perRound+1)) {
				t.Fatalf("round %d: %d releases after the segment completed, want %d", round, got, (round+1)*(perRound+1))
			}
			for i, a := range acks {
				if n, res := a.state(); n != 1 || res[0].Err != nil {
					t.Fatalf("round %d Append %d: %d answers %v", round, i, n, res)
				}
			}
		}
		if gets, hits, _ := pool.Stats(); hits == 0 {
			t.Fatalf("no buffer was reused (%d gets): the test proves nothing", gets)
		}

		found := 0
		for _, seg := range listSegments(t, mem) {
			for _, c := range seg.chunks {
				w, ok := want[c.FirstTimestamp]
				if !ok {
					t.Fatalf("segment %s holds an unknown batch %d", seg.key, c.FirstTimestamp)
				}
				if !bytes.Equal(seg.obj[c.Start:c.End()], w) {
					t.Fatalf("segment %s: batch %d differs from what was appended", seg.key, c.FirstTimestamp)
				}
				found++
			}
		}
		if found != len(want) {
			t.Fatalf("%d batches stored, %d appended", found, len(want))
		}
	})
}

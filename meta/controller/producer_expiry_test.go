package controller

import (
	"sync"
	"testing"
	"time"

	"sluice.dev/meta"
)

// fakeClock is a settable clock for the committer (Service.now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Issue 11 finding 5: producer ids and their sequence state were kept
// forever. An id idle for the expiration is forgotten, with its state on
// every partition, durably; a later batch from it is refused as
// ChunkUnknownProducer (UNKNOWN_PRODUCER_ID); an id in use is kept; an id
// meta never handed out is still accepted.
func TestProducerIDExpiry(t *testing.T) {
	dir := t.TempDir()
	exp := time.Hour
	withExp := func(c *Config) { c.ProducerIDExpiration = exp }
	s := openT(t, dir, withExp)
	clk := &fakeClock{t: time.Now()}
	s.now = clk.now
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	idle, _ := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	busy, _ := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	commit(t, s, newSegmentAt(clk.now()).addP(a.ID, 0, 2, 20, idle.ProducerID, 0, 0).addP(a.ID, 1, 2, 20, idle.ProducerID, 0, 0))
	seq := int32(0)
	for range 4 {
		clk.add(exp / 3)
		r := commit(t, s, newSegmentAt(clk.now()).addP(a.ID, 0, 1, 10, busy.ProducerID, 0, seq))
		if r.Chunks[0].Status != meta.ChunkAppended {
			t.Fatalf("busy producer: %v", r.Chunks[0].Status)
		}
		seq++
	}
	n, err := s.ExpireProducers(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ExpireProducers = %d, %v; want 1", n, err)
	}
	s.mu.RLock()
	_, idleKept := s.st.epochs[idle.ProducerID]
	_, busyKept := s.st.epochs[busy.ProducerID]
	states := 0
	for k := range s.st.prodParts {
		if k.pid == idle.ProducerID {
			states++
		}
	}
	s.mu.RUnlock()
	if idleKept || !busyKept || states != 0 {
		t.Fatalf("after expiry: idle kept %v (%d partition states), busy kept %v", idleKept, states, busyKept)
	}
	// Durable: the reopened store has forgotten it too.
	s = reopen(t, s, withExp)
	s.now = clk.now
	r := commit(t, s, newSegmentAt(clk.now()).addP(a.ID, 0, 1, 10, idle.ProducerID, 0, 2).addP(a.ID, 1, 1, 10, 1000, 0, 0))
	if r.Chunks[0].Status != meta.ChunkUnknownProducer {
		t.Fatalf("batch of an expired producer: %v, want ChunkUnknownProducer", r.Chunks[0].Status)
	}
	if r.Chunks[1].Status != meta.ChunkAppended {
		t.Fatalf("batch of an id never handed out: %v, want appended", r.Chunks[1].Status)
	}
	if _, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: idle.ProducerID, ProducerEpoch: 0}); err == nil {
		t.Fatal("epoch bump of an expired id accepted")
	}
}

// The last use of an id is stored coarsely (touchEvery) so that appends
// do not rewrite its record each time; it never lags by more than that.
func TestProducerIDTouchIsCoarse(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.ProducerIDExpiration = 64 * time.Second })
	clk := &fakeClock{t: time.Now()}
	s.now = clk.now
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	p, _ := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	use := func() int64 {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.st.pidUse[p.ProducerID]
	}
	first := use()
	for i := range int32(5) {
		clk.add(100 * time.Millisecond)
		commit(t, s, newSegmentAt(clk.now()).addP(a.ID, 0, 1, 10, p.ProducerID, 0, i))
	}
	if use() != first {
		t.Fatalf("last use moved within touchEvery: %d -> %d", first, use())
	}
	clk.add(time.Second)
	commit(t, s, newSegmentAt(clk.now()).addP(a.ID, 0, 1, 10, p.ProducerID, 0, 5))
	if got, want := use(), clk.now().UnixMilli(); got != want {
		t.Fatalf("last use %d after touchEvery, want %d", got, want)
	}
}

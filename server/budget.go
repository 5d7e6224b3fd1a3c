package server

import (
	"sync"
	"time"
)

// byteBudget is a semaphore counted in bytes with first-come-first-served
// waiting and a deadline: the agent's budget for fetch responses in
// flight (--max-fetch-bytes-inflight). Each connection's share of it is
// counted on the connection (conn.takeShare), so one connection that
// never reads pins at most its share, never the whole budget.
//
// A grant moves through:
//
//	acquire --room, nobody queued--> held
//	acquire --no room--> queued --release makes room (FIFO)--> held
//	                     queued --deadline--> refused (nothing held)
//	held --release--> (room returns; queued acquirers are granted in order)
//
// FIFO order keeps a large request from starving behind a stream of small
// ones. force takes bytes past the limit without waiting: a fetch's first
// batch is returned whole (KIP-74) even when it is larger than what was
// reserved, and that overshoot is bounded by the largest batch.
type byteBudget struct {
	mu      sync.Mutex
	limit   int64
	avail   int64           // guarded by mu; negative after force
	waiters []*budgetWaiter // guarded by mu: FIFO
}

type budgetWaiter struct {
	n  int64
	ch chan struct{} // closed when granted
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, avail: limit}
}

// clamp bounds a request to the whole budget so it can ever be granted.
func (b *byteBudget) clamp(n int64) int64 {
	return max(min(n, b.limit), 0)
}

// acquire takes n bytes (clamped to the limit), waiting until deadline
// at most. It returns the bytes taken, or false when the deadline passed
// first (then nothing is held).
func (b *byteBudget) acquire(n int64, deadline time.Time) (int64, bool) {
	n = b.clamp(n)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.avail >= n {
		b.avail -= n
		b.mu.Unlock()
		return n, true
	}
	w := &budgetWaiter{n: n, ch: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-w.ch:
		return n, true
	case <-timer.C:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ch:
		// Granted while the timer fired: it is ours.
		return n, true
	default:
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	// Leaving the head of the queue may let the next one in.
	b.grantLocked()
	return 0, false
}

// tryAcquire takes n bytes if they are free now and nobody is queued
// (who would otherwise be overtaken); it never waits.
func (b *byteBudget) tryAcquire(n int64) bool {
	if n < 0 || n > b.limit {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || b.avail < n {
		return false
	}
	b.avail -= n
	return true
}

// force takes n bytes without waiting, possibly past the limit.
func (b *byteBudget) force(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.avail -= n
	b.mu.Unlock()
}

// release returns n bytes and grants queued acquirers that now fit.
func (b *byteBudget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.avail += n
	if b.avail > b.limit {
		panic("BUG: byte budget released more than was taken")
	}
	b.grantLocked()
	b.mu.Unlock()
}

func (b *byteBudget) grantLocked() {
	for len(b.waiters) > 0 && b.avail >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.avail -= w.n
		close(w.ch)
	}
}

// inUse is the number of bytes held (for metrics and tests).
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.avail
}

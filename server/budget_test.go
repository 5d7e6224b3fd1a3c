package server

import (
	"testing"
	"time"
)

// The agent's fetch budget: grants in arrival order, refuses at the
// deadline holding nothing, and lets the next waiter in when the one
// ahead gives up.
func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	far := time.Now().Add(time.Minute)
	if got, ok := b.acquire(60, far); !ok || got != 60 {
		t.Fatalf("first acquire: %d %v", got, ok)
	}
	// Larger than the whole budget: clamped so it can ever be granted.
	if got := b.clamp(1000); got != 100 {
		t.Fatalf("clamp(1000) = %d", got)
	}

	// A waiter that cannot fit is refused at its deadline, holding nothing.
	if _, ok := b.acquire(50, time.Now().Add(20*time.Millisecond)); ok {
		t.Fatal("acquire past the budget succeeded")
	}
	if b.inUse() != 60 {
		t.Fatalf("in use %d after a refusal, want 60", b.inUse())
	}

	// FIFO: a big waiter queued first is granted before a small one that
	// would fit earlier.
	order := make(chan int64, 2)
	go func() {
		n, ok := b.acquire(80, far)
		if ok {
			order <- n
		}
	}()
	waitFor(t, func() bool { return b.waiting() == 1 })
	go func() {
		n, ok := b.acquire(10, far)
		if ok {
			order <- n
		}
	}()
	waitFor(t, func() bool { return b.waiting() == 2 })
	select {
	case n := <-order:
		t.Fatalf("%d granted while the head of the queue waits", n)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(40) // room for exactly the head of the queue
	if first := <-order; first != 80 {
		t.Fatalf("granted %d first, want the 80 queued first", first)
	}
	select {
	case n := <-order:
		t.Fatalf("%d granted with no room left", n)
	case <-time.After(20 * time.Millisecond):
	}
	b.release(10)
	if second := <-order; second != 10 {
		t.Fatalf("granted %d second", second)
	}
	// force goes past the limit; releases bring it back.
	b.force(50)
	if b.inUse() != 150 {
		t.Fatalf("in use %d, want 150", b.inUse())
	}
	b.release(150)
	if b.inUse() != 0 {
		t.Fatalf("in use %d after releasing everything", b.inUse())
	}
}

func (b *byteBudget) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiters)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

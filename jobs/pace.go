package jobs

import (
	"context"
	"sync"
	"time"
)

// pacer spreads a jobs agent's object I/O over time: at most rate bytes
// per second, read and written together (Kafka's cleaner does the same
// with log.cleaner.io.max.bytes.per.second). Compaction on an agent that
// also takes produce competes with it for the disk, the page cache and
// memory bandwidth, which CPU priority does not share out (BENCHMARKS.md,
// "Compaction"); pacing the jobs is what keeps produce throughput.
//
// Each call reserves its bytes on a virtual clock and sleeps until its
// turn, so the long-run rate holds however the calls are sized; a
// reservation never waits for later ones. A nil pacer does not pace.
//
// The pace holds only while busy reports true (the agent has produce in
// flight): an agent whose producers went quiet works off the backlog a
// burst left at full speed.
type pacer struct {
	rate float64     // bytes per second
	busy func() bool // nil: always

	mu   sync.Mutex
	next time.Time // guarded by mu: when the next reservation may start
}

// newPacer returns a pacer of rate bytes per second, nil for rate <= 0
// (unlimited).
func newPacer(rate int64, busy func() bool) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{rate: float64(rate), busy: busy}
}

// wait blocks until n bytes may move, or ctx ends.
func (p *pacer) wait(ctx context.Context, n int64) error {
	if p == nil || n <= 0 || (p.busy != nil && !p.busy()) {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	mPacedSeconds.Add(d.Seconds())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package lograte limits how often a log line is written: a line that a
// client (or a broken clock, or a dead peer) can make happen on every
// request is written at most once per period, the rest are dropped or
// written at a lower level by the caller.
package lograte

import (
	"sync/atomic"
	"time"
)

// Limiter lets one event per period through. The zero value is ready;
// it is safe for concurrent use and never blocks.
type Limiter struct {
	last atomic.Int64 // unix nanos of the last event let through; 0: none yet
}

// Allow reports whether an event at now may be logged: true when none
// was let through in the period before it, and then now starts the next
// period. Of events racing for one period, one wins.
func (l *Limiter) Allow(now time.Time, period time.Duration) bool {
	t := now.UnixNano()
	last := l.last.Load()
	if last != 0 && t-last < int64(period) {
		return false
	}
	return l.last.CompareAndSwap(last, t)
}

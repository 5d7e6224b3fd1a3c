package lograte

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true},                        // the first event
		{500 * time.Millisecond, false},  // within the period
		{999 * time.Millisecond, false},  // still within it
		{time.Second, true},              // a period after the last one let through
		{1500 * time.Millisecond, false}, // the period restarted at 1 s
		{5 * time.Second, true},
	}
	for _, s := range steps {
		if got := l.Allow(t0.Add(s.at), time.Second); got != s.want {
			t.Fatalf("Allow at +%v = %v, want %v", s.at, got, s.want)
		}
	}
}

// Of many goroutines logging at the same moment, exactly one gets through.
func TestLimiterConcurrent(t *testing.T) {
	var l Limiter
	now := time.Now()
	var through atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if l.Allow(now, time.Minute) {
				through.Add(1)
			}
		}()
	}
	wg.Wait()
	if through.Load() != 1 {
		t.Fatalf("%d of 64 concurrent events let through, want 1", through.Load())
	}
}

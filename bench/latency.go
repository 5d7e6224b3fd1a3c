// Package bench holds the measuring parts of Sluice's benchmark harness.
// Today it has the latency summary the in-process produce benchmarks
// report; the `sluice bench` subcommand (throughput, end-to-end latency,
// reports) builds on it.
package bench

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Latencies collects latency samples from many goroutines and summarises
// them as percentiles. It keeps every sample: the benchmarks that use it
// take thousands, not billions.
type Latencies struct {
	mu      sync.Mutex
	samples []time.Duration // guarded by mu
}

// Record adds one sample.
func (l *Latencies) Record(d time.Duration) {
	l.mu.Lock()
	l.samples = append(l.samples, d)
	l.mu.Unlock()
}

// Summary is a latency distribution.
type Summary struct {
	Count                    int
	P50, P90, P99, P999, Max time.Duration
}

// Summary sorts the samples and reads the percentiles (nearest rank).
func (l *Latencies) Summary() Summary {
	l.mu.Lock()
	s := append([]time.Duration(nil), l.samples...)
	l.mu.Unlock()
	if len(s) == 0 {
		return Summary{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Summary{Count: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: s[len(s)-1]}
}

func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "n=%d p50=%s p90=%s p99=%s p99.9=%s max=%s", s.Count,
		s.P50.Round(time.Microsecond), s.P90.Round(time.Microsecond), s.P99.Round(time.Microsecond),
		s.P999.Round(time.Microsecond), s.Max.Round(time.Microsecond))
	return b.String()
}

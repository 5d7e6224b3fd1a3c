package main

import (
	"strings"
	"testing"
)

// The tail read's CPU is a difference of two loads' CPU; below zero it is
// noise, and target 5 must not count it as met.
func TestTargetsTailCPUBelowZeroNotMet(t *testing.T) {
	for _, tc := range []struct {
		tail float64
		met  bool
	}{{-0.37, false}, {0.3, true}, {0.7, false}} {
		r := &Results{Settings: Settings{FlushInterval: "250ms"}}
		for _, key := range []string{"sluice", "kfake_durable", "kfake_memory"} {
			r.Brokers = append(r.Brokers, BrokerResult{Key: key, Median: Figures{TailCPUPerGiB: tc.tail, CatchupCPUPerGiB: 0.4}})
		}
		r.checkTargets()
		found := false
		for _, tg := range r.Targets {
			if strings.HasPrefix(tg.What, "read CPU") {
				found = true
				if tg.Met != tc.met {
					t.Errorf("tail %.2f: met %v, want %v (%s)", tc.tail, tg.Met, tc.met, tg.Measured)
				}
			}
		}
		if !found {
			t.Fatal("no read CPU target")
		}
	}
}

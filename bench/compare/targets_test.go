package main

import (
	"strings"
	"testing"
)

// The tail read's CPU is judged from the fan-out alone: a run without it
// (before it was measured) meets nothing, whatever its e2e difference
// said, and a figure below zero is noise, not a cost under the target.
func TestTargetsTailCPUFromFanout(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fanout *float64
		met    bool
	}{{"no fan-out", nil, false}, {"below zero", ptr(-0.1), false}, {"under", ptr(0.3), true}, {"over", ptr(0.7), false}} {
		r := &Results{Settings: Settings{FlushInterval: "250ms"}}
		for _, key := range []string{"sluice", "kfake_durable", "kfake_memory"} {
			r.Brokers = append(r.Brokers, BrokerResult{Key: key, Median: Figures{TailCPUPerGiB: 0.2, FanoutCPUPerGiB: tc.fanout, CatchupCPUPerGiB: 0.4}})
		}
		r.checkTargets()
		found := false
		for _, tg := range r.Targets {
			if strings.HasPrefix(tg.What, "read CPU") {
				found = true
				if tg.Met != tc.met {
					t.Errorf("%s: met %v, want %v (%s)", tc.name, tg.Met, tc.met, tg.Measured)
				}
			}
		}
		if !found {
			t.Fatal("no read CPU target")
		}
	}
}

package server

import (
	"fmt"
	"testing"

	"github.com/cespare/xxhash/v2"

	"sluice.dev/meta"
)

func brokersN(n int) []broker {
	var bs []broker
	for i := range n {
		id := fmt.Sprintf("agent-%d", i)
		bs = append(bs, broker{id: id, node: int32(i), seed: xxhash.Sum64String(id)})
	}
	return bs
}

// TestLeaderOfSpreadsAndIsStable: rendezvous leadership spreads
// partitions about evenly, and when an agent joins only the partitions
// the newcomer wins move (about 1/N), none between the old agents.
func TestLeaderOfSpreadsAndIsStable(t *testing.T) {
	const parts = 4000
	topic := meta.TopicID{1, 2, 3}
	old, grown := brokersN(4), brokersN(5)
	count := map[int32]int{}
	moved := 0
	for p := range int32(parts) {
		a, b := leaderOf(old, topic, p), leaderOf(grown, topic, p)
		count[a]++
		if a != b {
			moved++
			if b != 4 {
				t.Fatalf("partition %d moved from %d to %d, not to the new agent", p, a, b)
			}
		}
	}
	for node, n := range count {
		if n < parts/4*8/10 || n > parts/4*12/10 {
			t.Errorf("agent %d leads %d of %d partitions, want about %d", node, n, parts, parts/4)
		}
	}
	if moved < parts/5*7/10 || moved > parts/5*13/10 {
		t.Errorf("%d partitions moved when a 5th agent joined, want about %d", moved, parts/5)
	}
	if leaderOf(brokersN(1), topic, 7) != 0 {
		t.Error("a single agent must lead everything")
	}
}

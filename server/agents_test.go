package server

import (
	"fmt"
	"slices"
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

// TestIdentitiesOneIsUnchanged: with one identity per agent leaders are
// what they were before identities existed (the agent's own seed), so
// turning the feature on is the only thing that moves partitions.
func TestIdentitiesOneIsUnchanged(t *testing.T) {
	bs := brokersN(5)
	assignIdentities(bs, 1, false)
	topic := meta.TopicID{9}
	for p := range int32(500) {
		if got, want := leaderOf(bs, topic, p), pickBroker(bs, partitionHash(topic, p)).node; got != want {
			t.Fatalf("partition %d: leader %d with one identity, %d before identities", p, got, want)
		}
	}
	for _, b := range bs {
		if len(b.idents) != 1 || b.idents[0].node != b.node {
			t.Fatalf("broker %s: identities %+v, want its node id alone", b.id, b.idents)
		}
	}
}

func partitionHash(topic meta.TopicID, p int32) uint64 {
	var key [20]byte
	copy(key[:], topic[:])
	key[16], key[17], key[18], key[19] = byte(p>>24), byte(p>>16), byte(p>>8), byte(p)
	return xxhash.Sum64(key[:])
}

// TestIdentitiesSpreadLeadership: with n identities per agent every
// identity has its own node id, the ids are the same whatever order the
// view lists the agents in, and partitions spread about evenly over all
// identities of all agents.
func TestIdentitiesSpreadLeadership(t *testing.T) {
	const n, agents, parts = 8, 3, 6000
	bs := brokersN(agents)
	assignIdentities(bs, n, false)
	rev := brokersN(agents)
	slices.Reverse(rev)
	assignIdentities(rev, n, false)
	owner := map[int32]string{}
	for _, b := range bs {
		if len(b.idents) != n || b.idents[0].node != b.node {
			t.Fatalf("broker %s: %d identities, first %d; want %d, first its node id", b.id, len(b.idents), b.idents[0].node, n)
		}
		for _, id := range b.idents {
			if prev, dup := owner[id.node]; dup {
				t.Fatalf("node id %d given to %s and %s", id.node, prev, b.id)
			}
			owner[id.node] = b.id
		}
	}
	for _, b := range rev {
		for _, id := range b.idents {
			if owner[id.node] != b.id {
				t.Fatalf("node id %d is %s's in one order, %s's in another", id.node, owner[id.node], b.id)
			}
		}
	}
	topic := meta.TopicID{7}
	count := map[int32]int{}
	for p := range int32(parts) {
		l := leaderOf(bs, topic, p)
		if _, ok := owner[l]; !ok {
			t.Fatalf("partition %d led by %d, no identity", p, l)
		}
		if l2 := leaderOf(rev, topic, p); l2 != l {
			t.Fatalf("partition %d: leader %d or %d by view order", p, l, l2)
		}
		count[l]++
	}
	want := parts / (n * agents)
	for node, c := range count {
		if c < want*7/10 || c > want*13/10 {
			t.Errorf("identity %d (%s) leads %d partitions, want about %d", node, owner[node], c, want)
		}
	}
	if len(count) != n*agents {
		t.Errorf("%d identities lead partitions, want all %d", len(count), n*agents)
	}
}

// TestIdentitiesDropCollisions: a derived node id that is another
// agent's assigned id is dropped, so no node id ever names two agents.
func TestIdentitiesDropCollisions(t *testing.T) {
	bs := brokersN(2)
	bs[1].node = identityNode(bs[0].id, 3) // agent-1's assigned id is agent-0's third derived id
	assignIdentities(bs, 4, true)
	seen := map[int32]string{}
	for _, b := range bs {
		for _, id := range b.idents {
			if prev, dup := seen[id.node]; dup {
				t.Fatalf("node id %d names %s and %s", id.node, prev, b.id)
			}
			seen[id.node] = b.id
		}
	}
	if len(bs[0].idents) != 3 || len(bs[1].idents) != 4 {
		t.Fatalf("identities %d and %d, want 3 (one dropped) and 4", len(bs[0].idents), len(bs[1].idents))
	}
	if !bs[0].hasNode(bs[0].node) || bs[0].hasNode(bs[1].node) {
		t.Fatal("hasNode confuses the agents")
	}
}

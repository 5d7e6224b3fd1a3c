package groups

import (
	"bytes"
	"slices"

	"sluice.dev/meta"
)

// Server-side assignors of the KIP-848 consumer protocol, named as Kafka
// names them in group.consumer.assignors: "uniform" (the default,
// sticky and balanced) and "range" (contiguous ranges per topic). Both
// are pure functions of their input, so the same input always gives the
// same target assignment, whichever meta computes it.

// Assignor names.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// assignors lists the server-side assignors in order of preference: the
// first is the default when no member names one (Kafka's
// group.consumer.assignors default order).
var assignors = []string{AssignorUniform, AssignorRange}

func knownAssignor(name string) bool { return slices.Contains(assignors, name) }

// tp is one partition.
type tp struct {
	topic meta.TopicID
	part  int32
}

func cmpTP(a, b tp) int {
	if c := bytes.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return int(a.part) - int(b.part)
}

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id      string
	topics  map[meta.TopicID]bool // subscribed topics that exist
	current []tp                  // what it holds now (stickiness)
}

// assign runs the named assignor over members (sorted by id) and topics
// (topic id → partition count), returning each member's target.
func assign(name string, members []assignMember, topics map[meta.TopicID]int32) map[string][]tp {
	if name == AssignorRange {
		return assignRange(members, topics)
	}
	return assignUniform(members, topics)
}

func sortedTopics(topics map[meta.TopicID]int32) []meta.TopicID {
	ids := make([]meta.TopicID, 0, len(topics))
	for id := range topics {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b meta.TopicID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// assignRange gives each member, per topic, a contiguous range of the
// topic's partitions: with n partitions and m subscribed members (in
// member id order) each gets n/m, the first n%m one more. Members
// subscribed to the same topics with the same partition counts get the
// same partition numbers of each (co-partitioning, which is what range
// is chosen for).
func assignRange(members []assignMember, topics map[meta.TopicID]int32) map[string][]tp {
	out := make(map[string][]tp, len(members))
	for _, m := range members {
		out[m.id] = nil
	}
	for _, id := range sortedTopics(topics) {
		var subs []string
		for _, m := range members {
			if m.topics[id] {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := topics[id]
		per, extra := n/int32(len(subs)), n%int32(len(subs))
		p := int32(0)
		for i, mid := range subs {
			k := per
			if int32(i) < extra {
				k++
			}
			for j := int32(0); j < k; j++ {
				out[mid] = append(out[mid], tp{id, p})
				p++
			}
		}
	}
	return out
}

// assignUniform spreads the partitions evenly over the members subscribed
// to them and keeps partitions where they are when that keeps the
// balance (so a rebalance moves as few partitions as it can):
//
//  1. Quotas: with P partitions and M members that subscribe to
//     anything, every member may hold P/M, and P%M of them one more.
//  2. Sticky pass: a member keeps the partitions it holds (of topics it
//     still subscribes to) up to its quota.
//  3. The rest go, in partition order, each to the eligible member that
//     holds the fewest (ties: the smaller member id).
//
// With different subscriptions the quotas are a bound, not a promise:
// step 3 still gives every partition to someone subscribed to it.
func assignUniform(members []assignMember, topics map[meta.TopicID]int32) map[string][]tp {
	out := make(map[string][]tp, len(members))
	var active []int // members subscribed to an existing topic
	for i, m := range members {
		out[m.id] = nil
		if len(m.topics) > 0 {
			active = append(active, i)
		}
	}
	if len(active) == 0 {
		return out
	}
	total := 0
	for id, n := range topics {
		for _, i := range active {
			if members[i].topics[id] {
				total += int(n)
				break
			}
		}
	}
	floor, extra := total/len(active), total%len(active)
	taken := make(map[tp]bool, total)
	count := make([]int, len(members))
	for _, i := range active {
		m := members[i]
		cur := slices.Clone(m.current)
		slices.SortFunc(cur, cmpTP)
		for _, p := range cur {
			n, ok := topics[p.topic]
			if !ok || !m.topics[p.topic] || p.part < 0 || p.part >= n || taken[p] {
				continue
			}
			if count[i] < floor || (count[i] == floor && extra > 0) {
				if count[i] == floor {
					extra--
				}
				count[i]++
				taken[p] = true
				out[m.id] = append(out[m.id], p)
			}
		}
	}
	for _, id := range sortedTopics(topics) {
		for part := int32(0); part < topics[id]; part++ {
			p := tp{id, part}
			if taken[p] {
				continue
			}
			best := -1
			for _, i := range active {
				if members[i].topics[id] && (best < 0 || count[i] < count[best]) {
					best = i
				}
			}
			if best < 0 {
				continue // nobody subscribes to this topic
			}
			count[best]++
			taken[p] = true
			out[members[best].id] = append(out[members[best].id], p)
		}
	}
	for id := range out {
		slices.SortFunc(out[id], cmpTP)
	}
	return out
}

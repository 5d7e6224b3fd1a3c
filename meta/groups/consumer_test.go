package groups

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/meta"
)

// KIP-848 consumer groups, driven through ConsumerHeartbeat by simulated
// members that behave as clients do: they own what the last assignment
// gave them and report it in full heartbeats.

func topicID(b byte) meta.TopicID { return meta.TopicID{b} }

// fakeTopics is a TopicSource tests change as they go.
type fakeTopics struct {
	mu     sync.Mutex
	topics []meta.Topic
}

func (f *fakeTopics) list() []meta.Topic {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]meta.Topic(nil), f.topics...)
}

func (f *fakeTopics) set(ts ...meta.Topic) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.topics = ts
}

func consumerCoordinator(t *testing.T, cfg Config, ts ...meta.Topic) (*Coordinator, *fakeTopics) {
	t.Helper()
	c := testCoordinator(t, cfg, &fakeOffsets{})
	f := &fakeTopics{topics: ts}
	c.SetTopics(f.list)
	return c, f
}

// sim is a member as a client sees itself.
type sim struct {
	t        *testing.T
	c        *Coordinator
	group    string
	id       string
	instance string
	epoch    int32
	topics   []string
	regex    string
	assignor string
	owned    map[tp]bool
}

func newSim(t *testing.T, c *Coordinator, id string, topics ...string) *sim {
	return &sim{t: t, c: c, group: "g", id: id, topics: topics, owned: map[tp]bool{}}
}

func (s *sim) ownedList() []meta.TopicPartitions { return toTopicPartitions(s.owned) }

// hb sends a full heartbeat (owned partitions included) and applies the
// answer: revoked partitions are given up at once, new ones taken.
func (s *sim) hb() (meta.ConsumerHeartbeatResult, error) {
	req := meta.ConsumerHeartbeatRequest{Group: s.group, MemberID: s.id, MemberEpoch: s.epoch, InstanceID: s.instance,
		RebalanceTimeoutMs: 30_000, Owned: s.ownedList(), OwnedSet: true, Assignor: s.assignor, AssignorSet: s.assignor != ""}
	if s.regex != "" {
		req.Regex, req.RegexSet = s.regex, true
	} else {
		req.SubscribedTopics, req.SubscribedTopicsSet = s.topics, true
	}
	res, err := s.c.ConsumerHeartbeat(req)
	if err != nil {
		return res, err
	}
	s.epoch = res.MemberEpoch
	if res.AssignmentSet {
		s.owned = map[tp]bool{}
		for _, o := range res.Assignment {
			for _, p := range o.Partitions {
				s.owned[tp{o.TopicID, p}] = true
			}
		}
	}
	return res, nil
}

func (s *sim) mustHB() meta.ConsumerHeartbeatResult {
	s.t.Helper()
	res, err := s.hb()
	if err != nil {
		s.t.Fatalf("%s heartbeat: %v", s.id, err)
	}
	return res
}

func (s *sim) leave(epoch int32) error {
	_, err := s.c.ConsumerHeartbeat(meta.ConsumerHeartbeatRequest{Group: s.group, MemberID: s.id, MemberEpoch: epoch, InstanceID: s.instance})
	s.owned = map[tp]bool{}
	return err
}

// noDoubleOwners fails when two members own one partition.
func noDoubleOwners(t *testing.T, sims ...*sim) map[tp]string {
	t.Helper()
	owner := map[tp]string{}
	for _, s := range sims {
		for p := range s.owned {
			if o, ok := owner[p]; ok {
				t.Fatalf("partition %v owned by %s and %s", p, o, s.id)
			}
			owner[p] = s.id
		}
	}
	return owner
}

func TestAssignRange(t *testing.T) {
	a, b := topicID(1), topicID(2)
	members := []assignMember{
		{id: "m1", topics: map[meta.TopicID]bool{a: true, b: true}},
		{id: "m2", topics: map[meta.TopicID]bool{a: true, b: true}},
		{id: "m3", topics: map[meta.TopicID]bool{b: true}},
	}
	out := assignRange(members, map[meta.TopicID]int32{a: 5, b: 3})
	want := map[string][]tp{
		"m1": {{a, 0}, {a, 1}, {a, 2}, {b, 0}},
		"m2": {{a, 3}, {a, 4}, {b, 1}},
		"m3": {{b, 2}},
	}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Fatalf("range: %v, want %v", out, want)
	}
}

// Uniform is balanced and sticky: a new member takes only what it needs
// from the others, who keep the rest.
func TestAssignUniformBalancedSticky(t *testing.T) {
	a := topicID(1)
	subs := map[meta.TopicID]bool{a: true}
	topics := map[meta.TopicID]int32{a: 10}
	members := []assignMember{{id: "m1", topics: subs}, {id: "m2", topics: subs}, {id: "m3", topics: subs}}
	out := assignUniform(members, topics)
	seen := map[tp]bool{}
	for _, m := range members {
		if n := len(out[m.id]); n < 3 || n > 4 {
			t.Fatalf("%s got %d of 10 partitions: %v", m.id, n, out)
		}
		for _, p := range out[m.id] {
			if seen[p] {
				t.Fatalf("%v assigned twice", p)
			}
			seen[p] = true
		}
	}
	for i := range members {
		members[i].current = out[members[i].id]
	}
	members = append(members, assignMember{id: "m4", topics: subs})
	next := assignUniform(members, topics)
	moved := 0
	for _, m := range members[:3] {
		was := map[tp]bool{}
		for _, p := range m.current {
			was[p] = true
		}
		for _, p := range next[m.id] {
			if !was[p] {
				moved++
			}
		}
	}
	if n := len(next["m4"]); n < 2 || n > 3 || moved != 0 {
		t.Fatalf("after m4 joined: m4 has %d, %d partitions moved between old members: %v", n, moved, next)
	}
	// Different subscriptions: every partition goes to a subscriber.
	b := topicID(2)
	het := assignUniform([]assignMember{{id: "x", topics: map[meta.TopicID]bool{a: true}},
		{id: "y", topics: map[meta.TopicID]bool{b: true}}}, map[meta.TopicID]int32{a: 2, b: 3})
	if len(het["x"]) != 2 || len(het["y"]) != 3 {
		t.Fatalf("heterogeneous: %v", het)
	}
}

// The heart of KIP-848: a partition moves to its new owner only after
// the old owner acknowledged its revocation in a heartbeat.
func TestConsumerRevocationBeforeAssignment(t *testing.T) {
	a := topicID(1)
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: a, Partitions: 4})
	m1 := newSim(t, c, "m1", "a")
	if r := m1.mustHB(); r.MemberEpoch != 1 || len(m1.owned) != 4 || r.HeartbeatIntervalMs != 5000 {
		t.Fatalf("m1 join: %+v owned %v", r, m1.owned)
	}
	m2 := newSim(t, c, "m2", "a")
	if r := m2.mustHB(); r.MemberEpoch != 2 || len(m2.owned) != 0 {
		t.Fatalf("m2 join while m1 holds everything: %+v owned %v", r, m2.owned)
	}
	if d, _ := c.DescribeConsumer("g"); d.State != "Reconciling" || d.GroupEpoch != 2 || d.AssignmentEpoch != 2 {
		t.Fatalf("describe: %+v", d)
	}
	// m1 is told to keep two: a keepalive (no owned partitions) does not
	// count as acknowledging.
	if r := m1.mustHB(); r.MemberEpoch != 1 || len(m1.owned) != 2 {
		t.Fatalf("m1 told to revoke: %+v owned %v", r, m1.owned)
	}
	noDoubleOwners(t, m1, m2)
	// Not yet acknowledged from the coordinator's view: m1's keepalive
	// does not report owned partitions.
	if _, err := c.ConsumerHeartbeat(meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", MemberEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if m2.mustHB(); len(m2.owned) != 0 {
		t.Fatalf("m2 got %v before m1 acknowledged", m2.owned)
	}
	// m1 acknowledges in a full heartbeat and moves to epoch 2.
	if r := m1.mustHB(); r.MemberEpoch != 2 || len(m1.owned) != 2 {
		t.Fatalf("m1 after acknowledging: %+v owned %v", r, m1.owned)
	}
	if m2.mustHB(); len(m2.owned) != 2 {
		t.Fatalf("m2 after m1 acknowledged: %v", m2.owned)
	}
	noDoubleOwners(t, m1, m2)
	if d, _ := c.DescribeConsumer("g"); d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("describe after reconciliation: %+v", d)
	}
	// m1 leaves: m2 gets all four at its next heartbeat.
	if err := m1.leave(meta.MemberEpochLeave); err != nil {
		t.Fatal(err)
	}
	if r := m2.mustHB(); r.MemberEpoch != 3 || len(m2.owned) != 4 {
		t.Fatalf("m2 after m1 left: %+v %v", r, m2.owned)
	}
}

// Bad heartbeats get the error Kafka gives.
func TestConsumerHeartbeatErrors(t *testing.T) {
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 1})
	m := newSim(t, c, "m1", "a")
	m.mustHB()
	for _, tc := range []struct {
		name string
		req  meta.ConsumerHeartbeatRequest
		want error
	}{
		{"epoch ahead", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", MemberEpoch: 7}, meta.ErrFencedMemberEpoch},
		{"unknown member", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "zz", MemberEpoch: 1}, meta.ErrUnknownMemberID},
		{"unknown group", meta.ConsumerHeartbeatRequest{Group: "h", MemberID: "zz", MemberEpoch: 1}, meta.ErrUnknownMemberID},
		{"bad regex", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", RebalanceTimeoutMs: 1, Regex: "(", RegexSet: true, OwnedSet: true}, meta.ErrInvalidRegularExpression},
		{"bad assignor", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", RebalanceTimeoutMs: 1, SubscribedTopicsSet: true, Assignor: "sticky", AssignorSet: true, OwnedSet: true}, meta.ErrUnsupportedAssignor},
		{"join owning", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", RebalanceTimeoutMs: 1, SubscribedTopicsSet: true, OwnedSet: true,
			Owned: []meta.TopicPartitions{{TopicID: topicID(1), Partitions: []int32{0}}}}, meta.ErrInvalidRequest},
		{"join without subscription", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", RebalanceTimeoutMs: 1, OwnedSet: true}, meta.ErrInvalidRequest},
		{"epoch below -2", meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", MemberEpoch: -3}, meta.ErrInvalidRequest},
		{"empty group id", meta.ConsumerHeartbeatRequest{MemberID: "m1", MemberEpoch: 1}, meta.ErrInvalidGroupID},
	} {
		if _, err := c.ConsumerHeartbeat(tc.req); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The previous epoch is accepted when the owned partitions are the
	// member's (its last answer was lost).
	c2, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 2})
	x := newSim(t, c2, "x", "a")
	x.mustHB()
	y := newSim(t, c2, "y", "a")
	y.mustHB()
	x.mustHB() // told to revoke one
	x.mustHB() // acknowledged: epoch 2
	if x.epoch != 2 {
		t.Fatalf("x epoch %d", x.epoch)
	}
	x.epoch = 1
	if r := x.mustHB(); r.MemberEpoch != 2 || !r.AssignmentSet {
		t.Fatalf("previous epoch: %+v", r)
	}
}

// Regular expressions are resolved by the coordinator; a new matching
// topic and new partitions bump the group epoch and are assigned.
func TestConsumerRegexAndTopicChanges(t *testing.T) {
	a, b := topicID(1), topicID(2)
	c, f := consumerCoordinator(t, Config{}, meta.Topic{Name: "logs-a", ID: a, Partitions: 2}, meta.Topic{Name: "other", ID: b, Partitions: 2})
	m := newSim(t, c, "m1")
	m.regex = "logs-.*"
	m.mustHB()
	if len(m.owned) != 2 || !m.owned[tp{a, 0}] || !m.owned[tp{a, 1}] {
		t.Fatalf("regex assignment: %v", m.owned)
	}
	d, _ := c.DescribeConsumer("g")
	f.set(meta.Topic{Name: "logs-a", ID: a, Partitions: 3}, meta.Topic{Name: "other", ID: b, Partitions: 2},
		meta.Topic{Name: "logs-b", ID: topicID(3), Partitions: 1})
	r := m.mustHB()
	if len(m.owned) != 4 || r.MemberEpoch <= d.GroupEpoch {
		t.Fatalf("after new partitions and topic: epoch %d (was %d), owned %v", r.MemberEpoch, d.GroupEpoch, m.owned)
	}
	// Only whole names match (Kafka's semantics): "logs" alone matches nothing.
	n := newSim(t, c, "m2")
	n.group, n.regex = "g2", "logs"
	if n.mustHB(); len(n.owned) != 0 {
		t.Fatalf("partial regex match assigned %v", n.owned)
	}
}

// The member-named assignor decides; range gives co-partitioned ranges.
func TestConsumerRangeAssignor(t *testing.T) {
	a := topicID(1)
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: a, Partitions: 4})
	m1, m2 := newSim(t, c, "m1", "a"), newSim(t, c, "m2", "a")
	m1.assignor, m2.assignor = AssignorRange, AssignorRange
	m1.mustHB()
	m2.mustHB()
	m1.mustHB()
	m1.mustHB()
	m2.mustHB()
	if !m1.owned[tp{a, 0}] || !m1.owned[tp{a, 1}] || !m2.owned[tp{a, 2}] || !m2.owned[tp{a, 3}] {
		t.Fatalf("range: m1 %v m2 %v", m1.owned, m2.owned)
	}
	if d, _ := c.DescribeConsumer("g"); d.Assignor != AssignorRange {
		t.Fatalf("assignor %q", d.Assignor)
	}
}

// Sessions end after the configured timeout; a member that does not
// revoke within its rebalance timeout is removed; both free partitions.
func TestConsumerSessionAndRevocationTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := topicID(1)
		c, _ := consumerCoordinator(t, Config{ConsumerSessionTimeout: 10 * time.Second, ConsumerHeartbeatInterval: time.Second},
			meta.Topic{Name: "a", ID: a, Partitions: 2})
		m1, m2 := newSim(t, c, "m1", "a"), newSim(t, c, "m2", "a")
		m1.mustHB()
		m2.mustHB()
		// m1 never heartbeats again; m2 keeps going.
		for i := 0; i < 9; i++ {
			time.Sleep(time.Second)
			m2.mustHB()
		}
		if len(m2.owned) != 0 {
			t.Fatalf("m2 took %v while m1 still held them", m2.owned)
		}
		time.Sleep(2 * time.Second)
		if m2.mustHB(); len(m2.owned) != 2 {
			t.Fatalf("after m1's session ended m2 has %v", m2.owned)
		}
		if _, err := m1.hb(); !errors.Is(err, meta.ErrUnknownMemberID) {
			t.Fatalf("expired member: %v", err)
		}
		// m1 rejoins (as a client does after UNKNOWN_MEMBER_ID) but
		// never acknowledges its revocation: the rebalance timeout
		// (here 30 s, capped by nothing) removes it.
		// m1 comes back (as a client does after UNKNOWN_MEMBER_ID):
		// m2 must give up one partition, but sends only keepalives,
		// which do not acknowledge: its rebalance timeout (30 s)
		// removes it and m1b gets both.
		m1 = newSim(t, c, "m1b", "a")
		m1.mustHB()
		m2.mustHB() // told to revoke; it never does
		removedAt := -1
		for i := 1; i <= 35 && removedAt < 0; i++ {
			time.Sleep(time.Second)
			if _, err := c.ConsumerHeartbeat(meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", MemberEpoch: m2.epoch}); errors.Is(err, meta.ErrUnknownMemberID) {
				removedAt = i
			} else if err != nil {
				t.Fatalf("m2 keepalive %d: %v", i, err)
			}
			if m1.mustHB(); len(m1.owned) != 0 && removedAt < 0 {
				// The rebalance timer may fire at the same instant as
				// this second's wake-up, between m2's keepalive and
				// m1b's heartbeat: then m2 must be gone by now.
				if _, err := c.ConsumerHeartbeat(meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m2", MemberEpoch: m2.epoch}); !errors.Is(err, meta.ErrUnknownMemberID) {
					t.Fatalf("m1b got %v while m2 still held them (m2: %v)", m1.owned, err)
				}
				removedAt = i
			}
		}
		if removedAt < 30 {
			t.Fatalf("m2 removed after %d s, want its 30 s rebalance timeout", removedAt)
		}
		if m1.mustHB(); len(m1.owned) != 2 {
			t.Fatalf("after m2 was removed m1b has %v", m1.owned)
		}
	})
}

// A static member that leaves with epoch -2 keeps its partitions for its
// session; its instance comes back under a new member id to the same
// partitions without a rebalance. A second holder of a live instance id
// is refused.
func TestConsumerStaticMembership(t *testing.T) {
	a := topicID(1)
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: a, Partitions: 4})
	m1, m2 := newSim(t, c, "m1", "a"), newSim(t, c, "m2", "a")
	m1.instance = "i1"
	m1.mustHB()
	m2.mustHB()
	for i := 0; i < 3; i++ {
		m1.mustHB()
		m2.mustHB()
	}
	noDoubleOwners(t, m1, m2)
	held := toTopicPartitions(m1.owned)
	before, _ := c.DescribeConsumer("g")
	dup := newSim(t, c, "m3", "a")
	dup.instance = "i1"
	if _, err := dup.hb(); !errors.Is(err, meta.ErrUnreleasedInstanceID) {
		t.Fatalf("second holder of a live instance: %v", err)
	}
	if err := m1.leave(meta.MemberEpochStaticLeave); err != nil {
		t.Fatal(err)
	}
	if m2.mustHB(); len(m2.owned) != 2 {
		t.Fatalf("m2 took the static member's partitions: %v", m2.owned)
	}
	back := newSim(t, c, "m1-new", "a")
	back.instance = "i1"
	back.mustHB()
	if fmt.Sprint(toTopicPartitions(back.owned)) != fmt.Sprint(held) {
		t.Fatalf("returning static member got %v, had %v", back.owned, held)
	}
	after, _ := c.DescribeConsumer("g")
	if after.GroupEpoch != before.GroupEpoch || len(after.Members) != 2 {
		t.Fatalf("static rejoin: epoch %d → %d, members %+v", before.GroupEpoch, after.GroupEpoch, after.Members)
	}
}

// Classic and consumer members do not mix in one group.
// With the migration policy disabled (mixed groups: mixed_test.go).
func TestConsumerRefusesMixedGroups(t *testing.T) {
	c, _ := consumerCoordinator(t, Config{MigrationPolicy: MigrationDisabled}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 1})
	m := newSim(t, c, "m1", "a")
	m.mustHB()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Join(ctx, meta.JoinGroupRequest{Group: "g", ProtocolType: "consumer",
		Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second})
	if !errors.Is(err, meta.ErrInconsistentProtocol) {
		t.Fatalf("classic join of a consumer group: %v", err)
	}
	if _, err := c.Join(ctx, meta.JoinGroupRequest{Group: "classic", ProtocolType: "consumer", RequireKnownMember: true,
		Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second}); !errors.Is(err, meta.ErrMemberIDRequired) {
		t.Fatal(err)
	}
	k := newSim(t, c, "k1", "a")
	k.group = "classic"
	if _, err := k.hb(); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("consumer heartbeat to a classic group: %v", err)
	}
	l := c.List(nil)
	if len(l) != 2 || l[0].Group != "classic" || l[0].Type != meta.GroupTypeClassic || l[1].Type != meta.GroupTypeConsumer || l[1].State != "Stable" {
		t.Fatalf("list: %+v", l)
	}
	if d := c.Describe("g"); d.Type != meta.GroupTypeConsumer || d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	// A consumer group with members is not deleted, nor its offsets.
	if err := c.Delete("g"); !errors.Is(err, meta.ErrGroupNotEmpty) {
		t.Fatalf("delete: %v", err)
	}
	if err := c.CheckDeleteOffsets("g"); !errors.Is(err, meta.ErrGroupSubscribedToTopic) {
		t.Fatalf("delete offsets: %v", err)
	}
	if active := c.Active("g"); !active {
		t.Fatal("a consumer group with members is not active")
	}
	if err := m.leave(meta.MemberEpochLeave); err != nil {
		t.Fatal(err)
	}
	if g, members, _ := c.Counts(); g != 1 || members != 0 {
		t.Fatalf("after the last consumer member left: %d groups (the classic one), %d members", g, members)
	}
	if err := c.Delete("g"); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("delete of the emptied consumer group without offsets: %v", err)
	}
}

// Offset commits of consumer-protocol members carry their member epoch.
func TestConsumerCommitEpochs(t *testing.T) {
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 1})
	m := newSim(t, c, "m1", "a")
	m.mustHB()
	for _, tc := range []struct {
		member string
		epoch  int32
		want   error
	}{
		{"m1", m.epoch, nil},
		{"m1", m.epoch - 1, meta.ErrStaleMemberEpoch},
		{"m1", m.epoch + 1, meta.ErrFencedMemberEpoch},
		{"zz", m.epoch, meta.ErrUnknownMemberID},
		{"", -1, meta.ErrUnknownMemberID}, // an outsider while the group has members
	} {
		err := c.CheckCommit(meta.OffsetCommitRequest{Group: "g", MemberID: tc.member, Generation: tc.epoch, APIVersion: 9})
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Errorf("commit %s@%d: %v, want %v", tc.member, tc.epoch, err, tc.want)
		}
	}
	// Kafka: members of the consumer protocol commit with v9 or later.
	if err := c.CheckCommit(meta.OffsetCommitRequest{Group: "g", MemberID: "m1", Generation: m.epoch, APIVersion: 8}); !errors.Is(err, meta.ErrUnsupported) {
		t.Errorf("commit with v8: %v, want ErrUnsupported", err)
	}
}

// Randomised joins, leaves, rejoins and heartbeats in any order, with
// topics growing: at no point do two members own one partition, and once
// everyone heartbeats a few times every partition is owned. A failure
// prints its seed.
func TestConsumerRandomChurnNoDoubleOwners(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed))
		c, f := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 7})
		var sims []*sim
		next := 0
		for step := 0; step < 300; step++ {
			switch op := rng.IntN(10); {
			case op == 0 || len(sims) == 0:
				next++
				s := newSim(t, c, fmt.Sprintf("m%d", next), "a", "b")
				if rng.IntN(2) == 0 {
					s.assignor = AssignorRange
				}
				sims = append(sims, s)
				if _, err := s.hb(); err != nil {
					t.Fatalf("seed %d: join: %v", seed, err)
				}
			case op == 1 && len(sims) > 1:
				i := rng.IntN(len(sims))
				if err := sims[i].leave(meta.MemberEpochLeave); err != nil {
					t.Fatalf("seed %d: leave: %v", seed, err)
				}
				sims = append(sims[:i], sims[i+1:]...)
			case op == 2 && step == 150:
				f.set(meta.Topic{Name: "a", ID: topicID(1), Partitions: 9}, meta.Topic{Name: "b", ID: topicID(2), Partitions: 3})
			default:
				s := sims[rng.IntN(len(sims))]
				if _, err := s.hb(); err != nil {
					t.Fatalf("seed %d: heartbeat of %s: %v", seed, s.id, err)
				}
			}
			noDoubleOwners(t, sims...)
		}
		for round := 0; round < 4; round++ {
			for _, s := range sims {
				s.mustHB()
			}
		}
		owners := noDoubleOwners(t, sims...)
		want := 7
		if len(f.list()) == 2 {
			want = 12
		}
		if len(owners) != want {
			t.Fatalf("seed %d: %d partitions owned after settling, want %d", seed, len(owners), want)
		}
		if d, _ := c.DescribeConsumer("g"); d.State != "Stable" {
			t.Fatalf("seed %d: settled group is %s: %+v", seed, d.State, d)
		}
	}
}

// The consumer-protocol settings are validated and name their flags.
func TestConsumerConfigValidation(t *testing.T) {
	for _, c := range []Config{{ConsumerSessionTimeout: time.Millisecond}, {ConsumerSessionTimeout: time.Hour},
		{ConsumerHeartbeatInterval: time.Microsecond}, {ConsumerSessionTimeout: 2 * time.Second, ConsumerHeartbeatInterval: 3 * time.Second}} {
		if _, err := c.WithDefaults(); err == nil || !strings.Contains(err.Error(), "--group-consumer-") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	c, err := Config{}.WithDefaults()
	if err != nil || c.ConsumerSessionTimeout != 45*time.Second || c.ConsumerHeartbeatInterval != 5*time.Second {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// BenchmarkConsumerHeartbeat measures one keepalive heartbeat of a member
// of a settled group: 100 members subscribed to 100 topics of 10
// partitions (every heartbeat re-reads the topics to notice metadata
// changes, so this cost grows with the cluster's topic count).
func BenchmarkConsumerHeartbeat(b *testing.B) {
	for _, regex := range []bool{false, true} {
		b.Run(map[bool]string{false: "names", true: "regex"}[regex], func(b *testing.B) {
			var ts []meta.Topic
			var names []string
			for i := range 100 {
				name := fmt.Sprintf("t%03d", i)
				ts = append(ts, meta.Topic{Name: name, ID: meta.TopicID{byte(i), 1}, Partitions: 10})
				names = append(names, name)
			}
			t := &testing.T{}
			c, _ := consumerCoordinator(t, Config{}, ts...)
			var sims []*sim
			for i := range 100 {
				s := newSim(t, c, fmt.Sprintf("m%03d", i), names...)
				if regex {
					s.regex = "t.*"
				}
				sims = append(sims, s)
			}
			for range 4 {
				for _, s := range sims {
					if _, err := s.hb(); err != nil {
						b.Fatal(err)
					}
				}
			}
			req := meta.ConsumerHeartbeatRequest{Group: "g", MemberID: sims[0].id, MemberEpoch: sims[0].epoch}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.ConsumerHeartbeat(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

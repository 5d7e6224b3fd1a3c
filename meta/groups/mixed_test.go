package groups

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

// Mixed groups (mixed.go): classic members, simulated as a client of the
// consumer protocol embedded in JoinGroup does it, next to KIP-848
// members (sim, consumer_test.go).

// csim is a classic member as its client sees itself. Like a cooperative
// client it lists what it owns in its JoinGroup metadata and drops what
// a SyncGroup assignment no longer has.
type csim struct {
	t      *testing.T
	c      *Coordinator
	f      *fakeTopics
	group  string
	id     string
	gen    int32
	topics []string
	owned  map[tp]bool
}

func newCsim(t *testing.T, c *Coordinator, f *fakeTopics, topics ...string) *csim {
	return &csim{t: t, c: c, f: f, group: "g", topics: topics, owned: map[tp]bool{}}
}

func (s *csim) names() (map[meta.TopicID]string, map[string]meta.Topic) {
	byID, byName := map[meta.TopicID]string{}, map[string]meta.Topic{}
	for _, t := range s.f.list() {
		byID[t.ID], byName[t.Name] = t.Name, t
	}
	return byID, byName
}

func (s *csim) metadata() []byte {
	byID, _ := s.names()
	m := kmsg.ConsumerMemberMetadata{Version: 1, Topics: s.topics}
	owned := map[string][]int32{}
	for p := range s.owned {
		owned[byID[p.topic]] = append(owned[byID[p.topic]], p.part)
	}
	for name, ps := range owned {
		m.OwnedPartitions = append(m.OwnedPartitions, kmsg.ConsumerMemberMetadataOwnedPartition{Topic: name, Partitions: ps})
	}
	return m.AppendTo(nil)
}

func (s *csim) joinReq() meta.JoinGroupRequest {
	return meta.JoinGroupRequest{Group: s.group, MemberID: s.id, ClientID: "classic", ProtocolType: "consumer",
		Protocols:      []meta.GroupProtocol{{Name: "cooperative-sticky", Metadata: s.metadata()}},
		SessionTimeout: 30 * time.Second, RebalanceTimeout: 30 * time.Second}
}

// join sends JoinGroup and takes the generation it answers.
func (s *csim) join(ctx context.Context) (meta.JoinGroupResult, error) {
	res, err := s.c.Join(ctx, s.joinReq())
	if err == nil {
		s.id, s.gen = res.MemberID, res.Generation
	}
	return res, err
}

// sync sends SyncGroup (with assignments when it leads a classic
// group) and owns what it is given.
func (s *csim) sync(ctx context.Context, assignments map[string][]byte) error {
	res, err := s.c.Sync(ctx, meta.SyncGroupRequest{Group: s.group, MemberID: s.id, Generation: s.gen, Assignments: assignments})
	if err != nil {
		return err
	}
	_, byName := s.names()
	got, err := decodeAssignment(res.Assignment, byName)
	if err != nil {
		s.t.Fatalf("%s: assignment does not decode: %v", s.id, err)
	}
	s.owned = got
	return nil
}

func (s *csim) heartbeat() error { return s.c.Heartbeat(s.group, s.id, "", s.gen) }

// rejoin is what a client does after REBALANCE_IN_PROGRESS: JoinGroup
// (listing what it owns), then SyncGroup.
func (s *csim) rejoin(ctx context.Context) error {
	if _, err := s.join(ctx); err != nil {
		return err
	}
	return s.sync(ctx, nil)
}

func assignmentOf(f *fakeTopics, ps ...tp) []byte {
	byID := map[meta.TopicID]meta.Topic{}
	for _, t := range f.list() {
		byID[t.ID] = t
	}
	set := map[tp]bool{}
	for _, p := range ps {
		set[p] = true
	}
	return encodeAssignment(set, byID, 1)
}

// noDoubleOwnersMixed fails when two members, of either kind, own one
// partition.
func noDoubleOwnersMixed(t *testing.T, cs []*csim, ks []*sim) map[tp]string {
	t.Helper()
	owner := map[tp]string{}
	add := func(id string, owned map[tp]bool) {
		for p := range owned {
			if o, ok := owner[p]; ok {
				t.Fatalf("partition %v owned by %s and %s", p, o, id)
			}
			owner[p] = id
		}
	}
	for _, s := range cs {
		add("classic "+s.id, s.owned)
	}
	for _, s := range ks {
		add("consumer "+s.id, s.owned)
	}
	return owner
}

// startClassicGroup forms a stable classic group of two members, the
// leader assigning partitions 0-1 of "a" to itself and 2-3 to the other.
func startClassicGroup(t *testing.T, ctx context.Context, c *Coordinator, f *fakeTopics) (*csim, *csim) {
	t.Helper()
	a, b := newCsim(t, c, f, "a"), newCsim(t, c, f, "a")
	if _, err := a.join(ctx); err != nil { // alone: answered at once
		t.Fatal(err)
	}
	errs := make(chan error, 1)
	go func() { _, err := b.join(ctx); errs <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for d := c.Describe("g"); d.State != "PreparingRebalance" || len(d.Members) != 2; d = c.Describe("g") {
		if time.Now().After(deadline) {
			t.Fatalf("the second join did not start a rebalance: %+v", d)
		}
		time.Sleep(time.Millisecond)
	}
	jr, err := a.join(ctx) // completes the join phase
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	leader, other := a, b
	if jr.LeaderID != a.id {
		leader, other = b, a
	}
	id := topicID(1)
	if err := leader.sync(ctx, map[string][]byte{leader.id: assignmentOf(f, tp{id, 0}, tp{id, 1}), other.id: assignmentOf(f, tp{id, 2}, tp{id, 3})}); err != nil {
		t.Fatal(err)
	}
	if err := other.sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(leader.owned) != 2 || len(other.owned) != 2 || c.Describe("g").State != "Stable" {
		t.Fatalf("classic group: leader %v, other %v, %+v", leader.owned, other.owned, c.Describe("g"))
	}
	return leader, other
}

// The upgrade, a mixed rebalance and the downgrade, step by step: a
// consumer member joins a stable classic group, which becomes a consumer
// group whose classic members keep their partitions; they learn of the
// new target through Heartbeat, give partitions up by rejoining, and the
// consumer member takes them only then. When it leaves, the group is
// classic again and rebalances.
func TestMixedUpgradeRebalanceDowngrade(t *testing.T) {
	c, f := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startClassicGroup(t, ctx, c, f)
	gen := a.gen

	k := newSim(t, c, "k1", "a")
	k.mustHB()
	cs, ks := []*csim{a, b}, []*sim{k}
	noDoubleOwnersMixed(t, cs, ks)
	d := c.Describe("g")
	if d.Type != meta.GroupTypeConsumer || len(d.Members) != 3 {
		t.Fatalf("after the upgrade: %+v", d)
	}
	for _, m := range d.Members {
		if m.MemberID != k.id && (len(m.Metadata) == 0 || len(m.Assignment) == 0) {
			t.Errorf("classic member %s described without its metadata or assignment", m.MemberID)
		}
	}
	if l := c.List(nil); len(l) != 1 || l[0].Type != meta.GroupTypeConsumer {
		t.Fatalf("list: %+v", l)
	}
	// The classic members' commits at their generation (= member epoch)
	// still go through, with an old OffsetCommit version.
	if err := c.CheckCommit(meta.OffsetCommitRequest{Group: "g", MemberID: a.id, Generation: gen, APIVersion: 2}); err != nil {
		t.Fatalf("classic member's commit after the upgrade: %v", err)
	}
	if err := c.CheckCommit(meta.OffsetCommitRequest{Group: "g", MemberID: a.id, Generation: gen - 1, APIVersion: 2}); !errors.Is(err, meta.ErrIllegalGeneration) {
		t.Fatalf("classic member's commit at an old generation: %v", err)
	}
	if len(k.owned) != 0 {
		t.Fatalf("the consumer member got %v while the classic members hold everything", k.owned)
	}
	// The classic members are told to rejoin; they give up what the new
	// target moves and the consumer member picks it up.
	for round := 0; round < 10; round++ {
		for _, s := range cs {
			err := s.heartbeat()
			switch {
			case errors.Is(err, meta.ErrRebalanceInProgress):
				if err := s.rejoin(ctx); err != nil {
					t.Fatalf("%s rejoin: %v", s.id, err)
				}
			case err != nil:
				t.Fatalf("%s heartbeat: %v", s.id, err)
			}
			noDoubleOwnersMixed(t, cs, ks)
		}
		k.mustHB()
		noDoubleOwnersMixed(t, cs, ks)
	}
	owners := noDoubleOwnersMixed(t, cs, ks)
	if len(owners) != 4 || len(k.owned) == 0 || len(a.owned) == 0 || len(b.owned) == 0 {
		t.Fatalf("after the mixed rebalance: a %v, b %v, k %v", a.owned, b.owned, k.owned)
	}
	for _, s := range cs {
		if err := s.heartbeat(); err != nil {
			t.Fatalf("%s heartbeat once reconciled: %v", s.id, err)
		}
	}
	if st := c.Describe("g").State; st != "Stable" {
		t.Fatalf("state %s, want Stable", st)
	}

	// The downgrade: the consumer member leaves.
	if err := k.leave(meta.MemberEpochLeave); err != nil {
		t.Fatal(err)
	}
	d = c.Describe("g")
	if d.Type != meta.GroupTypeClassic || d.State != "PreparingRebalance" || len(d.Members) != 2 {
		t.Fatalf("after the last consumer member left: %+v", d)
	}
	if err := a.heartbeat(); !errors.Is(err, meta.ErrRebalanceInProgress) {
		t.Fatalf("classic heartbeat after the downgrade: %v", err)
	}
	// Both rejoin under the classic protocol; the leader assigns.
	errs := make(chan error, 2)
	results := make(chan meta.JoinGroupResult, 2)
	for _, s := range cs {
		go func() { r, err := s.join(ctx); results <- r; errs <- err }()
	}
	var leaderID string
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		leaderID = (<-results).LeaderID
	}
	var leader *csim
	for _, s := range cs { // (both joins answered: s.id is theirs to read)
		if s.id == leaderID {
			leader = s
		}
	}
	if leader == nil || len(leader.joinReq().Protocols) == 0 {
		t.Fatal("no leader after the downgrade's rebalance")
	}
	id := topicID(1)
	if err := leader.sync(ctx, map[string][]byte{a.id: assignmentOf(f, tp{id, 0}, tp{id, 1}), b.id: assignmentOf(f, tp{id, 2}, tp{id, 3})}); err != nil {
		t.Fatal(err)
	}
	for _, s := range cs {
		if s != leader {
			if err := s.sync(ctx, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d := c.Describe("g"); d.State != "Stable" || d.Type != meta.GroupTypeClassic {
		t.Fatalf("after the classic rebalance: %+v", d)
	}
}

// The migration policy: disabled keeps today's refusals, with Kafka's
// codes and the flag named; upgrade converts but never back.
func TestMixedMigrationPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, f := consumerCoordinator(t, Config{MigrationPolicy: MigrationDisabled}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 4})
	startClassicGroup(t, ctx, c, f)
	k := newSim(t, c, "k1", "a")
	_, err := k.hb()
	if !errors.Is(err, meta.ErrGroupIDNotFound) || !strings.Contains(err.Error(), "--group-consumer-migration-policy") {
		t.Fatalf("consumer heartbeat into a classic group, policy disabled: %v", err)
	}
	k.group = "kg"
	k.mustHB()
	cl := newCsim(t, c, f, "a")
	cl.group = "kg"
	_, err = cl.join(ctx)
	if !errors.Is(err, meta.ErrInconsistentProtocol) || !strings.Contains(err.Error(), "--group-consumer-migration-policy") {
		t.Fatalf("classic join into a consumer group, policy disabled: %v", err)
	}

	c, f = consumerCoordinator(t, Config{MigrationPolicy: MigrationUpgrade}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 4})
	startClassicGroup(t, ctx, c, f)
	k = newSim(t, c, "k1", "a")
	k.mustHB()
	if err := k.leave(meta.MemberEpochLeave); err != nil {
		t.Fatal(err)
	}
	if d := c.Describe("g"); d.Type != meta.GroupTypeConsumer || len(d.Members) != 2 {
		t.Fatalf("policy upgrade: after the consumer member left the group must stay a consumer group: %+v", d)
	}

	if _, err := (Config{MigrationPolicy: "sideways"}).WithDefaults(); err == nil || !strings.Contains(err.Error(), "--group-consumer-migration-policy") {
		t.Fatalf("bad policy: %v", err)
	}
}

// A classic group whose metadata is not the consumer protocol's is not
// upgraded: GROUP_ID_NOT_FOUND, as Kafka, and the group stays classic.
func TestMixedUpgradeRefusesForeignProtocol(t *testing.T) {
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	jr, err := c.Join(ctx, meta.JoinGroupRequest{Group: "g", ProtocolType: "connect", SessionTimeout: 30 * time.Second,
		Protocols: []meta.GroupProtocol{{Name: "default", Metadata: []byte("x")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx, meta.SyncGroupRequest{Group: "g", MemberID: jr.MemberID, Generation: jr.Generation}); err != nil {
		t.Fatal(err)
	}
	k := newSim(t, c, "k1", "a")
	if _, err := k.hb(); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("consumer heartbeat into a connect group: %v", err)
	}
	if d := c.Describe("g"); d.Type != meta.GroupTypeClassic || d.State != "Stable" {
		t.Fatalf("the connect group after the refused upgrade: %+v", d)
	}
}

// Randomised classic and consumer members joining, leaving, rejoining and
// heartbeating in any order on a mixed group: at no point do two members
// of either kind own one partition, and once everyone keeps heartbeating
// (rejoining when told) every partition is owned. A failure prints its
// seed.
func TestMixedRandomChurnNoDoubleOwners(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mixedChurn(t, seed)
		})
	}
}

func mixedChurn(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 848))
	c, f := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 8}, meta.Topic{Name: "b", ID: topicID(2), Partitions: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := startClassicGroup(t, ctx, c, f)
	cs := []*csim{a, b}
	var ks []*sim
	in := map[any]bool{a: true, b: true}
	for i := range 4 {
		s := newCsim(t, c, f, "a", "b")
		cs = append(cs, s)
		_ = i
	}
	for i := range 4 {
		ks = append(ks, newSim(t, c, fmt.Sprintf("k%d", i), "a", "b"))
	}
	check := func(step int) {
		t.Helper()
		owner := map[tp]string{}
		for _, s := range cs {
			for p := range s.owned {
				if o, ok := owner[p]; ok {
					t.Fatalf("seed %d step %d: partition %v owned by %s and classic %s", seed, step, p, o, s.id)
				}
				owner[p] = "classic " + s.id
			}
		}
		for _, s := range ks {
			for p := range s.owned {
				if o, ok := owner[p]; ok {
					t.Fatalf("seed %d step %d: partition %v owned by %s and consumer %s", seed, step, p, o, s.id)
				}
				owner[p] = "consumer " + s.id
			}
		}
	}
	classicStep := func(s *csim) {
		if !in[s] {
			s.id, s.owned = "", map[tp]bool{}
			if err := s.rejoin(ctx); err == nil {
				in[s] = true
			} else if !errors.Is(err, meta.ErrInconsistentProtocol) && !errors.Is(err, meta.ErrRebalanceInProgress) {
				// (A join into the classic group after a downgrade
				// waits for a rebalance; the test keeps to the mixed
				// group, where joins answer at once.)
				t.Fatalf("seed %d: classic join: %v", seed, err)
			}
			return
		}
		switch err := s.heartbeat(); {
		case errors.Is(err, meta.ErrRebalanceInProgress):
			if err := s.rejoin(ctx); err != nil && !errors.Is(err, meta.ErrRebalanceInProgress) {
				t.Fatalf("seed %d: %s rejoin: %v", seed, s.id, err)
			}
		case err != nil:
			t.Fatalf("seed %d: %s heartbeat: %v", seed, s.id, err)
		}
	}
	consumerStep := func(s *sim) {
		if !in[s] {
			s.epoch, s.owned = 0, map[tp]bool{}
			if _, err := s.hb(); err != nil {
				t.Fatalf("seed %d: consumer join: %v", seed, err)
			}
			in[s] = true
			return
		}
		if _, err := s.hb(); err != nil {
			t.Fatalf("seed %d: %s heartbeat: %v", seed, s.id, err)
		}
	}
	// Keep at least one consumer member in the group throughout, so that
	// it stays mixed (the downgrade is tested on its own above).
	consumerStep(ks[0])
	for step := 0; step < 400; step++ {
		switch r := rng.IntN(10); {
		case r < 4:
			classicStep(cs[rng.IntN(len(cs))])
		case r < 8:
			consumerStep(ks[rng.IntN(len(ks))])
		case r == 8:
			s := cs[rng.IntN(len(cs))]
			if in[s] {
				if errs := c.Leave("g", []meta.LeavingMember{{MemberID: s.id}}); errs[0] != nil {
					t.Fatalf("seed %d: classic leave: %v", seed, errs[0])
				}
				s.owned = map[tp]bool{}
				in[s] = false
			}
		default:
			if s := ks[1+rng.IntN(len(ks)-1)]; in[s] {
				if err := s.leave(meta.MemberEpochLeave); err != nil {
					t.Fatalf("seed %d: consumer leave: %v", seed, err)
				}
				in[s] = false
			}
		}
		check(step)
	}
	// Converge: everyone in, everyone heartbeating.
	for round := 0; round < 30; round++ {
		for _, s := range cs {
			classicStep(s)
			check(1000 + round)
		}
		for _, s := range ks {
			consumerStep(s)
			check(1000 + round)
		}
	}
	owner := map[tp]bool{}
	for _, s := range cs {
		for p := range s.owned {
			owner[p] = true
		}
	}
	for _, s := range ks {
		for p := range s.owned {
			owner[p] = true
		}
	}
	if len(owner) != 13 {
		t.Fatalf("seed %d: %d of 13 partitions owned after converging: %s", seed, len(owner), c.Describe("g").State)
	}
}

package compat_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta/controller"
	"sluice.dev/meta/groups"
)

// Classic and KIP-848 members in one group with franz-go (issue 15,
// meta/groups/mixed.go): classic (cooperative-sticky) members consume a
// topic under load; they are restarted one by one with the consumer
// protocol (kgo.ServerSideBalancer), the first of which upgrades the
// group online; then restarted one by one back with the classic
// protocol, the last consumer-protocol member leaving downgrading it.
// Checked as in the KIP-848 churn test: no partition is ever owned by two
// members at once (as the members' own callbacks see it, and for every
// record polled), every acknowledged record is consumed, and the group
// is of the type each phase expects.
func TestFranzGoMixedUpgradeDowngrade(t *testing.T) {
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{
		ConsumerHeartbeatInterval: 200 * time.Millisecond,
		ConsumerSessionTimeout:    10 * time.Second,
	}})
	const topic, group, partitions = "mixed", "g-mixed", 6
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	createTopics(ctx, t, adm, partitions, topic)

	var nacked atomic.Int64
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pstop := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			k := strconv.Itoa(i)
			prod.Produce(pctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(k)}, func(_ *kgo.Record, err error) {
				if err == nil {
					nacked.Add(1)
				}
			})
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()

	own := &owners{t: t, owner: map[int32]string{}}
	var seenMu sync.Mutex
	seen := map[string]int{}
	type member struct {
		cl   *kgo.Client
		done chan struct{}
	}
	live := map[string]*member{}
	start := func(name string, kip848 bool) {
		opts := []kgo.Opt{kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.assign(name, m[topic]) }),
			kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
				_ = cl.CommitUncommittedOffsets(context.Background())
				own.revoke(name, m[topic])
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.revoke(name, m[topic]) }),
			kgo.ClientID(name),
		}
		if kip848 {
			opts = append(opts, kgo.ServerSideBalancer())
		} else {
			opts = append(opts, kgo.HeartbeatInterval(200*time.Millisecond))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		m := &member{cl: cl, done: make(chan struct{})}
		live[name] = m
		go func() {
			defer close(m.done)
			for {
				fs := cl.PollFetches(ctx)
				if fs.IsClientClosed() || ctx.Err() != nil {
					return
				}
				fs.EachRecord(func(r *kgo.Record) {
					if !own.check(name, r.Partition) {
						t.Errorf("%s polled %s[%d]@%d, a partition it does not own", name, r.Topic, r.Partition, r.Offset)
					}
					seenMu.Lock()
					seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
					seenMu.Unlock()
				})
			}
		}()
	}
	stop := func(name string) {
		m := live[name]
		delete(live, name)
		m.cl.Close()
		<-m.done
	}
	settle := func(what string) {
		want := map[string]bool{}
		for n := range live {
			want[n] = true
		}
		for !own.settled(partitions, want) {
			if ctx.Err() != nil {
				t.Fatalf("%s: group did not settle: owners %v, members %v", what, own.owner, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	groupType := func() string {
		lr := kmsg.NewPtrListGroupsRequest()
		resp, err := lr.RequestWith(ctx, adm)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range resp.Groups {
			if g.Group == group {
				return g.GroupType
			}
		}
		return ""
	}
	script := []struct {
		leave, join string
		kip848      bool
		wantType    string
	}{
		{join: "c1", wantType: "classic"},
		{join: "c2", wantType: "classic"},
		{join: "c3", wantType: "classic"},
		// The upgrade, one member at a time.
		{leave: "c1", join: "k1", kip848: true, wantType: "consumer"},
		{leave: "c2", join: "k2", kip848: true, wantType: "consumer"},
		{leave: "c3", join: "k3", kip848: true, wantType: "consumer"},
		// And back: classic members join the consumer group, and the
		// last consumer-protocol member leaving downgrades it.
		{leave: "k1", join: "c1", wantType: "consumer"},
		{leave: "k2", join: "c2", wantType: "consumer"},
		{leave: "k3", join: "c3", wantType: "classic"},
	}
	for i, step := range script {
		time.Sleep(300 * time.Millisecond) // let records flow between changes
		if step.leave != "" {
			stop(step.leave)
			settle(fmt.Sprintf("step %d: %s left", i, step.leave))
		}
		start(step.join, step.kip848)
		settle(fmt.Sprintf("step %d: %s joined", i, step.join))
		if got := groupType(); got != step.wantType {
			t.Fatalf("step %d (%+v): group type %q, want %q", i, step, got, step.wantType)
		}
	}
	pstop()
	pwg.Wait()
	prod.Flush(context.Background())
	prod.Close()
	produced := int(nacked.Load())
	deadline := time.Now().Add(time.Minute)
	for {
		seenMu.Lock()
		n := len(seen)
		seenMu.Unlock()
		if n >= produced || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for name := range live {
		stop(name)
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	dups := 0
	for _, k := range seen {
		dups += k - 1
	}
	if produced == 0 || len(seen) != produced {
		t.Errorf("consumed %d distinct records, %d acknowledged", len(seen), produced)
	}
	t.Logf("%d records produced and consumed, %d delivered twice, over 9 membership changes across the upgrade and the downgrade", produced, dups)
}

// TestMixedGroupCodes drives a mixed group with kmsg requests through an
// agent: a classic member (consumer-protocol metadata) joining a
// consumer group is answered at once, with its member epoch as the
// generation and no leader, gets its assignment from SyncGroup and
// REBALANCE_IN_PROGRESS from Heartbeat once the group moves on; its old
// generation is ILLEGAL_GENERATION; DescribeGroups shows it with its
// metadata, ConsumerGroupDescribe with member type classic; a consumer-protocol heartbeat under its member id is
// UNKNOWN_MEMBER_ID. With --group-consumer-migration-policy=disabled the
// refusals are Kafka's: GROUP_ID_NOT_FOUND for a consumer member joining
// a classic group with members, INCONSISTENT_GROUP_PROTOCOL for a
// classic member joining a consumer group.
func TestMixedGroupCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	subscription := func(topics ...string) []byte {
		m := kmsg.ConsumerMemberMetadata{Version: 1, Topics: topics}
		return m.AppendTo(nil)
	}
	join := func(cl *kgo.Client, group, member string) *kmsg.JoinGroupResponse {
		t.Helper()
		jg := kmsg.NewPtrJoinGroupRequest()
		jg.Group, jg.MemberID, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = group, member, "consumer", 30_000, 30_000
		jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "cooperative-sticky", Metadata: subscription("codes")}}
		r, err := jg.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	hb := func(cl *kgo.Client, group, member string, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch, req.RebalanceTimeoutMillis = group, member, epoch, 30_000
		req.SubscribedTopicNames, req.Topics = []string{"codes"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		r, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("bidirectional", func(t *testing.T) {
		c := startCluster(t)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		createTopics(ctx, t, cl, 4, "codes")
		if r := hb(cl, "mixed-g", "k1-0000000000000000000", 0); r.ErrorCode != 0 || r.MemberEpoch <= 0 {
			t.Fatalf("consumer join: %+v", r)
		}
		jr := join(cl, "mixed-g", "")
		if jr.ErrorCode == kerr.MemberIDRequired.Code {
			jr = join(cl, "mixed-g", jr.MemberID)
		}
		if jr.ErrorCode != 0 || jr.LeaderID != "" || jr.Protocol == nil || *jr.Protocol != "cooperative-sticky" || jr.Generation <= 0 {
			t.Fatalf("classic join of a consumer group: %+v", jr)
		}
		sg := kmsg.NewPtrSyncGroupRequest()
		sg.Group, sg.MemberID, sg.Generation = "mixed-g", jr.MemberID, jr.Generation
		sg.ProtocolType, sg.Protocol = kmsg.StringPtr("consumer"), jr.Protocol
		sr, err := sg.RequestWith(ctx, cl)
		if err != nil || sr.ErrorCode != 0 {
			t.Fatalf("SyncGroup: %v %+v", err, sr)
		}
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(sr.MemberAssignment); err != nil {
			t.Fatalf("the assignment is not the consumer protocol's: %v", err)
		}
		heartbeat := func(gen int32) int16 {
			h := kmsg.NewPtrHeartbeatRequest()
			h.Group, h.MemberID, h.Generation = "mixed-g", jr.MemberID, gen
			r, err := h.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return r.ErrorCode
		}
		if code := heartbeat(jr.Generation - 1); code != kerr.IllegalGeneration.Code {
			t.Fatalf("heartbeat at an old generation: %v", kerr.ErrorForCode(code))
		}
		// A second consumer member moves the group epoch on: the classic
		// member is told to rejoin.
		if r := hb(cl, "mixed-g", "k2-0000000000000000000", 0); r.ErrorCode != 0 {
			t.Fatalf("second consumer join: %+v", r)
		}
		if code := heartbeat(jr.Generation); code != kerr.RebalanceInProgress.Code {
			t.Fatalf("classic heartbeat after the group epoch moved: %v", kerr.ErrorForCode(code))
		}
		dg := kmsg.NewPtrDescribeGroupsRequest()
		dg.Groups = []string{"mixed-g"}
		dr, err := dg.RequestWith(ctx, cl)
		if err != nil || len(dr.Groups) != 1 || dr.Groups[0].ProtocolType != "consumer" || len(dr.Groups[0].Members) != 3 {
			t.Fatalf("DescribeGroups: %v %+v", err, dr)
		}
		for _, m := range dr.Groups[0].Members {
			if m.MemberID == jr.MemberID && len(m.ProtocolMetadata) == 0 {
				t.Errorf("the classic member is described without its metadata: %+v", m)
			}
		}
		cd := kmsg.NewPtrConsumerGroupDescribeRequest()
		cd.Groups = []string{"mixed-g"}
		cr, err := cd.RequestWith(ctx, cl)
		if err != nil || len(cr.Groups) != 1 || cr.Groups[0].ErrorCode != 0 || len(cr.Groups[0].Members) != 3 {
			t.Fatalf("ConsumerGroupDescribe: %v %+v", err, cr)
		}
		for _, m := range cr.Groups[0].Members {
			// MemberType (v1): 0 classic, 1 consumer.
			if want := map[bool]int8{true: 0, false: 1}[m.MemberID == jr.MemberID]; m.MemberType != want {
				t.Errorf("ConsumerGroupDescribe: member %s of type %d, want %d", m.MemberID, m.MemberType, want)
			}
		}
		if r := hb(cl, "mixed-g", jr.MemberID, jr.Generation); r.ErrorCode != kerr.UnknownMemberID.Code {
			t.Fatalf("a consumer heartbeat under a classic member's id: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	})

	t.Run("disabled", func(t *testing.T) {
		c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{MigrationPolicy: groups.MigrationDisabled}})
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		createTopics(ctx, t, cl, 4, "codes")
		jr := join(cl, "classic-g", "")
		if jr.ErrorCode == kerr.MemberIDRequired.Code {
			jr = join(cl, "classic-g", jr.MemberID)
		}
		if jr.ErrorCode != 0 {
			t.Fatalf("classic join: %v", kerr.ErrorForCode(jr.ErrorCode))
		}
		if r := hb(cl, "classic-g", "k1-0000000000000000000", 0); r.ErrorCode != kerr.GroupIDNotFound.Code {
			t.Fatalf("consumer join of a classic group with members, policy disabled: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		if r := hb(cl, "consumer-g", "k1-0000000000000000000", 0); r.ErrorCode != 0 {
			t.Fatalf("consumer join: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		if r := join(cl, "consumer-g", ""); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
			t.Fatalf("classic join of a consumer group, policy disabled: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	})
}

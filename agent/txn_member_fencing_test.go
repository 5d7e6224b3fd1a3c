package agent_test

// TxnOffsetCommit fencing by group membership (KIP-447, issue 15): a
// GroupTransactSession member that a rebalance left behind cannot commit
// offsets in its transaction, and each refusal has Kafka's code.

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// TestTxnOffsetCommitZombieMember: member A of a GroupTransactSession
// has consumed and produced in a transaction; while its TxnOffsetCommit
// is being prepared (carrying A's generation), member B joins and the
// group completes a rebalance into a new generation. The commit that
// then arrives with the old generation is a zombie's: refused with
// ILLEGAL_GENERATION (checked on an identical request sent first over a
// plain client), so franz-go aborts the transaction and the group's
// committed offsets do not move.
func TestTxnOffsetCommitZombieMember(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(txnClient(t, c.addr()))
	for _, topic := range []string{"zin", "zout"} {
		if _, err := adm.CreateTopic(ctx, 4, -1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	produceN(t, c.addr(), "zin", 0, 40)

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.addr()), kgo.TransactionalID("zombie-a"),
		kgo.ConsumerGroup("zg"), kgo.ConsumeTopics("zin"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.HeartbeatInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var fs kgo.Fetches
	for fs.NumRecords() == 0 {
		fs = sess.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("member A consumed nothing before the deadline")
		}
	}
	if err := sess.Begin(); err != nil {
		t.Fatal(err)
	}
	fs.EachRecord(func(r *kgo.Record) {
		sess.Produce(ctx, &kgo.Record{Topic: "zout", Key: r.Key, Value: r.Value}, nil)
	})

	plain := txnClient(t, c.addr())
	var zombieCode int16 = -1
	var sentGen int32
	hold := func(req *kmsg.TxnOffsetCommitRequest) error {
		sentGen = req.Generation
		// B joins; A's heartbeat sees the rebalance and A rejoins into
		// the next generation while this commit is held.
		b := txnClient(t, c.addr(), kgo.ConsumerGroup("zg"), kgo.ConsumeTopics("zin"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		go func() { _ = b.PollFetches(ctx) }()
		for {
			if _, gen := sess.Client().GroupMetadata(); gen > req.Generation {
				break
			}
			select {
			case <-ctx.Done():
				t.Error("the group did not reach a new generation before the deadline")
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		// The same request, as the zombie is about to send it (after
		// AddOffsetsToTxn, which franz-go sends once prepared: sent
		// here first, the session's own is a repeat).
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group
		if r, err := ao.RequestWith(ctx, plain); err != nil || r.ErrorCode != 0 {
			t.Errorf("AddOffsetsToTxn: %+v %v", r, err)
			return nil
		}
		dup := *req
		resp, err := dup.RequestWith(ctx, plain)
		if err != nil {
			t.Errorf("TxnOffsetCommit sent raw: %v", err)
			return nil
		}
		zombieCode = resp.Topics[0].Partitions[0].ErrorCode
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != zombieCode {
					t.Errorf("partition %s/%d: code %d, others %d", rt.Topic, rp.Partition, rp.ErrorCode, zombieCode)
				}
			}
		}
		return nil
	}
	committed, err := sess.End(kgo.PreTxnCommitFnContext(ctx, hold), kgo.TryCommit)
	if err != nil {
		t.Fatalf("End: %v (franz-go aborts on ILLEGAL_GENERATION without an error)", err)
	}
	if zombieCode != kerr.IllegalGeneration.Code {
		t.Fatalf("TxnOffsetCommit at generation %d after the rebalance: code %d (%v), want ILLEGAL_GENERATION",
			sentGen, zombieCode, kerr.ErrorForCode(zombieCode))
	}
	if committed {
		t.Fatal("the zombie's transaction committed")
	}
	offs, err := adm.FetchOffsets(ctx, "zg")
	if err != nil {
		t.Fatal(err)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "zin" && o.At > 0 {
			t.Errorf("committed offset %d on zin/%d: the zombie's commit went through", o.At, o.Partition)
		}
	})
}

// TestTxnOffsetCommitMemberCodes sends TxnOffsetCommit as kmsg requests
// with each kind of bad member field, to a classic group with a static
// member and to a KIP-848 consumer group, and checks Kafka 4's code for
// each; requests without member fields (v2, or generation -1 and no
// member id) are not checked.
func TestTxnOffsetCommitMemberCodes(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := txnClient(t, c.addr())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, "codes"); err != nil {
		t.Fatal(err)
	}
	// A classic group: one static member, stable.
	instance := "static-1"
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = "classic", "consumer", 30_000, 30_000
	jg.InstanceID = &instance
	jp := kmsg.NewJoinGroupRequestProtocol()
	jp.Name = "range"
	jg.Protocols = append(jg.Protocols, jp)
	jr, err := jg.RequestWith(ctx, cl)
	if err != nil || jr.ErrorCode != 0 {
		t.Fatalf("JoinGroup: %+v %v", jr, err)
	}
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.Generation, sg.InstanceID = "classic", jr.MemberID, jr.Generation, &instance
	if sr, err := sg.RequestWith(ctx, cl); err != nil || sr.ErrorCode != 0 {
		t.Fatalf("SyncGroup: %+v %v", sr, err)
	}
	// A consumer-protocol group with one member.
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.MemberEpoch, hb.RebalanceTimeoutMillis = "kip848", "k1-member-id-0000000", 0, 30_000
	hb.SubscribedTopicNames = []string{"codes"}
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hr, err := hb.RequestWith(ctx, cl)
	if err != nil || hr.ErrorCode != 0 || hr.MemberEpoch <= 0 {
		t.Fatalf("ConsumerGroupHeartbeat: %+v %v", hr, err)
	}

	// One transaction, with both groups added.
	ip := kmsg.NewPtrInitProducerIDRequest()
	txnID := "codes-txn"
	ip.TransactionalID, ip.TransactionTimeoutMillis = &txnID, 60_000
	ir, err := ip.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %+v %v", ir, err)
	}
	for _, g := range []string{"classic", "kip848", "nosuchgroup"} {
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = txnID, ir.ProducerID, ir.ProducerEpoch, g
		if r, err := ao.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
			t.Fatalf("AddOffsetsToTxn %s: %+v %v", g, r, err)
		}
	}
	// kgo sends the highest version both sides have: the requests go
	// over a raw connection so that their version is the one set.
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	commit := func(version int16, group, member string, instance *string, gen int32) int16 {
		t.Helper()
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = version
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, ir.ProducerID, ir.ProducerEpoch
		req.Group, req.MemberID, req.InstanceID, req.Generation = group, member, instance, gen
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "codes"
		for p := range int32(2) {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = p, 1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		r, err := conn.RoundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatalf("TxnOffsetCommit v%d: %v", version, err)
		}
		resp := r.(*kmsg.TxnOffsetCommitResponse)
		code := resp.Topics[0].Partitions[0].ErrorCode
		if c1 := resp.Topics[0].Partitions[1].ErrorCode; c1 != code {
			t.Errorf("partition codes differ: %d and %d", code, c1)
		}
		return code
	}
	other := "static-2"
	for _, tc := range []struct {
		name     string
		version  int16
		group    string
		member   string
		instance *string
		gen      int32
		want     *kerr.Error
	}{
		{"classic member", 3, "classic", jr.MemberID, &instance, jr.Generation, nil},
		{"classic stale generation", 3, "classic", jr.MemberID, &instance, jr.Generation - 1, kerr.IllegalGeneration},
		{"classic unknown member", 3, "classic", "nobody", nil, jr.Generation, kerr.UnknownMemberID},
		{"classic fenced instance", 3, "classic", "nobody", &instance, jr.Generation, kerr.FencedInstanceID},
		{"classic instance nobody holds", 3, "classic", jr.MemberID, &other, jr.Generation, kerr.UnknownMemberID},
		{"classic v3 without member fields", 3, "classic", "", nil, -1, nil},
		{"classic v2 (no member fields on the wire)", 2, "classic", "ignored", nil, 99, nil},
		{"consumer member", 3, "kip848", hb.MemberID, nil, hr.MemberEpoch, nil},
		{"consumer stale epoch", 3, "kip848", hb.MemberID, nil, hr.MemberEpoch - 1, kerr.IllegalGeneration},
		{"consumer unknown member", 3, "kip848", "nobody", nil, hr.MemberEpoch, kerr.UnknownMemberID},
		{"consumer v3 without member fields", 3, "kip848", "", nil, -1, nil},
		{"no such group, generation", 3, "nosuchgroup", "m", nil, 5, kerr.IllegalGeneration},
		{"no such group, generation -1", 3, "nosuchgroup", "", nil, -1, nil},
	} {
		var want int16
		if tc.want != nil {
			want = tc.want.Code
		}
		if got := commit(tc.version, tc.group, tc.member, tc.instance, tc.gen); got != want {
			t.Errorf("%s: code %d (%v), want %d (%v)", tc.name, got, kerr.ErrorForCode(got), want, tc.want)
		}
	}
}

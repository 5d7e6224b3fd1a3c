package rpc

import (
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// KIP-848 over the wire: a heartbeat and a describe give the same answer
// remotely as from the Service, errors keep their sentinels, and a topic
// id of the wrong length is refused as INVALID_REQUEST.
func TestConsumerGroupsOverRPC(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, time.Minute)
	rc, svc := e.rc, e.svc
	res, err := rc.CreateTopics(ctx, []meta.TopicSpec{{Name: "t", Partitions: 3}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	id := res[0].Topic.ID
	join := meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", RebalanceTimeoutMs: 30_000,
		SubscribedTopics: []string{"t"}, SubscribedTopicsSet: true, OwnedSet: true, Owned: []meta.TopicPartitions{},
		Assignor: "range", AssignorSet: true, ClientID: "c", ClientHost: "/10.0.0.1"}
	hr, err := rc.ConsumerGroupHeartbeat(ctx, join)
	if err != nil || hr.MemberEpoch != 1 || !hr.AssignmentSet || len(hr.Assignment) != 1 ||
		hr.Assignment[0].TopicID != id || len(hr.Assignment[0].Partitions) != 3 {
		t.Fatalf("join: %+v %v", hr, err)
	}
	// A keepalive: no assignment in the answer.
	hr, err = rc.ConsumerGroupHeartbeat(ctx, meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", MemberEpoch: 1})
	if err != nil || hr.AssignmentSet || hr.MemberEpoch != 1 {
		t.Fatalf("keepalive: %+v %v", hr, err)
	}
	rd, rerr := rc.DescribeConsumerGroup(ctx, "g")
	sd, serr := svc.DescribeConsumerGroup(ctx, "g")
	same(t, "DescribeConsumerGroup", rd, sd)
	same(t, "DescribeConsumerGroup error", rerr, serr)
	if rd.State != "Stable" || len(rd.Members) != 1 || rd.Members[0].ClientHost != "/10.0.0.1" || rd.Assignor != "range" {
		t.Fatalf("describe: %+v", rd)
	}
	_, rerr = rc.DescribeConsumerGroup(ctx, "nope")
	if !errors.Is(rerr, meta.ErrGroupIDNotFound) {
		t.Fatalf("describe of no group: %v", rerr)
	}
	_, rerr = rc.ConsumerGroupHeartbeat(ctx, meta.ConsumerHeartbeatRequest{Group: "g", MemberID: "m1", MemberEpoch: 5})
	if !errors.Is(rerr, meta.ErrFencedMemberEpoch) {
		t.Fatalf("fenced: %v", rerr)
	}
	ls, err := rc.ListGroups(ctx)
	if err != nil || len(ls) != 1 || ls[0].Type != meta.GroupTypeConsumer {
		t.Fatalf("list: %+v %v", ls, err)
	}
	// A malformed topic id from a (broken) agent.
	mc := pb.NewMetaClient(rawConn(t, e.addr))
	r, err := mc.ConsumerGroupHeartbeat(withAuth(ctx, "Bearer "+testKey), &pb.ConsumerGroupHeartbeatRequest{Group: "g", MemberId: "m1", MemberEpoch: 1,
		OwnedSet: true, Owned: []*pb.TopicPartitions{{TopicId: []byte{1, 2}}}})
	if err != nil || r.GetError().GetCode() != pb.ErrorCode_ERR_INVALID_REQUEST {
		t.Fatalf("bad topic id: %+v %v", r, err)
	}
}

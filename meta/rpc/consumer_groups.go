package rpc

import (
	"context"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// KIP-848 consumer groups over the wire: ConsumerGroupHeartbeat and
// DescribeConsumerGroup, both sides and their conversions.

// ConsumerGroupHeartbeat implements meta.Client.
func (c *Client) ConsumerGroupHeartbeat(ctx context.Context, hreq meta.ConsumerHeartbeatRequest) (meta.ConsumerHeartbeatResult, error) {
	req := &pb.ConsumerGroupHeartbeatRequest{Group: hreq.Group, MemberId: hreq.MemberID, MemberEpoch: hreq.MemberEpoch,
		InstanceId: hreq.InstanceID, RackId: hreq.RackID, RebalanceTimeoutMs: hreq.RebalanceTimeoutMs,
		SubscribedTopics: hreq.SubscribedTopics, SubscribedTopicsSet: hreq.SubscribedTopicsSet,
		Regex: hreq.Regex, RegexSet: hreq.RegexSet, Assignor: hreq.Assignor, AssignorSet: hreq.AssignorSet,
		Owned: encTopicPartitions(hreq.Owned), OwnedSet: hreq.OwnedSet, ClientId: hreq.ClientID, ClientHost: hreq.ClientHost}
	return callT(c, ctx, "ConsumerGroupHeartbeat", func(mc pb.MetaClient) (meta.ConsumerHeartbeatResult, error) {
		r, err := mc.ConsumerGroupHeartbeat(ctx, req)
		if err != nil {
			return meta.ConsumerHeartbeatResult{}, rpcError{err}
		}
		var d decoder
		out := meta.ConsumerHeartbeatResult{MemberID: r.GetMemberId(), MemberEpoch: r.GetMemberEpoch(),
			HeartbeatIntervalMs: r.GetHeartbeatIntervalMs(), AssignmentSet: r.GetAssignmentSet(),
			Assignment: d.topicPartitions(r.GetAssignment())}
		if d.err != nil {
			return meta.ConsumerHeartbeatResult{}, malformed("ConsumerGroupHeartbeat", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// DescribeConsumerGroup implements meta.Client.
func (c *Client) DescribeConsumerGroup(ctx context.Context, group string) (meta.ConsumerGroupDescription, error) {
	req := &pb.DescribeGroupRequest{Group: group}
	return callT(c, ctx, "DescribeConsumerGroup", func(mc pb.MetaClient) (meta.ConsumerGroupDescription, error) {
		r, err := mc.DescribeConsumerGroup(ctx, req)
		if err != nil {
			return meta.ConsumerGroupDescription{}, rpcError{err}
		}
		var d decoder
		out := meta.ConsumerGroupDescription{Group: r.GetGroup(), State: r.GetState(), GroupEpoch: r.GetGroupEpoch(),
			AssignmentEpoch: r.GetAssignmentEpoch(), Assignor: r.GetAssignor()}
		for _, m := range r.GetMembers() {
			out.Members = append(out.Members, meta.ConsumerMemberDescription{MemberID: m.GetMemberId(),
				InstanceID: m.GetInstanceId(), RackID: m.GetRackId(), MemberEpoch: m.GetMemberEpoch(),
				ClientID: m.GetClientId(), ClientHost: m.GetClientHost(), SubscribedTopics: m.GetSubscribedTopics(),
				Regex: m.GetRegex(), Assignment: d.topicPartitions(m.GetAssignment()),
				TargetAssignment: d.topicPartitions(m.GetTargetAssignment()), Classic: m.GetClassic()})
		}
		if d.err != nil {
			return meta.ConsumerGroupDescription{}, malformed("DescribeConsumerGroup", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

func (m *metaServer) ConsumerGroupHeartbeat(ctx context.Context, r *pb.ConsumerGroupHeartbeatRequest) (*pb.ConsumerGroupHeartbeatResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	req := meta.ConsumerHeartbeatRequest{Group: r.GetGroup(), MemberID: r.GetMemberId(), MemberEpoch: r.GetMemberEpoch(),
		InstanceID: r.GetInstanceId(), RackID: r.GetRackId(), RebalanceTimeoutMs: r.GetRebalanceTimeoutMs(),
		SubscribedTopics: r.GetSubscribedTopics(), SubscribedTopicsSet: r.GetSubscribedTopicsSet(),
		Regex: r.GetRegex(), RegexSet: r.GetRegexSet(), Assignor: r.GetAssignor(), AssignorSet: r.GetAssignorSet(),
		Owned: d.topicPartitions(r.GetOwned()), OwnedSet: r.GetOwnedSet(), ClientID: r.GetClientId(), ClientHost: r.GetClientHost()}
	if d.err != nil {
		return &pb.ConsumerGroupHeartbeatResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.ConsumerGroupHeartbeat(ctx, req)
	return &pb.ConsumerGroupHeartbeatResponse{Error: encodeErr(err), MemberId: res.MemberID, MemberEpoch: res.MemberEpoch,
		HeartbeatIntervalMs: res.HeartbeatIntervalMs, Assignment: encTopicPartitions(res.Assignment),
		AssignmentSet: res.AssignmentSet}, nil
}

func (m *metaServer) DescribeConsumerGroup(ctx context.Context, r *pb.DescribeGroupRequest) (*pb.DescribeConsumerGroupResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	g, err := c.DescribeConsumerGroup(ctx, r.GetGroup())
	out := &pb.DescribeConsumerGroupResponse{Error: encodeErr(err), Group: g.Group, State: g.State,
		GroupEpoch: g.GroupEpoch, AssignmentEpoch: g.AssignmentEpoch, Assignor: g.Assignor}
	for _, mm := range g.Members {
		out.Members = append(out.Members, &pb.ConsumerMemberDescription{MemberId: mm.MemberID, InstanceId: mm.InstanceID,
			RackId: mm.RackID, MemberEpoch: mm.MemberEpoch, ClientId: mm.ClientID, ClientHost: mm.ClientHost,
			SubscribedTopics: mm.SubscribedTopics, Regex: mm.Regex, Assignment: encTopicPartitions(mm.Assignment),
			TargetAssignment: encTopicPartitions(mm.TargetAssignment), Classic: mm.Classic})
	}
	return out, nil
}

func encTopicPartitions(ts []meta.TopicPartitions) []*pb.TopicPartitions {
	out := make([]*pb.TopicPartitions, len(ts))
	for i, t := range ts {
		out[i] = &pb.TopicPartitions{TopicId: t.TopicID[:], Partitions: t.Partitions}
	}
	return out
}

func (d *decoder) topicPartitions(ts []*pb.TopicPartitions) []meta.TopicPartitions {
	out := make([]meta.TopicPartitions, 0, len(ts))
	for _, t := range ts {
		if t == nil {
			d.fail("topic partitions missing")
			continue
		}
		out = append(out, meta.TopicPartitions{TopicID: d.topicID(t.TopicId), Partitions: t.Partitions})
	}
	return out
}

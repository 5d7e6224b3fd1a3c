package server

// KIP-848 consumer groups: ConsumerGroupHeartbeat 0–1 and
// ConsumerGroupDescribe 0–1.
//
// The coordinator is meta's (meta/groups/consumer.go), as for classic
// groups: the agent checks the request's shape and authorization,
// forwards it, and maps the answer; the heartbeat never waits on other
// members. v0 lets the coordinator name a joining member; v1 (Kafka 4.0)
// has the client name itself and adds SubscribedTopicRegex, which meta
// resolves (RE2 syntax, whole topic names, as Kafka).
//
// Authorization, as Kafka's: ConsumerGroupHeartbeat needs READ on the
// group (and, as Kafka 4 checks, DESCRIBE on the subscribed topics is
// left to Metadata, which filters what the member can see);
// ConsumerGroupDescribe DESCRIBE on each group. Left out: rack-aware
// assignment (RackId is recorded and described, not used), and
// ConsumerGroupDescribe's topic names for topics this agent cannot
// resolve (they are described by id only).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.ConsumerGroupHeartbeat), 0, 1, handleConsumerGroupHeartbeat)
	register(int16(kmsg.ConsumerGroupDescribe), 0, 1, handleConsumerGroupDescribe)
}

func handleConsumerGroupHeartbeat(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16, msg string) {
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = strPtr(msg)
		}
		rc.respond(resp)
	}
	if !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group) {
		fail(kerr.GroupAuthorizationFailed.Code, "")
		return
	}
	if rc.version >= 1 && req.MemberID == "" {
		// v1 members name themselves (KIP-1082).
		fail(kerr.InvalidRequest.Code, "MemberId can't be empty.")
		return
	}
	hreq := meta.ConsumerHeartbeatRequest{
		Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		RebalanceTimeoutMs: max(req.RebalanceTimeoutMillis, 0),
		SubscribedTopics:   req.SubscribedTopicNames, SubscribedTopicsSet: req.SubscribedTopicNames != nil,
		OwnedSet: req.Topics != nil, ClientID: rc.clientID, ClientHost: "/" + hostOf(rc.c.remote),
	}
	if req.InstanceID != nil {
		hreq.InstanceID = *req.InstanceID
	}
	if req.RackID != nil {
		hreq.RackID = *req.RackID
	}
	if req.SubscribedTopicRegex != nil {
		hreq.Regex, hreq.RegexSet = *req.SubscribedTopicRegex, true
	}
	if req.ServerAssignor != nil {
		hreq.Assignor, hreq.AssignorSet = *req.ServerAssignor, true
	}
	for _, t := range req.Topics {
		hreq.Owned = append(hreq.Owned, meta.TopicPartitions{TopicID: meta.TopicID(t.TopicID), Partitions: t.Partitions})
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	res, err := s.deps.Meta.ConsumerGroupHeartbeat(ctx, hreq)
	if err != nil {
		fail(errorCode(err), err.Error())
		return
	}
	if res.MemberID != "" {
		resp.MemberID = strPtr(res.MemberID)
	}
	resp.MemberEpoch, resp.HeartbeatIntervalMillis = res.MemberEpoch, res.HeartbeatIntervalMs
	if res.AssignmentSet {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(res.Assignment))
		for _, t := range res.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = t.TopicID, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	rc.respond(resp)
}

func handleConsumerGroupDescribe(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, name := range req.Groups {
		rg := kmsg.NewConsumerGroupDescribeResponseGroup()
		rg.Group = name
		if !s.authorize(rc, meta.OpDescribe, meta.ResourceGroup, name) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, err := s.deps.Meta.DescribeConsumerGroup(ctx, name)
		if err != nil {
			rg.ErrorCode, rg.ErrorMessage = errorCode(err), strPtr(err.Error())
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.State, rg.Epoch, rg.AssignmentEpoch, rg.AssignorName = d.State, d.GroupEpoch, d.AssignmentEpoch, d.Assignor
		if req.IncludeAuthorizedOperations {
			rg.AuthorizedOperations = s.authorizedOps(rc, meta.ResourceGroup, name)
		}
		var ids []meta.TopicID
		for _, m := range d.Members {
			for _, t := range m.Assignment {
				ids = append(ids, t.TopicID)
			}
			for _, t := range m.TargetAssignment {
				ids = append(ids, t.TopicID)
			}
		}
		byID, _ := s.topics.byIDs(ctx, ids) // unresolved topics are described by id only
		assignment := func(ts []meta.TopicPartitions) kmsg.Assignment {
			var a kmsg.Assignment
			a.TopicPartitions = make([]kmsg.AssignmentTopicPartition, 0, len(ts))
			for _, t := range ts {
				at := kmsg.NewAssignmentTopicPartition()
				at.TopicID, at.Topic, at.Partitions = t.TopicID, byID[t.TopicID].Name, t.Partitions
				a.TopicPartitions = append(a.TopicPartitions, at)
			}
			return a
		}
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberID, m.MemberEpoch, m.ClientID, m.ClientHost
			if m.InstanceID != "" {
				rm.InstanceID = strPtr(m.InstanceID)
			}
			if m.RackID != "" {
				rm.RackID = strPtr(m.RackID)
			}
			rm.SubscribedTopics = m.SubscribedTopics
			if rm.SubscribedTopics == nil {
				rm.SubscribedTopics = []string{}
			}
			if m.Regex != "" {
				rm.SubscribedTopicRegex = strPtr(m.Regex)
			}
			rm.Assignment, rm.TargetAssignment = assignment(m.Assignment), assignment(m.TargetAssignment)
			if rc.version >= 1 {
				rm.MemberType = 1 // consumer protocol
				if m.Classic {
					rm.MemberType = 0 // a classic member of a mixed group
				}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	rc.respond(resp)
}

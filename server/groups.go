package server

// Consumer groups, classic protocol: FindCoordinator 0–4, JoinGroup 0–9,
// SyncGroup 0–5, Heartbeat 0–4, LeaveGroup 0–5, OffsetCommit 0–9,
// OffsetFetch 0–8, ListGroups 0–5, DescribeGroups 0–5, DeleteGroups 0–2,
// OffsetDelete 0. The KIP-848 consumer protocol is consumer_groups.go;
// here it shows in OffsetCommit v9 (a consumer-protocol member commits at
// its member epoch, and must use v9+: below it Kafka answers
// UNSUPPORTED_VERSION), ListGroups v5 (group types and the type filter),
// and DescribeGroups (a consumer group is described with protocol type
// "consumer" and its assignor as the protocol).
//
// The coordinator is meta: every agent forwards group requests to it, so
// members connected to different agents share one group. FindCoordinator
// therefore answers with the agent that was asked. JoinGroup and SyncGroup
// may wait for other members; they wait on their own goroutine, never on
// the connection worker or the event loop, and responses keep request
// order. Left out: OffsetFetch v9 (member epochs on fetches) and
// OffsetCommit/OffsetFetch by topic id (v10).
//
// Authorization (authz.go), as Kafka's: JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup need READ on the group; OffsetCommit READ on the group and
// on each topic; OffsetFetch DESCRIBE on the group and each topic (all
// committed offsets: only the topics it may DESCRIBE); FindCoordinator
// DESCRIBE on the group; ListGroups DESCRIBE on the cluster, or else
// lists the groups it may DESCRIBE; DescribeGroups DESCRIBE, DeleteGroups
// DELETE on each group; OffsetDelete DELETE on the group and READ on each
// topic. Denials are GROUP_AUTHORIZATION_FAILED and
// TOPIC_AUTHORIZATION_FAILED.

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.FindCoordinator), 0, 4, handleFindCoordinator)
	register(int16(kmsg.JoinGroup), 0, 9, handleJoinGroup)
	register(int16(kmsg.SyncGroup), 0, 5, handleSyncGroup)
	register(int16(kmsg.Heartbeat), 0, 4, handleHeartbeat)
	register(int16(kmsg.LeaveGroup), 0, 5, handleLeaveGroup)
	register(int16(kmsg.OffsetCommit), 0, 9, handleOffsetCommit)
	register(int16(kmsg.OffsetFetch), 0, 8, handleOffsetFetch)
	register(int16(kmsg.ListGroups), 0, 5, handleListGroups)
	register(int16(kmsg.DescribeGroups), 0, 5, handleDescribeGroups)
	register(int16(kmsg.DeleteGroups), 0, 2, handleDeleteGroups)
	register(int16(kmsg.OffsetDelete), 0, 0, handleOffsetDelete)
}

func (s *Server) hostPort() (string, int32) {
	host, portStr, _ := net.SplitHostPort(s.cfg.AdvertisedAddr)
	port, _ := strconv.Atoi(portStr)
	return host, int32(port)
}

func strPtr(s string) *string { return &s }

func handleFindCoordinator(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	offered, _ := s.offeredTo(rc.clientID)
	code := int16(0)
	var msg *string
	// Key type 0 names a group, 1 a transactional id (issue 15): meta
	// coordinates both, behind every agent. Kafka checks DESCRIBE on the
	// named resource.
	resource, denied := meta.ResourceGroup, kerr.GroupAuthorizationFailed.Code
	switch req.CoordinatorType {
	case 0:
	case 1:
		resource, denied = meta.ResourceTransactionalID, kerr.TransactionalIDAuthorizationFailed.Code
	default:
		code = kerr.InvalidRequest.Code
		msg = strPtr("unknown coordinator key type")
	}
	if rc.version >= 4 {
		for _, k := range req.CoordinatorKeys {
			c := kmsg.NewFindCoordinatorResponseCoordinator()
			b := coordinatorFor(offered, s.cfg.AgentID, k)
			c.Key, c.NodeID, c.Host, c.Port, c.ErrorCode, c.ErrorMessage = k, b.node, b.host, b.port, code, msg
			if code == 0 && !s.authorize(rc, meta.OpDescribe, resource, k) {
				c.ErrorCode, c.ErrorMessage = denied, nil
			}
			if c.ErrorCode != 0 {
				c.NodeID, c.Host, c.Port = -1, "", -1
			}
			resp.Coordinators = append(resp.Coordinators, c)
		}
	} else {
		b := coordinatorFor(offered, s.cfg.AgentID, req.CoordinatorKey)
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = code, b.node, b.host, b.port
		resp.ErrorMessage = msg
		if code == 0 && !s.authorize(rc, meta.OpDescribe, resource, req.CoordinatorKey) {
			resp.ErrorCode = denied
		}
		if resp.ErrorCode != 0 {
			resp.NodeID, resp.Host, resp.Port = -1, "", -1
		}
	}
	rc.respond(resp)
}

func handleJoinGroup(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	if !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group) {
		resp.ErrorCode, resp.Generation = kerr.GroupAuthorizationFailed.Code, -1
		if rc.version < 7 {
			resp.Protocol = strPtr("")
		}
		rc.respond(resp)
		return
	}
	jr := meta.JoinGroupRequest{
		Group:              req.Group,
		MemberID:           req.MemberID,
		ClientID:           rc.clientID,
		ClientHost:         "/" + hostOf(rc.c.remote),
		ProtocolType:       req.ProtocolType,
		SessionTimeout:     time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:   time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMember: rc.version >= 4,
	}
	if rc.version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if jr.RebalanceTimeout > maxRebalanceTimeout {
		// The client's rebalance timeout is how long its JoinGroup may
		// park here (a goroutine and a slot of the connection's
		// in-flight requests); a client may ask for days (Kafka
		// Streams once set max.poll.interval.ms to MaxInt32). Serve it
		// as the server's maximum: the rebalance completes without a
		// member that takes longer, which then rejoins.
		jr.RebalanceTimeout = maxRebalanceTimeout
		mGroupWaitCapped.Inc()
	}
	if req.InstanceID != nil {
		jr.InstanceID = *req.InstanceID
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, meta.GroupProtocol{Name: p.Name, Metadata: p.Metadata})
	}
	wait := jr.RebalanceTimeout + 5*time.Second
	rc.goAsync(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		res, err := s.deps.Meta.JoinGroup(ctx, jr)
		resp.ErrorCode = errorCode(err)
		resp.Generation = res.Generation
		resp.MemberID = res.MemberID
		resp.LeaderID = res.LeaderID
		if err == nil {
			resp.ProtocolType = strPtr(res.ProtocolType)
			resp.Protocol = strPtr(res.Protocol)
			for _, m := range res.Members {
				rm := kmsg.NewJoinGroupResponseMember()
				rm.MemberID = m.MemberID
				if m.InstanceID != "" {
					rm.InstanceID = strPtr(m.InstanceID)
				}
				rm.ProtocolMetadata = m.Metadata
				resp.Members = append(resp.Members, rm)
			}
		} else if resp.Generation == 0 {
			resp.Generation = -1
		}
		if rc.version < 7 && resp.Protocol == nil {
			resp.Protocol = strPtr("") // non-nullable before v7
		}
		rc.respond(resp)
	})
}

// maxRebalanceTimeout bounds how long a JoinGroup waits on this agent,
// whatever the client asks: Kafka's group.max.session.timeout.ms default,
// the longest session a member may have. The count of such waits is
// bounded by the connection's in-flight request bound (conn.go).
const maxRebalanceTimeout = 30 * time.Minute

// maxSyncWait bounds how long a SyncGroup follower waits for the leader's
// assignment on this agent.
const maxSyncWait = 5 * time.Minute

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

func handleSyncGroup(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group) {
		resp.ErrorCode, resp.MemberAssignment = kerr.GroupAuthorizationFailed.Code, []byte{}
		rc.respond(resp)
		return
	}
	sr := meta.SyncGroupRequest{Group: req.Group, MemberID: req.MemberID, Generation: req.Generation}
	if req.InstanceID != nil {
		sr.InstanceID = *req.InstanceID
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	rc.goAsync(func() {
		// A follower waits for the leader's assignment, which the leader
		// computes after its JoinGroup answer: its session bounds it.
		ctx, cancel := context.WithTimeout(context.Background(), maxSyncWait)
		defer cancel()
		res, err := s.deps.Meta.SyncGroup(ctx, sr)
		resp.ErrorCode = errorCode(err)
		if err == nil {
			resp.ProtocolType = strPtr(res.ProtocolType)
			resp.Protocol = strPtr(res.Protocol)
			resp.MemberAssignment = res.Assignment
		}
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		rc.respond(resp)
	})
}

func handleHeartbeat(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	inst := ""
	if req.InstanceID != nil {
		inst = *req.InstanceID
	}
	resp.ErrorCode = errorCode(s.deps.Meta.Heartbeat(ctx, req.Group, req.MemberID, inst, req.Generation))
	rc.respond(resp)
}

func handleLeaveGroup(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	var members []meta.LeavingMember
	if rc.version < 3 {
		members = []meta.LeavingMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			lm := meta.LeavingMember{MemberID: m.MemberID}
			if m.InstanceID != nil {
				lm.InstanceID = *m.InstanceID
			}
			members = append(members, lm)
		}
	}
	errs, err := s.deps.Meta.LeaveGroup(ctx, req.Group, members)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		rc.respond(resp)
		return
	}
	if rc.version < 3 {
		resp.ErrorCode = errorCode(errs[0])
	} else {
		for i, m := range req.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
			rm.ErrorCode = errorCode(errs[i])
			resp.Members = append(resp.Members, rm)
		}
	}
	rc.respond(resp)
}

func handleOffsetCommit(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	cr := meta.OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, Generation: req.Generation, APIVersion: rc.version}
	if rc.version == 0 {
		cr.Generation = -1
	}
	if req.InstanceID != nil {
		cr.InstanceID = *req.InstanceID
	}
	codes := make([][]int16, len(req.Topics))
	groupDenied := !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group)
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		tp, ok := byName[t.Topic]
		topicDenied := !groupDenied && !s.authorize(rc, meta.OpRead, meta.ResourceTopic, t.Topic)
		for j, p := range t.Partitions {
			switch {
			case groupDenied:
				codes[i][j] = kerr.GroupAuthorizationFailed.Code
			case topicDenied:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				codes[i][j] = errorCode(err)
			case !ok || p.Partition < 0 || p.Partition >= tp.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > meta.MaxOffsetMetadataBytes:
				// Kafka fails just this partition; meta would refuse
				// the whole commit.
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				co := meta.CommittedOffset{
					TopicPartition: meta.TopicPartition{TopicID: tp.ID, Partition: p.Partition},
					Offset:         p.Offset,
					LeaderEpoch:    -1,
				}
				if rc.version >= 6 {
					co.LeaderEpoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					co.Metadata = *p.Metadata
				}
				cr.Offsets = append(cr.Offsets, co)
			}
		}
	}
	var commitErr error
	if len(cr.Offsets) > 0 {
		commitErr = s.deps.Meta.CommitOffsets(ctx, cr)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = codes[i][j]
			if rp.ErrorCode == 0 {
				rp.ErrorCode = errorCode(commitErr)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	rc.respond(resp)
}

// fetchedTopic is one topic of an OffsetFetch answer.
type fetchedTopic struct {
	name  string
	parts []kmsg.OffsetFetchResponseGroupTopicPartition
}

// offsetFetchGroup answers one group: the named topics' partitions, or
// every committed offset when topics is nil.
func (s *Server) offsetFetchGroup(ctx context.Context, rc *reqCtx, group string, topics []kmsg.OffsetFetchRequestGroupTopic) ([]fetchedTopic, int16) {
	if !s.authorize(rc, meta.OpDescribe, meta.ResourceGroup, group) {
		return nil, kerr.GroupAuthorizationFailed.Code
	}
	offs, err := s.deps.Meta.FetchOffsets(ctx, group, nil)
	if err != nil {
		return nil, errorCode(err)
	}
	type key struct {
		id meta.TopicID
		p  int32
	}
	have := make(map[key]meta.CommittedOffset, len(offs))
	ids := map[meta.TopicID]bool{}
	for _, o := range offs {
		have[key{o.TopicID, o.Partition}] = o
		ids[o.TopicID] = true
	}
	part := func(p int32, o meta.CommittedOffset, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		rp.Partition = p
		rp.Offset, rp.LeaderEpoch = -1, -1
		rp.Metadata = strPtr("")
		if ok {
			rp.Offset, rp.LeaderEpoch = o.Offset, o.LeaderEpoch
			rp.Metadata = strPtr(o.Metadata)
		}
		return rp
	}
	var out []fetchedTopic
	if topics == nil {
		idList := make([]meta.TopicID, 0, len(ids))
		for id := range ids {
			idList = append(idList, id)
		}
		byID, err := s.topics.byIDs(ctx, idList)
		if err != nil {
			return nil, errorCode(err)
		}
		idx := map[meta.TopicID]int{}
		for _, o := range offs {
			t, ok := byID[o.TopicID]
			if !ok {
				continue // topic deleted
			}
			if !s.authorize(rc, meta.OpDescribe, meta.ResourceTopic, t.Name) {
				continue // Kafka leaves out what the principal may not see
			}
			i, seen := idx[o.TopicID]
			if !seen {
				i = len(out)
				idx[o.TopicID] = i
				out = append(out, fetchedTopic{name: t.Name})
			}
			out[i].parts = append(out[i].parts, part(o.Partition, o, true))
		}
		return out, 0
	}
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	if err != nil {
		return nil, errorCode(err)
	}
	for _, t := range topics {
		ft := fetchedTopic{name: t.Topic}
		tm, known := byName[t.Topic]
		denied := !s.authorize(rc, meta.OpDescribe, meta.ResourceTopic, t.Topic)
		for _, p := range t.Partitions {
			var o meta.CommittedOffset
			ok := false
			if known && !denied {
				o, ok = have[key{tm.ID, p}]
			}
			rp := part(p, o, ok)
			if denied {
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			ft.parts = append(ft.parts, rp)
		}
		out = append(out, ft)
	}
	return out, 0
}

func handleOffsetFetch(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	if rc.version >= 8 {
		for _, g := range req.Groups {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = g.Group
			fts, code := s.offsetFetchGroup(ctx, rc, g.Group, g.Topics)
			if req.RequireStable && code == 0 {
				s.markUnstable(ctx, g.Group, fts) // transactions (issue 15)
			}
			rg.ErrorCode = code
			for _, ft := range fts {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = ft.name
				rt.Partitions = ft.parts
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		rc.respond(resp)
		return
	}
	var topics []kmsg.OffsetFetchRequestGroupTopic
	if req.Topics != nil {
		topics = make([]kmsg.OffsetFetchRequestGroupTopic, 0, len(req.Topics))
		for _, t := range req.Topics {
			gt := kmsg.NewOffsetFetchRequestGroupTopic()
			gt.Topic, gt.Partitions = t.Topic, t.Partitions
			topics = append(topics, gt)
		}
	}
	fts, code := s.offsetFetchGroup(ctx, rc, req.Group, topics)
	if req.RequireStable && code == 0 {
		s.markUnstable(ctx, req.Group, fts) // transactions (issue 15)
	}
	resp.ErrorCode = code
	for _, ft := range fts {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = ft.name
		for _, p := range ft.parts {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			if rc.version < 2 && code != 0 {
				rp.ErrorCode = code // no top-level error before v2
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	rc.respond(resp)
}

func handleListGroups(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	gs, err := s.deps.Meta.ListGroups(ctx)
	resp.ErrorCode = errorCode(err)
	want := map[string]bool{}
	for _, st := range req.StatesFilter {
		want[st] = true
	}
	// KIP-848: v5 filters by group type, case-insensitively as Kafka.
	types := map[string]bool{}
	for _, t := range req.TypesFilter {
		types[strings.ToLower(t)] = true
	}
	all := s.allowedQuietly(rc, meta.OpDescribe, meta.ResourceCluster, meta.ClusterResourceName)
	for _, g := range gs {
		if len(want) > 0 && !want[g.State] {
			continue
		}
		if len(types) > 0 && !types[g.Type] {
			continue
		}
		if !all && !s.authorize(rc, meta.OpDescribe, meta.ResourceGroup, g.Group) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
	rc.respond(resp)
}

func handleDescribeGroups(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, name := range req.Groups {
		rg := kmsg.NewDescribeGroupsResponseGroup()
		rg.Group = name
		rg.AuthorizedOperations = -2147483648
		if !s.authorize(rc, meta.OpDescribe, meta.ResourceGroup, name) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		d, err := s.deps.Meta.DescribeGroup(ctx, name)
		rg.ErrorCode = errorCode(err)
		rg.State, rg.ProtocolType, rg.Protocol = d.State, d.ProtocolType, d.Protocol
		if req.IncludeAuthorizedOperations && rc.version >= 3 {
			rg.AuthorizedOperations = s.authorizedOps(rc, meta.ResourceGroup, name)
		}
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.ClientID, rm.ClientHost = m.MemberID, m.ClientID, m.ClientHost
			if m.InstanceID != "" {
				rm.InstanceID = strPtr(m.InstanceID)
			}
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			if rm.MemberAssignment == nil {
				rm.MemberAssignment = []byte{}
			}
			if rm.ProtocolMetadata == nil {
				rm.ProtocolMetadata = []byte{}
			}
			rg.Members = append(rg.Members, rm)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	rc.respond(resp)
}

func handleDeleteGroups(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, name := range req.Groups {
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group = name
		if !s.authorize(rc, meta.OpDelete, meta.ResourceGroup, name) {
			rg.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		rg.ErrorCode = errorCode(s.deps.Meta.DeleteGroup(ctx, name))
		resp.Groups = append(resp.Groups, rg)
	}
	rc.respond(resp)
}

func handleOffsetDelete(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !s.authorize(rc, meta.OpDelete, meta.ResourceGroup, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	topicDenied := make([]bool, len(req.Topics))
	for i, t := range req.Topics {
		topicDenied[i] = !s.authorize(rc, meta.OpRead, meta.ResourceTopic, t.Topic)
	}
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	var tps []meta.TopicPartition
	for i, t := range req.Topics {
		if tm, ok := byName[t.Topic]; ok && !topicDenied[i] {
			for _, p := range t.Partitions {
				tps = append(tps, meta.TopicPartition{TopicID: tm.ID, Partition: p.Partition})
			}
		}
	}
	if err == nil && len(tps) > 0 {
		err = s.deps.Meta.DeleteOffsets(ctx, req.Group, tps)
	}
	if code := errorCode(err); code == kerr.GroupSubscribedToTopic.Code || code == kerr.GroupIDNotFound.Code {
		resp.ErrorCode = code
		err = nil
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, known := byName[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			rp.ErrorCode = errorCode(err)
			switch {
			case topicDenied[i]:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !known:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	rc.respond(resp)
}

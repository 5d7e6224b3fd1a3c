package server

// Metadata, versions 0–12.
//
// Brokers are the live agents of meta's registry that serve the client's
// zone and group (zones.go); every agent may accept any partition
// (DESIGN.md, produce path step 1), so partition leaders only spread the
// load, by rendezvous hashing (agents.go). With
// --auto-create-topics, unknown topics named in a request that allows it
// (always before v4) are created with --default-partitions partitions.
// An agent with several broker identities (agents.go) is listed once per
// identity, every one at its address, and leads partitions under each.
// Each broker's rack is its agent's zone (Kafka's broker.rack convention),
// so tools and rack-aware clients see zones; an agent without a zone has
// no rack (null).
//
// Authorization (authz.go), as Kafka's: a request for all topics lists
// those the principal may DESCRIBE; a named topic it may not DESCRIBE is
// answered TOPIC_AUTHORIZATION_FAILED whether it exists or not; an
// auto-creation needs CREATE on the cluster or the topic, else
// TOPIC_AUTHORIZATION_FAILED. The topic and cluster authorizedOperations
// are filled when the request asks for them (v8+; the cluster's v8–10).

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() { register(int16(kmsg.Metadata), 0, 12, handleMetadata) }

const metaTimeout = 10 * time.Second

func handleMetadata(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()

	brokers, leaders := s.offeredTo(rc.clientID)
	for _, br := range brokers {
		for _, id := range br.identities() {
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port, b.Rack = id.node, br.host, id.port, br.rack()
			resp.Brokers = append(resp.Brokers, b)
		}
	}
	cid := s.clusterID
	resp.ClusterID = &cid
	resp.ControllerID = s.nodeID.Load()

	// v0: an empty list means all topics; v1+: null means all.
	all := req.Topics == nil || (rc.version == 0 && len(req.Topics) == 0)
	var topics []meta.Topic
	var unknown []string
	var unknownIDs []meta.TopicID
	if all {
		ts, err := s.deps.Meta.Topics(ctx, nil)
		if err != nil {
			s.log.Warn("metadata: list topics", "err", err)
		}
		topics = ts
		s.topics.put(ts)
	} else {
		var names []string
		var ids []meta.TopicID
		for _, t := range req.Topics {
			if t.Topic != nil && *t.Topic != "" {
				names = append(names, *t.Topic)
			} else if t.TopicID != ([16]byte{}) {
				ids = append(ids, t.TopicID)
			}
		}
		if len(names) > 0 {
			byName, err := s.topics.byNames(ctx, names)
			if err != nil {
				s.log.Warn("metadata: look up topics", "err", err)
			}
			for _, n := range names {
				if t, ok := byName[n]; ok {
					topics = append(topics, t)
				} else {
					unknown = append(unknown, n)
				}
			}
		}
		if len(ids) > 0 {
			byID, err := s.topics.byIDs(ctx, ids)
			if err != nil {
				s.log.Warn("metadata: look up topic ids", "err", err)
			}
			for _, id := range ids {
				if t, ok := byID[id]; ok {
					topics = append(topics, t)
				} else {
					unknownIDs = append(unknownIDs, id)
				}
			}
		}
	}

	autoCreate := s.cfg.AutoCreateTopics && (rc.version < 4 || req.AllowAutoTopicCreation)
	// Authorization (authz.go): denied holds named topics answered
	// TOPIC_AUTHORIZATION_FAILED, deniedIDs topics asked for by id.
	var denied []string
	var deniedIDs []meta.TopicID
	if s.authz != nil {
		byID := map[meta.TopicID]bool{}
		if !all {
			for _, t := range req.Topics {
				if (t.Topic == nil || *t.Topic == "") && t.TopicID != ([16]byte{}) {
					byID[t.TopicID] = true
				}
			}
		}
		kept := topics[:0]
		for _, t := range topics {
			switch {
			case s.authorize(rc, meta.OpDescribe, meta.ResourceTopic, t.Name):
				kept = append(kept, t)
			case all:
				// left out silently
			case byID[t.ID]:
				deniedIDs = append(deniedIDs, t.ID)
			default:
				denied = append(denied, t.Name)
			}
		}
		topics = kept
		createOK := !autoCreate || s.allowedQuietly(rc, meta.OpCreate, meta.ResourceCluster, meta.ClusterResourceName)
		still := unknown[:0]
		for _, n := range unknown {
			if !s.authorize(rc, meta.OpDescribe, meta.ResourceTopic, n) || !createOK && !s.authorize(rc, meta.OpCreate, meta.ResourceTopic, n) {
				denied = append(denied, n)
			} else {
				still = append(still, n)
			}
		}
		unknown = still
	}
	if autoCreate && len(unknown) > 0 {
		specs := make([]meta.TopicSpec, len(unknown))
		for i, n := range unknown {
			specs[i] = meta.TopicSpec{Name: n, Partitions: s.cfg.DefaultPartitions}
		}
		results, err := s.deps.Meta.CreateTopics(ctx, specs)
		if err != nil {
			s.log.Warn("metadata: auto-create topics", "err", err)
		}
		var still, retry []string
		for _, res := range results {
			switch {
			case res.Err == nil:
				topics = append(topics, res.Topic)
				s.topics.put([]meta.Topic{res.Topic})
				s.log.Info("auto-created topic", "topic", res.Name, "partitions", res.Topic.Partitions)
			case errorCode(res.Err) == kerr.TopicAlreadyExists.Code:
				retry = append(retry, res.Name) // created concurrently
			default:
				still = append(still, res.Name)
			}
		}
		if err != nil {
			still = unknown
		}
		if len(retry) > 0 {
			if ts, err := s.deps.Meta.Topics(ctx, retry); err == nil {
				s.topics.put(ts)
				topics = append(topics, ts...)
			}
		}
		unknown = still
	}

	for _, t := range topics {
		mt := kmsg.NewMetadataResponseTopic()
		name := t.Name
		mt.Topic = &name
		mt.TopicID = t.ID
		mt.AuthorizedOperations = -2147483648
		if req.IncludeTopicAuthorizedOperations && rc.version >= 8 {
			mt.AuthorizedOperations = s.authorizedOps(rc, meta.ResourceTopic, t.Name)
		}
		mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
		for p := int32(0); p < t.Partitions; p++ {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition = p
			leader := leaderOf(leaders, t.ID, p)
			mp.Leader = leader
			mp.LeaderEpoch = 0
			mp.Replicas = []int32{leader}
			mp.ISR = []int32{leader}
			mt.Partitions[p] = mp
		}
		resp.Topics = append(resp.Topics, mt)
	}
	for _, n := range unknown {
		mt := kmsg.NewMetadataResponseTopic()
		name := n
		mt.Topic = &name
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if !isValidTopicName(n) {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		resp.Topics = append(resp.Topics, mt)
	}
	for _, n := range denied {
		mt := kmsg.NewMetadataResponseTopic()
		name := n
		mt.Topic = &name
		mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		resp.Topics = append(resp.Topics, mt)
	}
	for _, id := range deniedIDs {
		mt := kmsg.NewMetadataResponseTopic()
		mt.TopicID = id
		mt.ErrorCode = kerr.TopicAuthorizationFailed.Code
		resp.Topics = append(resp.Topics, mt)
	}
	if req.IncludeClusterAuthorizedOperations && rc.version >= 8 && rc.version <= 10 {
		resp.AuthorizedOperations = s.authorizedOps(rc, meta.ResourceCluster, meta.ClusterResourceName)
	}
	for _, id := range unknownIDs {
		mt := kmsg.NewMetadataResponseTopic()
		mt.TopicID = id
		mt.ErrorCode = kerr.UnknownTopicID.Code
		resp.Topics = append(resp.Topics, mt)
	}
	rc.respond(resp)
}

// isValidTopicName follows Kafka's rule: 1–249 of [a-zA-Z0-9._-], not "."
// or "..".
func isValidTopicName(n string) bool {
	if n == "" || len(n) > 249 || n == "." || n == ".." {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// rack is the broker's rack in Metadata and DescribeCluster: its zone, or
// null when it has none (an empty string would read as a rack named "").
func (b *broker) rack() *string {
	if b.zone == "" {
		return nil
	}
	z := b.zone
	return &z
}

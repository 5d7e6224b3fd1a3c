package server

// DeleteTopics 0–5, CreatePartitions 0–3, AlterConfigs 0–2,
// IncrementalAlterConfigs 0–1.
//
// Each changes topics in meta; this agent forgets its cached copies at
// once, other agents within the topic cache TTL. A deleted topic's
// segment objects stay in the bucket until garbage collection (a later
// issue) removes unreferenced data. Manual partition assignments are
// refused: there are no replicas to place. Configs are validated against
// the table in configs.go; an unknown or invalid one is refused with
// INVALID_CONFIG, never ignored. Broker configs cannot be altered.
//
// Authorization (authz.go): DeleteTopics needs DELETE on the topic,
// CreatePartitions ALTER, the config APIs ALTER_CONFIGS on the topic
// (on the cluster for broker resources); a denied topic is answered
// TOPIC_AUTHORIZATION_FAILED and left untouched, a denied broker
// resource CLUSTER_AUTHORIZATION_FAILED.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.DeleteTopics), 0, 5, handleDeleteTopics)
	register(int16(kmsg.CreatePartitions), 0, 3, handleCreatePartitions)
	register(int16(kmsg.AlterConfigs), 0, 2, handleAlterConfigs)
	register(int16(kmsg.IncrementalAlterConfigs), 0, 1, handleIncrementalAlterConfigs)
}

func handleDeleteTopics(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	names := req.TopicNames
	var deniedAt map[int]bool
	if s.authz != nil {
		names = nil
		for i, name := range req.TopicNames {
			if s.authorize(rc, meta.OpDelete, meta.ResourceTopic, name) {
				names = append(names, name)
			} else {
				if deniedAt == nil {
					deniedAt = map[int]bool{}
				}
				deniedAt[i] = true
			}
		}
	}
	var errs []error
	var err error
	if len(names) > 0 {
		errs, err = s.deps.Meta.DeleteTopics(ctx, names)
	}
	j := 0
	for i, name := range req.TopicNames {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic = strPtr(name)
		if deniedAt[i] {
			rt.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, rt)
			continue
		}
		e := err
		if e == nil {
			if j < len(errs) {
				e = errs[j]
			} else {
				e = errors.New("meta answered fewer results than topics")
			}
		}
		j++
		rt.ErrorCode = errorCode(e)
		if e != nil && rc.version >= 5 {
			rt.ErrorMessage = strPtr(e.Error())
		}
		resp.Topics = append(resp.Topics, rt)
	}
	s.topics.forget(req.TopicNames...)
	rc.respond(resp)
}

func handleCreatePartitions(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	out := make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	var specs []meta.PartitionsSpec
	var idx []int
	for i, t := range req.Topics {
		out[i] = kmsg.NewCreatePartitionsResponseTopic()
		out[i].Topic = t.Topic
		if !s.authorize(rc, meta.OpAlter, meta.ResourceTopic, t.Topic) {
			out[i].ErrorCode = kerr.TopicAuthorizationFailed.Code
			continue
		}
		if len(t.Assignment) > 0 {
			out[i].ErrorCode = kerr.InvalidReplicaAssignment.Code
			out[i].ErrorMessage = strPtr("sluice has no replicas to assign: durability comes from object storage")
			continue
		}
		if req.ValidateOnly {
			byName, err := s.topics.byNames(ctx, []string{t.Topic})
			cur, ok := byName[t.Topic]
			switch {
			case err != nil:
				out[i].ErrorCode = errorCode(err)
			case !ok:
				out[i].ErrorCode = kerr.UnknownTopicOrPartition.Code
			case t.Count <= cur.Partitions:
				out[i].ErrorCode = kerr.InvalidPartitions.Code
			}
			continue
		}
		specs = append(specs, meta.PartitionsSpec{Name: t.Topic, Count: t.Count})
		idx = append(idx, i)
	}
	if len(specs) > 0 {
		errs, err := s.deps.Meta.CreatePartitions(ctx, specs)
		for j, i := range idx {
			e := err
			if e == nil {
				e = errs[j]
			}
			out[i].ErrorCode = errorCode(e)
			if e != nil {
				out[i].ErrorMessage = strPtr(e.Error())
			}
			s.topics.forget(specs[j].Name)
		}
	}
	resp.Topics = out
	rc.respond(resp)
}

// alterTopic validates the topic's configs as they would be after the
// changes, then stores the changes.
func (s *Server) alterTopic(ctx context.Context, topic string, changes []meta.ConfigChange, replace, validateOnly bool) (int16, string) {
	byName, err := s.topics.byNames(ctx, []string{topic})
	if err != nil {
		return errorCode(err), err.Error()
	}
	cur, ok := byName[topic]
	if !ok {
		return kerr.UnknownTopicOrPartition.Code, "unknown topic " + topic
	}
	after := map[string]string{}
	if !replace {
		for k, v := range cur.Configs {
			after[k] = v
		}
	}
	for _, c := range changes {
		if c.Value == nil {
			delete(after, c.Name)
		} else {
			after[c.Name] = *c.Value
		}
	}
	if err := checkTopicConfigs(after); err != nil {
		return kerr.InvalidConfig.Code, err.Error()
	}
	if validateOnly {
		return 0, ""
	}
	err = s.deps.Meta.AlterTopicConfigs(ctx, topic, changes, replace)
	s.topics.forget(topic)
	if err != nil {
		return errorCode(err), err.Error()
	}
	return 0, ""
}

var errBrokerConfigs = errors.New("broker configs cannot be altered: agents take their settings from flags")

func handleAlterConfigs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, res := range req.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		if code := s.authorizeConfigResource(rc, res.ResourceType, res.ResourceName, meta.OpAlterConfigs); code != 0 {
			rr.ErrorCode = code
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		if res.ResourceType != kmsg.ConfigResourceTypeTopic {
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, strPtr(errBrokerConfigs.Error())
		} else {
			var changes []meta.ConfigChange
			for _, c := range res.Configs {
				changes = append(changes, meta.ConfigChange{Name: c.Name, Value: c.Value})
			}
			code, msg := s.alterTopic(ctx, res.ResourceName, changes, true, req.ValidateOnly)
			rr.ErrorCode = code
			if msg != "" {
				rr.ErrorMessage = strPtr(msg)
			}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	rc.respond(resp)
}

func handleIncrementalAlterConfigs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, res := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		if code := s.authorizeConfigResource(rc, res.ResourceType, res.ResourceName, meta.OpAlterConfigs); code != 0 {
			rr.ErrorCode = code
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		if res.ResourceType != kmsg.ConfigResourceTypeTopic {
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidRequest.Code, strPtr(errBrokerConfigs.Error())
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		var changes []meta.ConfigChange
		bad := ""
		for _, c := range res.Configs {
			switch c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				changes = append(changes, meta.ConfigChange{Name: c.Name, Value: c.Value})
			case kmsg.IncrementalAlterConfigOpDelete:
				changes = append(changes, meta.ConfigChange{Name: c.Name})
			default:
				// APPEND and SUBTRACT are for list configs; the one list
				// config here (cleanup.policy) has a single valid value.
				bad = "operation " + c.Op.String() + " on " + c.Name + " is not supported"
			}
		}
		if bad != "" {
			rr.ErrorCode, rr.ErrorMessage = kerr.InvalidConfig.Code, strPtr(bad)
		} else {
			code, msg := s.alterTopic(ctx, res.ResourceName, changes, false, req.ValidateOnly)
			rr.ErrorCode = code
			if msg != "" {
				rr.ErrorMessage = strPtr(msg)
			}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	rc.respond(resp)
}

// authorizeConfigResource checks op (ALTER_CONFIGS or DESCRIBE_CONFIGS)
// on a config resource: the topic for a topic, the cluster for a broker
// or broker logger (Kafka's rule). It returns the Kafka error code of a
// denial, or 0.
func (s *Server) authorizeConfigResource(rc *reqCtx, rt kmsg.ConfigResourceType, name string, op meta.ACLOperation) int16 {
	if s.authz == nil {
		return 0
	}
	if rt == kmsg.ConfigResourceTypeTopic {
		if !s.authorize(rc, op, meta.ResourceTopic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
		return 0
	}
	if !s.authorizeCluster(rc, op) {
		return kerr.ClusterAuthorizationFailed.Code
	}
	return 0
}

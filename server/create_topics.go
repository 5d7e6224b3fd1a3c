package server

// CreateTopics, versions 0–7.
//
// Topics are created in meta. ReplicationFactor is validated and then
// ignored: durability comes from the object store, not from replicas, so
// every topic reports a replication factor of 1. Manual replica
// assignments are refused (INVALID_REPLICA_ASSIGNMENT): there are no
// replicas to place. ValidateOnly checks the request without creating anything.
// Authorization (authz.go): CREATE on the cluster, or else on each
// topic; a denied topic gets TOPIC_AUTHORIZATION_FAILED.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() { register(int16(kmsg.CreateTopics), 0, 7, handleCreateTopics) }

func handleCreateTopics(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()

	type slot struct {
		idx  int
		spec meta.TopicSpec
	}
	var toCreate []slot
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	seen := make(map[string]int, len(req.Topics))
	clusterCreate := s.allowedQuietly(rc, meta.OpCreate, meta.ResourceCluster, meta.ClusterResourceName)
	for i, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic = t.Topic
		rt.NumPartitions = -1
		rt.ReplicationFactor = -1
		seen[t.Topic]++
		fail := func(code int16, msg string) {
			rt.ErrorCode = code
			m := msg
			rt.ErrorMessage = &m
		}
		np := t.NumPartitions
		if np == -1 {
			np = s.cfg.DefaultPartitions
		}
		switch {
		case seen[t.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic named twice in one request")
		case !clusterCreate && !s.authorize(rc, meta.OpCreate, meta.ResourceTopic, t.Topic):
			fail(kerr.TopicAuthorizationFailed.Code, "not authorized to create the topic (CREATE on the cluster or the topic)")
		case !isValidTopicName(t.Topic):
			fail(kerr.InvalidTopicException.Code, "topic names are 1-249 characters of [a-zA-Z0-9._-], not '.' or '..'")
		case len(t.ReplicaAssignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "sluice has no replicas to assign: durability comes from object storage")
		case np <= 0:
			fail(kerr.InvalidPartitions.Code, "partition count must be positive")
		case t.ReplicationFactor != -1 && t.ReplicationFactor <= 0:
			fail(kerr.InvalidReplicationFactor.Code, "replication factor must be positive or -1")
		default:
			cfgs := map[string]string{}
			for _, c := range t.Configs {
				if c.Value != nil {
					cfgs[c.Name] = *c.Value
				}
			}
			if err := checkTopicConfigs(cfgs); err != nil {
				fail(kerr.InvalidConfig.Code, err.Error())
				break
			}
			toCreate = append(toCreate, slot{idx: i, spec: meta.TopicSpec{Name: t.Topic, Partitions: np, Configs: cfgs}})
			rt.NumPartitions = np
			rt.ReplicationFactor = 1
		}
		resp.Topics[i] = rt
	}
	if req.ValidateOnly || len(toCreate) == 0 {
		rc.respond(resp)
		return
	}
	specs := make([]meta.TopicSpec, len(toCreate))
	for i, sl := range toCreate {
		specs[i] = sl.spec
	}
	results, err := s.deps.Meta.CreateTopics(ctx, specs)
	for i, sl := range toCreate {
		rt := &resp.Topics[sl.idx]
		var e error
		switch {
		case err != nil:
			e = err
		case i < len(results):
			e = results[i].Err
			if e == nil {
				rt.TopicID = results[i].Topic.ID
				s.topics.put([]meta.Topic{results[i].Topic})
			}
		}
		if e != nil {
			rt.ErrorCode = errorCode(e)
			m := e.Error()
			rt.ErrorMessage = &m
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
		}
	}
	rc.respond(resp)
}

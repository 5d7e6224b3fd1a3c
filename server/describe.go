package server

// DescribeCluster 0–1 and DescribeConfigs 0–4.
//
// DescribeCluster lists the agents offered to the client, like Metadata,
// each with its zone as its rack, and names this agent the controller.
// DescribeConfigs describes topic configs from the table in configs.go:
// values set on the topic come from DYNAMIC_TOPIC_CONFIG, the rest are
// defaults. A BROKER resource named with this agent's node id answers
// with the agent's effective configs (brokerConfigs: STATIC_BROKER_CONFIG
// or DEFAULT_CONFIG, all read-only); "" (the cluster-wide dynamic
// defaults) answers with none, as there are none; any other name is
// INVALID_REQUEST, as in Kafka, which wants a broker's configs asked of
// that broker. BROKER_LOGGER resources answer with no configs.

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.DescribeCluster), 0, 1, handleDescribeCluster)
	register(int16(kmsg.DescribeConfigs), 0, 4, handleDescribeConfigs)
}

func handleDescribeCluster(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.EndpointType > 1 {
		// Controller endpoints (type 2) are for KRaft tooling.
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		rc.respond(resp)
		return
	}
	// DESCRIBE on the cluster (authz.go).
	if !s.authorizeCluster(rc, meta.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	resp.ClusterID = s.clusterID
	resp.ControllerID = s.nodeID.Load()
	offered, _ := s.offeredTo(rc.clientID)
	for _, br := range offered {
		for _, id := range br.identities() { // as Metadata lists them
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port, b.Rack = id.node, br.host, id.port, br.rack()
			resp.Brokers = append(resp.Brokers, b)
		}
	}
	resp.ClusterAuthorizedOperations = -2147483648
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = s.authorizedOps(rc, meta.ResourceCluster, meta.ClusterResourceName)
	}
	rc.respond(resp)
}

func handleDescribeConfigs(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	for _, res := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		// DESCRIBE_CONFIGS on the topic, or the cluster for brokers.
		if code := s.authorizeConfigResource(rc, res.ResourceType, res.ResourceName, meta.OpDescribeConfigs); code != 0 {
			rr.ErrorCode = code
			resp.Resources = append(resp.Resources, rr)
			continue
		}
		switch res.ResourceType {
		case kmsg.ConfigResourceTypeBroker:
			describeBroker(s, req, &res, &rr)
		case kmsg.ConfigResourceTypeBrokerLogger:
		case kmsg.ConfigResourceTypeTopic:
			byName, err := s.topics.byNames(ctx, []string{res.ResourceName})
			t, ok := byName[res.ResourceName]
			switch {
			case err != nil:
				rr.ErrorCode = errorCode(err)
			case !ok:
				rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				want := map[string]bool{}
				for _, n := range res.ConfigNames {
					want[n] = true
				}
				names := make([]string, 0, len(topicConfigs))
				for n := range topicConfigs {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					if len(want) > 0 && !want[n] {
						continue
					}
					tc := topicConfigs[n]
					c := kmsg.NewDescribeConfigsResponseResourceConfig()
					c.Name = n
					v, set := t.Configs[n]
					if !set {
						v = tc.def
					}
					c.Value = strPtr(v)
					c.IsDefault = !set
					c.Source = kmsg.ConfigSourceDefaultConfig
					if set {
						c.Source = kmsg.ConfigSourceDynamicTopicConfig
					}
					c.ConfigType = tc.typ
					if req.IncludeDocumentation {
						c.Documentation = strPtr(tc.doc)
					}
					if req.IncludeSynonyms {
						syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
						syn.Name, syn.Value, syn.Source = n, c.Value, c.Source
						c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
					}
					rr.Configs = append(rr.Configs, c)
				}
			}
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = strPtr("only topic and broker resources are described")
		}
		resp.Resources = append(resp.Resources, rr)
	}
	rc.respond(resp)
}

// namesSelf reports whether a broker resource name is the node id of one
// of this agent's other identities (agents.go): a tool that describes
// every broker of Metadata asks each at its address.
func namesSelf(s *Server, name string) (int32, bool) {
	n, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	return int32(n), s.isSelfNode(ctx, int32(n))
}

// describeBroker fills rr for a BROKER resource (see the file comment).
func describeBroker(s *Server, req *kmsg.DescribeConfigsRequest, res *kmsg.DescribeConfigsRequestResource, rr *kmsg.DescribeConfigsResponseResource) {
	if res.ResourceName == "" {
		return // no cluster-wide dynamic broker defaults exist
	}
	node := s.nodeID.Load()
	self := strconv.Itoa(int(node))
	if res.ResourceName != self {
		if n, ok := namesSelf(s, res.ResourceName); ok {
			node = n
		} else {
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = strPtr(fmt.Sprintf("unexpected broker id %q: this agent is broker %s; ask each broker for its own configs", res.ResourceName, self))
			return
		}
	}
	want := map[string]bool{}
	for _, n := range res.ConfigNames {
		want[n] = true
	}
	for _, bc := range s.brokerConfigs(node) {
		if len(want) > 0 && !want[bc.name] {
			continue
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly, c.IsDefault, c.ConfigType = bc.name, bc.value, true, bc.isDefault, bc.typ
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		if bc.isDefault {
			c.Source = kmsg.ConfigSourceDefaultConfig
		}
		if req.IncludeDocumentation {
			c.Documentation = strPtr(bc.doc)
		}
		if req.IncludeSynonyms {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = bc.name, bc.value, c.Source
			c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
		}
		rr.Configs = append(rr.Configs, c)
	}
}

package agent_test

// The ACL matrix (issue 14): for each Kafka API an agent serves, a
// client without the ACL Kafka's authorizer asks for gets the right
// *_AUTHORIZATION_FAILED code and changes nothing, and with it gets
// through; then DENY over ALLOW, prefixed patterns, super users, shadow
// mode, and the ACL APIs through kadm.
//
// Until SASL or TLS set principals, every connection is User:ANONYMOUS
// (server/principal.go), so the ACLs below are granted to it. They are
// written to meta directly and the test waits until the agent's
// authorizer holds them (setACLs), so each step knows what is in force.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
	"sluice.dev/server"
)

const anon = "User:ANONYMOUS"

func allowACL(rt meta.ResourceType, name string, op meta.ACLOperation) meta.ACLBinding {
	return meta.ACLBinding{ResourceType: rt, ResourceName: name, PatternType: meta.PatternLiteral, Principal: anon, Host: "*", Operation: op, Permission: meta.PermissionAllow}
}

func clusterACL(op meta.ACLOperation) meta.ACLBinding {
	return allowACL(meta.ResourceCluster, meta.ClusterResourceName, op)
}

var allACLs = meta.ACLFilter{ResourceType: meta.ResourceAny, PatternType: meta.PatternAny, Operation: meta.OpAny, Permission: meta.PermissionAny}

// setACLs makes bs the cluster's bindings and waits until the agent
// enforces exactly them: first until it holds none (so that a snapshot
// of the old set cannot pass for the new one), then len(bs).
func setACLs(t *testing.T, c *testCluster, bs ...meta.ACLBinding) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.meta.DeleteACLs(ctx, []meta.ACLFilter{allACLs}); err != nil {
		t.Fatal(err)
	}
	waitACLs(t, c.agent, 0)
	if len(bs) == 0 {
		return
	}
	errs, err := c.meta.CreateACLs(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		if e != nil {
			t.Fatal(e)
		}
	}
	n := map[string]bool{}
	for i := range bs {
		n[bs[i].ACLKey()] = true
	}
	waitACLs(t, c.agent, len(n))
}

func waitACLs(t *testing.T, a *agent.Agent, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for a.ACLBindings() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the agent holds %d ACL bindings after 5s, want %d", a.ACLBindings(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// aclCase is one row of the matrix: call returns the error code that
// shows whether the request got through; without any ACL it must be
// denied, with need (and any partial grant plus the rest) it must be
// one of ok (default: 0).
type aclCase struct {
	name   string
	need   []meta.ACLBinding
	denied int16
	// partial, when set, grants part of need: the call must then answer
	// partialCode (e.g. group allowed, topic not).
	partial     []meta.ACLBinding
	partialCode int16
	ok          []int16
	call        func(t *testing.T) int16
}

func TestACLMatrix(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, DefaultPartitions: 2, FlushInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.meta.CreateTopics(ctx, []meta.TopicSpec{{Name: "t", Partitions: 2}, {Name: "gone", Partitions: 1}, {Name: "grow", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	topics, _ := c.meta.Topics(ctx, []string{"t"})
	tid := topics[0].ID
	for _, g := range []string{"g", "dg"} {
		if err := c.meta.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: g, Generation: -1,
			Offsets: []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: tid, Partition: 0}, Offset: 0, LeaderEpoch: -1}}}); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Straight to the agent: kgo's own routing would ask Metadata and
	// FindCoordinator first, which are authorized too.
	br := cl.SeedBrokers()[0]
	req := func(t *testing.T, r kmsg.Request) kmsg.Response {
		t.Helper()
		resp, err := br.Request(ctx, r)
		if err != nil {
			t.Fatalf("%s: %v", kmsg.NameForKey(r.Key()), err)
		}
		return resp
	}
	T, G := meta.ResourceTopic, meta.ResourceGroup
	batch := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 10, ProducerID: -1})
	unknownMember := []int16{kerr.UnknownMemberID.Code}

	cases := []aclCase{
		{name: "Produce", need: []meta.ACLBinding{allowACL(T, "t", meta.OpWrite)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrProduceRequest()
				r.Acks, r.TimeoutMillis = -1, 10000
				rt := kmsg.NewProduceRequestTopic()
				rt.Topic, rt.TopicID = "t", tid
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Records = batch
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "Fetch", need: []meta.ACLBinding{allowACL(T, "t", meta.OpRead)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrFetchRequest()
				r.MaxWaitMillis, r.MaxBytes = 10, 1<<20
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic, rt.TopicID = "t", tid
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.PartitionMaxBytes = 1 << 20
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "ListOffsets", need: []meta.ACLBinding{allowACL(T, "t", meta.OpDescribe)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrListOffsetsRequest()
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -1
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "Metadata named", need: []meta.ACLBinding{allowACL(T, "t", meta.OpDescribe)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrMetadataRequest()
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = kmsg.StringPtr("t")
				r.Topics = append(r.Topics, mt)
				return req(t, r).(*kmsg.MetadataResponse).Topics[0].ErrorCode
			}},
		{name: "Metadata all topics", need: []meta.ACLBinding{allowACL(T, "t", meta.OpRead)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				// Unlisted topics are left out silently: the code here
				// stands for "t is not listed".
				resp := req(t, kmsg.NewPtrMetadataRequest()).(*kmsg.MetadataResponse)
				var names []string
				for _, mt := range resp.Topics {
					names = append(names, *mt.Topic)
				}
				switch {
				case slices.Equal(names, []string{"t"}):
					return 0
				case len(names) == 0:
					return kerr.TopicAuthorizationFailed.Code
				}
				t.Fatalf("metadata lists %v", names)
				return -1
			}},
		{name: "Metadata auto-create", need: []meta.ACLBinding{allowACL(T, "auto", meta.OpDescribe), clusterACL(meta.OpCreate)},
			partial: []meta.ACLBinding{allowACL(T, "auto", meta.OpDescribe)}, partialCode: kerr.TopicAuthorizationFailed.Code,
			denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrMetadataRequest()
				r.AllowAutoTopicCreation = true
				mt := kmsg.NewMetadataRequestTopic()
				mt.Topic = kmsg.StringPtr("auto")
				r.Topics = append(r.Topics, mt)
				return req(t, r).(*kmsg.MetadataResponse).Topics[0].ErrorCode
			}},
		{name: "CreateTopics", need: []meta.ACLBinding{allowACL(T, "made", meta.OpCreate)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrCreateTopicsRequest()
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "made", 1, -1
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode
			}},
		{name: "DeleteTopics", need: []meta.ACLBinding{allowACL(T, "gone", meta.OpDelete)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDeleteTopicsRequest()
				r.TopicNames = []string{"gone"}
				r.Version = 5
				return req(t, r).(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode
			}},
		{name: "CreatePartitions", need: []meta.ACLBinding{allowACL(T, "grow", meta.OpAlter)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrCreatePartitionsRequest()
				rt := kmsg.NewCreatePartitionsRequestTopic()
				rt.Topic, rt.Count = "grow", 2
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode
			}},
		{name: "DescribeConfigs topic", need: []meta.ACLBinding{allowACL(T, "t", meta.OpDescribeConfigs)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDescribeConfigsRequest()
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				r.Resources = append(r.Resources, rr)
				return req(t, r).(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode
			}},
		{name: "DescribeConfigs broker", need: []meta.ACLBinding{clusterACL(meta.OpDescribeConfigs)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDescribeConfigsRequest()
				rr := kmsg.NewDescribeConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, fmt.Sprint(c.agent.NodeID())
				r.Resources = append(r.Resources, rr)
				return req(t, r).(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode
			}},
		{name: "AlterConfigs", need: []meta.ACLBinding{allowACL(T, "t", meta.OpAlterConfigs)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrAlterConfigsRequest()
				rr := kmsg.NewAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				rr.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("3600000")}}
				r.Resources = append(r.Resources, rr)
				return req(t, r).(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode
			}},
		{name: "IncrementalAlterConfigs", need: []meta.ACLBinding{allowACL(T, "t", meta.OpAlterConfigs)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrIncrementalAlterConfigsRequest()
				rr := kmsg.NewIncrementalAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "t"
				rr.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("7200000")}}
				r.Resources = append(r.Resources, rr)
				return req(t, r).(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode
			}},
		{name: "DeleteRecords", need: []meta.ACLBinding{allowACL(T, "t", meta.OpDelete)}, denied: kerr.TopicAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDeleteRecordsRequest()
				rt := kmsg.NewDeleteRecordsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewDeleteRecordsRequestTopicPartition()
				rp.Partition, rp.Offset = 1, -1
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "FindCoordinator", need: []meta.ACLBinding{allowACL(G, "g", meta.OpDescribe)}, denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrFindCoordinatorRequest()
				r.CoordinatorKey, r.CoordinatorKeys = "g", []string{"g"}
				resp := req(t, r).(*kmsg.FindCoordinatorResponse)
				if len(resp.Coordinators) > 0 {
					return resp.Coordinators[0].ErrorCode
				}
				return resp.ErrorCode
			}},
		{name: "JoinGroup", need: []meta.ACLBinding{allowACL(G, "j", meta.OpRead)}, denied: kerr.GroupAuthorizationFailed.Code,
			ok: []int16{0, kerr.MemberIDRequired.Code},
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrJoinGroupRequest()
				r.Group, r.ProtocolType = "j", "consumer"
				r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10000, 1000
				r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0}}}
				return req(t, r).(*kmsg.JoinGroupResponse).ErrorCode
			}},
		{name: "SyncGroup", need: []meta.ACLBinding{allowACL(G, "g", meta.OpRead)}, denied: kerr.GroupAuthorizationFailed.Code, ok: unknownMember,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrSyncGroupRequest()
				r.Group, r.MemberID, r.Generation = "g", "nobody", 1
				return req(t, r).(*kmsg.SyncGroupResponse).ErrorCode
			}},
		{name: "Heartbeat", need: []meta.ACLBinding{allowACL(G, "g", meta.OpRead)}, denied: kerr.GroupAuthorizationFailed.Code, ok: unknownMember,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrHeartbeatRequest()
				r.Group, r.MemberID, r.Generation = "g", "nobody", 1
				return req(t, r).(*kmsg.HeartbeatResponse).ErrorCode
			}},
		{name: "LeaveGroup", need: []meta.ACLBinding{allowACL(G, "g", meta.OpRead)}, denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrLeaveGroupRequest()
				r.Group = "g"
				r.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "nobody"}}
				resp := req(t, r).(*kmsg.LeaveGroupResponse)
				if resp.ErrorCode != 0 {
					return resp.ErrorCode
				}
				if resp.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
					t.Fatalf("LeaveGroup member code %d", resp.Members[0].ErrorCode)
				}
				return 0
			}},
		{name: "OffsetCommit", need: []meta.ACLBinding{allowACL(G, "g", meta.OpRead), allowACL(T, "t", meta.OpRead)},
			partial: []meta.ACLBinding{allowACL(G, "g", meta.OpRead)}, partialCode: kerr.TopicAuthorizationFailed.Code,
			denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrOffsetCommitRequest()
				r.Group, r.Generation = "g", -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Offset = 0
				rt.Partitions = append(rt.Partitions, rp)
				r.Topics = append(r.Topics, rt)
				return req(t, r).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "OffsetFetch", need: []meta.ACLBinding{allowACL(G, "g", meta.OpDescribe), allowACL(T, "t", meta.OpDescribe)},
			partial: []meta.ACLBinding{allowACL(G, "g", meta.OpDescribe)}, partialCode: kerr.TopicAuthorizationFailed.Code,
			denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrOffsetFetchRequest()
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = "g"
				rg.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}
				r.Groups = append(r.Groups, rg)
				g := req(t, r).(*kmsg.OffsetFetchResponse).Groups[0]
				if g.ErrorCode != 0 {
					return g.ErrorCode
				}
				return g.Topics[0].Partitions[0].ErrorCode
			}},
		{name: "ListGroups", need: []meta.ACLBinding{allowACL(G, "g", meta.OpDescribe)}, denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				// Groups it may not DESCRIBE are left out: the code
				// stands for "g is not listed".
				resp := req(t, kmsg.NewPtrListGroupsRequest()).(*kmsg.ListGroupsResponse)
				for _, g := range resp.Groups {
					if g.Group == "g" {
						return 0
					}
				}
				return kerr.GroupAuthorizationFailed.Code
			}},
		{name: "DescribeGroups", need: []meta.ACLBinding{allowACL(G, "g", meta.OpDescribe)}, denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDescribeGroupsRequest()
				r.Groups, r.IncludeAuthorizedOperations = []string{"g"}, true
				g := req(t, r).(*kmsg.DescribeGroupsResponse).Groups[0]
				if g.ErrorCode == 0 && g.AuthorizedOperations != 1<<meta.OpDescribe {
					t.Fatalf("DescribeGroups authorized operations %b, want DESCRIBE only", g.AuthorizedOperations)
				}
				return g.ErrorCode
			}},
		{name: "OffsetDelete", need: []meta.ACLBinding{allowACL(G, "g", meta.OpDelete), allowACL(T, "t", meta.OpRead)},
			partial: []meta.ACLBinding{allowACL(G, "g", meta.OpDelete)}, partialCode: kerr.TopicAuthorizationFailed.Code,
			denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrOffsetDeleteRequest()
				r.Group = "g"
				r.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
				resp := req(t, r).(*kmsg.OffsetDeleteResponse)
				if resp.ErrorCode != 0 {
					return resp.ErrorCode
				}
				return resp.Topics[0].Partitions[0].ErrorCode
			}},
		{name: "DeleteGroups", need: []meta.ACLBinding{allowACL(G, "dg", meta.OpDelete)}, denied: kerr.GroupAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDeleteGroupsRequest()
				r.Groups = []string{"dg"}
				return req(t, r).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode
			}},
		{name: "InitProducerId (WRITE on a topic)", need: []meta.ACLBinding{allowACL(T, "t", meta.OpWrite)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				return req(t, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse).ErrorCode
			}},
		{name: "InitProducerId (IDEMPOTENT_WRITE)", need: []meta.ACLBinding{clusterACL(meta.OpIdempotentWrite)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				return req(t, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse).ErrorCode
			}},
		{name: "DescribeCluster", need: []meta.ACLBinding{clusterACL(meta.OpDescribe)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDescribeClusterRequest()
				r.IncludeClusterAuthorizedOperations = true
				resp := req(t, r).(*kmsg.DescribeClusterResponse)
				if resp.ErrorCode == 0 && resp.ClusterAuthorizedOperations != 1<<meta.OpDescribe {
					t.Fatalf("cluster authorized operations %b, want DESCRIBE only", resp.ClusterAuthorizedOperations)
				}
				return resp.ErrorCode
			}},
		{name: "DescribeAcls", need: []meta.ACLBinding{clusterACL(meta.OpDescribe)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDescribeACLsRequest()
				r.ResourceType, r.ResourcePatternType, r.Operation, r.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				return req(t, r).(*kmsg.DescribeACLsResponse).ErrorCode
			}},
		{name: "CreateAcls", need: []meta.ACLBinding{clusterACL(meta.OpAlter)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrCreateACLsRequest()
				cr := kmsg.NewCreateACLsRequestCreation()
				cr.ResourceType, cr.ResourceName, cr.ResourcePatternType = kmsg.ACLResourceTypeTopic, "other", kmsg.ACLResourcePatternTypeLiteral
				cr.Principal, cr.Host, cr.Operation, cr.PermissionType = "User:x", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
				r.Creations = append(r.Creations, cr)
				return req(t, r).(*kmsg.CreateACLsResponse).Results[0].ErrorCode
			}},
		{name: "DeleteAcls", need: []meta.ACLBinding{clusterACL(meta.OpAlter)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrDeleteACLsRequest()
				f := kmsg.NewDeleteACLsRequestFilter()
				f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("other"), kmsg.ACLResourcePatternTypeLiteral
				f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				r.Filters = append(r.Filters, f)
				return req(t, r).(*kmsg.DeleteACLsResponse).Results[0].ErrorCode
			}},
		{name: "DescribeUserScramCredentials", need: []meta.ACLBinding{clusterACL(meta.OpDescribe)}, denied: kerr.ClusterAuthorizationFailed.Code,
			call: func(t *testing.T) int16 {
				return req(t, kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()).(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode
			}},
		{name: "AlterUserScramCredentials", need: []meta.ACLBinding{clusterACL(meta.OpAlter)}, denied: kerr.ClusterAuthorizationFailed.Code,
			// Deleting a credential that does not exist: allowed, it
			// reaches meta, which finds no such user.
			ok: []int16{kerr.ResourceNotFound.Code},
			call: func(t *testing.T) int16 {
				r := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
				d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
				d.Name, d.Mechanism = "nobody", 1
				r.Deletions = append(r.Deletions, d)
				return req(t, r).(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok := tc.ok
			if ok == nil {
				ok = []int16{0}
			}
			setACLs(t, c)
			if got := tc.call(t); got != tc.denied {
				t.Fatalf("without ACLs: code %d (%v), want %d (%v)", got, kerr.ErrorForCode(got), tc.denied, kerr.ErrorForCode(tc.denied))
			}
			if tc.partial != nil {
				setACLs(t, c, tc.partial...)
				if got := tc.call(t); got != tc.partialCode {
					t.Fatalf("with %+v only: code %d (%v), want %d", tc.partial, got, kerr.ErrorForCode(got), tc.partialCode)
				}
			}
			setACLs(t, c, tc.need...)
			if got := tc.call(t); !slices.Contains(ok, got) {
				t.Fatalf("with %+v: code %d (%v), want one of %v", tc.need, got, kerr.ErrorForCode(got), ok)
			}
		})
	}
	// What the denied calls must not have done.
	ts, _ := c.meta.Topics(ctx, []string{"gone", "made", "auto", "grow"})
	var names []string
	for _, tp := range ts {
		names = append(names, fmt.Sprintf("%s/%d", tp.Name, tp.Partitions))
	}
	if !slices.Equal(names, []string{"auto/2", "grow/2", "made/1"}) {
		t.Fatalf("topics after the matrix: %v, want auto, grow grown, made, gone deleted (each once allowed)", names)
	}
}

// TestACLDenyPrefixedAndMetadataOps: DENY overrides ALLOW; a PREFIXED
// ALLOW covers the names under it; Metadata reports the topic's
// authorized operations.
func TestACLDenyPrefixedAndMetadataOps(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, DefaultPartitions: 1, FlushInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.meta.CreateTopics(ctx, []meta.TopicSpec{{Name: "pay-in", Partitions: 1}, {Name: "pay-secret", Partitions: 1}, {Name: "other", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	prefixed := func(op meta.ACLOperation) meta.ACLBinding {
		b := allowACL(meta.ResourceTopic, "pay-", op)
		b.PatternType = meta.PatternPrefixed
		return b
	}
	deny := allowACL(meta.ResourceTopic, "pay-secret", meta.OpWrite)
	deny.Permission = meta.PermissionDeny
	setACLs(t, c, prefixed(meta.OpWrite), prefixed(meta.OpDescribe), clusterACL(meta.OpIdempotentWrite), deny)

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.RecordRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for topic, want := range map[string]error{"pay-in": nil, "pay-secret": kerr.TopicAuthorizationFailed, "other": kerr.TopicAuthorizationFailed} {
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
		if want == nil && err != nil || want != nil && !strings.Contains(fmt.Sprint(err), want.Error()) {
			t.Errorf("produce to %s: %v, want %v", topic, err, want)
		}
	}

	r := kmsg.NewPtrMetadataRequest()
	r.IncludeTopicAuthorizedOperations = true
	resp, err := r.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int32{}
	for _, mt := range resp.Topics {
		got[*mt.Topic] = mt.AuthorizedOperations
	}
	want := int32(1<<meta.OpWrite | 1<<meta.OpDescribe)
	if len(got) != 2 || got["pay-in"] != want || got["pay-secret"] != 1<<meta.OpDescribe {
		t.Fatalf("metadata topics and authorized operations: %v, want pay-in %b, pay-secret DESCRIBE (WRITE denied)", got, want)
	}
}

// TestACLSuperUsersAndShadow: a super user passes every check with no
// ACL at all; shadow mode lets every request through and counts each
// denial it would have made.
func TestACLSuperUsersAndShadow(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  agent.Config
	}{
		{"super user", agent.Config{Authorizer: server.AuthorizerACL, SuperUsers: []server.Principal{server.Anonymous}}},
		{"shadow", agent.Config{Authorizer: server.AuthorizerShadow}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.FlushInterval = 50 * time.Millisecond
			c := startCluster(t, t.TempDir(), tc.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			before := shadowDenials(t)
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics("s"), kgo.ConsumerGroup("sg"), kgo.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "s", Value: []byte("hello")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			fs := cl.PollRecords(ctx, 1)
			if err := fs.Err0(); err != nil || fs.NumRecords() != 1 {
				t.Fatalf("consume: %v, %d records", err, fs.NumRecords())
			}
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
			adm := kadm.NewClient(cl)
			if _, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny)); err != nil {
				t.Fatalf("describe acls: %v", err)
			}
			after := shadowDenials(t)
			if tc.name == "shadow" && after <= before {
				t.Fatalf("shadow mode counted no denials (%v before, %v after)", before, after)
			}
			if tc.name == "super user" && after != before {
				t.Fatalf("a super user produced shadow denials")
			}
		})
	}
}

// shadowDenials reads sluice_authz_denied_total{mode="shadow"}.
func shadowDenials(t *testing.T) float64 {
	return metricValue(t, `sluice_authz_denied_total{mode="shadow"}`)
}

// TestACLAPIsWithKadm: kadm creates, describes (with MATCH) and deletes
// ACLs through the agent; the agent that made a change enforces it when
// it answers.
func TestACLAPIsWithKadm(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, FlushInterval: 50 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setACLs(t, c, clusterACL(meta.OpAlter), clusterACL(meta.OpDescribe), clusterACL(meta.OpIdempotentWrite))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.RecordRetries(1), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	b := kadm.NewACLs().Topics("k-").ResourcePatternType(kadm.ACLPatternPrefixed).Allow(anon).Operations(kadm.OpWrite, kadm.OpDescribe, kadm.OpCreate)
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create %+v: %v", r, r.Err)
		}
	}
	// In force on this agent at once: no wait.
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "k-1", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce right after CreateAcls: %v", err)
	}
	desc, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics("k-1").ResourcePatternType(kadm.ACLPatternMatch).Allow().AllowHosts().Operations(kadm.OpAny))
	if err != nil || len(desc) != 1 || desc[0].Err != nil || len(desc[0].Described) != 3 {
		t.Fatalf("describe MATCH k-1: %+v, %v", desc, err)
	}
	del, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("k-").ResourcePatternType(kadm.ACLPatternPrefixed).Allow().AllowHosts().Operations(kadm.OpWrite))
	if err != nil || len(del) != 1 || del[0].Err != nil || len(del[0].Deleted) != 1 {
		t.Fatalf("delete WRITE on k-*: %+v, %v", del, err)
	}
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: "k-1", Value: []byte("v")}).FirstErr()
	if !strings.Contains(fmt.Sprint(err), kerr.TopicAuthorizationFailed.Error()) {
		t.Fatalf("produce after the WRITE ACL was deleted: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	bad, err := adm.CreateACLs(ctx, kadm.NewACLs().Topics("x").Allow("alice").Operations(kadm.OpRead))
	if err != nil || len(bad) != 1 || !errors.Is(bad[0].Err, kerr.InvalidRequest) {
		t.Fatalf("an ACL whose principal is not Type:Name: %+v, %v, want INVALID_REQUEST", bad, err)
	}
}

// cutWatch is a meta client whose Watch streams can be cut, and new
// ones held back until released.
type cutWatch struct {
	meta.Client
	mu      sync.Mutex
	cancels []context.CancelFunc
	hold    chan struct{} // while non-nil, Watch waits for it to close
}

func (w *cutWatch) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	w.mu.Lock()
	hold := w.hold
	w.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.cancels = append(w.cancels, cancel)
	w.mu.Unlock()
	return w.Client.Watch(wctx)
}

// cut ends every open stream and holds new ones back until release.
func (w *cutWatch) cut() (release func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.cancels {
		c()
	}
	w.cancels = nil
	hold := make(chan struct{})
	w.hold = hold
	return func() {
		w.mu.Lock()
		w.hold = nil
		w.mu.Unlock()
		close(hold)
	}
}

// TestACLChangeWhileWatchIsDown: an ACL change committed while the
// agent's watch of meta is down (so no event reaches it) is in force once
// the watch is back: the agent re-reads the ACLs when its stream returns,
// not only when it is lost.
func TestACLChangeWhileWatchIsDown(t *testing.T) {
	var w *cutWatch
	c := startClusterWith(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, FlushInterval: 50 * time.Millisecond},
		func(m meta.Client) meta.Client { w = &cutWatch{Client: m}; return w })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	setACLs(t, c)
	reloads := metricValue(t, "sluice_authz_acl_reloads_total")
	release := w.cut()
	// The agent re-reads at once on losing the stream; the change comes
	// after that read, and no event carries it.
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(t, "sluice_authz_acl_reloads_total") == reloads {
		if time.Now().After(deadline) {
			t.Fatal("no re-read of the ACLs after the watch was lost")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if errs, err := c.meta.CreateACLs(ctx, []meta.ACLBinding{clusterACL(meta.OpDescribe)}); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	release()
	waitACLs(t, c.agent, 1)
}

// Principals from SASL meet the authorizer: alice (SCRAM) may write and
// read topic "orders" by a prefixed ACL, bob (PLAIN, same store) may read
// it only, and a DENY for alice on one topic of the prefix wins over her
// ALLOW. Each client sees exactly its own rights.
func TestACLWithSASLPrincipals(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, DefaultPartitions: 1,
		FlushInterval: 20 * time.Millisecond, SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "alice", "alice-secret")
	addUser(t, c, "bob", "bob-secret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.meta.CreateTopics(ctx, []meta.TopicSpec{{Name: "orders", Partitions: 1}, {Name: "orders-secret", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	acl := func(principal, name string, pattern meta.PatternType, op meta.ACLOperation, perm meta.ACLPermission) meta.ACLBinding {
		return meta.ACLBinding{ResourceType: meta.ResourceTopic, ResourceName: name, PatternType: pattern,
			Principal: principal, Host: "*", Operation: op, Permission: perm}
	}
	setACLs(t, c,
		acl("User:alice", "orders", meta.PatternPrefixed, meta.OpWrite, meta.PermissionAllow),
		acl("User:alice", "orders", meta.PatternPrefixed, meta.OpRead, meta.PermissionAllow),
		acl("User:alice", "orders-secret", meta.PatternLiteral, meta.OpAll, meta.PermissionDeny),
		acl("User:bob", "orders", meta.PatternLiteral, meta.OpRead, meta.PermissionAllow),
	)
	alice := saslClient(t, c.addr(), scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())
	bob := saslClient(t, c.addr(), plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism())
	produce := func(cl *kgo.Client, topic string) error {
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
	}
	if err := produce(alice, "orders"); err != nil {
		t.Fatalf("alice produces to orders: %v", err)
	}
	if err := produce(alice, "orders-secret"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produces to orders-secret (DENY): %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	// bob may WRITE nothing, so his idempotent producer is refused its
	// producer id first (InitProducerId needs IDEMPOTENT_WRITE on the
	// cluster or WRITE on some topic), as with Kafka's authorizer.
	if err := produce(bob, "orders"); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("bob produces to orders (READ only): %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	// Both may read orders: the record alice wrote.
	for name, m := range map[string]sasl.Mechanism{
		"alice": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		"bob":   plain.Auth{User: "bob", Pass: "bob-secret"}.AsMechanism(),
	} {
		cl := saslClient(t, c.addr(), m, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		fs := cl.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("%s reads orders: %v", name, err)
		}
		if n := fs.NumRecords(); n != 1 {
			t.Fatalf("%s read %d records of orders, want 1", name, n)
		}
	}
	// Metadata lists to each only what it may DESCRIBE (READ and WRITE
	// imply it; the DENY of ALL hides orders-secret from alice).
	for name, cl := range map[string]*kgo.Client{"alice": alice, "bob": bob} {
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mt := range resp.Topics {
			names = append(names, *mt.Topic)
		}
		if !slices.Equal(names, []string{"orders"}) {
			t.Fatalf("metadata lists %v to %s, want [orders]", names, name)
		}
	}
}

// Package meta is the contract between agents and Sluice's control plane:
// the Client interface agents use, the values it mentions, the limits it
// enforces and the errors it returns. Agents (server, pipeline, cache and
// the jobs) import this package and nothing behind it; it depends on no
// store, database driver or RPC stack (boundary_test.go checks both).
// Every value carries metadata only, never a record's bytes (DESIGN.md
// invariant 5).
//
// # Files
//
//	client.go      Client, the network-shaped interface agents use
//	types.go       topics, partitions, segment commits, index entries,
//	               commit events, producer ids; the common errors
//	groups.go      consumer group requests and answers, committed
//	               offsets, group limits and errors
//	agents.go      the agent registry's AgentInfo and AgentRegistration
//	admin.go       topic administration and DeleteRecords requests
//	timestamps.go  ListOffsets by timestamp (FindTimestamp)
//	acls.go        ACL bindings and filters with Kafka's semantics
//
// # Behind the contract
//
//	meta/controller  the state machine and committer: Service, a Client
//	                 over a store (controller.Open)
//	meta/kv          the stores: embedded bbolt, PostgreSQL, and the
//	                 leadership among PostgreSQL replicas
//	meta/groups      the classic consumer group coordinator
//	meta/rpc         the gRPC API: a Client for agents, the server for meta
//	meta/host        virtual clusters, agent keys, failover
//	meta/metapb      the protobuf messages of meta/rpc
package meta

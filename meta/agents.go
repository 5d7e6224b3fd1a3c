package meta

import "time"

// The agent registry as agents see it (RegisterAgent, Agents); the
// registry itself is meta/controller/registry.go.

// AgentInfo describes one agent.
type AgentInfo struct {
	ID    string   // unique per agent process; chosen by the agent
	Zone  string   // availability zone, "" when unknown
	Group string   // agent group, "" for the default group
	Roles []string // produce, consume, jobs; empty means all
	Addr  string   // advertised Kafka address, host:port
	// PeerAddr is the agent's zone cache listener (cache/peer.go),
	// host:port; empty when it runs none.
	PeerAddr string
	// NodeID is the Kafka node id meta assigned (answers only). It is
	// derived from ID, so it stays the same across meta restarts unless
	// two live agents' ids collide.
	NodeID int32
	// Stats are the agent's traffic counters (console, issue 16): sent
	// with every heartbeat, ignored by everything but the console.
	Stats AgentStats
}

// AgentStats are an agent's cumulative counters since its process
// started (console, issue 16). They are counts and byte totals only,
// never record bytes; meta keeps the latest per live agent and the web
// console turns them into throughput and object store cost. A counter
// smaller than the one last reported means the agent restarted.
type AgentStats struct {
	ProducedBytes int64 // record batch bytes accepted by Produce
	FetchedBytes  int64 // record batch bytes returned by Fetch
	ObjectPuts    int64 // PUT requests to the bucket (uploads)
	ObjectGets    int64 // ranged GET requests to the bucket
	BytesPut      int64
	BytesGot      int64
}

// AgentRegistration answers RegisterAgent.
type AgentRegistration struct {
	NodeID int32
	// TTL is how long meta keeps the agent without another
	// RegisterAgent; agents heartbeat several times per TTL.
	TTL time.Duration
}

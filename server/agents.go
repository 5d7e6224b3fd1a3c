package server

// The live agents a Metadata or DescribeCluster response lists. Agents
// register with meta and heartbeat (agent/registry.go); this view reads
// the registry at most once a second. Every agent may accept every
// partition (stateless agents), so "leader" only spreads load: each
// partition is given to the live agent with the highest rendezvous score
// for it, so leadership moves for only 1/N of the partitions when an
// agent joins or leaves.
//
// Broker identities. An agent may answer under several Kafka node ids
// (Config.BrokerIdentities, --broker-identities), and partition
// leadership is spread over all of them. Kafka clients limit the produce
// requests in flight per broker (idempotent producers: five), not per
// agent, so an agent with n identities gets n connections from a client
// and 5n requests in flight. Identity k listens on the agent's port + k
// and is advertised there, because librdkafka (2.0.2, Debian's) matches
// a node id it does not know against its brokers by host:port and
// re-labels the existing connection (rd_kafka_broker_update): node ids
// sharing one address make its partition map flap. franz-go and sarama
// key their connections by node id, so for them the identities may
// share the agent's one port (Config.IdentitiesSharePort).
//
// Identity 0 is the node id meta assigned (so a cluster with one identity
// per agent answers exactly as before); identity k >= 1 has the node id
// identityNode(agent id, k), derived from the agent id alone so every
// agent computes the same ids for every other agent without asking meta.
// A derived id equal to any agent's assigned id, or to another derived id
// earlier in node-id order, is dropped (assignIdentities): the same view
// gives the same answer on every agent. Other agents' identity ports are
// derived from their registered address the same way, so every agent
// must run with the same --broker-identities and
// --broker-identities-share-port: one that thinks another has more
// identities than it listens for hands clients ports nobody serves.

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"sluice.dev/internal/rendezvous"
	"sluice.dev/meta"
)

const agentViewTTL = time.Second

type broker struct {
	id    string
	node  int32 // identity 0: the node id meta assigned
	host  string
	port  int32
	seed  uint64 // xxhash of id, mixed into every partition's score
	zone  string
	group string
	roles []string // empty: every role
	// idents are the agent's broker identities, idents[0] being {node,
	// seed}; empty means that one alone (assignIdentities fills it).
	idents []identity
}

// identity is one Kafka node id an agent answers under.
type identity struct {
	node int32
	seed uint64 // rendezvous seed of this identity
	port int32  // where clients reach it: the agent's port, or port + k
}

// identities returns b's identities, at least the first.
func (b *broker) identities() []identity {
	if len(b.idents) == 0 {
		return []identity{{b.node, b.seed, b.port}}
	}
	return b.idents
}

// hasNode reports whether node is one of b's identities.
func (b *broker) hasNode(node int32) bool {
	for _, id := range b.identities() {
		if id.node == node {
			return true
		}
	}
	return false
}

// maxBrokerIdentities bounds --broker-identities: each identity is a
// connection from every client and a row per agent in every Metadata
// response.
const maxBrokerIdentities = 64

// identityNode is the node id of an agent's identity k >= 1: an FNV-1a
// hash of the agent id and k in 31 bits, like meta's assigned ids
// (meta/controller/registry.go), so stable across restarts of agent and
// meta.
func identityNode(agentID string, k int) int32 {
	h := fnv.New32a()
	h.Write([]byte(agentID))
	h.Write([]byte{0, byte(k)})
	return int32(h.Sum32() & 0x7fffffff)
}

// identitySeed is the rendezvous seed of identity k: k = 0 keeps the
// agent's own seed, so one identity per agent places partitions exactly
// as before identities existed.
func identitySeed(agentSeed uint64, k int) uint64 {
	if k == 0 {
		return agentSeed
	}
	return xxhash.Sum64(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, agentSeed), uint64(k)))
}

// assignIdentities gives every broker of bs n identities (n >= 1), less
// any whose derived node id collides: with an assigned node id of any
// broker, or with a derived id already given, brokers taken in node-id
// order. The result depends only on bs as a set, so agents with the
// same view agree. Identity k is at the broker's port + k unless
// sharePort (a dropped identity leaves its port unused).
func assignIdentities(bs []broker, n int, sharePort bool) {
	n = min(max(n, 1), maxBrokerIdentities)
	taken := make(map[int32]bool, len(bs)*n)
	for i := range bs {
		taken[bs[i].node] = true
	}
	order := make([]int, len(bs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(bs[a].node, bs[b].node), cmp.Compare(bs[a].id, bs[b].id))
	})
	for _, i := range order {
		b := &bs[i]
		b.idents = make([]identity, 1, n)
		b.idents[0] = identity{b.node, b.seed, b.port}
		for k := 1; k < n; k++ {
			node, port := identityNode(b.id, k), b.port
			if !sharePort {
				port += int32(k)
			}
			if taken[node] || port > 65535 {
				continue
			}
			taken[node] = true
			b.idents = append(b.idents, identity{node, identitySeed(b.seed, k), port})
		}
	}
}

// hasRole reports whether the broker is offered for role.
func (b *broker) hasRole(role string) bool {
	return len(b.roles) == 0 || slices.Contains(b.roles, role)
}

type agentView struct {
	mu         sync.Mutex
	at         time.Time // guarded by mu
	brokers    []broker  // guarded by mu
	refreshing atomic.Bool
}

// SetNodeID sets the node id this agent answers with; meta assigns it at
// registration.
func (s *Server) SetNodeID(id int32) { s.nodeID.Store(id) }

// isSelfNode reports whether node is one of this agent's identities (a
// DescribeConfigs for any of them describes this agent).
func (s *Server) isSelfNode(ctx context.Context, node int32) bool {
	if node == s.nodeID.Load() {
		return true
	}
	for _, b := range s.brokers(ctx) {
		if b.id == s.cfg.AgentID {
			return b.hasNode(node)
		}
	}
	return false
}

// NodeID is this agent's current Kafka node id.
func (s *Server) NodeID() int32 { return s.nodeID.Load() }

// self is this agent as a broker.
func (s *Server) self() broker {
	host, port := s.hostPort()
	return broker{id: s.cfg.AgentID, node: s.nodeID.Load(), host: host, port: port, seed: xxhash.Sum64String(s.cfg.AgentID),
		zone: s.cfg.Zone, group: s.cfg.Group, roles: s.cfg.Roles}
}

// brokers returns the live agents, this one always among them (it may
// not be registered yet, or meta may have just failed over). The view is
// at most about a second old; on a registry error the last view is kept,
// or this agent alone.
func (s *Server) brokers(ctx context.Context) []broker {
	v := &s.view
	v.mu.Lock()
	bs, at := v.brokers, v.at
	v.mu.Unlock()
	if bs != nil {
		if time.Since(at) >= agentViewTTL && v.refreshing.CompareAndSwap(false, true) {
			// Answer with the last view; renew it behind the request so
			// a slow meta never delays Metadata.
			go func() {
				defer v.refreshing.Store(false)
				ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
				defer cancel()
				s.loadBrokers(ctx)
			}()
		}
		return bs
	}
	if bs = s.loadBrokers(ctx); bs == nil {
		bs = []broker{s.self()}
		assignIdentities(bs, s.cfg.BrokerIdentities, s.cfg.IdentitiesSharePort)
	}
	return bs
}

// loadBrokers reads the registry into the view; nil when meta fails.
func (s *Server) loadBrokers(ctx context.Context) []broker {
	agents, err := s.deps.Meta.Agents(ctx)
	if err != nil {
		s.log.Warn("list live agents", "err", err)
		return nil
	}
	self := s.self()
	out := make([]broker, 0, len(agents)+1)
	seen := false
	for _, a := range agents {
		host, portStr, err := net.SplitHostPort(a.Addr)
		port, perr := strconv.Atoi(portStr)
		if err != nil || perr != nil {
			continue
		}
		if a.ID == self.id {
			seen = true
		}
		out = append(out, broker{id: a.ID, node: a.NodeID, host: host, port: int32(port), seed: xxhash.Sum64String(a.ID),
			zone: a.Zone, group: a.Group, roles: a.Roles})
	}
	if !seen {
		out = append(out, self)
	}
	assignIdentities(out, s.cfg.BrokerIdentities, s.cfg.IdentitiesSharePort)
	v := &s.view
	v.mu.Lock()
	v.brokers, v.at = out, time.Now()
	v.mu.Unlock()
	return out
}

// leaderOf picks the partition's leader among the identities of bs by
// rendezvous hashing: an agent with n identities leads about n times the
// partitions of an agent with one, spread over its identities.
func leaderOf(bs []broker, topic meta.TopicID, partition int32) int32 {
	var key [20]byte
	copy(key[:], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	h := xxhash.Sum64(key[:])
	best, bestScore, first := int32(-1), uint64(0), true
	for i := range bs {
		for _, id := range bs[i].identities() {
			if score := rendezvous.Score(h, id.seed); first || score > bestScore {
				best, bestScore, first = id.node, score, false
			}
		}
	}
	return best
}

// pickBroker returns the broker of bs (not empty) with the highest
// rendezvous score for a key's hash.
func pickBroker(bs []broker, keyHash uint64) broker {
	best, bestScore := bs[0], uint64(0)
	for i, b := range bs {
		if score := rendezvous.Score(keyHash, b.seed); i == 0 || score > bestScore {
			best, bestScore = b, score
		}
	}
	return best
}

// offeredTo returns the live agents a client is offered (zones.go) and,
// among them, the partition leaders.
func (s *Server) offeredTo(clientID string) (offered, leaders []broker) {
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	return selectFor(s.brokers(ctx), parseClientID(clientID))
}

// listenAddrs returns the gnet addresses to listen on: Addr, and when the
// identities have ports of their own, the BrokerIdentities-1 ports after
// it. Port 0 then picks a free block of ports (each bound once to check;
// another process may still take one before gnet binds it, and Start
// then fails with the address in use) and Addr becomes its first.
func (s *Server) listenAddrs() ([]string, error) {
	n := min(max(s.cfg.BrokerIdentities, 1), maxBrokerIdentities)
	if s.cfg.IdentitiesSharePort {
		n = 1
	}
	host, portStr, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: bad --kafka-addr %q: %w", s.cfg.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("server: bad port in --kafka-addr %q: %w", s.cfg.Addr, err)
	}
	if n > 1 && port == 0 {
		if port, err = freePortBlock(host, n); err != nil {
			return nil, err
		}
		s.cfg.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	}
	if port+n-1 > 65535 {
		return nil, fmt.Errorf("server: --kafka-addr %q: --broker-identities %d needs ports up to %d", s.cfg.Addr, n, port+n-1)
	}
	addrs := make([]string, n)
	for k := range n {
		addrs[k] = "tcp://" + net.JoinHostPort(host, strconv.Itoa(port+k))
	}
	if n == 1 {
		addrs[0] = "tcp://" + s.cfg.Addr
	}
	return addrs, nil
}

// freePortBlock finds n consecutive free TCP ports on host.
func freePortBlock(host string, n int) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("server: find free ports: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for k := 1; k < n && port+k <= 65535; k++ {
			lk, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port+k)))
			if err != nil {
				break
			}
			ls = append(ls, lk)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return port, nil
		}
	}
	return 0, fmt.Errorf("server: no %d consecutive free ports on %s for --broker-identities", n, host)
}

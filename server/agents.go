package server

// The live agents a Metadata or DescribeCluster response lists. Agents
// register with meta and heartbeat (agent/registry.go); this view reads
// the registry at most once a second. Every agent may accept every
// partition (stateless agents), so "leader" only spreads load: each
// partition is given to the live agent with the highest rendezvous score
// for it, so leadership moves for only 1/N of the partitions when an
// agent joins or leaves.

import (
	"context"
	"encoding/binary"
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
	node  int32
	host  string
	port  int32
	seed  uint64 // xxhash of id, mixed into every partition's score
	zone  string
	group string
	roles []string // empty: every role
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
		return []broker{s.self()}
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
	v := &s.view
	v.mu.Lock()
	v.brokers, v.at = out, time.Now()
	v.mu.Unlock()
	return out
}

// leaderOf picks the partition's leader among bs by rendezvous hashing.
func leaderOf(bs []broker, topic meta.TopicID, partition int32) int32 {
	var key [20]byte
	copy(key[:], topic[:])
	binary.BigEndian.PutUint32(key[16:], uint32(partition))
	return pickBroker(bs, xxhash.Sum64(key[:])).node
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

package controller

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"sluice.dev/meta"
)

// The agent registry: which agents are alive, where clients reach them,
// and their Kafka node ids. Agents register and then heartbeat by
// registering again; one that stays silent for AgentTTL is forgotten and
// leaves every Metadata response. The registry lives in memory only: it
// is rebuilt within one heartbeat interval after meta restarts or fails
// over, because every agent keeps heartbeating.

const defaultAgentTTL = 10 * time.Second

type registry struct {
	mu     sync.Mutex
	ttl    time.Duration
	agents map[string]*liveAgent // by ID
	nodes  map[int32]string      // node id -> agent id
}

type liveAgent struct {
	info    meta.AgentInfo
	expires time.Time
	seen    time.Time // the last heartbeat (console, issue 16)
}

func newRegistry(ttl time.Duration) *registry {
	return &registry{ttl: ttl, agents: make(map[string]*liveAgent), nodes: make(map[int32]string)}
}

// expireLocked forgets agents whose lease ran out.
func (r *registry) expireLocked(now time.Time) {
	for id, a := range r.agents {
		if now.After(a.expires) {
			delete(r.agents, id)
			delete(r.nodes, a.info.NodeID)
			registryExpired.Inc()
		}
	}
}

func nodeIDFor(id string) int32 {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int32(h.Sum32() & 0x7fffffff)
}

func validAgentInfo(a meta.AgentInfo) error {
	switch {
	case a.ID == "" || len(a.ID) > 256:
		return fmt.Errorf("%w: agent id must be 1 to 256 bytes", meta.ErrInvalidRequest)
	case a.Addr == "" || len(a.Addr) > 1024:
		return fmt.Errorf("%w: agent %q has no advertised address", meta.ErrInvalidRequest, a.ID)
	case len(a.Zone) > 256 || len(a.Group) > 256 || len(a.Roles) > 8 || len(a.PeerAddr) > 1024:
		return fmt.Errorf("%w: agent %q: zone, group or roles too long", meta.ErrInvalidRequest, a.ID)
	}
	return nil
}

// RegisterAgent registers an agent or renews its lease (the heartbeat).
func (s *Service) RegisterAgent(ctx context.Context, a meta.AgentInfo) (meta.AgentRegistration, error) {
	if err := s.readable(ctx); err != nil {
		return meta.AgentRegistration{}, err
	}
	if err := validAgentInfo(a); err != nil {
		return meta.AgentRegistration{}, err
	}
	r := s.registry
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(now)
	la := r.agents[a.ID]
	if la == nil {
		node := nodeIDFor(a.ID)
		for {
			if _, taken := r.nodes[node]; !taken {
				break
			}
			node = (node + 1) & 0x7fffffff
		}
		la = &liveAgent{}
		r.agents[a.ID] = la
		r.nodes[node] = a.ID
		a.NodeID = node
		s.log.Info("meta: agent joined", "agent", a.ID, "node", node, "zone", a.Zone, "group", a.Group, "addr", a.Addr)
	} else {
		a.NodeID = la.info.NodeID
	}
	a.Roles = slices.Clone(a.Roles)
	la.info = a
	la.expires = now.Add(r.ttl)
	la.seen = now
	return meta.AgentRegistration{NodeID: a.NodeID, TTL: r.ttl}, nil
}

// UnregisterAgent forgets an agent at once (a clean shutdown).
func (s *Service) UnregisterAgent(ctx context.Context, id string) error {
	if err := s.readable(ctx); err != nil {
		return err
	}
	r := s.registry
	r.mu.Lock()
	defer r.mu.Unlock()
	if a := r.agents[id]; a != nil {
		delete(r.agents, id)
		delete(r.nodes, a.info.NodeID)
		s.log.Info("meta: agent left", "agent", id, "node", a.info.NodeID)
	}
	return nil
}

// Agents lists the live agents by node id.
func (s *Service) Agents(ctx context.Context) ([]meta.AgentInfo, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	r := s.registry
	r.mu.Lock()
	r.expireLocked(time.Now())
	out := make([]meta.AgentInfo, 0, len(r.agents))
	for _, a := range r.agents {
		info := a.info
		info.Roles = slices.Clone(info.Roles)
		out = append(out, info)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b meta.AgentInfo) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out, nil
}

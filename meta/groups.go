package meta

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"sync"
	"time"
)

// The classic consumer group coordinator (JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup), kept in memory by meta. Agents forward group
// requests here, so members connected to different agents share one
// coordinator.
//
// States of a group:
//
//	Empty ──join──► PreparingRebalance ──all joined / rebalance timeout──► CompletingRebalance
//	  ▲                    ▲                                                     │ leader syncs
//	  │ last member leaves │ join of a new or changed member, leave, expiry      ▼
//	  └────────────────────┴───────────────────────────────────────────────── Stable
//
// A JoinGroup or SyncGroup that must wait parks a channel, not a
// goroutine: the caller waits on it (on the agent, off the event loop),
// and the coordinator's timers (rebalance timeout, session expiry) run as
// time.AfterFunc callbacks.
//
// Membership is not durable: after a meta restart members get
// UNKNOWN_MEMBER_ID, rejoin, and resume from their committed offsets,
// which are durable (offsets.go).

// Group errors, mapped to Kafka codes by the server.
var (
	ErrUnknownMemberID        = errors.New("meta: unknown member id")
	ErrIllegalGeneration      = errors.New("meta: illegal generation")
	ErrRebalanceInProgress    = errors.New("meta: rebalance in progress")
	ErrMemberIDRequired       = errors.New("meta: member id required")
	ErrInconsistentProtocol   = errors.New("meta: inconsistent group protocol")
	ErrInvalidSessionTimeout  = errors.New("meta: invalid session timeout")
	ErrGroupNotEmpty          = errors.New("meta: group not empty")
	ErrGroupIDNotFound        = errors.New("meta: group id not found")
	ErrFencedInstanceID       = errors.New("meta: fenced instance id")
	ErrInvalidGroupID         = errors.New("meta: invalid group id")
	ErrGroupSubscribedToTopic = errors.New("meta: group subscribed to topic")
)

// Session timeout bounds (Kafka's group.min/max.session.timeout.ms
// defaults are 6 s and 30 min; the lower bound here is 1 s so tests and
// impatient users can run short sessions).
const (
	minSessionTimeout = time.Second
	maxSessionTimeout = 30 * time.Minute
)

// GroupProtocol is one (assignor name, subscription metadata) pair a
// member offers. The metadata is the consumer protocol's subscription:
// topic names and owned partitions, never record data.
type GroupProtocol struct {
	Name     string
	Metadata []byte
}

// JoinGroupRequest is a JoinGroup.
type JoinGroupRequest struct {
	Group              string
	MemberID           string
	InstanceID         string
	ClientID           string
	ClientHost         string
	ProtocolType       string
	Protocols          []GroupProtocol
	SessionTimeout     time.Duration
	RebalanceTimeout   time.Duration
	RequireKnownMember bool // JoinGroup v4+: a first join gets ErrMemberIDRequired and an id
}

// GroupMember is a member as the leader sees it.
type GroupMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// JoinGroupResult answers a JoinGroup. MemberID is set with
// ErrMemberIDRequired too.
type JoinGroupResult struct {
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	MemberID     string
	Members      []GroupMember // the leader's only
}

// SyncGroupRequest is a SyncGroup.
type SyncGroupRequest struct {
	Group       string
	MemberID    string
	InstanceID  string
	Generation  int32
	Assignments map[string][]byte // from the leader: member id → assignment
}

// SyncGroupResult answers a SyncGroup.
type SyncGroupResult struct {
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// LeavingMember names a member leaving (v3+ batches them).
type LeavingMember struct {
	MemberID   string
	InstanceID string
}

// OffsetCommitRequest commits offsets for a group; Generation -1 with no
// member id is a commit from outside the group protocol (a simple
// consumer or an admin tool).
type OffsetCommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	Offsets    []CommittedOffset
}

// GroupDescription describes a group (DescribeGroups).
type GroupDescription struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Members      []GroupMemberDescription
}

// GroupMemberDescription is one member in a description.
type GroupMemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// GroupListing is one group in ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        string
}

type groupState int8

const (
	groupEmpty groupState = iota
	groupPreparing
	groupCompleting
	groupStable
)

func (s groupState) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable"}[s]
}

// coordinator holds every group.
type coordinator struct {
	mu     sync.Mutex
	groups map[string]*cgroup // guarded by mu
}

// cgroup is one group. Its fields are guarded by its mu; the
// coordinator's mu is taken before a group's, never after.
type cgroup struct {
	mu           sync.Mutex
	name         string
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*cmember
	pending      map[string]time.Time // member ids handed out with ErrMemberIDRequired
	instances    map[string]string    // instance id → member id
	rebalance    *time.Timer
}

type cmember struct {
	id, instanceID     string
	clientID, host     string
	protocols          []GroupProtocol
	session, rebalance time.Duration
	joined             bool            // joined the rebalance in progress
	joinCh             chan joinAnswer // set while a JoinGroup waits
	syncCh             chan syncAnswer // set while a SyncGroup waits
	assignment         []byte
	timer              *time.Timer // session expiry
}

type joinAnswer struct {
	res JoinGroupResult
	err error
}

type syncAnswer struct {
	res SyncGroupResult
	err error
}

func newCoordinator() *coordinator {
	return &coordinator{groups: make(map[string]*cgroup)}
}

// group returns the named group, creating it when create is set.
func (c *coordinator) group(name string, create bool) *cgroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil && create {
		g = &cgroup{name: name, members: map[string]*cmember{}, pending: map[string]time.Time{}, instances: map[string]string{}}
		c.groups[name] = g
	}
	return g
}

func newMemberID(clientID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// JoinGroup joins (or rejoins) a member and waits for the rebalance to
// complete, ctx permitting.
func (s *Service) JoinGroup(ctx context.Context, req JoinGroupRequest) (JoinGroupResult, error) {
	if s.closed.Load() {
		return JoinGroupResult{}, ErrClosed
	}
	if req.Group == "" || len(req.Group) > MaxGroupIDBytes {
		return JoinGroupResult{}, ErrInvalidGroupID
	}
	if req.SessionTimeout < minSessionTimeout || req.SessionTimeout > maxSessionTimeout {
		return JoinGroupResult{}, ErrInvalidSessionTimeout
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	if len(req.Protocols) == 0 || req.ProtocolType == "" {
		return JoinGroupResult{}, ErrInconsistentProtocol
	}
	g := s.groups.group(req.Group, true)
	g.mu.Lock()
	ch, res, err := g.joinLocked(req)
	g.mu.Unlock()
	if ch == nil {
		return res, err
	}
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		// The member stays; if it does not come back its session ends.
		return JoinGroupResult{}, ctx.Err()
	}
}

func (g *cgroup) joinLocked(req JoinGroupRequest) (chan joinAnswer, JoinGroupResult, error) {
	if g.state != groupEmpty && g.protocolType != req.ProtocolType {
		return nil, JoinGroupResult{}, ErrInconsistentProtocol
	}
	if g.state != groupEmpty && g.protocol != "" && !offers(req.Protocols, g.protocol) && len(g.members) > 1 {
		// Members must share an assignor; a lone member may switch.
		return nil, JoinGroupResult{}, ErrInconsistentProtocol
	}
	id := req.MemberID
	var m *cmember
	switch {
	case id == "" && req.InstanceID != "":
		// Static member (KIP-345): a new member id replaces the old one
		// under the same instance id, without a rebalance when nothing
		// changed.
		id = newMemberID(req.ClientID)
		if old, ok := g.instances[req.InstanceID]; ok {
			if om := g.members[old]; om != nil {
				delete(g.members, old)
				om.stop(ErrFencedInstanceID)
				om.id = id
				g.members[id] = om
				if g.leader == old {
					g.leader = id
				}
				g.instances[req.InstanceID] = id
				if g.state == groupStable && sameProtocols(om.protocols, req.Protocols) {
					om.resetSession(g)
					return nil, g.joinResultLocked(om), nil
				}
				m = om
			}
		}
	case id == "" && req.RequireKnownMember:
		id = newMemberID(req.ClientID)
		g.pending[id] = time.Now()
		return nil, JoinGroupResult{MemberID: id, Generation: -1}, ErrMemberIDRequired
	case id == "":
		id = newMemberID(req.ClientID)
	default:
		m = g.members[id]
		if m == nil {
			if _, ok := g.pending[id]; !ok {
				return nil, JoinGroupResult{MemberID: id, Generation: -1}, ErrUnknownMemberID
			}
			delete(g.pending, id)
		} else if req.InstanceID != "" && m.instanceID != req.InstanceID {
			return nil, JoinGroupResult{}, ErrFencedInstanceID
		}
	}
	isNew := m == nil
	changed := isNew || !sameProtocols(m.protocols, req.Protocols)
	if isNew {
		m = &cmember{id: id}
		g.members[id] = m
	}
	if req.InstanceID != "" {
		m.instanceID = req.InstanceID
		g.instances[req.InstanceID] = id
	}
	m.clientID, m.host = req.ClientID, req.ClientHost
	m.protocols = req.Protocols
	m.session, m.rebalance = req.SessionTimeout, req.RebalanceTimeout
	if m.joinCh != nil {
		// A second join while the first still waits: the first is stale.
		m.joinCh <- joinAnswer{err: ErrRebalanceInProgress}
	}
	m.joinCh = make(chan joinAnswer, 1)
	m.joined = true
	m.resetSession(g)
	ch := m.joinCh

	switch g.state {
	case groupEmpty:
		g.protocolType = req.ProtocolType
		g.prepareLocked()
	case groupStable, groupCompleting:
		if changed || id == g.leader || g.state == groupCompleting {
			g.prepareLocked()
		} else {
			// A known member rejoining with nothing changed gets the
			// current generation back.
			m.joinCh = nil
			return nil, g.joinResultLocked(m), nil
		}
	case groupPreparing:
	}
	g.tryCompleteJoinLocked()
	return ch, JoinGroupResult{}, nil
}

func offers(ps []GroupProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []GroupProtocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}

// prepareLocked starts a rebalance: every member must rejoin within the
// longest rebalance timeout; the ones that do not are removed.
func (g *cgroup) prepareLocked() {
	if g.state == groupCompleting {
		// Syncs waiting for an assignment that will never come.
		for _, m := range g.members {
			if m.syncCh != nil {
				m.syncCh <- syncAnswer{err: ErrRebalanceInProgress}
				m.syncCh = nil
			}
		}
	}
	if g.state != groupPreparing {
		for _, m := range g.members {
			if m.joinCh == nil {
				m.joined = false
			}
		}
	}
	g.state = groupPreparing
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalance)
	}
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	gen := g.generation
	g.rebalance = time.AfterFunc(longest, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.state != groupPreparing || g.generation != gen {
			return
		}
		for id, m := range g.members {
			if !m.joined {
				g.removeLocked(id, nil)
			}
		}
		g.completeJoinLocked()
	})
}

func (g *cgroup) tryCompleteJoinLocked() {
	if g.state != groupPreparing {
		return
	}
	for _, m := range g.members {
		if !m.joined {
			return
		}
	}
	g.completeJoinLocked()
}

// completeJoinLocked ends the join phase: a new generation, an assignor
// every member offers, a leader, and an answer to every waiting join.
func (g *cgroup) completeJoinLocked() {
	if g.rebalance != nil {
		g.rebalance.Stop()
		g.rebalance = nil
	}
	g.generation++
	if len(g.members) == 0 {
		g.state = groupEmpty
		g.protocol, g.leader = "", ""
		return
	}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = ids[0]
	}
	g.protocol = ""
	for _, p := range g.members[g.leader].protocols {
		all := true
		for _, m := range g.members {
			if !offers(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			g.protocol = p.Name
			break
		}
	}
	g.state = groupCompleting
	for _, id := range ids {
		m := g.members[id]
		m.assignment = nil
		m.joined = false
		if m.joinCh != nil {
			m.joinCh <- joinAnswer{res: g.joinResultLocked(m)}
			m.joinCh = nil
		}
		m.resetSession(g)
	}
	if g.protocol == "" {
		// No assignor in common: fail everyone rather than pick one
		// some member cannot run.
		for id := range g.members {
			g.removeLocked(id, ErrInconsistentProtocol)
		}
		g.state = groupEmpty
	}
}

func (g *cgroup) joinResultLocked(m *cmember) JoinGroupResult {
	res := JoinGroupResult{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		ids := make([]string, 0, len(g.members))
		for id := range g.members {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			o := g.members[id]
			var meta []byte
			for _, p := range o.protocols {
				if p.Name == g.protocol {
					meta = p.Metadata
				}
			}
			res.Members = append(res.Members, GroupMember{MemberID: id, InstanceID: o.instanceID, Metadata: meta})
		}
	}
	return res
}

// removeLocked drops a member, answering what it waits on with err (or
// ErrUnknownMemberID).
func (g *cgroup) removeLocked(id string, err error) {
	m := g.members[id]
	if m == nil {
		return
	}
	if err == nil {
		err = ErrUnknownMemberID
	}
	m.stop(err)
	delete(g.members, id)
	if m.instanceID != "" && g.instances[m.instanceID] == id {
		delete(g.instances, m.instanceID)
	}
}

func (m *cmember) stop(err error) {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if m.joinCh != nil {
		m.joinCh <- joinAnswer{err: err}
		m.joinCh = nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncAnswer{err: err}
		m.syncCh = nil
	}
}

// resetSession restarts the member's session timer; when it fires the
// member is gone and the group rebalances.
func (m *cmember) resetSession(g *cgroup) {
	if m.timer != nil {
		m.timer.Stop()
	}
	id := m.id
	var t *time.Timer
	t = time.AfterFunc(m.session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		cur := g.members[id]
		if cur == nil || cur.timer != t {
			return
		}
		g.removeLocked(id, nil)
		g.membershipChangedLocked()
	})
	m.timer = t
}

// membershipChangedLocked rebalances after a member left.
func (g *cgroup) membershipChangedLocked() {
	switch {
	case len(g.members) == 0:
		if g.rebalance != nil {
			g.rebalance.Stop()
			g.rebalance = nil
		}
		g.state = groupEmpty
		g.protocol, g.leader = "", ""
		g.generation++
	case g.state == groupPreparing:
		g.tryCompleteJoinLocked()
	default:
		g.prepareLocked()
	}
}

func (g *cgroup) checkMemberLocked(id, instanceID string, gen int32) (*cmember, error) {
	m := g.members[id]
	if m == nil {
		return nil, ErrUnknownMemberID
	}
	if instanceID != "" && m.instanceID != instanceID {
		return nil, ErrFencedInstanceID
	}
	if gen != g.generation {
		return nil, ErrIllegalGeneration
	}
	return m, nil
}

// SyncGroup hands out the leader's assignment, waiting for it when the
// caller is not the leader.
func (s *Service) SyncGroup(ctx context.Context, req SyncGroupRequest) (SyncGroupResult, error) {
	if s.closed.Load() {
		return SyncGroupResult{}, ErrClosed
	}
	g := s.groups.group(req.Group, false)
	if g == nil {
		return SyncGroupResult{}, ErrUnknownMemberID
	}
	g.mu.Lock()
	m, err := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		g.mu.Unlock()
		return SyncGroupResult{}, err
	}
	m.resetSession(g)
	res := SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol}
	switch g.state {
	case groupPreparing:
		g.mu.Unlock()
		return SyncGroupResult{}, ErrRebalanceInProgress
	case groupStable:
		res.Assignment = m.assignment
		g.mu.Unlock()
		return res, nil
	}
	// CompletingRebalance.
	if m.id == g.leader {
		for id, om := range g.members {
			om.assignment = req.Assignments[id]
			if om.syncCh != nil && id != m.id {
				r := res
				r.Assignment = om.assignment
				om.syncCh <- syncAnswer{res: r}
				om.syncCh = nil
			}
		}
		g.state = groupStable
		res.Assignment = m.assignment
		g.mu.Unlock()
		return res, nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncAnswer{err: ErrRebalanceInProgress}
	}
	ch := make(chan syncAnswer, 1)
	m.syncCh = ch
	g.mu.Unlock()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		return SyncGroupResult{}, ctx.Err()
	}
}

// Heartbeat keeps a member's session and tells it about rebalances.
func (s *Service) Heartbeat(ctx context.Context, group, memberID, instanceID string, generation int32) error {
	if s.closed.Load() {
		return ErrClosed
	}
	g := s.groups.group(group, false)
	if g == nil {
		return ErrUnknownMemberID
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[memberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	if instanceID != "" && m.instanceID != instanceID {
		return ErrFencedInstanceID
	}
	m.resetSession(g)
	switch {
	case g.state == groupPreparing:
		return ErrRebalanceInProgress
	case generation != g.generation:
		return ErrIllegalGeneration
	}
	return nil
}

// LeaveGroup removes members; one error per member, in order.
func (s *Service) LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]error, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	errs := make([]error, len(members))
	g := s.groups.group(group, false)
	if g == nil {
		for i := range errs {
			errs[i] = ErrUnknownMemberID
		}
		return errs, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	left := false
	for i, lm := range members {
		id := lm.MemberID
		if id == "" && lm.InstanceID != "" {
			id = g.instances[lm.InstanceID]
		}
		m := g.members[id]
		switch {
		case m == nil:
			errs[i] = ErrUnknownMemberID
		case lm.InstanceID != "" && m.instanceID != lm.InstanceID:
			errs[i] = ErrFencedInstanceID
		default:
			g.removeLocked(id, ErrUnknownMemberID)
			left = true
		}
	}
	if left {
		g.membershipChangedLocked()
	}
	return errs, nil
}

// CommitOffsets checks the committer's membership and makes the offsets
// durable.
func (s *Service) CommitOffsets(ctx context.Context, req OffsetCommitRequest) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if req.Group == "" || len(req.Group) > MaxGroupIDBytes {
		return ErrInvalidGroupID
	}
	if g := s.groups.group(req.Group, false); g != nil && (req.MemberID != "" || req.Generation >= 0) {
		g.mu.Lock()
		m, err := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
		switch {
		case err != nil:
			g.mu.Unlock()
			return err
		case g.state == groupCompleting:
			g.mu.Unlock()
			return ErrRebalanceInProgress
		}
		m.resetSession(g)
		g.mu.Unlock()
	} else if g == nil && (req.MemberID != "" || req.Generation >= 0) {
		return ErrUnknownMemberID
	} else if g != nil {
		g.mu.Lock()
		busy := len(g.members) > 0
		g.mu.Unlock()
		if busy {
			// An outsider may not commit over a live group's members.
			return ErrUnknownMemberID
		}
	}
	return s.writeOffsetsDurable(ctx, &offsetCommitReq{group: req.Group, offsets: req.Offsets})
}

// DeleteOffsets removes a group's committed offsets for tps (OffsetDelete).
// It is refused for partitions of topics a live member consumes; without
// membership detail here it is refused while the group has members.
func (s *Service) DeleteOffsets(ctx context.Context, group string, tps []TopicPartition) error {
	if g := s.groups.group(group, false); g != nil {
		g.mu.Lock()
		busy := len(g.members) > 0
		g.mu.Unlock()
		if busy {
			return ErrGroupSubscribedToTopic
		}
	}
	offs := make([]CommittedOffset, len(tps))
	for i, tp := range tps {
		offs[i].TopicPartition = tp
	}
	return s.writeOffsetsDurable(ctx, &offsetCommitReq{group: group, offsets: offs, delete: true})
}

// DeleteGroup deletes an empty group and its offsets.
func (s *Service) DeleteGroup(ctx context.Context, group string) error {
	s.groups.mu.Lock()
	g := s.groups.groups[group]
	if g != nil {
		g.mu.Lock()
		n := len(g.members)
		g.mu.Unlock()
		if n > 0 {
			s.groups.mu.Unlock()
			return ErrGroupNotEmpty
		}
		delete(s.groups.groups, group)
	}
	s.groups.mu.Unlock()
	offs, _ := s.FetchOffsets(ctx, group, nil)
	if g == nil && len(offs) == 0 {
		return ErrGroupIDNotFound
	}
	if len(offs) == 0 {
		return nil
	}
	return s.writeOffsetsDurable(ctx, &offsetCommitReq{group: group, delete: true})
}

// ListGroups lists groups with members or committed offsets.
func (s *Service) ListGroups(ctx context.Context) ([]GroupListing, error) {
	seen := map[string]GroupListing{}
	for _, name := range s.groupsWithOffsets() {
		seen[name] = GroupListing{Group: name, ProtocolType: "consumer", State: groupEmpty.String()}
	}
	s.groups.mu.Lock()
	gs := make([]*cgroup, 0, len(s.groups.groups))
	for _, g := range s.groups.groups {
		gs = append(gs, g)
	}
	s.groups.mu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		l := GroupListing{Group: g.name, ProtocolType: g.protocolType, State: g.state.String()}
		g.mu.Unlock()
		if l.ProtocolType == "" {
			l.ProtocolType = seen[g.name].ProtocolType
		}
		seen[g.name] = l
	}
	out := make([]GroupListing, 0, len(seen))
	for _, l := range seen {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// DescribeGroup describes one group; an unknown group is described as
// Dead with no members, as Kafka does.
func (s *Service) DescribeGroup(ctx context.Context, group string) (GroupDescription, error) {
	d := GroupDescription{Group: group, State: "Dead"}
	g := s.groups.group(group, false)
	if g == nil {
		if offs, _ := s.FetchOffsets(ctx, group, nil); len(offs) > 0 {
			d.State = groupEmpty.String()
			d.ProtocolType = "consumer"
		}
		return d, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	d.State, d.ProtocolType, d.Protocol = g.state.String(), g.protocolType, g.protocol
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		var meta []byte
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				meta = p.Metadata
			}
		}
		d.Members = append(d.Members, GroupMemberDescription{MemberID: id, InstanceID: m.instanceID,
			ClientID: m.clientID, ClientHost: m.host, Metadata: meta, Assignment: m.assignment})
	}
	return d, nil
}

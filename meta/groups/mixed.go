package groups

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

// Classic and consumer members in one group (KIP-848's online upgrade
// and downgrade, as Kafka 4 does it; Config.MigrationPolicy, Kafka's
// group.consumer.migration.policy).
//
// Upgrade. The first ConsumerGroupHeartbeat into a classic group with
// members (protocol type "consumer") turns it into a consumer group
// (kgroup) whose classic members stay members: each keeps its last
// synced assignment as its assigned partitions and its initial target,
// its member epoch is the classic generation, and its subscription comes
// from its JoinGroup metadata (the consumer protocol's Subscription).
// Parked JoinGroup and SyncGroup calls are answered REBALANCE_IN_PROGRESS
// so their members rejoin into the consumer group.
//
// Classic members of a consumer group keep speaking JoinGroup, SyncGroup,
// Heartbeat and LeaveGroup, translated here:
//
//   - JoinGroup is a full heartbeat: the subscription and the partitions
//     the member owns come from its metadata; the member is reconciled
//     like a consumer member (reconcileLocked) and answered at once, with
//     its member epoch as the generation and no leader (the coordinator
//     assigns; the client runs no assignor).
//   - SyncGroup answers the member's assigned partitions, encoded as the
//     consumer protocol's Assignment. Partitions being revoked from it are
//     not in it, so the client drops them on receipt.
//   - Heartbeat answers REBALANCE_IN_PROGRESS when the member must rejoin:
//     the group epoch moved past its epoch, it has partitions to give up,
//     or partitions it waits for were released. Its next JoinGroup lists
//     what it owns, which is how a revocation is acknowledged.
//
// Revocation before assignment holds across both kinds: a partition is in
// the assigned or revoking set of at most one member (consumer.go's
// invariant), and a classic member leaves its revoking set only with a
// JoinGroup whose owned partitions no longer list them (or by leaving or
// expiring). So a consumer member never gets a partition a classic member
// may still be processing, and the other way round.
//
// Downgrade. When the last consumer-protocol member leaves (or is removed
// by a timer) and classic members remain, the group turns back into a
// classic group holding them (policy permitting), with their protocols and
// current assignments, and starts a rebalance: the members learn of it
// through Heartbeat and rejoin under the classic protocol, whose leader
// assigns.
//
// Offsets: a classic member of a consumer group commits with its member
// epoch as the generation (any OffsetCommit version); another epoch is
// ILLEGAL_GENERATION, as Kafka answers classic members.

// Migration policies (Config.MigrationPolicy), Kafka's names.
const (
	MigrationBidirectional = "bidirectional"
	MigrationUpgrade       = "upgrade"
	MigrationDowngrade     = "downgrade"
	MigrationDisabled      = "disabled"
)

var migrationPolicies = []string{MigrationBidirectional, MigrationUpgrade, MigrationDowngrade, MigrationDisabled}

func (c Config) upgradeEnabled() bool {
	return c.MigrationPolicy == MigrationBidirectional || c.MigrationPolicy == MigrationUpgrade
}

func (c Config) downgradeEnabled() bool {
	return c.MigrationPolicy == MigrationBidirectional || c.MigrationPolicy == MigrationDowngrade
}

// classicInfo is what a classic member of a consumer group keeps of its
// JoinGroup.
type classicInfo struct {
	protocols []meta.GroupProtocol
	protocol  string // the protocol name answered: its first
	session   time.Duration
	version   int16 // its Subscription's version; the Assignment is encoded at it
}

// subscription is a consumer-protocol Subscription, decoded.
type subscription struct {
	version int16
	topics  []string
	owned   map[string][]int32 // topic name → partitions
	rack    string
}

func decodeSubscription(md []byte) (subscription, error) {
	var m kmsg.ConsumerMemberMetadata
	if err := m.ReadFrom(md); err != nil {
		return subscription{}, err
	}
	s := subscription{version: m.Version, owned: map[string][]int32{}}
	s.topics = slices.Clone(m.Topics)
	slices.Sort(s.topics)
	s.topics = slices.Compact(s.topics)
	for _, o := range m.OwnedPartitions {
		s.owned[o.Topic] = append(s.owned[o.Topic], o.Partitions...)
	}
	if m.Rack != nil {
		s.rack = *m.Rack
	}
	return s, nil
}

// decodeAssignment reads a consumer-protocol Assignment into partitions
// of the topics byName knows (others are dropped: a deleted topic).
func decodeAssignment(b []byte, byName map[string]meta.Topic) (map[tp]bool, error) {
	out := map[tp]bool{}
	if len(b) == 0 {
		return out, nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil, err
	}
	for _, t := range a.Topics {
		top, ok := byName[t.Topic]
		if !ok {
			continue
		}
		for _, p := range t.Partitions {
			if p >= 0 && p < top.Partitions {
				out[tp{top.ID, p}] = true
			}
		}
	}
	return out, nil
}

// encodeAssignment writes partitions as a consumer-protocol Assignment of
// the given version, topics by name (a topic byID does not know, deleted
// since, is left out).
func encodeAssignment(ps map[tp]bool, byID map[meta.TopicID]meta.Topic, version int16) []byte {
	a := kmsg.ConsumerMemberAssignment{Version: min(max(version, 0), 3)}
	for _, t := range toTopicPartitions(ps) {
		top, ok := byID[t.TopicID]
		if !ok {
			continue
		}
		a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: top.Name, Partitions: t.Partitions})
	}
	sort.Slice(a.Topics, func(i, j int) bool { return a.Topics[i].Topic < a.Topics[j].Topic })
	return a.AppendTo(nil)
}

// topicMaps returns the cluster's topics by name and by id.
func (c *Coordinator) topicMaps() (map[string]meta.Topic, map[meta.TopicID]meta.Topic) {
	var all []meta.Topic
	if c.topics != nil {
		all = c.topics()
	}
	byName := make(map[string]meta.Topic, len(all))
	byID := make(map[meta.TopicID]meta.Topic, len(all))
	for _, t := range all {
		byName[t.Name] = t
		byID[t.ID] = t
	}
	return byName, byID
}

// ownedPartitions turns a Subscription's owned partitions into the form
// reconcileLocked takes.
func ownedPartitions(owned map[string][]int32, byName map[string]meta.Topic) []meta.TopicPartitions {
	out := []meta.TopicPartitions{}
	for name, ps := range owned {
		if t, ok := byName[name]; ok {
			out = append(out, meta.TopicPartitions{TopicID: t.ID, Partitions: ps})
		}
	}
	return out
}

// upgradeLocked turns the classic group cg, which has members, into a
// consumer group holding them (the upgrade above). c.mu and cg.mu are
// held; cg is dropped from c.groups and the new group returned, already
// in c.consumers. A member whose metadata or assignment does not decode
// as the consumer protocol refuses the upgrade (GROUP_ID_NOT_FOUND, as
// Kafka), leaving cg as it was.
func (c *Coordinator) upgradeLocked(cg *cgroup) (*kgroup, error) {
	if cg.protocolType != "consumer" {
		return nil, fmt.Errorf("%w: group %q is a classic group of protocol type %q, not the consumer protocol; it cannot take consumer-protocol members",
			meta.ErrGroupIDNotFound, cg.name, cg.protocolType)
	}
	byName, _ := c.topicMaps()
	g := &kgroup{c: c, name: cg.name, members: map[string]*kmember{}, instances: map[string]string{},
		target: map[string]map[tp]bool{}, assignor: assignors[0], epoch: cg.generation, assignEpoch: cg.generation}
	for id, cm := range cg.members {
		// A member's metadata for the group's protocol, or (in a
		// rebalance that has not picked one yet) its first protocol's.
		var md []byte
		for i, p := range cm.protocols {
			if p.Name == cg.protocol || (cg.protocol == "" && i == 0) {
				md = p.Metadata
			}
		}
		sub, err := decodeSubscription(md)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot upgrade classic group %q: member %q's metadata is not the consumer protocol's: %v",
				meta.ErrGroupIDNotFound, cg.name, id, err)
		}
		assigned, err := decodeAssignment(cm.assignment, byName)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot upgrade classic group %q: member %q's assignment is not the consumer protocol's: %v",
				meta.ErrGroupIDNotFound, cg.name, id, err)
		}
		target := make(map[tp]bool, len(assigned))
		for p := range assigned {
			target[p] = true
		}
		protocol := ""
		if len(cm.protocols) > 0 {
			protocol = cm.protocols[0].Name
		}
		rebalance := cm.rebalance
		if rebalance <= 0 {
			rebalance = cm.session // the revocation timer needs one
		}
		m := &kmember{id: id, instanceID: cm.instanceID, rack: sub.rack, clientID: cm.clientID, host: cm.host,
			epoch: cg.generation, prevEpoch: cg.generation, rebalanceTimeout: rebalance, topics: sub.topics,
			assigned: assigned, revoking: map[tp]bool{},
			classic: &classicInfo{protocols: cm.protocols, protocol: protocol, session: cm.session, version: sub.version}}
		g.members[id] = m
		g.target[id] = target
		if m.instanceID != "" {
			g.instances[m.instanceID] = id
		}
	}
	// No partition may end up held twice: a classic group's last synced
	// assignments are disjoint (one leader wrote them), but a member that
	// joined after them holds nothing, and nothing else is assumed.
	seen := map[tp]string{}
	for id, m := range g.members {
		for p := range m.assigned {
			if o, ok := seen[p]; ok {
				return nil, fmt.Errorf("%w: cannot upgrade classic group %q: partition %d of topic %x is assigned to both %q and %q",
					meta.ErrGroupIDNotFound, cg.name, p.part, p.topic[:], o, id)
			}
			seen[p] = id
		}
	}
	// The classic group ends: its timers stop, parked calls rejoin.
	for _, t := range cg.pending {
		t.Stop()
	}
	clear(cg.pending)
	if cg.rebalance != nil {
		cg.rebalance.Stop()
		cg.rebalance = nil
	}
	cg.stopInitialDelayLocked()
	cg.stopSyncTimerLocked()
	for _, cm := range cg.members {
		cm.stop(meta.ErrRebalanceInProgress)
	}
	cg.dead = true
	delete(c.groups, cg.name)
	c.consumers[g.name] = g
	delete(c.emptySince, g.name)
	for _, m := range g.members {
		g.resetSessionLocked(m)
	}
	// The topics' signature as of now, so that the joining heartbeat's
	// own change is what bumps the epoch.
	all := []meta.Topic{}
	for _, t := range byName {
		all = append(all, t)
	}
	g.topicsSig = g.topicsSigLocked(all, byName)
	g.subsStale = true
	return g, nil
}

// maybeDowngrade turns g back into a classic group when only classic
// members are left (the downgrade above), policy permitting. Callers must
// not hold g.mu.
func (c *Coordinator) maybeDowngrade(g *kgroup) {
	if !c.cfg.downgradeEnabled() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || len(g.members) == 0 || c.consumers[g.name] != g || c.groups[g.name] != nil {
		return
	}
	for _, m := range g.members {
		if m.classic == nil {
			return
		}
	}
	_, byID := c.topicMaps()
	cg := &cgroup{c: c, name: g.name, members: map[string]*cmember{}, pending: map[string]*time.Timer{},
		instances: map[string]string{}, state: groupStable, generation: g.epoch, protocolType: "consumer"}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		m.stopTimers()
		// What it holds, revoking included: it keeps them until the
		// classic rebalance (its client's own protocol) moves them.
		held := make(map[tp]bool, len(m.assigned)+len(m.revoking))
		for p := range m.assigned {
			held[p] = true
		}
		for p := range m.revoking {
			held[p] = true
		}
		cm := &cmember{id: id, instanceID: m.instanceID, clientID: m.clientID, host: m.host,
			protocols: m.classic.protocols, session: m.classic.session, rebalance: m.rebalanceTimeout,
			joined: true, synced: true, assignment: encodeAssignment(held, byID, m.classic.version)}
		cg.members[id] = cm
		if cm.instanceID != "" {
			cg.instances[cm.instanceID] = id
		}
	}
	cg.leader = ids[0]
	cg.protocol = g.members[ids[0]].classic.protocol
	g.dead = true
	delete(c.consumers, g.name)
	c.groups[cg.name] = cg
	cg.mu.Lock()
	for _, cm := range cg.members {
		cm.resetSession(cg)
	}
	// Kafka rebalances after a downgrade: every member rejoins under the
	// classic protocol.
	cg.prepareLocked()
	cg.mu.Unlock()
}

// classicJoinLocked serves a JoinGroup of a classic member into the
// consumer group g (see the top of this file).
func (g *kgroup) classicJoinLocked(req meta.JoinGroupRequest) (meta.JoinGroupResult, error) {
	if req.ProtocolType != "consumer" {
		return meta.JoinGroupResult{}, fmt.Errorf("%w: group %q is a consumer-protocol group; a classic member must use protocol type \"consumer\", not %q",
			meta.ErrInconsistentProtocol, g.name, req.ProtocolType)
	}
	for _, o := range g.members {
		if o.classic != nil && o.id != req.MemberID && !sharesProtocol(o.classic.protocols, req.Protocols) {
			return meta.JoinGroupResult{}, fmt.Errorf("%w: member offers no protocol that the group's other classic members offer",
				meta.ErrInconsistentProtocol)
		}
	}
	sub, err := decodeSubscription(req.Protocols[0].Metadata)
	if err != nil {
		return meta.JoinGroupResult{}, fmt.Errorf("%w: protocol %q's metadata is not the consumer protocol's Subscription: %v",
			meta.ErrInconsistentProtocol, req.Protocols[0].Name, err)
	}
	id := req.MemberID
	if id == "" {
		id = newMemberID(req.ClientID)
		if req.RequireKnownMember && req.InstanceID == "" {
			// As Kafka: the id is not kept; the member is created when it
			// joins with it.
			return meta.JoinGroupResult{MemberID: id, Generation: -1}, meta.ErrMemberIDRequired
		}
	}
	m := g.members[id]
	changed := false
	if req.InstanceID != "" {
		if oid, ok := g.instances[req.InstanceID]; ok && oid != id && g.members[oid] != nil {
			if m != nil {
				return meta.JoinGroupResult{}, meta.ErrFencedInstanceID
			}
			// A static member comes back under a new member id: it
			// takes over the old one's epoch and partitions.
			prior := g.members[oid]
			m = &kmember{id: id, instanceID: req.InstanceID, epoch: prior.epoch, prevEpoch: prior.prevEpoch,
				assigned: prior.assigned, revoking: prior.revoking, state: prior.state,
				topics: prior.topics, regex: prior.regex, re: prior.re, assignor: prior.assignor}
			prior.stopTimers()
			delete(g.members, oid)
			if t, ok := g.target[oid]; ok {
				g.target[id] = t
				delete(g.target, oid)
			}
			g.members[id] = m
			g.instances[req.InstanceID] = id
			if m.state == memberUnrevoked {
				g.startRevokeTimerLocked(m)
			}
		} else if m != nil && m.instanceID != req.InstanceID {
			return meta.JoinGroupResult{}, meta.ErrFencedInstanceID
		}
	}
	if m == nil {
		if nmem := len(g.members); nmem >= g.c.cfg.MaxMembersPerGroup {
			return meta.JoinGroupResult{}, fmt.Errorf("%w: group %q has %d members, the limit (sluice meta --max-members-per-group)",
				meta.ErrGroupMaxSizeReached, g.name, nmem)
		}
		m = &kmember{id: id, instanceID: req.InstanceID, assigned: map[tp]bool{}, revoking: map[tp]bool{}}
		g.members[id] = m
		if m.instanceID != "" {
			g.instances[m.instanceID] = id
		}
		g.emptySince = time.Time{}
		changed = true
	} else if m.classic == nil {
		// A consumer-protocol member cannot turn classic under the
		// same member id.
		return meta.JoinGroupResult{}, fmt.Errorf("%w: member %q uses the consumer protocol", meta.ErrUnknownMemberID, id)
	}
	m.classic = &classicInfo{protocols: req.Protocols, protocol: req.Protocols[0].Name, session: req.SessionTimeout, version: sub.version}
	m.staticLeft = false
	m.clientID, m.host = req.ClientID, req.ClientHost
	if sub.rack != "" {
		m.rack = sub.rack
	}
	m.rebalanceTimeout = req.RebalanceTimeout
	if m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = req.SessionTimeout
	}
	if !slices.Equal(sub.topics, m.topics) {
		m.topics, changed = sub.topics, true
	}
	if m.regex != "" || m.assignor != "" {
		m.regex, m.re, m.assignor, changed = "", nil, "", true
	}
	g.resetSessionLocked(m)
	g.refreshTargetLocked(changed)
	byName, _ := g.c.topicMaps()
	g.reconcileLocked(m, true, ownedPartitions(sub.owned, byName))
	return meta.JoinGroupResult{Generation: m.epoch, ProtocolType: "consumer", Protocol: m.classic.protocol, MemberID: m.id}, nil
}

func sharesProtocol(a, b []meta.GroupProtocol) bool {
	for _, p := range a {
		if offers(b, p.Name) {
			return true
		}
	}
	return false
}

// classicMemberLocked finds the classic member a Sync, Heartbeat or
// commit names, as Kafka validates it: by instance id when one is sent.
func (g *kgroup) classicMemberLocked(memberID, instanceID string, generation int32) (*kmember, error) {
	var m *kmember
	if instanceID != "" {
		oid, ok := g.instances[instanceID]
		if !ok {
			return nil, meta.ErrUnknownMemberID
		}
		if oid != memberID {
			return nil, meta.ErrFencedInstanceID
		}
	}
	m = g.members[memberID]
	switch {
	case m == nil:
		return nil, meta.ErrUnknownMemberID
	case m.classic == nil:
		return nil, fmt.Errorf("%w: member %q uses the consumer protocol", meta.ErrUnknownMemberID, memberID)
	case generation != m.epoch:
		return nil, fmt.Errorf("%w: generation %d, the member's epoch is %d", meta.ErrIllegalGeneration, generation, m.epoch)
	}
	return m, nil
}

// classicSyncLocked serves a SyncGroup of a classic member of g: its
// assigned partitions (leader assignments, if any are sent, are ignored:
// the coordinator assigns).
func (g *kgroup) classicSyncLocked(req meta.SyncGroupRequest) (meta.SyncGroupResult, error) {
	m, err := g.classicMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return meta.SyncGroupResult{}, err
	}
	g.resetSessionLocked(m)
	if g.epoch > m.epoch && m.state != memberUnrevoked {
		// The group moved on since its join: rejoin first (Kafka's
		// throwIfRebalanceInProgress).
		return meta.SyncGroupResult{}, meta.ErrRebalanceInProgress
	}
	_, byID := g.c.topicMaps()
	m.sentVersion = m.version
	return meta.SyncGroupResult{ProtocolType: "consumer", Protocol: m.classic.protocol,
		Assignment: encodeAssignment(m.assigned, byID, m.classic.version)}, nil
}

// classicHeartbeatLocked serves a Heartbeat of a classic member of g:
// REBALANCE_IN_PROGRESS when it must rejoin.
func (g *kgroup) classicHeartbeatLocked(memberID, instanceID string, generation int32) error {
	m, err := g.classicMemberLocked(memberID, instanceID, generation)
	if err != nil {
		return err
	}
	g.resetSessionLocked(m)
	g.refreshTargetLocked(false)
	switch {
	case m.epoch < g.epoch, m.state == memberUnrevoked:
		return meta.ErrRebalanceInProgress
	case m.state == memberUnreleased:
		for p := range g.target[m.id] {
			if !m.assigned[p] && !g.heldLocked(m, p) {
				return meta.ErrRebalanceInProgress // it can have more now
			}
		}
	}
	return nil
}

// classicLeaveLocked removes classic members of g (LeaveGroup); one
// error per member.
func (g *kgroup) classicLeaveLocked(members []meta.LeavingMember) []error {
	errs := make([]error, len(members))
	for i, lm := range members {
		id := lm.MemberID
		if id == "" && lm.InstanceID != "" {
			id = g.instances[lm.InstanceID]
		}
		m := g.members[id]
		switch {
		case m == nil:
			errs[i] = meta.ErrUnknownMemberID
		case lm.InstanceID != "" && m.instanceID != lm.InstanceID:
			errs[i] = meta.ErrFencedInstanceID
		default:
			g.removeLocked(m)
		}
	}
	return errs
}

// classicDescriptions returns the classic members of the consumer group
// named group with their protocol metadata and encoded assignment
// (DescribeGroups).
func (c *Coordinator) classicDescriptions(group string) map[string]meta.GroupMemberDescription {
	g, _ := c.lockConsumerGroup(group, false)
	if g == nil {
		return nil
	}
	defer g.mu.Unlock()
	var out map[string]meta.GroupMemberDescription
	var byID map[meta.TopicID]meta.Topic
	for id, m := range g.members {
		if m.classic == nil {
			continue
		}
		if out == nil {
			out = map[string]meta.GroupMemberDescription{}
			_, byID = c.topicMaps()
		}
		var md []byte
		for _, p := range m.classic.protocols {
			if p.Name == m.classic.protocol {
				md = p.Metadata
			}
		}
		out[id] = meta.GroupMemberDescription{MemberID: id, Metadata: md, Assignment: encodeAssignment(m.assigned, byID, m.classic.version)}
	}
	return out
}

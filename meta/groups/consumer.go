package groups

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"sluice.dev/meta"
)

// The KIP-848 consumer group protocol (ConsumerGroupHeartbeat,
// ConsumerGroupDescribe): the coordinator computes the assignment.
//
// Epochs. The group epoch counts changes of what the assignment depends
// on: members joining or leaving, subscriptions and the assignor
// changing, and the subscribed topics' metadata (a new topic matching a
// regular expression, new partitions). When a heartbeat finds the group
// epoch ahead of the assignment epoch, the target assignment is
// recomputed by the group's assignor and the assignment epoch catches
// up. Each member has its own member epoch: the assignment epoch it has
// reconciled to.
//
// Reconciliation, one member at a time, in its heartbeats:
//
//	Stable ──target moved past the member's epoch──► (has partitions to give up?)
//	   ▲                                        yes │                 │ no
//	   │                                            ▼                 ▼
//	   │                        UnrevokedPartitions: answered with   epoch := assignment epoch,
//	   │                        what it keeps; waits for a full      takes the target partitions
//	   │                        heartbeat whose owned partitions     that nobody else holds
//	   │                        no longer include the revoked ones   │
//	   │                                            │                 ▼
//	   └──────────── all taken ◄── UnreleasedPartitions: takes the rest as their
//	                               previous owners acknowledge revoking them
//
// Invariant: a partition is in the assigned or revoking set of at most
// one member. A member is given a partition only when no other member
// holds it in either set, and a member leaves the revoking set only when
// its heartbeat no longer lists the partitions as owned (or it is gone:
// left, fenced, or its session expired). So no partition is ever
// assigned to two members at once, as seen by the members themselves.
//
// Timers: a member's session (Config.ConsumerSessionTimeout, Kafka's
// group.consumer.session.timeout.ms) restarts at every heartbeat; when it
// runs out the member is removed and the group epoch bumps. A member
// that does not acknowledge a revocation within its rebalance timeout is
// removed the same way (Kafka fences it). A static member
// (group.instance.id) that leaves with epoch -2 keeps its assignment
// until its session runs out, so that it can come back (with a new
// member id) to the same partitions without a rebalance.
//
// Classic and consumer members in one group (Kafka 4's online upgrade
// and downgrade) are in mixed.go. With the migration policy disabled a
// ConsumerGroupHeartbeat for a group that has classic members gets
// GROUP_ID_NOT_FOUND and a JoinGroup for a group with consumer members
// gets INCONSISTENT_GROUP_PROTOCOL.
//
// Membership is in memory, as for classic groups: after a meta restart
// members get UNKNOWN_MEMBER_ID, rejoin with a new member id and resume
// from their committed offsets (which are durable).

// Consumer-protocol defaults, Kafka's (group.consumer.session.timeout.ms,
// group.consumer.heartbeat.interval.ms).
const (
	defaultConsumerSessionTimeout    = 45 * time.Second
	defaultConsumerHeartbeatInterval = 5 * time.Second
)

// TopicSource lists the cluster's topics (all of them, any order); the
// coordinator resolves subscriptions and regular expressions against it.
// It may take the controller's read lock.
type TopicSource func() []meta.Topic

// SetTopics gives the coordinator the topic metadata consumer-protocol
// groups are assigned from. Call it once, before serving.
func (c *Coordinator) SetTopics(f TopicSource) { c.topics = f }

type memberState int8

const (
	memberStable     memberState = iota
	memberUnrevoked              // waits for the member to give up partitions
	memberUnreleased             // waits for other members to give up partitions
)

// kgroup is a consumer-protocol group. Its fields are guarded by mu,
// taken after Coordinator.mu, never before.
type kgroup struct {
	c           *Coordinator
	mu          sync.Mutex
	name        string
	dead        bool // dropped from Coordinator.consumers; set under both locks
	epoch       int32
	assignEpoch int32
	assignor    string // the assignor of the current target
	members     map[string]*kmember
	instances   map[string]string // instance id → member id
	target      map[string]map[tp]bool
	// topicsSig describes the subscribed topics as last seen (name, id,
	// partitions); a change bumps the epoch.
	topicsSig string
	// The union of the members' subscriptions (subscriptionLocked),
	// rebuilt when subsStale.
	subNames   []string
	subRes     []*regexp.Regexp
	subsStale  bool
	emptySince time.Time
}

type kmember struct {
	id, instanceID, rack string
	clientID, host       string
	epoch, prevEpoch     int32
	state                memberState
	rebalanceTimeout     time.Duration
	topics               []string
	regex                string
	re                   *regexp.Regexp
	assignor             string
	assigned             map[tp]bool
	revoking             map[tp]bool
	// sentVersion and version tell whether the member has been sent its
	// current assignment; version bumps when assigned changes.
	version, sentVersion int64
	staticLeft           bool // left with epoch -2: kept until its session ends
	// classic is set for a member that speaks the classic protocol
	// (JoinGroup, SyncGroup, Heartbeat) in a mixed group (mixed.go).
	classic     *classicInfo
	timer       *time.Timer
	revokeTimer *time.Timer
}

func (m *kmember) stopTimers() {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
}

// consumerGroup returns the named consumer group, creating it when create
// is set. A name held by a classic group with members is refused.
func (c *Coordinator) consumerGroup(name string, create bool) (*kgroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.consumers[name]
	if g != nil || !create {
		return g, nil
	}
	if cg := c.groups[name]; cg != nil {
		cg.mu.Lock()
		members, pending := len(cg.members), len(cg.pending)
		switch {
		case members > 0 && c.cfg.upgradeEnabled():
			// The online upgrade (mixed.go).
			k, err := c.upgradeLocked(cg)
			cg.mu.Unlock()
			return k, err
		case members > 0:
			cg.mu.Unlock()
			return nil, fmt.Errorf("%w: group %q is a classic group with members, and the online upgrade to the consumer protocol is off (sluice meta --group-consumer-migration-policy=%s)",
				meta.ErrGroupIDNotFound, name, c.cfg.MigrationPolicy)
		case pending > 0:
			cg.mu.Unlock()
			return nil, fmt.Errorf("%w: group %q is a classic group that has handed out member ids to join it",
				meta.ErrGroupIDNotFound, name)
		}
		cg.mu.Unlock()
	}
	if !c.offs.HasOffsets(name) {
		if n := len(c.groups) + len(c.consumers) + c.offs.CountNotIn(c.live); n >= c.cfg.MaxGroups {
			return nil, fmt.Errorf("%w: the cluster has %d groups, the limit (sluice meta --max-groups)", meta.ErrTooManyGroups, n)
		}
	}
	g = &kgroup{c: c, name: name, members: map[string]*kmember{}, instances: map[string]string{},
		target: map[string]map[tp]bool{}, assignor: assignors[0]}
	c.consumers[name] = g
	delete(c.emptySince, name)
	return g, nil
}

// lockConsumerGroup is lockGroup for consumer groups.
func (c *Coordinator) lockConsumerGroup(name string, create bool) (*kgroup, error) {
	for {
		g, err := c.consumerGroup(name, create)
		if g == nil {
			return nil, err
		}
		g.mu.Lock()
		if !g.dead {
			return g, nil
		}
		g.mu.Unlock()
	}
}

// dropConsumerIfEmpty removes g when it has no members. Callers must
// not hold g.mu.
func (c *Coordinator) dropConsumerIfEmpty(g *kgroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || len(g.members) > 0 || c.consumers[g.name] != g {
		return
	}
	g.dead = true
	delete(c.consumers, g.name)
	if c.offs.HasOffsets(g.name) {
		since := g.emptySince
		if since.IsZero() {
			since = time.Now()
		}
		c.emptySince[g.name] = since
	}
}

// ConsumerHeartbeat serves a ConsumerGroupHeartbeat: joins, leaves,
// keeps the session, and reconciles the member towards its target.
func (c *Coordinator) ConsumerHeartbeat(req meta.ConsumerHeartbeatRequest) (meta.ConsumerHeartbeatResult, error) {
	var res meta.ConsumerHeartbeatResult
	if req.Group == "" || len(req.Group) > meta.MaxGroupIDBytes {
		return res, meta.ErrInvalidGroupID
	}
	if req.MemberEpoch < meta.MemberEpochStaticLeave {
		return res, fmt.Errorf("%w: member epoch %d", meta.ErrInvalidRequest, req.MemberEpoch)
	}
	if req.MemberID == "" && req.MemberEpoch != meta.MemberEpochJoin {
		return res, fmt.Errorf("%w: MemberId can't be empty", meta.ErrInvalidRequest)
	}
	if len(req.MemberID) > meta.MaxGroupIDBytes || len(req.InstanceID) > meta.MaxGroupIDBytes || len(req.Regex) > meta.MaxGroupIDBytes {
		return res, fmt.Errorf("%w: member id, instance id or regular expression longer than %d bytes", meta.ErrInvalidRequest, meta.MaxGroupIDBytes)
	}
	n := 0
	for _, t := range req.SubscribedTopics {
		n += len(t)
	}
	for _, o := range req.Owned {
		n += 16 + 4*len(o.Partitions)
	}
	if n > meta.MaxMemberMetadataBytes {
		return res, fmt.Errorf("%w: heartbeat of %d bytes of subscription and owned partitions, the limit is %d",
			meta.ErrInvalidRequest, n, meta.MaxMemberMetadataBytes)
	}
	var re *regexp.Regexp
	if req.RegexSet && req.Regex != "" {
		var err error
		// Kafka matches a topic's whole name (RE2J's matches()).
		if re, err = regexp.Compile("^(?:" + req.Regex + ")$"); err != nil {
			return res, fmt.Errorf("%w: %v", meta.ErrInvalidRegularExpression, err)
		}
	}
	if req.AssignorSet && req.Assignor != "" && !knownAssignor(req.Assignor) {
		return res, fmt.Errorf("%w: %q (this coordinator has %v)", meta.ErrUnsupportedAssignor, req.Assignor, assignors)
	}
	if req.MemberEpoch == meta.MemberEpochJoin {
		switch {
		case req.RebalanceTimeoutMs <= 0:
			return res, fmt.Errorf("%w: RebalanceTimeoutMs must be provided in first request", meta.ErrInvalidRequest)
		case !req.SubscribedTopicsSet && !req.RegexSet:
			return res, fmt.Errorf("%w: SubscribedTopicNames or SubscribedTopicRegex must be set in first request", meta.ErrInvalidRequest)
		case !req.OwnedSet || len(req.Owned) > 0:
			return res, fmt.Errorf("%w: TopicPartitions must be empty when (re-)joining", meta.ErrInvalidRequest)
		}
	}
	leaving := req.MemberEpoch < 0
	g, err := c.lockConsumerGroup(req.Group, !leaving)
	if err != nil {
		return res, err
	}
	if g == nil {
		return res, meta.ErrUnknownMemberID
	}
	res, err = g.heartbeatLocked(req, re)
	empty := len(g.members) == 0
	g.mu.Unlock()
	if empty {
		c.dropConsumerIfEmpty(g)
	} else if leaving {
		c.maybeDowngrade(g) // the last consumer-protocol member may have left (mixed.go)
	}
	return res, err
}

func (c *Coordinator) heartbeatInterval() int32 {
	return int32(c.cfg.ConsumerHeartbeatInterval.Milliseconds())
}

func (g *kgroup) heartbeatLocked(req meta.ConsumerHeartbeatRequest, re *regexp.Regexp) (meta.ConsumerHeartbeatResult, error) {
	res := meta.ConsumerHeartbeatResult{HeartbeatIntervalMs: g.c.heartbeatInterval()}
	m := g.members[req.MemberID]
	if m != nil && m.classic != nil && req.MemberEpoch != meta.MemberEpochJoin {
		// A classic member of a mixed group speaks JoinGroup and
		// Heartbeat (mixed.go).
		return res, fmt.Errorf("%w: member %q uses the classic protocol", meta.ErrUnknownMemberID, m.id)
	}
	// changed: what the assignment depends on changed; the group epoch
	// bumps once for all of it.
	changed := false
	switch {
	case req.MemberEpoch < 0:
		if m == nil {
			return res, meta.ErrUnknownMemberID
		}
		if req.InstanceID != "" && m.instanceID != req.InstanceID {
			return res, meta.ErrFencedInstanceID
		}
		res.MemberID, res.MemberEpoch = m.id, req.MemberEpoch
		if req.MemberEpoch == meta.MemberEpochStaticLeave && m.instanceID != "" {
			// Kept, partitions and all, until its session ends or its
			// instance comes back.
			m.staticLeft = true
			m.prevEpoch, m.epoch = m.epoch, meta.MemberEpochStaticLeave
			g.resetSessionLocked(m)
			return res, nil
		}
		g.removeLocked(m)
		return res, nil

	case req.MemberEpoch == meta.MemberEpochJoin:
		if req.MemberID == "" {
			req.MemberID = newMemberID(req.ClientID) // v0: the coordinator names members
		}
		m = g.members[req.MemberID]
		var prior *kmember
		if req.InstanceID != "" {
			if oid, ok := g.instances[req.InstanceID]; ok && oid != req.MemberID {
				prior = g.members[oid]
				if prior != nil && !prior.staticLeft {
					return res, fmt.Errorf("%w: instance %q is held by member %q", meta.ErrUnreleasedInstanceID, req.InstanceID, oid)
				}
			}
		}
		switch {
		case m != nil:
			// Rejoin of a known member (after a fence or a lost
			// response): it owns nothing now, so what it held is free.
			if req.InstanceID != "" && m.instanceID != req.InstanceID {
				return res, meta.ErrFencedInstanceID
			}
			g.releaseLocked(m)
			m.epoch, m.prevEpoch, m.state = 0, 0, memberStable
			if m.classic != nil {
				// A classic member of a mixed group switching to the
				// consumer protocol under its member id.
				m.classic, changed = nil, true
			}
		case prior != nil:
			// A static member comes back under a new member id: it
			// takes over the old member's epoch and assignment.
			m = &kmember{id: req.MemberID, instanceID: req.InstanceID, epoch: prior.prevEpoch,
				assigned: prior.assigned, revoking: prior.revoking, state: prior.state,
				topics: prior.topics, regex: prior.regex, re: prior.re, assignor: prior.assignor}
			prior.stopTimers()
			delete(g.members, prior.id)
			if t, ok := g.target[prior.id]; ok {
				g.target[m.id] = t
				delete(g.target, prior.id)
			}
			g.members[m.id] = m
			g.instances[m.instanceID] = m.id
			if m.state == memberUnrevoked {
				g.startRevokeTimerLocked(m)
			}
		default:
			if nmem := len(g.members); nmem >= g.c.cfg.MaxMembersPerGroup {
				return res, fmt.Errorf("%w: group %q has %d members, the limit (sluice meta --max-members-per-group)",
					meta.ErrGroupMaxSizeReached, g.name, nmem)
			}
			m = &kmember{id: req.MemberID, instanceID: req.InstanceID, assigned: map[tp]bool{}, revoking: map[tp]bool{}}
			g.members[m.id] = m
			if m.instanceID != "" {
				g.instances[m.instanceID] = m.id
			}
			g.emptySince = time.Time{}
			changed = true
		}
		m.version++ // a join is always answered with the assignment

	default:
		if m == nil {
			return res, meta.ErrUnknownMemberID
		}
		if req.InstanceID != "" && m.instanceID != req.InstanceID {
			return res, meta.ErrFencedInstanceID
		}
		if err := g.checkEpochLocked(m, req); err != nil {
			return res, err
		}
	}
	m.staticLeft = false
	if req.ClientID != "" || req.ClientHost != "" {
		m.clientID, m.host = req.ClientID, req.ClientHost
	}
	if req.RackID != "" {
		m.rack = req.RackID
	}
	if req.RebalanceTimeoutMs > 0 {
		m.rebalanceTimeout = min(time.Duration(req.RebalanceTimeoutMs)*time.Millisecond, maxSessionTimeout)
	}
	if m.rebalanceTimeout <= 0 {
		m.rebalanceTimeout = g.c.cfg.ConsumerSessionTimeout
	}
	if req.SubscribedTopicsSet {
		topics := slices.Clone(req.SubscribedTopics)
		slices.Sort(topics)
		topics = slices.Compact(topics)
		if !slices.Equal(topics, m.topics) {
			m.topics, changed = topics, true
		}
	}
	if req.RegexSet && req.Regex != m.regex {
		m.regex, m.re, changed = req.Regex, re, true
	}
	if req.AssignorSet && req.Assignor != m.assignor {
		m.assignor, changed = req.Assignor, true
	}
	g.resetSessionLocked(m)
	g.refreshTargetLocked(changed)
	g.reconcileLocked(m, req.OwnedSet, req.Owned)
	res.MemberID, res.MemberEpoch = m.id, m.epoch
	if req.OwnedSet || m.version != m.sentVersion {
		res.AssignmentSet = true
		res.Assignment = toTopicPartitions(m.assigned)
		m.sentVersion = m.version
	}
	return res, nil
}

// checkEpochLocked applies Kafka's epoch rule: the member's epoch, or its
// previous one when the response that moved it on was lost (then the
// partitions it reports owning must all be assigned to it).
func (g *kgroup) checkEpochLocked(m *kmember, req meta.ConsumerHeartbeatRequest) error {
	if req.MemberEpoch == m.epoch {
		return nil
	}
	if req.MemberEpoch < m.epoch && req.MemberEpoch == m.prevEpoch && req.OwnedSet {
		for _, o := range req.Owned {
			for _, p := range o.Partitions {
				if !m.assigned[tp{o.TopicID, p}] {
					return fmt.Errorf("%w: epoch %d, the member is at %d", meta.ErrFencedMemberEpoch, req.MemberEpoch, m.epoch)
				}
			}
		}
		m.version++ // resend the assignment the member missed
		return nil
	}
	return fmt.Errorf("%w: epoch %d, the member is at %d", meta.ErrFencedMemberEpoch, req.MemberEpoch, m.epoch)
}

// subscriptionLocked is what the group's members subscribe to, as a
// union: the topic names they list and their distinct expressions. It is
// rebuilt only after a subscription or the membership changed
// (g.subsStale), so that a keepalive costs O(topics of the cluster), not
// O(members × topics).
func (g *kgroup) subscriptionLocked() ([]string, []*regexp.Regexp) {
	if g.subsStale || g.subNames == nil {
		names := map[string]bool{}
		res := map[string]*regexp.Regexp{}
		for _, m := range g.members {
			for _, n := range m.topics {
				names[n] = true
			}
			if m.re != nil {
				res[m.regex] = m.re
			}
		}
		g.subNames = make([]string, 0, len(names))
		for n := range names {
			g.subNames = append(g.subNames, n)
		}
		g.subRes = g.subRes[:0]
		for _, re := range res {
			g.subRes = append(g.subRes, re)
		}
		g.subsStale = false
	}
	return g.subNames, g.subRes
}

// topicsSigLocked describes the subscribed topics that exist (name, id,
// partitions, in name order); a change of it bumps the group epoch.
func (g *kgroup) topicsSigLocked(all []meta.Topic, byName map[string]meta.Topic) string {
	names, res := g.subscriptionLocked()
	used := map[string]bool{}
	for _, n := range names {
		if _, ok := byName[n]; ok {
			used[n] = true
		}
	}
	if len(res) > 0 {
		for _, t := range all {
			if used[t.Name] {
				continue
			}
			for _, re := range res {
				if re.MatchString(t.Name) {
					used[t.Name] = true
					break
				}
			}
		}
	}
	sorted := make([]string, 0, len(used))
	for n := range used {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	sig := make([]byte, 0, 56*len(sorted))
	for _, n := range sorted {
		t := byName[n]
		sig = append(sig, n...)
		sig = append(sig, '/')
		sig = hex.AppendEncode(sig, t.ID[:])
		sig = append(sig, '/')
		sig = strconv.AppendInt(sig, int64(t.Partitions), 10)
		sig = append(sig, ';')
	}
	return string(sig)
}

// memberTopicsLocked resolves each member's subscription against the
// cluster's topics (for an assignment): its topic ids, and the partition
// counts of all of them.
func (g *kgroup) memberTopicsLocked(all []meta.Topic, byName map[string]meta.Topic) (map[string]map[meta.TopicID]bool, map[meta.TopicID]int32) {
	subs := make(map[string]map[meta.TopicID]bool, len(g.members))
	topics := map[meta.TopicID]int32{}
	// Members of a group usually share one expression: match each
	// distinct one once.
	matched := map[string][]meta.Topic{}
	for id, m := range g.members {
		s := map[meta.TopicID]bool{}
		for _, name := range m.topics {
			if t, ok := byName[name]; ok {
				s[t.ID] = true
				topics[t.ID] = t.Partitions
			}
		}
		if m.re != nil {
			ts, ok := matched[m.regex]
			if !ok {
				for _, t := range all {
					if m.re.MatchString(t.Name) {
						ts = append(ts, t)
					}
				}
				matched[m.regex] = ts
			}
			for _, t := range ts {
				s[t.ID] = true
				topics[t.ID] = t.Partitions
			}
		}
		subs[id] = s
	}
	return subs, topics
}

// refreshTargetLocked bumps the group epoch when the subscribed topics
// changed (new topics matching a regular expression, new partitions,
// deleted topics) and recomputes the target assignment when the group
// epoch is ahead of it.
func (g *kgroup) refreshTargetLocked(changed bool) {
	if changed {
		g.subsStale = true
	}
	var all []meta.Topic
	if g.c.topics != nil {
		all = g.c.topics()
	}
	byName := make(map[string]meta.Topic, len(all))
	for _, t := range all {
		byName[t.Name] = t
	}
	if sig := g.topicsSigLocked(all, byName); sig != g.topicsSig || changed {
		g.topicsSig = sig
		g.epoch++
	}
	if g.assignEpoch == g.epoch {
		return
	}
	subs, topics := g.memberTopicsLocked(all, byName)
	g.assignor = g.preferredAssignorLocked()
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	in := make([]assignMember, len(ids))
	for i, id := range ids {
		cur := make([]tp, 0, len(g.target[id]))
		for p := range g.target[id] {
			cur = append(cur, p)
		}
		in[i] = assignMember{id: id, topics: subs[id], current: cur}
	}
	out := assign(g.assignor, in, topics)
	g.target = make(map[string]map[tp]bool, len(out))
	for id, ps := range out {
		s := make(map[tp]bool, len(ps))
		for _, p := range ps {
			s[p] = true
		}
		g.target[id] = s
	}
	g.assignEpoch = g.epoch
}

// preferredAssignorLocked is the assignor most members name (ties: the
// earlier in the preference list), or the default when none names one.
func (g *kgroup) preferredAssignorLocked() string {
	votes := map[string]int{}
	for _, m := range g.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := assignors[0]
	for _, a := range assignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// heldLocked reports whether a member other than m holds p, assigned or
// being revoked.
func (g *kgroup) heldLocked(m *kmember, p tp) bool {
	for _, o := range g.members {
		if o != m && (o.assigned[p] || o.revoking[p]) {
			return true
		}
	}
	return false
}

// reconcileLocked moves m towards its target (the state machine at the
// top of this file). owned is what the member reports it owns, when
// ownedSet.
func (g *kgroup) reconcileLocked(m *kmember, ownedSet bool, owned []meta.TopicPartitions) {
	target := g.target[m.id]
	if m.state == memberUnrevoked {
		if !ownedSet {
			return
		}
		for _, o := range owned {
			for _, p := range o.Partitions {
				if m.revoking[tp{o.TopicID, p}] {
					return // still owned: not revoked yet
				}
			}
		}
		clear(m.revoking)
		if m.revokeTimer != nil {
			m.revokeTimer.Stop()
			m.revokeTimer = nil
		}
		// Revoked. The target may have moved again meanwhile, so
		// what it kept is checked against the current one below
		// (found by the randomised test: jumping straight to the
		// assignment epoch let a member keep a partition its new
		// target gave someone else).
		m.state = memberStable
	}
	if m.epoch == g.assignEpoch {
		if m.state == memberUnreleased {
			g.acquireLocked(m, target)
		}
		return
	}
	var revoke []tp
	for p := range m.assigned {
		if !target[p] {
			revoke = append(revoke, p)
		}
	}
	if len(revoke) > 0 {
		for _, p := range revoke {
			delete(m.assigned, p)
			m.revoking[p] = true
		}
		m.state = memberUnrevoked
		m.version++
		g.startRevokeTimerLocked(m)
		return
	}
	m.prevEpoch, m.epoch = m.epoch, g.assignEpoch
	m.version++ // the epoch moved: tell the member even if nothing else did
	g.acquireLocked(m, target)
}

// acquireLocked gives m the partitions of its target that nobody else
// holds; the member is Stable when it has them all.
func (g *kgroup) acquireLocked(m *kmember, target map[tp]bool) {
	missing := false
	for p := range target {
		if m.assigned[p] {
			continue
		}
		if g.heldLocked(m, p) {
			missing = true
			continue
		}
		m.assigned[p] = true
		m.version++
	}
	if missing {
		m.state = memberUnreleased
	} else {
		m.state = memberStable
	}
}

// releaseLocked forgets what m holds (it rejoined owning nothing).
func (g *kgroup) releaseLocked(m *kmember) {
	clear(m.assigned)
	clear(m.revoking)
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
}

// removeLocked drops a member: its partitions are free, and the group
// epoch bumps so that the others get them.
func (g *kgroup) removeLocked(m *kmember) {
	m.stopTimers()
	delete(g.members, m.id)
	delete(g.target, m.id)
	g.subsStale = true
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	g.epoch++
	if len(g.members) == 0 {
		g.emptySince = time.Now()
	}
}

// expire removes m from its group from a timer, if it is still the
// member the timer was set for.
func (g *kgroup) expire(m *kmember, check func() bool) {
	g.mu.Lock()
	if g.members[m.id] != m || !check() {
		g.mu.Unlock()
		return
	}
	g.removeLocked(m)
	empty := len(g.members) == 0
	g.mu.Unlock()
	if empty {
		g.c.dropConsumerIfEmpty(g)
	} else if m.classic == nil {
		g.c.maybeDowngrade(g) // it may have been the last consumer-protocol member (mixed.go)
	}
}

func (g *kgroup) resetSessionLocked(m *kmember) {
	if m.timer != nil {
		m.timer.Stop()
	}
	session := g.c.cfg.ConsumerSessionTimeout
	if m.classic != nil {
		session = m.classic.session // a classic member's own (JoinGroup)
	}
	var t *time.Timer
	t = time.AfterFunc(session, func() {
		g.expire(m, func() bool { return m.timer == t })
	})
	m.timer = t
}

func (g *kgroup) startRevokeTimerLocked(m *kmember) {
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(m.rebalanceTimeout, func() {
		g.expire(m, func() bool { return m.revokeTimer == t && m.state == memberUnrevoked })
	})
	m.revokeTimer = t
}

func toTopicPartitions(s map[tp]bool) []meta.TopicPartitions {
	ps := make([]tp, 0, len(s))
	for p := range s {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, cmpTP)
	var out []meta.TopicPartitions
	for _, p := range ps {
		if len(out) == 0 || out[len(out)-1].TopicID != p.topic {
			out = append(out, meta.TopicPartitions{TopicID: p.topic})
		}
		out[len(out)-1].Partitions = append(out[len(out)-1].Partitions, p.part)
	}
	if out == nil {
		out = []meta.TopicPartitions{}
	}
	return out
}

func (g *kgroup) stateLocked() string {
	switch {
	case len(g.members) == 0:
		return "Empty"
	case g.assignEpoch != g.epoch:
		return "Assigning"
	}
	for _, m := range g.members {
		if m.epoch != g.assignEpoch || m.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// DescribeConsumer describes a consumer-protocol group
// (ConsumerGroupDescribe). ok is false when there is no such group: a
// classic group with members is reported by the caller as
// GROUP_ID_NOT_FOUND too, as Kafka does.
func (c *Coordinator) DescribeConsumer(group string) (d meta.ConsumerGroupDescription, ok bool) {
	g, _ := c.lockConsumerGroup(group, false)
	if g == nil {
		return meta.ConsumerGroupDescription{Group: group, State: "Dead"}, false
	}
	defer g.mu.Unlock()
	d = meta.ConsumerGroupDescription{Group: group, State: g.stateLocked(), GroupEpoch: g.epoch,
		AssignmentEpoch: g.assignEpoch, Assignor: g.assignor}
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		d.Members = append(d.Members, meta.ConsumerMemberDescription{MemberID: id, InstanceID: m.instanceID,
			RackID: m.rack, MemberEpoch: m.epoch, ClientID: m.clientID, ClientHost: m.host,
			SubscribedTopics: slices.Clone(m.topics), Regex: m.regex,
			Assignment: toTopicPartitions(m.assigned), TargetAssignment: toTopicPartitions(g.target[id]),
			Classic: m.classic != nil})
	}
	return d, true
}

// checkConsumerCommitLocked checks an OffsetCommit to a consumer group:
// a member commits at its own epoch (KIP-848: STALE_MEMBER_EPOCH below
// it, FENCED_MEMBER_EPOCH above); an outsider only while the group has no
// members.
func (g *kgroup) checkConsumerCommitLocked(req meta.OffsetCommitRequest) error {
	if req.MemberID == "" && req.Generation < 0 {
		if len(g.members) > 0 {
			return meta.ErrUnknownMemberID
		}
		return nil
	}
	m := g.members[req.MemberID]
	if m != nil && m.classic != nil {
		// A classic member of a mixed group commits at its member epoch
		// with any version; another epoch is ILLEGAL_GENERATION, as
		// Kafka answers classic members.
		_, err := g.classicMemberLocked(req.MemberID, req.InstanceID, req.Generation)
		return err
	}
	switch {
	case m == nil:
		return meta.ErrUnknownMemberID
	case req.APIVersion < 9:
		return fmt.Errorf("%w: OffsetCommit version 9 or above must be used by members using the consumer group protocol", meta.ErrUnsupported)
	case req.InstanceID != "" && m.instanceID != req.InstanceID:
		return meta.ErrFencedInstanceID
	case req.Generation > m.epoch:
		return meta.ErrFencedMemberEpoch
	case req.Generation < m.epoch:
		return meta.ErrStaleMemberEpoch
	}
	return nil
}

package groups

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"sluice.dev/meta"
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
// which are durable (meta/controller/offsets.go).
//
// Timers follow Kafka's classic coordinator (GroupCoordinator.scala):
//
//   - A member's session timer runs only while it is not parked: a member
//     whose JoinGroup or SyncGroup waits is kept, however long the
//     rebalance takes. (Expiring it after its session timeout, as this
//     coordinator once did, expelled every fast member of a rebalance
//     that waited for a slow one: with real client defaults any rebalance
//     longer than 45 s thrashed.) The timer restarts when the wait ends.
//   - The join phase is bounded by the longest rebalance timeout of the
//     members; members that did not rejoin by then are removed.
//   - A join phase that begins with the group empty waits
//     Config.InitialRebalanceDelay before it may complete, extended by
//     as much for each member that joins meanwhile, within the first
//     member's rebalance timeout (Kafka's InitialDelayedJoin).
//   - The sync phase is bounded the same way: members that did not send
//     SyncGroup within the rebalance timeout after the join phase ended
//     are removed and the group rebalances (Kafka's pending-sync timer),
//     so a leader that never assigns cannot hold its followers parked.
//
// Nothing here grows without bound (issue 11): a member id handed out
// with MEMBER_ID_REQUIRED is forgotten after the session timeout unless
// it joins; a group with no members and no pending ids is dropped from
// memory (its committed offsets stay, and list and describe as an Empty
// group until they expire, meta/controller/offsets.go); the number of
// groups and of members per group are bounded by Config.

// Config bounds what clients can make the coordinator keep. Zero
// values take the defaults below.
type Config struct {
	// MaxGroups bounds the groups of the cluster: groups with members or
	// pending member ids, and groups that only have committed offsets.
	// Every group costs memory in meta, and its offsets a store row per
	// partition. Default 100,000 (`sluice meta --max-groups`).
	MaxGroups int
	// MaxMembersPerGroup bounds a group's members plus the member ids
	// handed out with MEMBER_ID_REQUIRED that have not joined yet
	// (Kafka's group.max.size, whose default is unbounded). A rebalance
	// answers every member at once and the leader's JoinGroup answer
	// lists them all, so a group far past this would not work anyway.
	// Default 10,000 (`--max-members-per-group`).
	MaxMembersPerGroup int
	// OffsetsRetention is how long the committed offsets of a group
	// without members are kept after its last commit or after its last
	// member left, whichever is later (Kafka's offsets.retention.minutes,
	// KIP-211). Default 7 days (`--offsets-retention`).
	OffsetsRetention time.Duration

	// KIP-848 consumer groups (consumer.go).
	// ConsumerSessionTimeout removes a consumer-protocol member that has
	// not heartbeaten for this long (Kafka's
	// group.consumer.session.timeout.ms; default 45 s,
	// --group-consumer-session-timeout).
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is the interval consumer-protocol members
	// are told to heartbeat at (Kafka's
	// group.consumer.heartbeat.interval.ms; default 5 s,
	// --group-consumer-heartbeat-interval). Partitions move between
	// members at heartbeats, so it bounds how fast a rebalance is.
	ConsumerHeartbeatInterval time.Duration

	// Mixed groups (mixed.go).
	// MigrationPolicy is Kafka's group.consumer.migration.policy: which
	// online conversions between classic and consumer groups happen —
	// "bidirectional" (the default, as Kafka 4), "upgrade" (classic to
	// consumer only), "downgrade" (consumer back to classic only) or
	// "disabled" (no mixed groups: a consumer-protocol member cannot join
	// a classic group with members, nor a classic member a consumer
	// group). --group-consumer-migration-policy.
	MigrationPolicy string

	// InitialRebalanceDelay is how long the first rebalance of a classic
	// group without members waits for more members before it completes
	// (Kafka's group.initial.rebalance.delay.ms). Every member that joins
	// while it waits extends the wait by as much again, within the
	// rebalance timeout of the group's first member. Consumers started
	// together then form one generation instead of one per late joiner,
	// and the first of them does not read, and then hand over, partitions
	// meant for the others. Zero, the library's default, completes the
	// join as soon as every known member has joined; `sluice meta`
	// defaults to 3 s as Kafka does, the playground to 0 as Kafka's
	// development configuration (--group-initial-rebalance-delay).
	InitialRebalanceDelay time.Duration
}

const (
	defaultMaxGroups          = 100_000
	defaultMaxMembersPerGroup = 10_000
	defaultOffsetsRetention   = 7 * 24 * time.Hour
)

func (c Config) WithDefaults() (Config, error) {
	if c.MaxGroups == 0 {
		c.MaxGroups = defaultMaxGroups
	}
	if c.MaxMembersPerGroup == 0 {
		c.MaxMembersPerGroup = defaultMaxMembersPerGroup
	}
	if c.OffsetsRetention == 0 {
		c.OffsetsRetention = defaultOffsetsRetention
	}
	if c.ConsumerSessionTimeout == 0 {
		c.ConsumerSessionTimeout = defaultConsumerSessionTimeout
	}
	if c.ConsumerHeartbeatInterval == 0 {
		c.ConsumerHeartbeatInterval = defaultConsumerHeartbeatInterval
	}
	if c.MigrationPolicy == "" {
		c.MigrationPolicy = MigrationBidirectional
	}
	switch {
	case !slices.Contains(migrationPolicies, c.MigrationPolicy):
		return c, fmt.Errorf("meta: Config.Groups.MigrationPolicy %q is not one of %v (--group-consumer-migration-policy)", c.MigrationPolicy, migrationPolicies)
	case c.InitialRebalanceDelay < 0 || c.InitialRebalanceDelay > maxSessionTimeout:
		return c, fmt.Errorf("meta: Config.Groups.InitialRebalanceDelay %v is outside [0, %v] (--group-initial-rebalance-delay)", c.InitialRebalanceDelay, maxSessionTimeout)
	case c.MaxGroups < 0:
		return c, fmt.Errorf("meta: Config.Groups.MaxGroups %d < 0 (--max-groups)", c.MaxGroups)
	case c.MaxMembersPerGroup < 0:
		return c, fmt.Errorf("meta: Config.Groups.MaxMembersPerGroup %d < 0 (--max-members-per-group)", c.MaxMembersPerGroup)
	case c.OffsetsRetention < time.Minute:
		// Shorter would expire the offsets of a group whose members
		// are merely between two commits after a restart.
		return c, fmt.Errorf("meta: Config.Groups.OffsetsRetention %v < 1m (--offsets-retention)", c.OffsetsRetention)
	case c.ConsumerSessionTimeout < minSessionTimeout || c.ConsumerSessionTimeout > maxSessionTimeout:
		return c, fmt.Errorf("meta: Config.Groups.ConsumerSessionTimeout %v is outside [%v, %v] (--group-consumer-session-timeout)",
			c.ConsumerSessionTimeout, minSessionTimeout, maxSessionTimeout)
	case c.ConsumerHeartbeatInterval < 10*time.Millisecond || c.ConsumerHeartbeatInterval >= c.ConsumerSessionTimeout:
		// A member must be able to heartbeat several times per session.
		return c, fmt.Errorf("meta: Config.Groups.ConsumerHeartbeatInterval %v must be at least 10ms and below the session timeout %v (--group-consumer-heartbeat-interval)",
			c.ConsumerHeartbeatInterval, c.ConsumerSessionTimeout)
	}
	return c, nil
}

// Session timeout bounds (Kafka's group.min/max.session.timeout.ms
// defaults are 6 s and 30 min; the lower bound here is 1 s so tests and
// impatient users can run short sessions).
const (
	minSessionTimeout = time.Second
	maxSessionTimeout = 30 * time.Minute
)

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
//
// Lock order: Coordinator.mu → cgroup.mu → the controller's Service.mu
// (read, through Offsets). None is held across a committer submit, so the
// committer may take Coordinator.mu and cgroup.mu while it applies an op
// (Active).
type Coordinator struct {
	cfg  Config
	offs Offsets // the committed offsets, kept by the controller

	mu     sync.Mutex
	groups map[string]*cgroup // guarded by mu
	// emptySince is when a group that has committed offsets lost its
	// last member (the group was then dropped from groups); offsets
	// expire counting from it (meta/controller/offsets.go). Guarded by
	// mu. An entry goes when the group gets a member again, is deleted,
	// or its offsets expire.
	emptySince map[string]time.Time

	// KIP-848 consumer groups (consumer.go), guarded by mu. A name is a
	// key of groups or of consumers while it has members, never of both.
	consumers map[string]*kgroup
	topics    TopicSource // set once by SetTopics before serving
}

// cgroup is one group. Its fields are guarded by its mu; the
// coordinator's mu is taken before a group's, never after.
type cgroup struct {
	c            *Coordinator
	mu           sync.Mutex
	name         string
	dead         bool // dropped from coordinator.groups; set under both locks
	state        groupState
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*cmember
	pending      map[string]*time.Timer // member ids handed out with ErrMemberIDRequired → their expiry
	instances    map[string]string      // instance id → member id
	rebalance    *time.Timer            // ends the join phase
	syncTimer    *time.Timer            // ends the sync phase
	// The initial rebalance delay (Config.InitialRebalanceDelay) of a
	// join phase that began with the group empty: while initialDelay
	// is set the join phase does not complete, however many members
	// have joined. delayLeft is how much it may still be extended;
	// joinedInDelay records a new member since it was last armed.
	initialDelay  *time.Timer
	delayLeft     time.Duration
	joinedInDelay bool
	// emptySince is when the last member left (zero while it has
	// members or never had any). Set under mu by removeLocked, so that
	// offset expiry sees it from the moment the group is memberless,
	// not only once dropIfEmpty has moved it to coordinator.emptySince.
	emptySince time.Time
}

type cmember struct {
	id, instanceID     string
	clientID, host     string
	protocols          []meta.GroupProtocol
	session, rebalance time.Duration
	joined             bool            // joined the rebalance in progress
	synced             bool            // sent SyncGroup in this generation
	joinCh             chan joinAnswer // set while a JoinGroup waits
	syncCh             chan syncAnswer // set while a SyncGroup waits
	assignment         []byte
	timer              *time.Timer // session expiry; nil while parked
}

type joinAnswer struct {
	res meta.JoinGroupResult
	err error
}

type syncAnswer struct {
	res meta.SyncGroupResult
	err error
}

// Offsets is what the coordinator needs of the groups' committed offsets,
// which the controller keeps durable (offsets outlive membership: a group
// without members lists, describes and counts by its offsets). Both
// methods may take the controller's read lock, so the coordinator calls
// them with its own locks held but never the other way round.
type Offsets interface {
	// HasOffsets reports whether a group has committed offsets.
	HasOffsets(group string) bool
	// CountNotIn counts the groups with committed offsets for which
	// known reports false (the MaxGroups count).
	CountNotIn(known func(group string) bool) int
}

// New returns a coordinator bounded by cfg (defaults already applied:
// Config.WithDefaults) that reads committed offsets through offs.
func New(cfg Config, offs Offsets) *Coordinator {
	return &Coordinator{cfg: cfg, offs: offs,
		groups: make(map[string]*cgroup), emptySince: make(map[string]time.Time),
		consumers: make(map[string]*kgroup)}
}

// live reports whether name is one of c.groups; c.mu must be held.
func (c *Coordinator) live(name string) bool {
	_, ok := c.groups[name]
	_, kok := c.consumers[name]
	return ok || kok
}

// group returns the named group, creating it when create is set (nil,
// ErrTooManyGroups past MaxGroups). The group may be dropped before the
// caller locks it; lockGroup handles that.
func (c *Coordinator) group(name string, create bool) (*cgroup, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[name]
	if g == nil && create {
		if c.consumers[name] != nil {
			// KIP-848 consumer groups: no classic member joins a group
			// that has consumer members (see consumer.go).
			return nil, fmt.Errorf("%w: group %q is a consumer-protocol group, and classic members may not join it (sluice meta --group-consumer-migration-policy=%s)",
				meta.ErrInconsistentProtocol, name, c.cfg.MigrationPolicy)
		}
		if !c.offs.HasOffsets(name) {
			if n := len(c.groups) + len(c.consumers) + c.offs.CountNotIn(c.live); n >= c.cfg.MaxGroups {
				return nil, fmt.Errorf("%w: the cluster has %d groups, the limit (sluice meta --max-groups)", meta.ErrTooManyGroups, n)
			}
		}
		g = &cgroup{c: c, name: name, members: map[string]*cmember{}, pending: map[string]*time.Timer{}, instances: map[string]string{}}
		c.groups[name] = g
		delete(c.emptySince, name)
	}
	return g, nil
}

// lockGroup returns the named group locked (creating it when create is
// set), or nil when it does not exist.
func (c *Coordinator) lockGroup(name string, create bool) (*cgroup, error) {
	for {
		g, err := c.group(name, create)
		if g == nil {
			return nil, err
		}
		g.mu.Lock()
		if !g.dead {
			return g, nil
		}
		// Dropped between the lookup and the lock: look again.
		g.mu.Unlock()
	}
}

// emptyLocked reports whether g holds nothing worth keeping in memory.
func (g *cgroup) emptyLocked() bool {
	return len(g.members) == 0 && len(g.pending) == 0 && g.rebalance == nil && g.syncTimer == nil
}

// dropIfEmpty removes g from the coordinator when it has no members and
// no pending member ids. Callers must not hold g.mu. A group with
// committed offsets lives on in them (ListGroups, DescribeGroups and
// OffsetFetch read them); emptySince records when it became empty, for
// offset expiry.
func (c *Coordinator) dropIfEmpty(g *cgroup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.dead || !g.emptyLocked() || c.groups[g.name] != g {
		return
	}
	g.dead = true
	delete(c.groups, g.name)
	if c.offs.HasOffsets(g.name) {
		since := g.emptySince
		if since.IsZero() {
			since = time.Now()
		}
		c.emptySince[g.name] = since
	}
}

// Active reports whether the group has members or pending member ids
// (its offsets do not expire then).
func (c *Coordinator) Active(name string) bool {
	active, _, _ := c.EmptyState(name)
	return active
}

// EmptyState tells whether the group is active and, when it is not,
// since when it has had no members (known false when nobody recorded
// it: the group never had members, or not since meta started).
func (c *Coordinator) EmptyState(name string) (active bool, since time.Time, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.consumers[name]; k != nil {
		k.mu.Lock()
		defer k.mu.Unlock()
		if len(k.members) > 0 {
			return true, time.Time{}, false
		}
		if !k.emptySince.IsZero() {
			return false, k.emptySince, true
		}
	}
	g := c.groups[name]
	if g == nil {
		since, known = c.emptySince[name]
		return false, since, known
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.emptyLocked() {
		return true, time.Time{}, false
	}
	if !g.emptySince.IsZero() {
		return false, g.emptySince, true
	}
	since, known = c.emptySince[name]
	return false, since, known
}

func newMemberID(clientID string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	if len(clientID) > 64 {
		clientID = clientID[:64]
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// Join joins (or rejoins) a member and waits for the rebalance to
// complete, ctx permitting (JoinGroup).
func (c *Coordinator) Join(ctx context.Context, req meta.JoinGroupRequest) (meta.JoinGroupResult, error) {
	if req.Group == "" || len(req.Group) > meta.MaxGroupIDBytes {
		return meta.JoinGroupResult{}, meta.ErrInvalidGroupID
	}
	if req.SessionTimeout < minSessionTimeout || req.SessionTimeout > maxSessionTimeout {
		return meta.JoinGroupResult{}, meta.ErrInvalidSessionTimeout
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	// The rebalance timeout is how long a join phase may keep every
	// other member parked (their sessions paused): bounded like a
	// session (Kafka Streams asks for MaxInt32 ms). A member slower than
	// this is removed from the rebalance and rejoins.
	req.RebalanceTimeout = min(req.RebalanceTimeout, maxSessionTimeout)
	if len(req.Protocols) == 0 || req.ProtocolType == "" {
		return meta.JoinGroupResult{}, meta.ErrInconsistentProtocol
	}
	n := 0
	for _, p := range req.Protocols {
		n += len(p.Name) + len(p.Metadata)
	}
	if n > meta.MaxMemberMetadataBytes {
		return meta.JoinGroupResult{}, fmt.Errorf("%w: JoinGroup protocols of %d bytes, the limit is %d", meta.ErrInvalidRequest, n, meta.MaxMemberMetadataBytes)
	}
	if c.cfg.MigrationPolicy != MigrationDisabled {
		// A classic member joining a consumer-protocol group becomes
		// one of its members (mixed.go).
		if k, _ := c.lockConsumerGroup(req.Group, false); k != nil {
			res, err := k.classicJoinLocked(req)
			empty := len(k.members) == 0
			k.mu.Unlock()
			if empty {
				c.dropConsumerIfEmpty(k)
			}
			return res, err
		}
	}
	g, err := c.lockGroup(req.Group, true)
	if err != nil {
		return meta.JoinGroupResult{}, err
	}
	ch, res, err := g.joinLocked(req)
	g.mu.Unlock()
	if ch == nil {
		if err != nil {
			// A refused first join may have created the group.
			c.dropIfEmpty(g)
		}
		return res, err
	}
	select {
	case a := <-ch:
		if a.err != nil {
			// Failed out of the group (no assignor in common, say):
			// the group may be left with nobody.
			c.dropIfEmpty(g)
		}
		return a.res, a.err
	case <-ctx.Done():
		// The member stays parked, as in Kafka, where a client's own
		// timeout does not reach the coordinator: the join phase ends
		// by the rebalance timeout at the latest, and then its session
		// timer runs. (The client usually sends JoinGroup again, which
		// replaces this one.)
		return meta.JoinGroupResult{}, ctx.Err()
	}
}

// fullLocked reports whether one more member (or pending member id) would
// pass MaxMembersPerGroup, with the error to answer.
func (g *cgroup) fullLocked() error {
	if n := len(g.members) + len(g.pending); n >= g.c.cfg.MaxMembersPerGroup {
		return fmt.Errorf("%w: group %q has %d members and pending members, the limit (sluice meta --max-members-per-group)",
			meta.ErrGroupMaxSizeReached, g.name, n)
	}
	return nil
}

// addPendingLocked remembers a member id handed out with
// ErrMemberIDRequired until the session timeout, as Kafka does: a client
// that never comes back with it (or one that sends empty-id joins in a
// loop) leaves nothing behind.
func (g *cgroup) addPendingLocked(id string, session time.Duration) {
	var t *time.Timer
	t = time.AfterFunc(session, func() {
		g.mu.Lock()
		if g.pending[id] != t {
			g.mu.Unlock()
			return
		}
		delete(g.pending, id)
		g.mu.Unlock()
		g.c.dropIfEmpty(g)
	})
	g.pending[id] = t
}

func (g *cgroup) joinLocked(req meta.JoinGroupRequest) (chan joinAnswer, meta.JoinGroupResult, error) {
	if g.state != groupEmpty && g.protocolType != req.ProtocolType {
		return nil, meta.JoinGroupResult{}, meta.ErrInconsistentProtocol
	}
	if g.state != groupEmpty && g.protocol != "" && !offers(req.Protocols, g.protocol) && len(g.members) > 1 {
		// Members must share an assignor; a lone member may switch.
		return nil, meta.JoinGroupResult{}, meta.ErrInconsistentProtocol
	}
	id := req.MemberID
	var m *cmember
	switch {
	case id == "" && req.InstanceID != "":
		// Static member (KIP-345): a new member id replaces the old one
		// under the same instance id, without a rebalance when nothing
		// changed.
		id = newMemberID(req.ClientID)
		if _, ok := g.instances[req.InstanceID]; !ok {
			if err := g.fullLocked(); err != nil {
				return nil, meta.JoinGroupResult{}, err
			}
		}
		if old, ok := g.instances[req.InstanceID]; ok {
			if om := g.members[old]; om != nil {
				delete(g.members, old)
				om.stop(meta.ErrFencedInstanceID)
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
		if err := g.fullLocked(); err != nil {
			return nil, meta.JoinGroupResult{}, err
		}
		id = newMemberID(req.ClientID)
		g.addPendingLocked(id, req.SessionTimeout)
		return nil, meta.JoinGroupResult{MemberID: id, Generation: -1}, meta.ErrMemberIDRequired
	case id == "":
		if err := g.fullLocked(); err != nil {
			return nil, meta.JoinGroupResult{}, err
		}
		id = newMemberID(req.ClientID)
	default:
		m = g.members[id]
		if m == nil {
			t, ok := g.pending[id]
			if !ok {
				return nil, meta.JoinGroupResult{MemberID: id, Generation: -1}, meta.ErrUnknownMemberID
			}
			t.Stop()
			delete(g.pending, id)
		} else if req.InstanceID != "" && m.instanceID != req.InstanceID {
			return nil, meta.JoinGroupResult{}, meta.ErrFencedInstanceID
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
		m.joinCh <- joinAnswer{err: meta.ErrRebalanceInProgress}
	}
	m.joinCh = make(chan joinAnswer, 1)
	m.joined = true
	m.resetSession(g) // parked: the session timer stops
	ch := m.joinCh

	if isNew && g.initialDelay != nil {
		g.joinedInDelay = true
	}
	switch g.state {
	case groupEmpty:
		g.protocolType = req.ProtocolType
		g.prepareLocked()
		g.startInitialDelayLocked(req.RebalanceTimeout)
	case groupStable, groupCompleting:
		if changed || id == g.leader || g.state == groupCompleting {
			g.prepareLocked()
		} else {
			// A known member rejoining with nothing changed gets the
			// current generation back.
			m.joinCh = nil
			m.resetSession(g)
			return nil, g.joinResultLocked(m), nil
		}
	case groupPreparing:
	}
	g.tryCompleteJoinLocked()
	return ch, meta.JoinGroupResult{}, nil
}

func offers(ps []meta.GroupProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []meta.GroupProtocol) bool {
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
	g.stopSyncTimerLocked()
	if g.state == groupCompleting {
		// Syncs waiting for an assignment that will never come.
		for _, m := range g.members {
			if m.syncCh != nil {
				m.syncCh <- syncAnswer{err: meta.ErrRebalanceInProgress}
				m.syncCh = nil
				m.resetSession(g)
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
	longest := g.longestRebalanceLocked()
	if g.rebalance != nil {
		g.rebalance.Stop()
	}
	gen := g.generation
	g.rebalance = time.AfterFunc(longest, func() {
		g.mu.Lock()
		if g.state != groupPreparing || g.generation != gen {
			g.mu.Unlock()
			return
		}
		for id, m := range g.members {
			if !m.joined {
				g.removeLocked(id, nil)
			}
		}
		g.completeJoinLocked()
		empty := g.emptyLocked()
		g.mu.Unlock()
		if empty {
			g.c.dropIfEmpty(g)
		}
	})
}

// longestRebalanceLocked is the longest rebalance timeout of the members:
// it bounds the join and the sync phase.
func (g *cgroup) longestRebalanceLocked() time.Duration {
	var longest time.Duration
	for _, m := range g.members {
		longest = max(longest, m.rebalance)
	}
	return longest
}

func (g *cgroup) stopSyncTimerLocked() {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
}

// startInitialDelayLocked holds the join phase that an empty group's
// first member just began for Config.InitialRebalanceDelay, as Kafka's
// InitialDelayedJoin does: when the delay ends and members joined during
// it, it is armed again (no longer than the delay, and no longer than
// what is left of rebalance, the first member's rebalance timeout, in
// all); otherwise the join phase completes as soon as every member has
// joined. The rebalance timer armed by prepareLocked still ends the join
// phase at the longest rebalance timeout whatever happens here.
func (g *cgroup) startInitialDelayLocked(rebalance time.Duration) {
	delay := g.c.cfg.InitialRebalanceDelay
	if delay <= 0 {
		return
	}
	g.delayLeft = max(rebalance-delay, 0)
	g.armInitialDelayLocked(delay)
}

func (g *cgroup) armInitialDelayLocked(d time.Duration) {
	g.joinedInDelay = false
	gen := g.generation
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.initialDelay != t || g.state != groupPreparing || g.generation != gen {
			return
		}
		if g.joinedInDelay && g.delayLeft > 0 {
			next := min(g.c.cfg.InitialRebalanceDelay, g.delayLeft)
			g.delayLeft -= next
			g.armInitialDelayLocked(next)
			return
		}
		g.initialDelay = nil
		g.tryCompleteJoinLocked()
	})
	g.initialDelay = t
}

func (g *cgroup) stopInitialDelayLocked() {
	if g.initialDelay != nil {
		g.initialDelay.Stop()
		g.initialDelay = nil
	}
	g.joinedInDelay, g.delayLeft = false, 0
}

func (g *cgroup) tryCompleteJoinLocked() {
	if g.state != groupPreparing || g.initialDelay != nil {
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
	g.stopInitialDelayLocked()
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
		m.synced = false
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
			g.removeLocked(id, meta.ErrInconsistentProtocol)
		}
		g.state = groupEmpty
		return
	}
	// Kafka's pending-sync timer: a member that does not sync within the
	// rebalance timeout is gone (a leader that never assigns would
	// otherwise keep its followers parked in SyncGroup for ever, their
	// sessions paused).
	gen := g.generation
	g.stopSyncTimerLocked()
	g.syncTimer = time.AfterFunc(g.longestRebalanceLocked(), func() {
		g.mu.Lock()
		if g.state != groupCompleting || g.generation != gen {
			g.mu.Unlock()
			return
		}
		g.syncTimer = nil
		for id, m := range g.members {
			if !m.synced {
				g.removeLocked(id, nil)
			}
		}
		g.membershipChangedLocked()
		empty := g.emptyLocked()
		g.mu.Unlock()
		if empty {
			g.c.dropIfEmpty(g)
		}
	})
}

func (g *cgroup) joinResultLocked(m *cmember) meta.JoinGroupResult {
	res := meta.JoinGroupResult{
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
			var md []byte
			for _, p := range o.protocols {
				if p.Name == g.protocol {
					md = p.Metadata
				}
			}
			res.Members = append(res.Members, meta.GroupMember{MemberID: id, InstanceID: o.instanceID, Metadata: md})
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
		err = meta.ErrUnknownMemberID
	}
	m.stop(err)
	delete(g.members, id)
	if m.instanceID != "" && g.instances[m.instanceID] == id {
		delete(g.instances, m.instanceID)
	}
	if len(g.members) == 0 {
		g.emptySince = time.Now()
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

// parked reports whether a JoinGroup or SyncGroup of the member waits.
func (m *cmember) parked() bool { return m.joinCh != nil || m.syncCh != nil }

// resetSession restarts the member's session timer, or stops it while
// the member is parked (Kafka keeps a member whose join or sync waits:
// the rebalance and pending-sync timers bound those waits). Every change
// of m.joinCh or m.syncCh is followed by a call. When the timer fires
// the member is gone and the group rebalances.
func (m *cmember) resetSession(g *cgroup) {
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
	if m.parked() {
		return
	}
	id := m.id
	var t *time.Timer
	t = time.AfterFunc(m.session, func() {
		g.mu.Lock()
		cur := g.members[id]
		if cur == nil || cur.timer != t || cur.parked() {
			g.mu.Unlock()
			return
		}
		g.removeLocked(id, nil)
		g.membershipChangedLocked()
		empty := g.emptyLocked()
		g.mu.Unlock()
		if empty {
			g.c.dropIfEmpty(g)
		}
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
		g.stopInitialDelayLocked()
		g.stopSyncTimerLocked()
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
		return nil, meta.ErrUnknownMemberID
	}
	if instanceID != "" && m.instanceID != instanceID {
		return nil, meta.ErrFencedInstanceID
	}
	if gen != g.generation {
		return nil, meta.ErrIllegalGeneration
	}
	return m, nil
}

// Sync hands out the leader's assignment, waiting for it when the caller
// is not the leader (SyncGroup).
func (c *Coordinator) Sync(ctx context.Context, req meta.SyncGroupRequest) (meta.SyncGroupResult, error) {
	for id, a := range req.Assignments {
		if len(a) > meta.MaxMemberMetadataBytes {
			return meta.SyncGroupResult{}, fmt.Errorf("%w: SyncGroup assignment of %d bytes for member %q, the limit is %d",
				meta.ErrInvalidRequest, len(a), id, meta.MaxMemberMetadataBytes)
		}
	}
	if k, _ := c.lockConsumerGroup(req.Group, false); k != nil {
		res, err := k.classicSyncLocked(req) // mixed.go
		k.mu.Unlock()
		return res, err
	}
	g, _ := c.lockGroup(req.Group, false)
	if g == nil {
		return meta.SyncGroupResult{}, meta.ErrUnknownMemberID
	}
	m, err := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		g.mu.Unlock()
		return meta.SyncGroupResult{}, err
	}
	m.resetSession(g)
	res := meta.SyncGroupResult{ProtocolType: g.protocolType, Protocol: g.protocol}
	switch g.state {
	case groupPreparing:
		g.mu.Unlock()
		return meta.SyncGroupResult{}, meta.ErrRebalanceInProgress
	case groupStable:
		res.Assignment = m.assignment
		g.mu.Unlock()
		return res, nil
	}
	// CompletingRebalance.
	m.synced = true
	if m.id == g.leader {
		g.stopSyncTimerLocked()
		for id, om := range g.members {
			om.assignment = req.Assignments[id]
			if om.syncCh != nil && id != m.id {
				r := res
				r.Assignment = om.assignment
				om.syncCh <- syncAnswer{res: r}
				om.syncCh = nil
				om.resetSession(g)
			}
		}
		g.state = groupStable
		res.Assignment = m.assignment
		g.mu.Unlock()
		return res, nil
	}
	if m.syncCh != nil {
		m.syncCh <- syncAnswer{err: meta.ErrRebalanceInProgress}
	}
	ch := make(chan syncAnswer, 1)
	m.syncCh = ch
	m.resetSession(g) // parked: the session timer stops
	g.mu.Unlock()
	select {
	case a := <-ch:
		return a.res, a.err
	case <-ctx.Done():
		// Parked on, as a join (above): the leader's sync or the sync
		// timeout ends it.
		return meta.SyncGroupResult{}, ctx.Err()
	}
}

// Heartbeat keeps a member's session and tells it about rebalances.
func (c *Coordinator) Heartbeat(group, memberID, instanceID string, generation int32) error {
	if k, _ := c.lockConsumerGroup(group, false); k != nil {
		err := k.classicHeartbeatLocked(memberID, instanceID, generation) // mixed.go
		k.mu.Unlock()
		return err
	}
	g, _ := c.lockGroup(group, false)
	if g == nil {
		return meta.ErrUnknownMemberID
	}
	defer g.mu.Unlock()
	m := g.members[memberID]
	if m == nil {
		return meta.ErrUnknownMemberID
	}
	if instanceID != "" && m.instanceID != instanceID {
		return meta.ErrFencedInstanceID
	}
	m.resetSession(g)
	switch {
	case g.state == groupPreparing:
		return meta.ErrRebalanceInProgress
	case generation != g.generation:
		return meta.ErrIllegalGeneration
	}
	return nil
}

// Leave removes members (LeaveGroup); one error per member, in order.
func (c *Coordinator) Leave(group string, members []meta.LeavingMember) []error {
	if k, _ := c.lockConsumerGroup(group, false); k != nil {
		errs := k.classicLeaveLocked(members) // mixed.go
		empty := len(k.members) == 0
		k.mu.Unlock()
		if empty {
			c.dropConsumerIfEmpty(k)
		}
		return errs
	}
	errs := make([]error, len(members))
	g, _ := c.lockGroup(group, false)
	if g == nil {
		for i := range errs {
			errs[i] = meta.ErrUnknownMemberID
		}
		return errs
	}
	left := false
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
			g.removeLocked(id, meta.ErrUnknownMemberID)
			left = true
		}
	}
	if left {
		g.membershipChangedLocked()
	}
	empty := g.emptyLocked()
	g.mu.Unlock()
	if empty {
		c.dropIfEmpty(g)
	}
	return errs
}

// CheckCommit checks an OffsetCommit before the controller makes its
// offsets durable: the group id, the metadata sizes, and the committer's
// membership (a live group's offsets are its members' to commit).
func (c *Coordinator) CheckCommit(req meta.OffsetCommitRequest) error {
	if req.Group == "" || len(req.Group) > meta.MaxGroupIDBytes {
		return meta.ErrInvalidGroupID
	}
	for _, o := range req.Offsets {
		if len(o.Metadata) > meta.MaxOffsetMetadataBytes {
			return fmt.Errorf("%w: %d bytes for partition %d, the limit is %d", meta.ErrOffsetMetadataTooLarge,
				len(o.Metadata), o.Partition, meta.MaxOffsetMetadataBytes)
		}
	}
	if k, _ := c.lockConsumerGroup(req.Group, false); k != nil {
		err := k.checkConsumerCommitLocked(req)
		k.mu.Unlock()
		return err
	}
	g, _ := c.lockGroup(req.Group, false)
	switch {
	case g != nil && (req.MemberID != "" || req.Generation >= 0):
		m, err := g.checkMemberLocked(req.MemberID, req.InstanceID, req.Generation)
		switch {
		case err != nil:
			g.mu.Unlock()
			return err
		case g.state == groupCompleting:
			g.mu.Unlock()
			return meta.ErrRebalanceInProgress
		}
		m.resetSession(g)
		g.mu.Unlock()
	case g == nil && (req.MemberID != "" || req.Generation >= 0):
		return meta.ErrUnknownMemberID
	case g != nil:
		busy := len(g.members) > 0
		g.mu.Unlock()
		if busy {
			// An outsider may not commit over a live group's members.
			return meta.ErrUnknownMemberID
		}
	}
	return nil
}

// CheckDeleteOffsets checks an OffsetDelete before the controller
// removes the offsets. It is refused for partitions of topics a live
// member consumes; without membership detail here it is refused while
// the group has members. A group that has neither members nor offsets is
// not found, as in Kafka.
func (c *Coordinator) CheckDeleteOffsets(group string) error {
	if k, _ := c.lockConsumerGroup(group, false); k != nil {
		busy := len(k.members) > 0
		k.mu.Unlock()
		if busy {
			return meta.ErrGroupSubscribedToTopic
		}
	}
	g, _ := c.lockGroup(group, false)
	if g != nil {
		busy := len(g.members) > 0
		g.mu.Unlock()
		if busy {
			return meta.ErrGroupSubscribedToTopic
		}
	}
	if g == nil && !c.offs.HasOffsets(group) {
		return meta.ErrGroupIDNotFound
	}
	return nil
}

// Delete forgets a group without members (DeleteGroup): one that had
// members, and one that only ever had offsets committed from outside the
// group protocol (kafka-consumer-groups --reset-offsets). The controller
// then deletes its offsets.
func (c *Coordinator) Delete(group string) error {
	c.mu.Lock()
	if k := c.consumers[group]; k != nil {
		k.mu.Lock()
		busy := len(k.members) > 0
		if !busy {
			k.dead = true
			delete(c.consumers, group)
		}
		k.mu.Unlock()
		if busy {
			c.mu.Unlock()
			return meta.ErrGroupNotEmpty
		}
	}
	g := c.groups[group]
	if g != nil {
		g.mu.Lock()
		n := len(g.members)
		if n == 0 {
			for _, t := range g.pending {
				t.Stop()
			}
			clear(g.pending)
			if g.rebalance != nil {
				g.rebalance.Stop()
				g.rebalance = nil
			}
			g.stopInitialDelayLocked()
			g.stopSyncTimerLocked()
			g.dead = true
			delete(c.groups, group)
		}
		g.mu.Unlock()
		if n > 0 {
			c.mu.Unlock()
			return meta.ErrGroupNotEmpty
		}
	}
	delete(c.emptySince, group)
	c.mu.Unlock()
	if g == nil && !c.offs.HasOffsets(group) {
		return meta.ErrGroupIDNotFound
	}
	return nil
}

// List lists the groups with members and those named in withOffsets
// (the groups that have committed offsets), in name order (ListGroups).
func (c *Coordinator) List(withOffsets []string) []meta.GroupListing {
	seen := map[string]meta.GroupListing{}
	for _, name := range withOffsets {
		seen[name] = meta.GroupListing{Group: name, ProtocolType: "consumer", State: groupEmpty.String(), Type: meta.GroupTypeClassic}
	}
	c.mu.Lock()
	gs := make([]*cgroup, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	ks := make([]*kgroup, 0, len(c.consumers))
	for _, k := range c.consumers {
		ks = append(ks, k)
	}
	c.mu.Unlock()
	for _, k := range ks {
		k.mu.Lock()
		l := meta.GroupListing{Group: k.name, ProtocolType: "consumer", State: k.stateLocked(), Type: meta.GroupTypeConsumer}
		dead := k.dead
		k.mu.Unlock()
		if !dead {
			seen[k.name] = l
		}
	}
	for _, g := range gs {
		g.mu.Lock()
		l := meta.GroupListing{Group: g.name, ProtocolType: g.protocolType, State: g.state.String(), Type: meta.GroupTypeClassic}
		dead := g.dead
		g.mu.Unlock()
		if dead {
			continue
		}
		if l.ProtocolType == "" {
			l.ProtocolType = seen[g.name].ProtocolType
		}
		seen[g.name] = l
	}
	out := make([]meta.GroupListing, 0, len(seen))
	for _, l := range seen {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}

// Describe describes one group (DescribeGroups); an unknown group is
// described as Dead with no members, as Kafka does.
func (c *Coordinator) Describe(group string) meta.GroupDescription {
	d := meta.GroupDescription{Group: group, State: "Dead"}
	if k, ok := c.DescribeConsumer(group); ok {
		// A consumer-protocol group as DescribeGroups shows it (Kafka
		// does the same): its state, the assignor as the protocol, the
		// members without classic metadata.
		d.State, d.ProtocolType, d.Protocol, d.Type = k.State, "consumer", k.Assignor, meta.GroupTypeConsumer
		classic := c.classicDescriptions(group)
		for _, m := range k.Members {
			md := meta.GroupMemberDescription{MemberID: m.MemberID, InstanceID: m.InstanceID,
				ClientID: m.ClientID, ClientHost: m.ClientHost}
			if cd, ok := classic[m.MemberID]; ok {
				// A classic member of a mixed group: its protocol
				// metadata and assignment, as Kafka shows them.
				md.Metadata, md.Assignment = cd.Metadata, cd.Assignment
			}
			d.Members = append(d.Members, md)
		}
		return d
	}
	d.Type = meta.GroupTypeClassic
	g, _ := c.lockGroup(group, false)
	if g == nil {
		if c.offs.HasOffsets(group) {
			d.State = groupEmpty.String()
			d.ProtocolType = "consumer"
		}
		return d
	}
	defer g.mu.Unlock()
	d.State, d.ProtocolType, d.Protocol = g.state.String(), g.protocolType, g.protocol
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := g.members[id]
		var md []byte
		for _, p := range m.protocols {
			if p.Name == g.protocol {
				md = p.Metadata
			}
		}
		d.Members = append(d.Members, meta.GroupMemberDescription{MemberID: id, InstanceID: m.instanceID,
			ClientID: m.clientID, ClientHost: m.host, Metadata: md, Assignment: m.assignment})
	}
	return d
}

// Counts reports what the coordinator holds in memory: groups, members,
// and member ids handed out with MEMBER_ID_REQUIRED that have not joined.
func (c *Coordinator) Counts() (groups, members, pending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		g.mu.Lock()
		members += len(g.members)
		pending += len(g.pending)
		g.mu.Unlock()
	}
	for _, k := range c.consumers {
		k.mu.Lock()
		members += len(k.members)
		k.mu.Unlock()
	}
	return len(c.groups) + len(c.consumers), members, pending
}

// ForgetEmpty forgets when groups became empty once their offsets are
// gone (after offset expiry): the record only serves offset expiry.
func (c *Coordinator) ForgetEmpty() {
	c.mu.Lock()
	names := make([]string, 0, len(c.emptySince))
	for name := range c.emptySince {
		names = append(names, name)
	}
	c.mu.Unlock()
	for _, name := range names {
		if !c.offs.HasOffsets(name) {
			c.mu.Lock()
			if !c.live(name) && !c.offs.HasOffsets(name) {
				delete(c.emptySince, name)
			}
			c.mu.Unlock()
		}
	}
}

// AdmitNewGroup decides whether an offset commit may create group (give
// it its first committed offsets): yes when the coordinator holds it
// (JoinGroup counted it), else when the groups it holds that have no
// offsets plus the withOffsets groups that have some stay below
// MaxGroups. The controller's committer calls it; hasOffsets reads the
// committer's state and takes no lock, which is why it is passed in
// rather than read through Offsets.
func (c *Coordinator) AdmitNewGroup(group string, withOffsets int, hasOffsets func(string) bool) error {
	c.mu.Lock()
	known := c.live(group)
	n := withOffsets
	if !known {
		for name := range c.groups {
			if !hasOffsets(name) {
				n++
			}
		}
		for name := range c.consumers {
			if !hasOffsets(name) {
				n++
			}
		}
	}
	c.mu.Unlock()
	if !known && n >= c.cfg.MaxGroups {
		return fmt.Errorf("%w: the cluster has %d groups, the limit (sluice meta --max-groups)", meta.ErrTooManyGroups, n)
	}
	return nil
}

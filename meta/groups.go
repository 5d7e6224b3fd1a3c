package meta

import (
	"errors"
	"time"
)

// Consumer groups as agents see them: the requests and answers of the
// classic group protocol, committed offsets, the limits meta enforces on
// them and the errors it returns. The coordinator behind them is
// meta/controller (groups.go, offsets.go).

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
	// ErrGroupMaxSizeReached refuses a new member of a group that has
	// MaxMembersPerGroup members and pending member ids (meta/groups.Config,
	// --max-members-per-group).
	ErrGroupMaxSizeReached = errors.New("meta: group max size reached")
	// ErrTooManyGroups refuses a new group (by JoinGroup or by an
	// OffsetCommit to a group that has no offsets yet) when the cluster
	// has MaxGroups groups (meta/groups.Config, --max-groups).
	ErrTooManyGroups = errors.New("meta: too many groups")
)

// MaxMemberMetadataBytes bounds what one member makes the coordinator
// keep: the metadata of all the protocols it offers in a JoinGroup, and
// the assignment the leader hands it in SyncGroup. Kafka writes a whole
// group's subscriptions and assignments as one record of at most
// message.max.bytes (1 MiB by default) to __consumer_offsets, so no
// client that works with Kafka comes near this per member; without it a
// member could park up to a request's size (100 MiB) in meta's memory.
const MaxMemberMetadataBytes = 1 << 20

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
	// APIVersion is the OffsetCommit version the client sent: a KIP-848
	// consumer-protocol member must commit with v9 or later.
	APIVersion int16
}

// GroupDescription describes a group (DescribeGroups).
type GroupDescription struct {
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Type         string // GroupTypeClassic or GroupTypeConsumer (KIP-848)
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
	Type         string // GroupTypeClassic or GroupTypeConsumer (KIP-848)
}

// MaxGroupIDBytes bounds a group id: it is part of every committed
// offset's store key, and PostgreSQL cannot index keys much beyond 2 KiB
// (one over-long id would fail every op of its commit group, other
// clients' included). Kafka sets no limit; real ids are far shorter.
const MaxGroupIDBytes = 1024

// CommittedOffset is one partition's committed offset in a group.
type CommittedOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64 // unix milliseconds
}

// MaxOffsetMetadataBytes bounds a committed offset's metadata string
// (Kafka's offset.metadata.max.bytes default): it is stored with the
// offset, in memory and in the store, for as long as the offset lives.
const MaxOffsetMetadataBytes = 4096

// ErrOffsetMetadataTooLarge refuses a commit whose metadata is longer
// than MaxOffsetMetadataBytes.
var ErrOffsetMetadataTooLarge = errors.New("meta: offset metadata too large")

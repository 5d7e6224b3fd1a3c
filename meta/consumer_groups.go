package meta

import "errors"

// KIP-848 consumer groups as agents see them: ConsumerGroupHeartbeat and
// ConsumerGroupDescribe, served by meta's group coordinator
// (meta/groups/consumer.go). Assignment is computed by meta from topic
// metadata only; nothing here carries record data.

// Errors of the consumer group protocol, mapped to Kafka codes by the
// server (server/errors.go).
var (
	ErrFencedMemberEpoch        = errors.New("meta: fenced member epoch")
	ErrStaleMemberEpoch         = errors.New("meta: stale member epoch")
	ErrUnsupportedAssignor      = errors.New("meta: unsupported assignor")
	ErrUnreleasedInstanceID     = errors.New("meta: unreleased instance id")
	ErrInvalidRegularExpression = errors.New("meta: invalid regular expression")
)

// Member epochs with a meaning of their own in a heartbeat.
const (
	MemberEpochJoin        = 0  // join, or rejoin after a fence
	MemberEpochLeave       = -1 // leave the group
	MemberEpochStaticLeave = -2 // a static member leaves and will come back
)

// TopicPartitions is a set of partitions of one topic.
type TopicPartitions struct {
	TopicID    TopicID
	Partitions []int32
}

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat. Fields a client
// leaves null because they did not change are nil (slices) or have their
// Set flag false.
type ConsumerHeartbeatRequest struct {
	Group       string
	MemberID    string
	MemberEpoch int32
	InstanceID  string
	RackID      string
	// RebalanceTimeout is how long the member may take to revoke
	// partitions; 0 when unchanged (-1 on the wire).
	RebalanceTimeoutMs  int32
	SubscribedTopics    []string // nil: unchanged
	SubscribedTopicsSet bool
	Regex               string
	RegexSet            bool
	Assignor            string
	AssignorSet         bool
	Owned               []TopicPartitions // the partitions the member owns
	OwnedSet            bool              // false: unchanged since the last full heartbeat
	ClientID            string
	ClientHost          string
}

// ConsumerHeartbeatResult answers a heartbeat. Assignment is meaningful
// only when AssignmentSet.
type ConsumerHeartbeatResult struct {
	MemberID            string
	MemberEpoch         int32
	HeartbeatIntervalMs int32
	Assignment          []TopicPartitions
	AssignmentSet       bool
	ErrorMessage        string
}

// ConsumerGroupDescription describes a consumer-protocol group
// (ConsumerGroupDescribe). State is Empty, Assigning, Reconciling,
// Stable or Dead.
type ConsumerGroupDescription struct {
	Group           string
	State           string
	GroupEpoch      int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
}

// ConsumerMemberDescription is one member of a ConsumerGroupDescription.
type ConsumerMemberDescription struct {
	MemberID         string
	InstanceID       string
	RackID           string
	MemberEpoch      int32
	ClientID         string
	ClientHost       string
	SubscribedTopics []string
	Regex            string
	Assignment       []TopicPartitions
	TargetAssignment []TopicPartitions
	// Classic is set for a member of a mixed group that speaks the
	// classic protocol (JoinGroup, SyncGroup, Heartbeat).
	Classic bool
}

// Group types as ListGroups v5 and DescribeGroups report them.
const (
	GroupTypeClassic  = "classic"
	GroupTypeConsumer = "consumer"
)

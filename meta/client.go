package meta

import "context"

// Client is what an agent knows of the control plane. The in-process
// Service implements it today; a later network client will too, so every
// method takes a context with the caller's deadline, returns values that
// share no memory with meta, and is safe to retry: CommitSegment is
// idempotent on SegmentID, CreateTopics reports ErrTopicExists on a retry.
type Client interface {
	// ClusterID names the cluster (stable across restarts).
	ClusterID(ctx context.Context) (string, error)
	// CreateTopics creates topics; each spec gets its own result.
	CreateTopics(ctx context.Context, specs []TopicSpec) ([]TopicResult, error)
	// Topics returns the named topics that exist (all topics when names is
	// nil), in name order. Unknown names are left out.
	Topics(ctx context.Context, names []string) ([]Topic, error)
	// TopicsByID returns the topics with these ids that exist.
	TopicsByID(ctx context.Context, ids []TopicID) ([]Topic, error)
	// PartitionStates returns log start offset and high watermark, one per
	// request entry in order, Err set for unknown partitions.
	PartitionStates(ctx context.Context, tps []TopicPartition) ([]PartitionState, error)
	// CommitSegment assigns offsets to the chunks of an uploaded segment
	// and makes them durable before it returns.
	CommitSegment(ctx context.Context, c SegmentCommit) (CommitResult, error)
	// Lookup returns index entries of one partition starting with the one
	// holding offset, at most maxEntries of them. offset == HighWatermark
	// returns no entries and no error; offset outside
	// [LogStartOffset, HighWatermark] returns ErrOffsetOutOfRange together
	// with the bounds.
	Lookup(ctx context.Context, tp TopicPartition, offset int64, maxEntries int) (LookupResult, error)
	// InitProducerID allocates a producer id or bumps an epoch.
	InitProducerID(ctx context.Context, req ProducerIDRequest) (ProducerIDResult, error)
	// Watch streams commit events from now on until ctx ends. The channel
	// is closed when ctx ends or when the watcher falls too far behind;
	// the watcher must then treat its cached view as stale and watch
	// again.
	Watch(ctx context.Context) (<-chan []CommitEvent, error)

	// DeleteTopics, CreatePartitions and AlterTopicConfigs administer
	// topics (topics_admin.go); one error per name or spec.
	DeleteTopics(ctx context.Context, names []string) ([]error, error)
	CreatePartitions(ctx context.Context, specs []PartitionsSpec) ([]error, error)
	AlterTopicConfigs(ctx context.Context, topic string, changes []ConfigChange, replace bool) error
	// FindTimestamp finds the index entry for a ListOffsets by timestamp
	// or by max timestamp.
	FindTimestamp(ctx context.Context, tp TopicPartition, q TimestampQuery, ts int64) (TimestampResult, error)
	// Consumer groups (groups.go, offsets.go). JoinGroup and SyncGroup
	// may wait for other members, up to the rebalance timeout, ctx
	// permitting.
	JoinGroup(ctx context.Context, req JoinGroupRequest) (JoinGroupResult, error)
	SyncGroup(ctx context.Context, req SyncGroupRequest) (SyncGroupResult, error)
	Heartbeat(ctx context.Context, group, memberID, instanceID string, generation int32) error
	LeaveGroup(ctx context.Context, group string, members []LeavingMember) ([]error, error)
	CommitOffsets(ctx context.Context, req OffsetCommitRequest) error
	FetchOffsets(ctx context.Context, group string, tps []TopicPartition) ([]CommittedOffset, error)
	DeleteOffsets(ctx context.Context, group string, tps []TopicPartition) error
	DeleteGroup(ctx context.Context, group string) error
	ListGroups(ctx context.Context) ([]GroupListing, error)
	DescribeGroup(ctx context.Context, group string) (GroupDescription, error)
	// KIP-848 consumer groups (consumer_groups.go): the heartbeat
	// never waits; DescribeConsumerGroup returns ErrGroupIDNotFound for
	// a group that is not a consumer-protocol group.
	ConsumerGroupHeartbeat(ctx context.Context, req ConsumerHeartbeatRequest) (ConsumerHeartbeatResult, error)
	DescribeConsumerGroup(ctx context.Context, group string) (ConsumerGroupDescription, error)

	// The agent registry (registry.go). RegisterAgent is also the
	// heartbeat.
	RegisterAgent(ctx context.Context, a AgentInfo) (AgentRegistration, error)
	UnregisterAgent(ctx context.Context, id string) error
	Agents(ctx context.Context) ([]AgentInfo, error)

	// DeleteRecords moves log start offsets (records.go).
	DeleteRecords(ctx context.Context, specs []DeleteRecordsSpec) ([]PartitionState, error)

	// ACLs (issue 14, acls.go): CreateACLs stores bindings, one error
	// per binding; DeleteACLs removes what each filter matches; ACLs
	// lists what one filter matches. Every change is published to
	// watchers as a CommitEvent with ACLs set.
	CreateACLs(ctx context.Context, bs []ACLBinding) ([]error, error)
	DeleteACLs(ctx context.Context, fs []ACLFilter) ([]DeletedACLs, error)
	ACLs(ctx context.Context, f ACLFilter) ([]ACLBinding, error)
	// SASL (issue 14): SCRAM credentials of the cluster (scram.go).
	ScramCredentials
	// Transactions (issue 15): the transaction coordinator (txn.go).
	Transactions
}

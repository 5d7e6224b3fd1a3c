package meta

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// The types in this file cross the boundary between an agent and the
// control plane. They carry metadata only: names, ids, counts, offsets,
// byte ranges and timestamps. No field may ever carry record keys, values
// or headers (DESIGN.md invariant 5). Values are copied across the
// boundary; no pointer is shared between an agent and meta, so that a
// network can be put between the two without changing behaviour.

// TopicID is a topic's 16-byte UUID, as Kafka uses from Fetch v13.
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// SegmentID names one uploaded segment object. Its first 8 bytes are a
// big-endian unix-nanosecond timestamp so ids sort by creation time; the
// rest is random.
type SegmentID [16]byte

func (id SegmentID) String() string { return hex.EncodeToString(id[:]) }

// TopicSpec asks for a topic to be created.
type TopicSpec struct {
	Name       string
	Partitions int32
	Configs    map[string]string
}

// Topic is a topic as meta knows it.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions int32
	Configs    map[string]string
}

// TopicResult answers one TopicSpec.
type TopicResult struct {
	Name  string
	Topic Topic // set when Err is nil
	Err   error // ErrTopicExists, ErrInvalidTopic, ErrInvalidPartitions, ...
}

// TopicPartition names one partition by topic id.
type TopicPartition struct {
	TopicID   TopicID
	Partition int32
}

// PartitionState is the committed state of one partition.
type PartitionState struct {
	TopicID        TopicID
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64 // next offset to be assigned; every offset below it is committed
	Err            error // ErrUnknownTopicOrPartition
}

// Chunk is one record batch inside an uploaded segment, described by
// metadata only.
type Chunk struct {
	TopicID        TopicID
	Partition      int32
	Start          int64 // byte position of the batch in the object
	Length         int32 // batch length in bytes
	RecordCount    int32 // offsets the batch consumes (lastOffsetDelta+1)
	FirstTimestamp int64
	MaxTimestamp   int64
	ProducerID     int64 // -1 when not idempotent
	ProducerEpoch  int16
	BaseSequence   int32
	// Transactional: the batch has the transactional attribute bit
	// (issue 15); meta checks the producer's transaction at commit.
	Transactional bool
}

// SegmentCommit asks meta to assign offsets to the chunks of one uploaded
// segment. Committing the same SegmentID again returns the first answer.
type SegmentCommit struct {
	SegmentID SegmentID
	ObjectKey string
	Size      int64 // object size in bytes
	AgentID   string
	Chunks    []Chunk
}

// ChunkStatus tells what meta did with one chunk.
type ChunkStatus int8

const (
	ChunkAppended         ChunkStatus = iota // offsets assigned
	ChunkDuplicate                           // idempotent retry: BaseOffset is the original one; not stored again
	ChunkOutOfOrder                          // producer sequence gap or reorder
	ChunkFenced                              // producer epoch older than the current one
	ChunkUnknownPartition                    // topic or partition does not exist
	ChunkInvalid                             // metadata cannot be right (bytes outside the object, RecordCount < 1, negative epoch or sequence); only this chunk is refused
	ChunkUnknownProducer                     // the producer id was handed out but expired (Config.ProducerIDExpiration): UNKNOWN_PRODUCER_ID
	// Transactions (issue 15): a transactional batch whose producer has
	// no ongoing transaction with that partition at that epoch.
	ChunkInvalidTxnState // INVALID_TXN_STATE
)

// ChunkResult answers one Chunk, in the order of SegmentCommit.Chunks.
type ChunkResult struct {
	Status         ChunkStatus
	BaseOffset     int64 // first offset of the batch (for ChunkAppended and ChunkDuplicate)
	LogStartOffset int64
}

// CommitResult answers a SegmentCommit.
type CommitResult struct {
	Chunks []ChunkResult
}

// IndexEntry maps a dense offset range of one partition to the bytes
// holding it: a contiguous run of batches [Start, Start+Length) inside one
// segment object. The first batch in the range has BaseOffset; each next
// batch starts where the previous one's offsets end.
type IndexEntry struct {
	TopicID   TopicID
	Partition int32
	// Control is ControlNone for data. A transaction marker (issue 15)
	// is an entry without an object (zero SegmentID, empty ObjectKey,
	// no bytes) of exactly one offset: Control says commit or abort and
	// ProducerID/ProducerEpoch whose transaction it ends. The agent
	// renders it as a control batch (docs/transactions.md). Control and
	// ProducerEpoch sit in what was padding after Partition: an entry
	// grows by ProducerID's 8 bytes only (104 to 112), in meta's index
	// and every agent's index cache.
	Control       int8
	ProducerEpoch int16
	BaseOffset    int64
	LastOffset    int64 // inclusive
	SegmentID     SegmentID
	ObjectKey     string
	ObjectSize    int64
	Start         int64
	Length        int64
	MaxTimestamp  int64
	ProducerID    int64
}

// IsMarker reports whether e is a transaction marker (no object).
func (e *IndexEntry) IsMarker() bool { return e.Control != ControlNone }

// LookupResult answers Lookup.
type LookupResult struct {
	Entries        []IndexEntry
	LogStartOffset int64
	HighWatermark  int64
	// Stable: the partition's transaction state at HighWatermark
	// (issue 15/13), so that an agent serves read_committed from its
	// index cache.
	Stable StableState
}

// CommitEvent tells watchers that a partition gained committed data, or,
// with Trim, that its log start offset moved (DeleteRecords, retention):
// then Entry names only the partition and holds no data. With Swap,
// Entry is an entry that a compaction put in place of the entries that
// covered exactly [Entry.BaseOffset, Entry.LastOffset] (the swapped range
// always starts and ends at old entries' boundaries): a reader drops
// whatever it cached for that range (or takes Entry instead); the old
// objects stay readable for the GC grace period.
type CommitEvent struct {
	Entry          IndexEntry
	HighWatermark  int64
	LogStartOffset int64
	Trim           bool
	Swap           bool
	// ACLs: the cluster's ACL bindings changed (issue 14); the event
	// names no partition. A watcher re-reads them all (Client.ACLs).
	ACLs bool
	// Stable: the partition's transaction state after the commit this
	// event belongs to (issue 15/13). AbortFirstOffset, for an abort
	// marker entry (Entry.Control == ControlAbort) with Stable.Known,
	// is the first offset its transaction wrote in the partition, or -1
	// when it wrote nothing there (no aborted range).
	Stable           StableState
	AbortFirstOffset int64
}

// ProducerIDRequest asks for a producer id (InitProducerId).
type ProducerIDRequest struct {
	TransactionalID string // empty for an idempotent producer
	ProducerID      int64  // -1, or an existing id to bump its epoch (KIP-360)
	ProducerEpoch   int16  // -1, or the existing epoch
	// TransactionTimeoutMs is transaction.timeout.ms of a transactional
	// producer (issue 15).
	TransactionTimeoutMs int32
}

// ProducerIDResult answers ProducerIDRequest.
type ProducerIDResult struct {
	ProducerID    int64
	ProducerEpoch int16
}

// Errors meta returns. The server maps them to Kafka error codes in one
// place (server/errors.go).
var (
	ErrUnknownTopicOrPartition = errors.New("meta: unknown topic or partition")
	ErrTopicExists             = errors.New("meta: topic already exists")
	ErrInvalidTopic            = errors.New("meta: invalid topic name")
	ErrInvalidPartitions       = errors.New("meta: invalid partition count")
	ErrOffsetOutOfRange        = errors.New("meta: offset out of range")
	ErrInvalidProducerEpoch    = errors.New("meta: invalid producer epoch")
	ErrUnsupported             = errors.New("meta: not supported")
	ErrClosed                  = errors.New("meta: closed")
	ErrUnavailable             = errors.New("meta: unavailable") // retriable: try again
	ErrInvalidRequest          = errors.New("meta: invalid request")
	// ErrLimit: a per-cluster limit of meta's Config (topics, partitions,
	// groups, members) would be exceeded; the message names the limit and
	// the flag that sets it. Kafka code POLICY_VIOLATION unless the API
	// has a more specific one.
	ErrLimit = errors.New("meta: limit reached")
	// ErrUnauthenticated: the agent key was refused (unknown or revoked).
	// Not retriable: the operator must give the agent a valid key.
	ErrUnauthenticated = errors.New("meta: agent key refused")
	// ErrCorrupt: meta's store holds something meta cannot have written
	// (returned, wrapped, by opening the store). Not retriable.
	ErrCorrupt = errors.New("meta: store corrupt")
)

// ErrNotLeader is returned (wrapped) by a meta replica that does not hold
// the leadership, or whose write found its lease lost (meta/kv). It wraps
// ErrUnavailable: the agent retries, and reaches the new leader.
var ErrNotLeader = fmt.Errorf("%w: this meta replica is not the leader", ErrUnavailable)

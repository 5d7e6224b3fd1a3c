package meta

import (
	"context"
	"errors"
)

// Transactions (issue 15, docs/transactions.md): meta is the one
// transaction coordinator. Agents forward the transactional APIs here;
// EndTxn places the commit or abort markers of every partition of the
// transaction, moves its state and materialises its offset commits in
// one committer write. The types carry ids, offsets and states only:
// a marker is an index entry without an object (IndexEntry.Control),
// which the agent renders as a control batch at fetch time.

// Transactions is the coordinator's half of meta.Client.
type Transactions interface {
	// AddPartitionsToTxn adds partitions to the producer's ongoing
	// transaction (starting one from Empty); one error per partition.
	AddPartitionsToTxn(ctx context.Context, t TxnProducer, tps []TopicPartition) ([]error, error)
	// AddOffsetsToTxn adds a consumer group to the transaction, so
	// that TxnOffsetCommit may write offsets for it.
	AddOffsetsToTxn(ctx context.Context, t TxnProducer, group string) error
	// TxnOffsetCommit keeps offsets pending in the transaction; they
	// become the group's committed offsets if it commits. One error
	// per offset.
	TxnOffsetCommit(ctx context.Context, t TxnProducer, req OffsetCommitRequest) ([]error, error)
	// EndTxn commits or aborts the ongoing transaction. Repeating the
	// last EndTxn with the same epoch and result succeeds again.
	EndTxn(ctx context.Context, t TxnProducer, commit bool) error
	// TxnPartition tells read_committed fetches where the partition's
	// last stable offset is and which aborted transactions overlap
	// [from, LSO).
	TxnPartition(ctx context.Context, tp TopicPartition, from int64) (TxnPartitionState, error)
	// DescribeTransactions describes the named transactional ids
	// (unknown ones get ErrTransactionalIDNotFound); ListTransactions
	// lists them all.
	DescribeTransactions(ctx context.Context, ids []string) ([]TxnDescription, error)
	ListTransactions(ctx context.Context) ([]TxnDescription, error)
	// PendingTxnOffsets lists the partitions for which an ongoing
	// transaction holds offsets of group not yet committed (OffsetFetch
	// with require_stable answers them UNSTABLE_OFFSET_COMMIT, KIP-447).
	PendingTxnOffsets(ctx context.Context, group string) ([]TopicPartition, error)
	// DescribeProducers lists the producers meta keeps sequence state
	// for on each partition (DescribeProducers), one answer per
	// partition in order; Err is ErrUnknownTopicOrPartition for an
	// unknown one.
	DescribeProducers(ctx context.Context, tps []TopicPartition) ([]PartitionProducers, error)
}

// ProducerState is one producer's state on one partition.
type ProducerState struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32
	// CurrentTxnStartOffset is the first offset of the producer's open
	// transaction on the partition, -1 when none.
	CurrentTxnStartOffset int64
}

// PartitionProducers answers DescribeProducers for one partition.
type PartitionProducers struct {
	TopicPartition
	Producers []ProducerState
	Err       error
}

// TxnProducer names a transactional producer as the APIs do.
type TxnProducer struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
}

// Control marker types of an IndexEntry (IndexEntry.Control).
const (
	ControlNone   int8 = 0
	ControlAbort  int8 = 1
	ControlCommit int8 = 2
)

// AbortedTxn is one aborted transaction on one partition: its producer
// and the offsets of its first record and of its abort marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// TxnPartitionState answers TxnPartition.
type TxnPartitionState struct {
	LastStableOffset int64
	HighWatermark    int64
	LogStartOffset   int64
	Aborted          []AbortedTxn
}

// StableState is what an agent needs to serve read_committed fetches of
// a partition from its index cache instead of asking TxnPartition
// (issue 15/13, docs/transactions.md "Fetch"). Meta sends it with every
// Lookup answer and every commit event. It is a snapshot as of the high
// watermark it comes with: the LSO never moves back, so an agent that
// lags behind serves a lower LSO (its consumers wait), never a higher
// one.
type StableState struct {
	// Known is false from a meta that does not send the state (an
	// older version, a test's fake): the agent asks TxnPartition.
	Known            bool
	LastStableOffset int64
	// LastAbortOffset is the offset of the partition's latest abort
	// marker that has an aborted range (AbortedTxn.LastOffset), -1
	// when there is none. A fetch from past it has no aborted
	// transaction to list.
	LastAbortOffset int64
}

// Transaction states, as DescribeTransactions names them (Kafka's
// TransactionState): Empty after InitProducerId, Ongoing from the first
// partition or group added, CompleteCommit or CompleteAbort once EndTxn
// is done, until the next transaction begins. An abort by the
// transaction timeout bumps the epoch and leaves Empty (Kafka shows
// CompleteAbort there; docs/transactions.md). Sluice has no Prepare*
// states: an EndTxn completes in one step.
const (
	TxnStateEmpty          = "Empty"
	TxnStateOngoing        = "Ongoing"
	TxnStateCompleteCommit = "CompleteCommit"
	TxnStateCompleteAbort  = "CompleteAbort"
)

// TxnDescription describes one transactional id.
type TxnDescription struct {
	TransactionalID string
	State           string
	ProducerID      int64
	ProducerEpoch   int16
	TimeoutMs       int32
	StartMs         int64 // -1 when not Ongoing
	Partitions      []TopicPartition
	Err             error
}

// Errors of the transaction coordinator, mapped in server/errors.go.
var (
	// ErrInvalidTxnState: the request does not fit the transaction's
	// state (EndTxn without a transaction, a write to a partition not
	// added): INVALID_TXN_STATE.
	ErrInvalidTxnState = errors.New("meta: invalid transaction state")
	// ErrProducerFenced: a newer epoch of the transactional id exists:
	// PRODUCER_FENCED (INVALID_PRODUCER_EPOCH for old request versions).
	ErrProducerFenced = errors.New("meta: producer fenced by a newer epoch")
	// ErrTransactionalIDNotFound: DescribeTransactions of an unknown id.
	ErrTransactionalIDNotFound = errors.New("meta: transactional id not found")
	// ErrInvalidTxnTimeout: transaction.timeout.ms above meta's
	// --max-transaction-timeout: INVALID_TRANSACTION_TIMEOUT.
	ErrInvalidTxnTimeout = errors.New("meta: invalid transaction timeout")
)

// More coordinator errors.
var (
	// ErrInvalidProducerIDMapping: the producer id is not the one the
	// transactional id holds (or the id is unknown):
	// INVALID_PRODUCER_ID_MAPPING.
	ErrInvalidProducerIDMapping = errors.New("meta: producer id does not match the transactional id")
	// ErrOperationNotAttempted: another part of the same request failed,
	// so this one was not tried: OPERATION_NOT_ATTEMPTED.
	ErrOperationNotAttempted = errors.New("meta: not attempted")
)

package server

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"sluice.dev/codec"
	"sluice.dev/meta"
	"sluice.dev/pipeline"
)

// errorCode maps an internal error to its Kafka error code. This is the
// one place where that mapping lives.
func errorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, meta.ErrInvalidACL):
		return kerr.InvalidRequest.Code
	case errors.Is(err, meta.ErrUnknownTopicOrPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, meta.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, meta.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, meta.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, meta.ErrLimit):
		return kerr.PolicyViolation.Code
	case errors.Is(err, meta.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, meta.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, meta.ErrUnsupported):
		return kerr.UnsupportedVersion.Code
	case errors.Is(err, meta.ErrUnknownMemberID):
		return kerr.UnknownMemberID.Code
	case errors.Is(err, meta.ErrIllegalGeneration):
		return kerr.IllegalGeneration.Code
	case errors.Is(err, meta.ErrRebalanceInProgress):
		return kerr.RebalanceInProgress.Code
	case errors.Is(err, meta.ErrMemberIDRequired):
		return kerr.MemberIDRequired.Code
	case errors.Is(err, meta.ErrInconsistentProtocol):
		return kerr.InconsistentGroupProtocol.Code
	case errors.Is(err, meta.ErrInvalidSessionTimeout):
		return kerr.InvalidSessionTimeout.Code
	case errors.Is(err, meta.ErrGroupNotEmpty):
		return kerr.NonEmptyGroup.Code
	case errors.Is(err, meta.ErrGroupIDNotFound):
		return kerr.GroupIDNotFound.Code
	case errors.Is(err, meta.ErrFencedInstanceID):
		return kerr.FencedInstanceID.Code
	case errors.Is(err, meta.ErrInvalidGroupID):
		return kerr.InvalidGroupID.Code
	case errors.Is(err, meta.ErrGroupSubscribedToTopic):
		return kerr.GroupSubscribedToTopic.Code
	case errors.Is(err, meta.ErrGroupMaxSizeReached):
		return kerr.GroupMaxSizeReached.Code
	// KIP-848 consumer groups (consumer_groups.go).
	case errors.Is(err, meta.ErrFencedMemberEpoch):
		return kerr.FencedMemberEpoch.Code
	case errors.Is(err, meta.ErrStaleMemberEpoch):
		return kerr.StaleMemberEpoch.Code
	case errors.Is(err, meta.ErrUnsupportedAssignor):
		return kerr.UnsupportedAssignor.Code
	case errors.Is(err, meta.ErrUnreleasedInstanceID):
		return kerr.UnreleasedInstanceID.Code
	case errors.Is(err, meta.ErrInvalidRegularExpression):
		return kerr.InvalidRegularExpression.Code
	case errors.Is(err, meta.ErrTooManyGroups):
		// Kafka has no limit on the number of groups, hence no code.
		// POLICY_VIOLATION ("request parameters do not satisfy the
		// configured policy") is what a client gets for a refused
		// creation under a configured limit; it is not retriable, so a
		// client does not spin on it, and GROUP_MAX_SIZE_REACHED would
		// send an operator to the per-group limit instead.
		return kerr.PolicyViolation.Code
	case errors.Is(err, meta.ErrOffsetMetadataTooLarge):
		return kerr.OffsetMetadataTooLarge.Code
	case errors.Is(err, codec.ErrUnsupportedMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, codec.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, codec.ErrCorrupt):
		return kerr.CorruptMessage.Code
	case errors.Is(err, pipeline.ErrClosed), errors.Is(err, meta.ErrClosed):
		// The agent is shutting down: the client retries elsewhere.
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, pipeline.ErrUpload):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, meta.ErrUnauthenticated):
		// The agent's key was refused (revoked): not retriable until
		// an operator acts.
		return kerr.ClusterAuthorizationFailed.Code
	case errors.Is(err, meta.ErrInvalidRequest):
		return kerr.InvalidRequest.Code
	case errors.Is(err, pipeline.ErrSegmentRefused):
		// Meta refused the segment as too old (meta.ErrSegmentExpired):
		// nothing was stored, and the batches must go into a new
		// segment. NOT_ENOUGH_REPLICAS says exactly "not written, try
		// again": every client retries it without surfacing an error,
		// idempotent producers included (Java: a RetriableException;
		// franz-go: retriable; sarama: in its retry list; librdkafka:
		// retry, message not persisted), and the retry keeps its
		// sequence number, which meta accepts as new. REQUEST_TIMED_OUT
		// would also be retried but claims an unknown outcome, and
		// NOT_ENOUGH_REPLICAS_AFTER_APPEND claims the write happened.
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, pipeline.ErrCommit):
		// The commit's outcome is unknown (meta unreachable): the
		// client retries; an idempotent producer's retry is deduplicated.
		return kerr.RequestTimedOut.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, meta.ErrUnavailable):
		return kerr.RequestTimedOut.Code
	// SASL (issue 14): SCRAM credential administration (scram_admin.go).
	case errors.Is(err, meta.ErrScramUserNotFound):
		return kerr.ResourceNotFound.Code
	case errors.Is(err, meta.ErrScramUnacceptable):
		return kerr.UnacceptableCredential.Code
	case errors.Is(err, meta.ErrScramMechanism):
		return kerr.UnsupportedSaslMechanism.Code
	case errors.Is(err, errScramDuplicate):
		return kerr.DuplicateResource.Code
	case errors.Is(err, errSASLFailed):
		return kerr.SaslAuthenticationFailed.Code
	case errors.Is(err, errSASLState):
		return kerr.IllegalSaslState.Code
	// Transactions (issue 15). PRODUCER_FENCED is turned into
	// INVALID_PRODUCER_EPOCH for request versions that predate it
	// (txnFencedCode).
	case errors.Is(err, meta.ErrInvalidTxnState):
		return kerr.InvalidTxnState.Code
	case errors.Is(err, meta.ErrProducerFenced):
		return kerr.ProducerFenced.Code
	case errors.Is(err, meta.ErrTransactionalIDNotFound):
		return kerr.TransactionalIDNotFound.Code
	case errors.Is(err, meta.ErrInvalidTxnTimeout):
		return kerr.InvalidTransactionTimeout.Code
	case errors.Is(err, meta.ErrInvalidProducerIDMapping):
		return kerr.InvalidProducerIDMapping.Code
	case errors.Is(err, meta.ErrOperationNotAttempted):
		return kerr.OperationNotAttempted.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// chunkStatusCode maps what meta did with one batch to a Kafka code.
func chunkStatusCode(st meta.ChunkStatus) int16 {
	switch st {
	case meta.ChunkAppended, meta.ChunkDuplicate:
		// A duplicate is answered as a success with the original offset,
		// as Kafka does for an idempotent producer's retry.
		return 0
	case meta.ChunkOutOfOrder:
		return kerr.OutOfOrderSequenceNumber.Code
	case meta.ChunkFenced:
		return kerr.InvalidProducerEpoch.Code
	case meta.ChunkUnknownPartition:
		return kerr.UnknownTopicOrPartition.Code
	case meta.ChunkUnknownProducer:
		// The producer id expired (idle longer than meta's
		// --producer-id-expiration): clients get a new id, as after
		// Kafka expires a producer's state.
		return kerr.UnknownProducerID.Code
	case meta.ChunkInvalidTxnState:
		// Transactions (issue 15): no ongoing transaction of this
		// epoch holds the partition (KIP-890's verification, at commit).
		return kerr.InvalidTxnState.Code
	case meta.ChunkInvalid:
		// The agent validated the batch, so meta refusing its metadata
		// means the batch header lied about itself.
		return kerr.CorruptMessage.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

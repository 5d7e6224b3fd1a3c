package rpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// Errors cross the network in one of two ways, both mapped here and
// nowhere else:
//
//   - in band: a meta method's error travels in its response's Error
//     field (code and full message), next to whatever data came with it,
//     and per-item errors in their items. The RPC itself succeeds.
//   - as an RPC status: what happens before a cluster's Service is
//     reached (a refused key, a replica that is not the leader, a
//     transport failure) is a gRPC status; the server adds the same Error
//     as a status detail (in gRPC's status trailer, meta to agent) so
//     the client can keep the exact sentinel (ErrNotLeader, say).
//
// On the client, errors.Is(err, meta.ErrX) holds for the X the server's
// error wrapped, and err.Error() is the server's message.

// codeTable lists every sentinel of package meta with its wire code. The
// first match wins, so a sentinel that wraps another comes before it.
// meta.ErrClosed is not here: see encodeErr.
var codeTable = []struct {
	err  error
	code pb.ErrorCode
}{
	{meta.ErrNotLeader, pb.ErrorCode_ERR_NOT_LEADER}, // wraps ErrUnavailable
	{meta.ErrUnknownTopicOrPartition, pb.ErrorCode_ERR_UNKNOWN_TOPIC_OR_PARTITION},
	{meta.ErrTopicExists, pb.ErrorCode_ERR_TOPIC_EXISTS},
	{meta.ErrInvalidTopic, pb.ErrorCode_ERR_INVALID_TOPIC},
	{meta.ErrInvalidPartitions, pb.ErrorCode_ERR_INVALID_PARTITIONS},
	{meta.ErrOffsetOutOfRange, pb.ErrorCode_ERR_OFFSET_OUT_OF_RANGE},
	{meta.ErrInvalidProducerEpoch, pb.ErrorCode_ERR_INVALID_PRODUCER_EPOCH},
	{meta.ErrUnsupported, pb.ErrorCode_ERR_UNSUPPORTED},
	{meta.ErrUnavailable, pb.ErrorCode_ERR_UNAVAILABLE},
	{meta.ErrInvalidRequest, pb.ErrorCode_ERR_INVALID_REQUEST},
	{meta.ErrUnauthenticated, pb.ErrorCode_ERR_UNAUTHENTICATED},
	{meta.ErrCorrupt, pb.ErrorCode_ERR_CORRUPT},
	{meta.ErrUnknownMemberID, pb.ErrorCode_ERR_UNKNOWN_MEMBER_ID},
	{meta.ErrIllegalGeneration, pb.ErrorCode_ERR_ILLEGAL_GENERATION},
	{meta.ErrRebalanceInProgress, pb.ErrorCode_ERR_REBALANCE_IN_PROGRESS},
	{meta.ErrMemberIDRequired, pb.ErrorCode_ERR_MEMBER_ID_REQUIRED},
	{meta.ErrInconsistentProtocol, pb.ErrorCode_ERR_INCONSISTENT_PROTOCOL},
	{meta.ErrInvalidSessionTimeout, pb.ErrorCode_ERR_INVALID_SESSION_TIMEOUT},
	{meta.ErrGroupNotEmpty, pb.ErrorCode_ERR_GROUP_NOT_EMPTY},
	{meta.ErrGroupIDNotFound, pb.ErrorCode_ERR_GROUP_ID_NOT_FOUND},
	{meta.ErrFencedInstanceID, pb.ErrorCode_ERR_FENCED_INSTANCE_ID},
	{meta.ErrInvalidGroupID, pb.ErrorCode_ERR_INVALID_GROUP_ID},
	{meta.ErrGroupSubscribedToTopic, pb.ErrorCode_ERR_GROUP_SUBSCRIBED_TO_TOPIC},
	{meta.ErrLimit, pb.ErrorCode_ERR_LIMIT},
	{meta.ErrGroupMaxSizeReached, pb.ErrorCode_ERR_GROUP_MAX_SIZE_REACHED},
	{meta.ErrTooManyGroups, pb.ErrorCode_ERR_TOO_MANY_GROUPS},
	{meta.ErrOffsetMetadataTooLarge, pb.ErrorCode_ERR_OFFSET_METADATA_TOO_LARGE},
	{meta.ErrSegmentExpired, pb.ErrorCode_ERR_SEGMENT_EXPIRED},
	{meta.ErrJobLost, pb.ErrorCode_ERR_JOB_LOST},
	// ACLs (issue 14).
	{meta.ErrInvalidACL, pb.ErrorCode_ERR_INVALID_ACL},
	// SASL (issue 14)
	{meta.ErrScramUserNotFound, pb.ErrorCode_ERR_SCRAM_USER_NOT_FOUND},
	{meta.ErrScramUnacceptable, pb.ErrorCode_ERR_SCRAM_UNACCEPTABLE},
	{meta.ErrScramMechanism, pb.ErrorCode_ERR_SCRAM_MECHANISM},
	// KIP-848 consumer groups.
	{meta.ErrFencedMemberEpoch, pb.ErrorCode_ERR_FENCED_MEMBER_EPOCH},
	{meta.ErrStaleMemberEpoch, pb.ErrorCode_ERR_STALE_MEMBER_EPOCH},
	{meta.ErrUnsupportedAssignor, pb.ErrorCode_ERR_UNSUPPORTED_ASSIGNOR},
	{meta.ErrUnreleasedInstanceID, pb.ErrorCode_ERR_UNRELEASED_INSTANCE_ID},
	{meta.ErrInvalidRegularExpression, pb.ErrorCode_ERR_INVALID_REGULAR_EXPRESSION},
	// Transactions (issue 15).
	{meta.ErrInvalidTxnState, pb.ErrorCode_ERR_INVALID_TXN_STATE},
	{meta.ErrProducerFenced, pb.ErrorCode_ERR_PRODUCER_FENCED},
	{meta.ErrTransactionalIDNotFound, pb.ErrorCode_ERR_TRANSACTIONAL_ID_NOT_FOUND},
	{meta.ErrInvalidTxnTimeout, pb.ErrorCode_ERR_INVALID_TXN_TIMEOUT},
	{meta.ErrInvalidProducerIDMapping, pb.ErrorCode_ERR_INVALID_PRODUCER_ID_MAPPING},
	{meta.ErrOperationNotAttempted, pb.ErrorCode_ERR_OPERATION_NOT_ATTEMPTED},
	{context.Canceled, pb.ErrorCode_ERR_CANCELED},
	{context.DeadlineExceeded, pb.ErrorCode_ERR_DEADLINE_EXCEEDED},
}

// sentinels maps a wire code back to its sentinel.
var sentinels = func() map[pb.ErrorCode]error {
	m := make(map[pb.ErrorCode]error, len(codeTable))
	for _, e := range codeTable {
		m[e.code] = e.err
	}
	return m
}()

// encodeErr is the server's half: nil for nil, else the error's code and
// full message.
func encodeErr(err error) *pb.Error {
	if err == nil {
		return nil
	}
	if errors.Is(err, meta.ErrClosed) {
		// The cluster's Service is closing (shutdown, lost leadership).
		// On the client ErrClosed means the client was closed, and the
		// agent stops retrying on it; this is the opposite: retry, here
		// or at the next replica.
		return &pb.Error{Code: pb.ErrorCode_ERR_UNAVAILABLE, Message: fmt.Sprintf("%v: the cluster is closing on this replica (%v)", meta.ErrUnavailable, err)}
	}
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			return &pb.Error{Code: e.code, Message: err.Error()}
		}
	}
	return &pb.Error{Code: pb.ErrorCode_ERR_UNKNOWN, Message: err.Error()}
}

// encodeErrs encodes per-item errors; a nil item is ERR_NONE.
func encodeErrs(errs []error) []*pb.Error {
	if errs == nil {
		return nil
	}
	out := make([]*pb.Error, len(errs))
	for i, err := range errs {
		if out[i] = encodeErr(err); out[i] == nil {
			out[i] = &pb.Error{}
		}
	}
	return out
}

// remoteError is an error the server sent: its message is the server's,
// and it wraps the sentinel of its code (nil for ERR_UNKNOWN).
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// decodeErr is the client's half: nil for nil or ERR_NONE. A code this
// client does not know (a newer server) is a plain error with the
// server's message.
func decodeErr(e *pb.Error) error {
	if e == nil || e.Code == pb.ErrorCode_ERR_NONE {
		return nil
	}
	msg := e.Message
	if msg == "" {
		msg = "meta: " + e.Code.String()
	}
	return &remoteError{msg: msg, sentinel: sentinels[e.Code]}
}

func decodeErrs(es []*pb.Error) []error {
	if es == nil {
		return nil
	}
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = decodeErr(e)
	}
	return out
}

// statusErr turns an error met before a Service was reached (resolving
// the key, checking the admin token, decoding a request) into an RPC
// status whose detail is the same Error.
func statusErr(err error) error {
	var code codes.Code
	switch {
	case errors.Is(err, meta.ErrUnauthenticated):
		code = codes.Unauthenticated
	case errors.Is(err, meta.ErrUnavailable), errors.Is(err, meta.ErrClosed):
		code = codes.Unavailable
	case errors.Is(err, meta.ErrInvalidRequest):
		code = codes.InvalidArgument
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		code = codes.Internal
	}
	e := encodeErr(err)
	st, derr := status.New(code, e.Message).WithDetails(e)
	if derr != nil {
		return status.Error(code, e.Message)
	}
	return st.Err()
}

// fromStatus is the client's view of an RPC that failed as an RPC: a
// status error, or a transport failure that gRPC reports as one. The
// server's Error detail, when present, keeps the exact sentinel; without
// it the gRPC code decides. Transport failures wrap meta.ErrUnavailable so
// the agent retries them. The caller checks its own ctx first.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", meta.ErrUnavailable, err)
	}
	for _, d := range st.Details() {
		if e, ok := d.(*pb.Error); ok && e.Code != pb.ErrorCode_ERR_NONE {
			err := decodeErr(e)
			if st.Code() == codes.Unavailable && !errors.Is(err, meta.ErrUnavailable) {
				// A server that says Unavailable is retriable, whatever
				// its detail.
				return fmt.Errorf("%w: %w", meta.ErrUnavailable, err)
			}
			return err
		}
	}
	msg := st.Message()
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return &remoteError{msg: fmt.Sprintf("%v: %s", meta.ErrUnauthenticated, msg), sentinel: meta.ErrUnauthenticated}
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		// Connection refused or broken, a replica going away, a deadline
		// the server saw pass before the caller's did: nothing the
		// request did wrong. (ResourceExhausted, a message over the size
		// limit, is not here: sending it again would fail again.)
		return &remoteError{msg: fmt.Sprintf("%v: %s: %s", meta.ErrUnavailable, st.Code(), msg), sentinel: meta.ErrUnavailable}
	case codes.InvalidArgument:
		return &remoteError{msg: fmt.Sprintf("%v: %s", meta.ErrInvalidRequest, msg), sentinel: meta.ErrInvalidRequest}
	case codes.Unimplemented:
		return &remoteError{msg: fmt.Sprintf("%v: %s", meta.ErrUnsupported, msg), sentinel: meta.ErrUnsupported}
	}
	return &remoteError{msg: fmt.Sprintf("meta/rpc: %s: %s", st.Code(), msg)}
}

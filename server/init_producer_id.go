package server

// InitProducerId, versions 0–5.
//
// Idempotent producers (no transactional id) get a fresh producer id, or
// an epoch bump of the id they hold (KIP-360). A transactional id
// (issue 15, txn.go) goes to meta's transaction coordinator: the id's
// producer id with a bumped epoch, which fences older instances and
// aborts the transaction they left open; transaction.timeout.ms above
// meta's --max-transaction-timeout is INVALID_TRANSACTION_TIMEOUT. It
// needs WRITE on the transactional id.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() { register(int16(kmsg.InitProducerID), 0, 5, handleInitProducerID) }

func handleInitProducerID(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil && *req.TransactionalID != "" {
		initTxnProducer(s, rc, req, resp)
		return
	}
	// An idempotent producer needs IDEMPOTENT_WRITE on the cluster or
	// WRITE on some topic (Kafka 3.0+, KIP-679; authz.go).
	if s.authz != nil && !s.allowedQuietly(rc, meta.OpIdempotentWrite, meta.ResourceCluster, meta.ClusterResourceName) && !s.authorizeAny(rc, meta.OpWrite, meta.ResourceTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	pid, epoch := int64(-1), int16(-1)
	if rc.version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	res, err := s.deps.Meta.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: pid, ProducerEpoch: epoch})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		rc.respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
	rc.respond(resp)
}

// initTxnProducer is InitProducerId of a transactional producer.
func initTxnProducer(s *Server, rc *reqCtx, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) {
	if !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, *req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	mr := meta.ProducerIDRequest{TransactionalID: *req.TransactionalID, ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: req.TransactionTimeoutMillis}
	if rc.version >= 3 {
		mr.ProducerID, mr.ProducerEpoch = req.ProducerID, req.ProducerEpoch
	}
	res, err := s.deps.Meta.InitProducerID(ctx, mr)
	if err != nil {
		resp.ErrorCode = txnCode(err, rc.version, 4)
		rc.respond(resp)
		return
	}
	resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
	rc.respond(resp)
}

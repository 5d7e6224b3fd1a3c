package server

// InitProducerId, versions 0–5.
//
// Idempotent producers (no transactional id) get a fresh producer id, or
// an epoch bump of the id they hold (KIP-360). Transactions are not served
// yet: a transactional id is refused with a clear message, and the
// transactional APIs are not advertised.

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
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		s.log.Info("refused transactional producer: transactions are not supported yet",
			"remote", rc.c.remote, "transactional_id", *req.TransactionalID)
		rc.respond(resp)
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

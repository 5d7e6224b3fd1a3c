package server

// Transactions (issue 15, docs/transactions.md): AddPartitionsToTxn 0–3,
// AddOffsetsToTxn 0–3, TxnOffsetCommit 0–3, EndTxn 0–3,
// DescribeTransactions 0, ListTransactions 0–1, DescribeProducers 0. InitProducerId with a
// transactional id is in init_producer_id.go, FindCoordinator of key
// type 1 in groups.go.
//
// The coordinator is meta: every agent forwards these requests over its
// own connection (meta.Transactions), so a producer may talk to any
// agent. Left out, and so not advertised: transaction version 2
// (KIP-890 part 2: EndTxn v5, Produce adding partitions implicitly;
// clients fall back to AddPartitionsToTxn), AddPartitionsToTxn v4+ (the
// broker-to-broker verification batch: meta verifies at commit itself),
// the TRANSACTION_ABORTABLE versions (EndTxn and AddOffsetsToTxn v4,
// TxnOffsetCommit v4+), ListTransactions v2 (pattern). DescribeProducers
// answers from meta's idempotence state: last timestamp and coordinator
// epoch are not kept (-1).
//
// Authorization, as Kafka's: WRITE on the transactional id for every
// request of the producer; AddPartitionsToTxn WRITE on each topic;
// AddOffsetsToTxn READ on the group; TxnOffsetCommit READ on the group
// and each topic; DescribeTransactions DESCRIBE on each id; ListTransactions
// lists the ids the caller may DESCRIBE; DescribeProducers READ on each
// topic. Denials are
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED, TOPIC_, GROUP_AUTHORIZATION_FAILED.
//
// TxnOffsetCommit v3's member id, generation and group instance id are
// checked by meta against the group's membership (KIP-447: a zombie
// member gets ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or
// FENCED_INSTANCE_ID; meta/groups/txncommit.go).
//
// OffsetFetch with require_stable (v7+, KIP-447) answers a partition for
// which an ongoing transaction holds a pending offset of the group with
// UNSTABLE_OFFSET_COMMIT, which clients retry: a member taking over a
// partition does not start from an offset that is about to move
// (markUnstable).
//
// PRODUCER_FENCED exists from AddPartitionsToTxn v2, AddOffsetsToTxn v2,
// TxnOffsetCommit v3, EndTxn v2 and InitProducerId v4 (KIP-588); older
// versions get INVALID_PRODUCER_EPOCH, as Kafka answers them.

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() {
	register(int16(kmsg.AddPartitionsToTxn), 0, 3, handleAddPartitionsToTxn)
	register(int16(kmsg.AddOffsetsToTxn), 0, 3, handleAddOffsetsToTxn)
	register(int16(kmsg.TxnOffsetCommit), 0, 3, handleTxnOffsetCommit)
	register(int16(kmsg.EndTxn), 0, 3, handleEndTxn)
	register(int16(kmsg.DescribeTransactions), 0, 0, handleDescribeTransactions)
	register(int16(kmsg.ListTransactions), 0, 1, handleListTransactions)
	register(int16(kmsg.DescribeProducers), 0, 0, handleDescribeProducers)
}

// txnCode maps err for a request of version v, where PRODUCER_FENCED
// exists from version fencedFrom on.
func txnCode(err error, v, fencedFrom int16) int16 {
	c := errorCode(err)
	if c == kerr.ProducerFenced.Code && v < fencedFrom {
		return kerr.InvalidProducerEpoch.Code
	}
	return c
}

// spreadTxnCodes sets codes[at[k]] from meta's answer for the k-th
// partition sent: the call's error for all when it failed as a whole,
// else each partition's own.
func spreadTxnCodes(codes [][]int16, at [][2]int, errs []error, err error, v, fencedFrom int16) {
	for k, a := range at {
		e := err
		if e == nil && k < len(errs) {
			e = errs[k]
		}
		codes[a[0]][a[1]] = txnCode(e, v, fencedFrom)
	}
}

func handleAddPartitionsToTxn(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.AddPartitionsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	idDenied := !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, req.TransactionalID)
	codes := make([][]int16, len(req.Topics))
	var tps []meta.TopicPartition
	var at [][2]int // request position of each of tps
	failed := false
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		tt, ok := byName[t.Topic]
		topicDenied := !idDenied && !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, t.Topic)
		for j, p := range t.Partitions {
			switch {
			case idDenied:
				codes[i][j] = kerr.TransactionalIDAuthorizationFailed.Code
			case topicDenied:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				codes[i][j] = errorCode(err)
			case !ok || p < 0 || p >= tt.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			default:
				tps = append(tps, meta.TopicPartition{TopicID: tt.ID, Partition: p})
				at = append(at, [2]int{i, j})
				continue
			}
			failed = true
		}
	}
	switch {
	case failed:
		// All or nothing, as in Kafka: the rest were not attempted.
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
	case len(tps) > 0:
		p := meta.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
		errs, err := s.deps.Meta.AddPartitionsToTxn(ctx, p, tps)
		spreadTxnCodes(codes, at, errs, err, rc.version, 2)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	rc.respond(resp)
}

func handleAddOffsetsToTxn(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	default:
		ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
		defer cancel()
		p := meta.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
		resp.ErrorCode = txnCode(s.deps.Meta.AddOffsetsToTxn(ctx, p, req.Group), rc.version, 2)
	}
	rc.respond(resp)
}

func handleTxnOffsetCommit(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	cr := meta.OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, Generation: req.Generation}
	if req.InstanceID != nil {
		cr.InstanceID = *req.InstanceID
	}
	var deny int16
	switch {
	case !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, req.TransactionalID):
		deny = kerr.TransactionalIDAuthorizationFailed.Code
	case !s.authorize(rc, meta.OpRead, meta.ResourceGroup, req.Group):
		deny = kerr.GroupAuthorizationFailed.Code
	}
	codes := make([][]int16, len(req.Topics))
	var at [][2]int
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		tt, ok := byName[t.Topic]
		topicDenied := deny == 0 && !s.authorize(rc, meta.OpRead, meta.ResourceTopic, t.Topic)
		for j, p := range t.Partitions {
			switch {
			case deny != 0:
				codes[i][j] = deny
			case topicDenied:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				codes[i][j] = errorCode(err)
			case !ok || p.Partition < 0 || p.Partition >= tt.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > meta.MaxOffsetMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				co := meta.CommittedOffset{TopicPartition: meta.TopicPartition{TopicID: tt.ID, Partition: p.Partition}, Offset: p.Offset, LeaderEpoch: -1}
				if rc.version >= 2 {
					co.LeaderEpoch = p.LeaderEpoch
				}
				if p.Metadata != nil {
					co.Metadata = *p.Metadata
				}
				cr.Offsets = append(cr.Offsets, co)
				at = append(at, [2]int{i, j})
			}
		}
	}
	if len(cr.Offsets) > 0 {
		p := meta.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
		errs, err := s.deps.Meta.TxnOffsetCommit(ctx, p, cr)
		spreadTxnCodes(codes, at, errs, err, rc.version, 3)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	rc.respond(resp)
}

func handleEndTxn(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	if !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, req.TransactionalID) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	p := meta.TxnProducer{TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch}
	resp.ErrorCode = txnCode(s.deps.Meta.EndTxn(ctx, p, req.Commit), rc.version, 2)
	rc.respond(resp)
}

func handleDescribeTransactions(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	var ids []string
	for _, id := range req.TransactionalIDs {
		if s.authorize(rc, meta.OpDescribe, meta.ResourceTransactionalID, id) {
			ids = append(ids, id)
		}
	}
	ds, err := s.deps.Meta.DescribeTransactions(ctx, ids)
	byID := make(map[string]meta.TxnDescription, len(ds))
	for _, d := range ds {
		byID[d.TransactionalID] = d
	}
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		d, ok := byID[id]
		switch {
		case !s.allowedQuietly(rc, meta.OpDescribe, meta.ResourceTransactionalID, id):
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case err != nil:
			st.ErrorCode = errorCode(err)
		case !ok || d.Err != nil:
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			st.State, st.TimeoutMillis, st.StartTimestamp = d.State, d.TimeoutMs, d.StartMs
			st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
			st.Topics = s.txnTopics(ctx, d.Partitions)
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	rc.respond(resp)
}

// txnTopics names the partitions of a transaction by topic, in topic
// order; partitions of topics deleted since are left out.
func (s *Server) txnTopics(ctx context.Context, tps []meta.TopicPartition) []kmsg.DescribeTransactionsResponseTransactionStateTopic {
	ids := make([]meta.TopicID, 0, len(tps))
	for _, tp := range tps {
		ids = append(ids, tp.TopicID)
	}
	byID, err := s.topics.byIDs(ctx, ids)
	if err != nil {
		return nil
	}
	byName := map[string][]int32{}
	for _, tp := range tps {
		if t, ok := byID[tp.TopicID]; ok {
			byName[t.Name] = append(byName[t.Name], tp.Partition)
		}
	}
	var out []kmsg.DescribeTransactionsResponseTransactionStateTopic
	for name, ps := range byName {
		t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		t.Topic, t.Partitions = name, ps
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b kmsg.DescribeTransactionsResponseTransactionStateTopic) int {
		return strings.Compare(a.Topic, b.Topic)
	})
	return out
}

func handleListTransactions(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	ds, err := s.deps.Meta.ListTransactions(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		rc.respond(resp)
		return
	}
	known := map[string]bool{meta.TxnStateEmpty: true, meta.TxnStateOngoing: true,
		meta.TxnStateCompleteCommit: true, meta.TxnStateCompleteAbort: true,
		// Kafka's other states: valid filters that match nothing here
		// (Sluice has no prepared states: docs/transactions.md).
		"PrepareCommit": true, "PrepareAbort": true, "Dead": true, "PrepareEpochFence": true}
	for _, f := range req.StateFilters {
		if !known[f] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	now := time.Now().UnixMilli()
	for _, d := range ds {
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, d.State):
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, d.ProducerID):
		case rc.version >= 1 && req.DurationFilterMillis >= 0 && (d.StartMs < 0 || now-d.StartMs < req.DurationFilterMillis):
		case !s.allowedQuietly(rc, meta.OpDescribe, meta.ResourceTransactionalID, d.TransactionalID):
		default:
			st := kmsg.NewListTransactionsResponseTransactionState()
			st.TransactionalID, st.ProducerID, st.TransactionState = d.TransactionalID, d.ProducerID, d.State
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
	}
	rc.respond(resp)
}

// markUnstable sets UNSTABLE_OFFSET_COMMIT on the partitions of fts for
// which an ongoing transaction holds a pending offset of group. If meta
// cannot tell, every partition gets the (retriable) error.
func (s *Server) markUnstable(ctx context.Context, group string, fts []fetchedTopic) {
	tps, err := s.deps.Meta.PendingTxnOffsets(ctx, group)
	if err == nil && len(tps) == 0 {
		return
	}
	names := make([]string, len(fts))
	for i := range fts {
		names[i] = fts[i].name
	}
	byName, nerr := s.topics.byNames(ctx, names)
	for i := range fts {
		t, known := byName[fts[i].name]
		for j := range fts[i].parts {
			p := &fts[i].parts[j]
			if p.ErrorCode != 0 {
				continue
			}
			switch {
			case err != nil || nerr != nil:
				p.ErrorCode = kerr.UnstableOffsetCommit.Code
			case known && slices.Contains(tps, meta.TopicPartition{TopicID: t.ID, Partition: p.Partition}):
				p.ErrorCode = kerr.UnstableOffsetCommit.Code
			}
		}
	}
}

func handleDescribeProducers(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	var tps []meta.TopicPartition
	for _, t := range req.Topics {
		rt := kmsg.NewDescribeProducersResponseTopic()
		rt.Topic = t.Topic
		tt, known := byName[t.Topic]
		denied := !s.authorize(rc, meta.OpRead, meta.ResourceTopic, t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewDescribeProducersResponseTopicPartition()
			rp.Partition = p
			switch {
			case denied:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				rp.ErrorCode = errorCode(err)
			case !known || p < 0 || p >= tt.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				tps = append(tps, meta.TopicPartition{TopicID: tt.ID, Partition: p})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	var pps []meta.PartitionProducers
	if len(tps) > 0 {
		pps, err = s.deps.Meta.DescribeProducers(ctx, tps)
	}
	k := 0
	for i, t := range req.Topics {
		tt := byName[t.Topic]
		for j := range resp.Topics[i].Partitions {
			rp := &resp.Topics[i].Partitions[j]
			if rp.ErrorCode != 0 {
				continue
			}
			switch {
			case err != nil || k >= len(pps):
				rp.ErrorCode = errorCode(err)
				if rp.ErrorCode == 0 {
					rp.ErrorCode = kerr.UnknownServerError.Code
				}
			case pps[k].TopicID != tt.ID || pps[k].Partition != rp.Partition:
				rp.ErrorCode = kerr.UnknownServerError.Code // meta answered out of order
			case pps[k].Err != nil:
				rp.ErrorCode = errorCode(pps[k].Err)
			default:
				for _, ps := range pps[k].Producers {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = ps.ProducerID, int32(ps.ProducerEpoch), ps.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1, ps.CurrentTxnStartOffset
					rp.ActiveProducers = append(rp.ActiveProducers, ap)
				}
			}
			k++
		}
	}
	rc.respond(resp)
}

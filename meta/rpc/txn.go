package rpc

// Transactions (issue 15): the transaction coordinator's calls, both
// halves. Every call is safe to retry: adding a partition or a group
// again changes nothing, a TxnOffsetCommit overwrites, and a repeated
// EndTxn of the same epoch and result is answered as the first.

import (
	"context"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

func encTxnProducer(p meta.TxnProducer) *pb.TxnProducer {
	return &pb.TxnProducer{TransactionalId: p.TransactionalID, ProducerId: p.ProducerID, ProducerEpoch: int32(p.ProducerEpoch)}
}

func (d *decoder) txnProducer(p *pb.TxnProducer) meta.TxnProducer {
	return meta.TxnProducer{TransactionalID: p.GetTransactionalId(), ProducerID: p.GetProducerId(),
		ProducerEpoch: d.int16(p.GetProducerEpoch(), "producer epoch")}
}

// AddPartitionsToTxn implements meta.Client.
func (c *Client) AddPartitionsToTxn(ctx context.Context, p meta.TxnProducer, tps []meta.TopicPartition) ([]error, error) {
	req := &pb.AddPartitionsToTxnRequest{Producer: encTxnProducer(p), Partitions: encTPs(tps)}
	return c.errorsCall(ctx, "AddPartitionsToTxn", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.AddPartitionsToTxn(ctx, req)
	})
}

// AddOffsetsToTxn implements meta.Client.
func (c *Client) AddOffsetsToTxn(ctx context.Context, p meta.TxnProducer, group string) error {
	req := &pb.AddOffsetsToTxnRequest{Producer: encTxnProducer(p), Group: group}
	return c.errorCall(ctx, "AddOffsetsToTxn", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.AddOffsetsToTxn(ctx, req)
	})
}

// TxnOffsetCommit implements meta.Client.
func (c *Client) TxnOffsetCommit(ctx context.Context, p meta.TxnProducer, oc meta.OffsetCommitRequest) ([]error, error) {
	req := &pb.TxnOffsetCommitRequest{Producer: encTxnProducer(p), Commit: &pb.CommitOffsetsRequest{Group: oc.Group,
		MemberId: oc.MemberID, InstanceId: oc.InstanceID, Generation: oc.Generation, Offsets: encOffsets(oc.Offsets)}}
	return c.errorsCall(ctx, "TxnOffsetCommit", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.TxnOffsetCommit(ctx, req)
	})
}

// EndTxn implements meta.Client.
func (c *Client) EndTxn(ctx context.Context, p meta.TxnProducer, commit bool) error {
	req := &pb.EndTxnRequest{Producer: encTxnProducer(p), Commit: commit}
	return c.errorCall(ctx, "EndTxn", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.EndTxn(ctx, req)
	})
}

// TxnPartition implements meta.Client.
func (c *Client) TxnPartition(ctx context.Context, tp meta.TopicPartition, from int64) (meta.TxnPartitionState, error) {
	req := &pb.TxnPartitionRequest{Partition: encTP(tp), From: from}
	return callT(c, ctx, "TxnPartition", func(mc pb.MetaClient) (meta.TxnPartitionState, error) {
		r, err := mc.TxnPartition(ctx, req)
		if err != nil {
			return meta.TxnPartitionState{}, rpcError{err}
		}
		out := meta.TxnPartitionState{LastStableOffset: r.GetLastStableOffset(), HighWatermark: r.GetHighWatermark(), LogStartOffset: r.GetLogStartOffset()}
		for _, a := range r.GetAborted() {
			out.Aborted = append(out.Aborted, meta.AbortedTxn{ProducerID: a.GetProducerId(), FirstOffset: a.GetFirstOffset(), LastOffset: a.GetLastOffset()})
		}
		return out, decodeErr(r.Error)
	})
}

// DescribeTransactions implements meta.Client.
func (c *Client) DescribeTransactions(ctx context.Context, ids []string) ([]meta.TxnDescription, error) {
	return c.describeTxns(ctx, &pb.DescribeTransactionsRequest{Ids: ids})
}

// ListTransactions implements meta.Client.
func (c *Client) ListTransactions(ctx context.Context) ([]meta.TxnDescription, error) {
	return c.describeTxns(ctx, &pb.DescribeTransactionsRequest{All: true})
}

func (c *Client) describeTxns(ctx context.Context, req *pb.DescribeTransactionsRequest) ([]meta.TxnDescription, error) {
	return callT(c, ctx, "DescribeTransactions", func(mc pb.MetaClient) ([]meta.TxnDescription, error) {
		r, err := mc.DescribeTransactions(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := make([]meta.TxnDescription, 0, len(r.GetTransactions()))
		for _, t := range r.GetTransactions() {
			out = append(out, meta.TxnDescription{TransactionalID: t.GetTransactionalId(), State: t.GetState(),
				ProducerID: t.GetProducerId(), ProducerEpoch: d.int16(t.GetProducerEpoch(), "producer epoch"),
				TimeoutMs: t.GetTimeoutMs(), StartMs: t.GetStartMs(), Partitions: d.tps(t.GetPartitions()), Err: decodeErr(t.GetError())})
		}
		if d.err != nil {
			return nil, malformed("DescribeTransactions", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// The server's half.

func (m *metaServer) AddPartitionsToTxn(ctx context.Context, r *pb.AddPartitionsToTxnRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	p, tps := d.txnProducer(r.GetProducer()), d.tps(r.GetPartitions())
	if d.err != nil {
		return &pb.ErrorsResponse{Error: invalid(d.err)}, nil
	}
	errs, err := c.AddPartitionsToTxn(ctx, p, tps)
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) AddOffsetsToTxn(ctx context.Context, r *pb.AddOffsetsToTxnRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	p := d.txnProducer(r.GetProducer())
	if d.err != nil {
		return &pb.ErrorResponse{Error: invalid(d.err)}, nil
	}
	return &pb.ErrorResponse{Error: encodeErr(c.AddOffsetsToTxn(ctx, p, r.GetGroup()))}, nil
}

func (m *metaServer) TxnOffsetCommit(ctx context.Context, r *pb.TxnOffsetCommitRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	p := d.txnProducer(r.GetProducer())
	oc := r.GetCommit()
	req := meta.OffsetCommitRequest{Group: oc.GetGroup(), MemberID: oc.GetMemberId(), InstanceID: oc.GetInstanceId(),
		Generation: oc.GetGeneration(), Offsets: d.offsets(oc.GetOffsets())}
	if d.err != nil {
		return &pb.ErrorsResponse{Error: invalid(d.err)}, nil
	}
	errs, err := c.TxnOffsetCommit(ctx, p, req)
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) EndTxn(ctx context.Context, r *pb.EndTxnRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	p := d.txnProducer(r.GetProducer())
	if d.err != nil {
		return &pb.ErrorResponse{Error: invalid(d.err)}, nil
	}
	return &pb.ErrorResponse{Error: encodeErr(c.EndTxn(ctx, p, r.GetCommit()))}, nil
}

func (m *metaServer) TxnPartition(ctx context.Context, r *pb.TxnPartitionRequest) (*pb.TxnPartitionResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tp := d.tp(r.GetPartition())
	if d.err != nil {
		return &pb.TxnPartitionResponse{Error: invalid(d.err)}, nil
	}
	st, err := c.TxnPartition(ctx, tp, r.GetFrom())
	resp := &pb.TxnPartitionResponse{Error: encodeErr(err), LastStableOffset: st.LastStableOffset,
		HighWatermark: st.HighWatermark, LogStartOffset: st.LogStartOffset}
	for _, a := range st.Aborted {
		resp.Aborted = append(resp.Aborted, &pb.AbortedTxn{ProducerId: a.ProducerID, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset})
	}
	return resp, nil
}

func (m *metaServer) DescribeTransactions(ctx context.Context, r *pb.DescribeTransactionsRequest) (*pb.DescribeTransactionsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var ts []meta.TxnDescription
	if r.GetAll() {
		ts, err = c.ListTransactions(ctx)
	} else {
		ts, err = c.DescribeTransactions(ctx, r.GetIds())
	}
	resp := &pb.DescribeTransactionsResponse{Error: encodeErr(err)}
	for _, t := range ts {
		resp.Transactions = append(resp.Transactions, &pb.TxnDescription{Error: encodeErr(t.Err), TransactionalId: t.TransactionalID,
			State: t.State, ProducerId: t.ProducerID, ProducerEpoch: int32(t.ProducerEpoch), TimeoutMs: t.TimeoutMs,
			StartMs: t.StartMs, Partitions: encTPs(t.Partitions)})
	}
	return resp, nil
}

// PendingTxnOffsets implements meta.Client.
func (c *Client) PendingTxnOffsets(ctx context.Context, group string) ([]meta.TopicPartition, error) {
	req := &pb.PendingTxnOffsetsRequest{Group: group}
	return callT(c, ctx, "PendingTxnOffsets", func(mc pb.MetaClient) ([]meta.TopicPartition, error) {
		r, err := mc.PendingTxnOffsets(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.tps(r.GetPartitions())
		if d.err != nil {
			return nil, malformed("PendingTxnOffsets", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

func (m *metaServer) PendingTxnOffsets(ctx context.Context, r *pb.PendingTxnOffsetsRequest) (*pb.PendingTxnOffsetsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	tps, err := c.PendingTxnOffsets(ctx, r.GetGroup())
	return &pb.PendingTxnOffsetsResponse{Error: encodeErr(err), Partitions: encTPs(tps)}, nil
}

// DescribeProducers implements meta.Client.
func (c *Client) DescribeProducers(ctx context.Context, tps []meta.TopicPartition) ([]meta.PartitionProducers, error) {
	req := &pb.DescribeProducersRequest{Partitions: encTPs(tps)}
	return callT(c, ctx, "DescribeProducers", func(mc pb.MetaClient) ([]meta.PartitionProducers, error) {
		r, err := mc.DescribeProducers(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := make([]meta.PartitionProducers, 0, len(r.GetPartitions()))
		for _, p := range r.GetPartitions() {
			pp := meta.PartitionProducers{TopicPartition: d.tp(p.GetPartition()), Err: decodeErr(p.GetError())}
			for _, s := range p.GetProducers() {
				pp.Producers = append(pp.Producers, meta.ProducerState{ProducerID: s.GetProducerId(),
					ProducerEpoch: d.int16(s.GetProducerEpoch(), "producer epoch"), LastSequence: s.GetLastSequence(),
					CurrentTxnStartOffset: s.GetCurrentTxnStartOffset()})
			}
			out = append(out, pp)
		}
		if d.err != nil {
			return nil, malformed("DescribeProducers", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

func (m *metaServer) DescribeProducers(ctx context.Context, r *pb.DescribeProducersRequest) (*pb.DescribeProducersResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tps := d.tps(r.GetPartitions())
	if d.err != nil {
		return &pb.DescribeProducersResponse{Error: invalid(d.err)}, nil
	}
	pps, err := c.DescribeProducers(ctx, tps)
	resp := &pb.DescribeProducersResponse{Error: encodeErr(err)}
	for _, pp := range pps {
		pr := &pb.PartitionProducers{Error: encodeErr(pp.Err), Partition: encTP(pp.TopicPartition)}
		for _, s := range pp.Producers {
			pr.Producers = append(pr.Producers, &pb.ProducerState{ProducerId: s.ProducerID, ProducerEpoch: int32(s.ProducerEpoch),
				LastSequence: s.LastSequence, CurrentTxnStartOffset: s.CurrentTxnStartOffset})
		}
		resp.Partitions = append(resp.Partitions, pr)
	}
	return resp, nil
}

package server

// ListOffsets, versions 1–7.
//
// Answers the earliest (-2: log start offset) and latest (-1: high
// watermark) offsets, the first offset whose timestamp is at or after a
// given one, and (v7+) the offset of the largest timestamp (-3). meta's
// index knows each entry's largest timestamp; the agent reads that entry's
// batches to find the record. Uncompressed batches are exact to the
// record; in a compressed batch the answer is exact to the batch (its
// first offset for a timestamp query, its last for -3), which can only
// make a consumer start earlier, never skip a record. Versions 8+ (tiered
// storage offsets) are not advertised.
//
// Transactions (issue 15): latest (-1) with isolation_level
// read_committed answers the last stable offset, from meta.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/codec"
	"sluice.dev/meta"
)

func init() { register(int16(kmsg.ListOffsets), 1, 7, handleListOffsets) }

func handleListOffsets(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()

	names := make([]string, len(req.Topics))
	for i := range req.Topics {
		names[i] = req.Topics[i].Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	resp.Topics = make([]kmsg.ListOffsetsResponseTopic, len(req.Topics))
	for ti, rt := range req.Topics {
		ot := kmsg.NewListOffsetsResponseTopic()
		ot.Topic = rt.Topic
		t, known := byName[rt.Topic]
		// DESCRIBE on the topic (authz.go).
		denied := !s.authorize(rc, meta.OpDescribe, meta.ResourceTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset, op.LeaderEpoch = -1, -1, 0
			switch {
			case denied:
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				op.ErrorCode = errorCode(err)
			case !known || rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Timestamp >= 0 || rp.Timestamp == -3 && rc.version >= 7:
				tp := meta.TopicPartition{TopicID: t.ID, Partition: rp.Partition}
				off, ts, e := s.offsetForTimestamp(ctx, tp, rp.Timestamp)
				op.Offset, op.Timestamp, op.ErrorCode = off, ts, errorCode(e)
			case rp.Timestamp != -1 && rp.Timestamp != -2:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				logStart, hwm, e := s.deps.Index.State(ctx, meta.TopicPartition{TopicID: t.ID, Partition: rp.Partition})
				if e != nil {
					op.ErrorCode = errorCode(e)
					break
				}
				if rp.Timestamp == -1 && req.IsolationLevel == 1 {
					ts, e := s.deps.Meta.TxnPartition(ctx, meta.TopicPartition{TopicID: t.ID, Partition: rp.Partition}, hwm)
					if e != nil {
						op.ErrorCode = errorCode(e)
						break
					}
					op.Offset = ts.LastStableOffset
				} else if rp.Timestamp == -1 {
					op.Offset = hwm
				} else {
					op.Offset = logStart
				}
			}
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics[ti] = ot
	}
	rc.respond(resp)
}

// offsetForTimestamp answers a timestamp query (ts >= 0) or -3. No match
// is offset -1, timestamp -1, as Kafka answers.
func (s *Server) offsetForTimestamp(ctx context.Context, tp meta.TopicPartition, ts int64) (int64, int64, error) {
	q := meta.FirstAtOrAfter
	if ts == -3 {
		q = meta.MaxTimestamp
	}
	res, err := s.deps.Meta.FindTimestamp(ctx, tp, q, ts)
	if err != nil || !res.Found {
		return -1, -1, err
	}
	e := res.Entry
	if e.IsMarker() {
		// A transaction marker (issue 15): its one offset, stamped when
		// the transaction ended.
		return e.BaseOffset, e.MaxTimestamp, nil
	}
	raw, err := s.deps.Blocks.ReadRange(ctx, e.ObjectKey, e.ObjectSize, e.Start, e.Length)
	if err != nil {
		return -1, -1, err
	}
	base := e.BaseOffset
	bestOff, bestTS := int64(-1), int64(-1)
	err = codec.SplitBatches(raw, func(b []byte) error {
		h, err := codec.ParseBatchHeader(b)
		if err != nil {
			return err
		}
		batchBase := base
		base += int64(h.LastOffsetDelta) + 1
		if batchBase < res.LogStartOffset {
			return nil
		}
		switch {
		case q == meta.FirstAtOrAfter && bestOff < 0 && h.MaxTimestamp >= ts:
			bestOff, bestTS = batchBase, h.FirstTimestamp
			codec.RecordTimestamps(b, h, func(d int32, rts int64) bool {
				if rts >= ts {
					bestOff, bestTS = batchBase+int64(d), rts
					return false
				}
				return true
			})
		case q == meta.MaxTimestamp && h.MaxTimestamp > bestTS:
			bestOff, bestTS = batchBase+int64(h.LastOffsetDelta), h.MaxTimestamp
			codec.RecordTimestamps(b, h, func(d int32, rts int64) bool {
				if rts == h.MaxTimestamp {
					bestOff = batchBase + int64(d)
					return false
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		return -1, -1, err
	}
	return bestOff, bestTS, nil
}

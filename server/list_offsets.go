package server

// ListOffsets, versions 1–6.
//
// Answers the earliest (-2: log start offset) and latest (-1: high
// watermark) offsets. Lookups by timestamp and by max timestamp (-3, v7+)
// belong to a later issue: a timestamp at or above zero is answered with
// INVALID_REQUEST so that no client mistakes it for an answer. Versions from
// 7 on are not advertised until -3 works.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() { register(int16(kmsg.ListOffsets), 1, 6, handleListOffsets) }

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
		for _, rp := range rt.Partitions {
			op := kmsg.NewListOffsetsResponseTopicPartition()
			op.Partition = rp.Partition
			op.Timestamp, op.Offset, op.LeaderEpoch = -1, -1, 0
			switch {
			case err != nil:
				op.ErrorCode = errorCode(err)
			case !known || rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Timestamp != -1 && rp.Timestamp != -2:
				op.ErrorCode = kerr.InvalidRequest.Code
			default:
				logStart, hwm, e := s.deps.Index.State(ctx, meta.TopicPartition{TopicID: t.ID, Partition: rp.Partition})
				if e != nil {
					op.ErrorCode = errorCode(e)
					break
				}
				if rp.Timestamp == -1 {
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

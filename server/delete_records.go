package server

// DeleteRecords 0–2: moves partitions' log start offsets (meta/controller/records.go).
// Offset -1 deletes up to the high watermark. The answer's low watermark
// is the new log start. Segment objects stay until the cleaner removes
// unreferenced ones: other partitions' data shares them.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

func init() { register(int16(kmsg.DeleteRecords), 0, 2, handleDeleteRecords) }

func handleDeleteRecords(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()

	names := make([]string, len(req.Topics))
	for i, t := range req.Topics {
		names[i] = t.Topic
	}
	byName, err := s.topics.byNames(ctx, names)
	type slot struct{ ti, pi int }
	var specs []meta.DeleteRecordsSpec
	var slots []slot
	for ti, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		topic, known := byName[t.Topic]
		// DELETE on the topic (authz.go).
		denied := !s.authorize(rc, meta.OpDelete, meta.ResourceTopic, t.Topic)
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition, rp.LowWatermark = p.Partition, -1
			switch {
			case denied:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case err != nil:
				rp.ErrorCode = errorCode(err)
			case !known || p.Partition < 0 || p.Partition >= topic.Partitions:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.Offset < -1:
				rp.ErrorCode = kerr.OffsetOutOfRange.Code
			default:
				specs = append(specs, meta.DeleteRecordsSpec{TopicPartition: meta.TopicPartition{TopicID: topic.ID, Partition: p.Partition}, Offset: p.Offset})
				slots = append(slots, slot{ti, len(rt.Partitions)})
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(specs) > 0 {
		res, err := s.deps.Meta.DeleteRecords(ctx, specs)
		for i, sl := range slots {
			rp := &resp.Topics[sl.ti].Partitions[sl.pi]
			switch {
			case err != nil:
				rp.ErrorCode = errorCode(err)
			case i >= len(res):
				rp.ErrorCode = kerr.UnknownServerError.Code
			case res[i].Err != nil:
				rp.ErrorCode = errorCode(res[i].Err)
			default:
				rp.LowWatermark = res[i].LogStartOffset
			}
		}
		if err != nil {
			s.log.Warn("delete records", "err", err)
		}
	}
	rc.respond(resp)
}

package controller

import (
	"context"
	"fmt"
	"slices"

	"sluice.dev/meta"
)

// DeleteRecords (Kafka's DeleteRecords API) moves a partition's log start
// offset forward: offsets below it are gone for readers at once (Lookup
// and Fetch answer OFFSET_OUT_OF_RANGE, ListOffsets earliest returns the
// new start). Index entries that lie wholly below the new start leave the
// index and the store in the same commit; the entry holding the start
// stays, so a partition's first entry holds its log start (invariant 3).
// Segment objects are not deleted here: other partitions' data shares
// them, and unreferenced objects are the cleaner's job.

// DeleteRecords moves log start offsets. It answers one PartitionState
// per spec, in order: the new log start offset (Kafka's low watermark)
// and high watermark, or Err (ErrUnknownTopicOrPartition,
// ErrOffsetOutOfRange for an offset beyond the high watermark).
func (s *Service) DeleteRecords(ctx context.Context, specs []meta.DeleteRecordsSpec) ([]meta.PartitionState, error) {
	o := &op{kind: opDeleteRecords, deletes: slices.Clone(specs)}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.deleteResults, nil
}

func applyDeleteRecords(g *group, specs []meta.DeleteRecordsSpec) []meta.PartitionState {
	out := make([]meta.PartitionState, len(specs))
	for i, sp := range specs {
		out[i] = meta.PartitionState{TopicID: sp.TopicID, Partition: sp.Partition}
		t := g.topicByID(sp.TopicID)
		if t == nil || sp.Partition < 0 || int(sp.Partition) >= len(t.parts) {
			out[i].Err = meta.ErrUnknownTopicOrPartition
			continue
		}
		d := g.part(t.parts[sp.Partition])
		off := sp.Offset
		if off == -1 {
			off = d.next
		}
		if off < 0 || off > d.next {
			out[i].Err = fmt.Errorf("%w: delete records below %d: high watermark is %d", meta.ErrOffsetOutOfRange, sp.Offset, d.next)
			out[i].LogStartOffset, out[i].HighWatermark = d.logStart, d.next
			continue
		}
		if off > d.logStart {
			d.logStart = off
			d.trimmed = true
		}
		out[i].LogStartOffset, out[i].HighWatermark = d.logStart, d.next
	}
	return out
}

// trimCount is how many of ps's committed entries lie wholly below
// logStart.
func trimCount(ps *partState, logStart int64) int {
	n := 0
	for n < ps.entries.len() && ps.entries.at(n).LastOffset < logStart {
		n++
	}
	return n
}

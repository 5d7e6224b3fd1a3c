package meta

import (
	"context"
	"fmt"
)

// TimestampQuery selects what FindTimestamp looks for.
type TimestampQuery int8

const (
	// FirstAtOrAfter finds the first entry holding a record with a
	// timestamp at or after the given one (ListOffsets by timestamp).
	FirstAtOrAfter TimestampQuery = iota
	// MaxTimestamp finds the entry holding the partition's largest
	// timestamp (ListOffsets -3, KIP-734).
	MaxTimestamp
)

// TimestampResult answers FindTimestamp.
type TimestampResult struct {
	Entry          IndexEntry
	Found          bool
	LogStartOffset int64
	HighWatermark  int64
}

// FindTimestamp scans a partition's index entries by their max timestamps.
// Entries carry only their largest timestamp, so the caller reads the
// entry's batches to find the record; the scan is linear in the entries
// kept (compaction of small segments keeps that short).
func (s *Service) FindTimestamp(ctx context.Context, tp TopicPartition, q TimestampQuery, ts int64) (TimestampResult, error) {
	if err := s.readable(ctx); err != nil {
		return TimestampResult{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := s.partLocked(tp)
	if ps == nil {
		return TimestampResult{}, ErrUnknownTopicOrPartition
	}
	r := TimestampResult{LogStartOffset: ps.logStart, HighWatermark: ps.next}
	best := -1
	for i := 0; i < ps.entries.len(); i++ {
		e := ps.entries.at(i)
		if e.LastOffset < ps.logStart {
			continue
		}
		switch q {
		case FirstAtOrAfter:
			if e.MaxTimestamp >= ts {
				best = i
			}
		case MaxTimestamp:
			if best < 0 || e.MaxTimestamp > ps.entries.at(best).MaxTimestamp {
				best = i
			}
		default:
			return r, fmt.Errorf("meta: timestamp query %d", q)
		}
		if q == FirstAtOrAfter && best >= 0 {
			break
		}
	}
	if best >= 0 {
		r.Entry, r.Found = *ps.entries.at(best), true
	}
	return r, nil
}

package meta

import (
	"context"
	"fmt"
	"slices"
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
//
// The scan runs without Service.mu: holding it would stall the committer
// (which takes mu to merge every group) for as long as a long partition
// takes to scan. Under mu it takes a view of the entry list (its block
// headers); that view stays valid without the lock because the state
// never changes an entry in place: appends write past every block's
// length as viewed, and trimming builds a new list (entryList).
func (s *Service) FindTimestamp(ctx context.Context, tp TopicPartition, q TimestampQuery, ts int64) (TimestampResult, error) {
	if err := s.readable(ctx); err != nil {
		return TimestampResult{}, err
	}
	if q != FirstAtOrAfter && q != MaxTimestamp {
		return TimestampResult{}, fmt.Errorf("meta: timestamp query %d", q)
	}
	s.mu.RLock()
	ps := s.partLocked(tp)
	if ps == nil {
		s.mu.RUnlock()
		return TimestampResult{}, ErrUnknownTopicOrPartition
	}
	r := TimestampResult{LogStartOffset: ps.logStart, HighWatermark: ps.next}
	view := entryList{blocks: slices.Clone(ps.entries.blocks), n: ps.entries.n}
	s.mu.RUnlock()

	best := -1
	for i := 0; i < view.len(); i++ {
		e := view.at(i)
		if e.LastOffset < r.LogStartOffset {
			continue
		}
		if q == FirstAtOrAfter {
			if e.MaxTimestamp >= ts {
				best = i
				break
			}
			continue
		}
		if best < 0 || e.MaxTimestamp > view.at(best).MaxTimestamp {
			best = i
		}
	}
	if best >= 0 {
		r.Entry, r.Found = *view.at(best), true
	}
	return r, nil
}

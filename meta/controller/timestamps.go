package controller

import (
	"context"
	"fmt"
	"slices"

	"sluice.dev/meta"
)

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
// length as viewed, and trims and swaps never write a slot a view holds (entryList).
// timestampScanHook, set only by tests, runs at the start of every
// FindTimestamp scan, after the view is taken and Service.mu released.
var timestampScanHook func()

func (s *Service) FindTimestamp(ctx context.Context, tp meta.TopicPartition, q meta.TimestampQuery, ts int64) (meta.TimestampResult, error) {
	if err := s.readable(ctx); err != nil {
		return meta.TimestampResult{}, err
	}
	if q != meta.FirstAtOrAfter && q != meta.MaxTimestamp {
		return meta.TimestampResult{}, fmt.Errorf("meta: timestamp query %d", q)
	}
	s.mu.RLock()
	ps := s.partLocked(tp)
	if ps == nil {
		s.mu.RUnlock()
		return meta.TimestampResult{}, meta.ErrUnknownTopicOrPartition
	}
	r := meta.TimestampResult{LogStartOffset: ps.logStart, HighWatermark: ps.next}
	view := entryList{blocks: slices.Clone(ps.entries.blocks), off: ps.entries.off, n: ps.entries.n}
	s.mu.RUnlock()
	if h := timestampScanHook; h != nil {
		h() // tests hold the scan here to show that commits go on meanwhile
	}

	best := -1
	for i := 0; i < view.len(); i++ {
		e := view.at(i)
		if e.LastOffset < r.LogStartOffset {
			continue
		}
		if q == meta.FirstAtOrAfter {
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

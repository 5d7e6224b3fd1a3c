package controller

import (
	"fmt"
	"time"

	"sluice.dev/meta"
)

// The compaction swap (docs/compaction.md, "The swap"). A result lists
// the output's entries; consecutive entries of one partition with
// adjacent offsets form a run, and each run must cover exactly the
// committed entries it replaces: the first starts at the run's first
// offset, the last ends at its last, and every one points into an object
// of the job's sources. A run that does not match (retention, DeleteRecords,
// a topic delete or another swap changed the range) is refused and the
// index keeps its entries; the others are swapped in this commit group.
// Readers therefore see the old entries or the new ones, never a gap or
// an overlap, and invariant 3 (doc.go) holds after every group.

// swapReq is a compaction result with what meta leased for it.
type swapReq struct {
	res     meta.CompactResult
	sources map[meta.SegmentID]bool
	level   int8
	// clean: a key cleaning (JobCleanKeys); a swapped run moves its
	// partition's clean end past res.CleanedUpTo.
	clean bool
}

// applySwap validates r against the committed state and records the
// runs that match as swaps in the group.
func (s *Service) applySwap(g *group, r *swapReq, now int64) (meta.CompactOutcome, error) {
	res := &r.res
	var out meta.CompactOutcome
	if maxAge := s.commitMaxAge(); maxAge > 0 && res.Output.Time().UnixNano() < now-maxAge.Nanoseconds() {
		return out, fmt.Errorf("%w: compaction output %s was named at %s, more than %v ago", meta.ErrSegmentExpired, res.Output, res.Output.Time().UTC().Format(time.RFC3339Nano), maxAge)
	}
	if res.ObjectKey != meta.ObjectKey(res.Output) || res.Size <= 0 {
		return out, fmt.Errorf("%w: compaction result names object %q of %d bytes for output %s", meta.ErrInvalidRequest, res.ObjectKey, res.Size, res.Output)
	}
	if g.st.objs.byID[res.Output] != nil {
		// A repeated completion: the first one decided.
		out.Refused = len(res.Entries)
		return out, nil
	}
	for _, b := range g.objsNew {
		if b.id == res.Output {
			out.Refused = len(res.Entries)
			return out, nil
		}
	}
	for i := range res.Entries {
		e := &res.Entries[i]
		if e.SegmentID != res.Output || e.ObjectKey != res.ObjectKey || e.ObjectSize != res.Size ||
			e.Start < 0 || e.Length <= 0 || e.Start > res.Size-e.Length || e.LastOffset < e.BaseOffset || e.BaseOffset < 0 ||
			e.Control != meta.ControlNone { // only the coordinator makes markers (issue 15)
			return out, fmt.Errorf("%w: compaction result entry %d ([%d, %d] at %d+%d) does not fit its object", meta.ErrInvalidRequest, i, e.BaseOffset, e.LastOffset, e.Start, e.Length)
		}
	}
	g.objsNew = append(g.objsNew, bornObj{id: res.Output, key: res.ObjectKey, size: res.Size, level: r.level})
	for i := 0; i < len(res.Entries); {
		j := i + 1
		for j < len(res.Entries) && sameTP(&res.Entries[j], &res.Entries[i]) && res.Entries[j].BaseOffset == res.Entries[j-1].LastOffset+1 {
			j++
		}
		run := res.Entries[i:j]
		if r.clean && (j-i != len(res.Entries) || res.CleanedUpTo < run[0].BaseOffset-1 || res.CleanedUpTo > run[len(run)-1].LastOffset) {
			return out, fmt.Errorf("%w: a key cleaning result must be one run of one partition judged up to within it (cleaned up to %d)", meta.ErrInvalidRequest, res.CleanedUpTo)
		}
		if g.swapRun(run, r) {
			out.Swapped += len(run)
		} else {
			out.Refused += len(run)
		}
		i = j
	}
	return out, nil
}

func sameTP(a, b *meta.IndexEntry) bool {
	return a.TopicID == b.TopicID && a.Partition == b.Partition
}

// swapRun records run as a swap when the committed index holds exactly
// entries of the job's sources for its range. A job's sources may
// include transaction markers (they have no object, so they are not in
// r.sources): the job rendered them into its output. A marker is never
// placed inside a range already committed and never changes, so every
// marker within the run's range was there when the job was planned.
func (g *group) swapRun(run []meta.IndexEntry, r *swapReq) bool {
	first, last := run[0].BaseOffset, run[len(run)-1].LastOffset
	t := g.topicByID(run[0].TopicID)
	if t == nil || t != g.st.topicsByID[run[0].TopicID] || run[0].Partition < 0 || int(run[0].Partition) >= len(t.parts) {
		return false // unknown, or deleted or re-created in this group
	}
	ps := t.parts[run[0].Partition]
	l := &ps.entries
	i := l.find(first)
	if i < 0 || l.at(i).BaseOffset != first {
		return false
	}
	j := i
	for ; j < l.len(); j++ {
		e := l.at(j)
		if !(r.sources[e.SegmentID] || e.IsMarker()) || e.LastOffset > last {
			return false
		}
		if e.LastOffset == last {
			break
		}
	}
	if j == l.len() {
		return false
	}
	j++ // exclusive
	// The output's entries wholly below the log start are not swapped
	// in. They exist when a DeleteRecords or retention moved the log
	// start into a source entry, which stays because it straddles it,
	// while the output splits that range: kept, they would sit below the
	// log start, and since Open drops such entries the index and the
	// object's references would differ between memory and what a restart
	// rebuilds (TestReopenProperty found it). A run wholly below it
	// (trimmed away in this group) is refused: nothing to gain.
	ls := ps.logStart
	if d := g.parts[ps]; d != nil {
		ls = max(ls, d.logStart)
	}
	k := 0
	for k < len(run) && run[k].LastOffset < ls {
		k++
	}
	if k == len(run) {
		return false
	}
	d := g.part(ps)
	for _, sw := range d.swaps {
		if i < sw.j && sw.i < j {
			return false // another result of this group took part of it
		}
	}
	d.swaps = append(d.swaps, entrySwap{i: i, j: j, with: append([]meta.IndexEntry(nil), run[k:]...), level: r.level})
	if r.clean {
		d.cleanEnd = max(d.cleanEnd, r.res.CleanedUpTo+1)
	}
	return true
}

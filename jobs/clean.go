package jobs

import (
	"context"
	"errors"
	"fmt"

	"sluice.dev/codec"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// clean runs a key cleaning (meta.JobCleanKeys) of one partition of a
// compacted topic: read the range, index the dirty part's keys, rewrite
// the range keeping the latest record of each key (keycompact.go), and
// report entries that cover exactly the range, so meta can swap them in
// like a compaction's. When the key map fills up before the range's end,
// the rest of the range is copied unchanged and the result says how far
// it was judged; meta's next cleaning goes on from there.
func (r *Runner) clean(ctx context.Context, job meta.Job) error {
	cj := job.Compact
	if cj == nil || cj.Clean == nil || len(cj.Sources) == 0 {
		return errors.New("key cleaning job without sources or spec")
	}
	first, last := cj.Sources[0], cj.Sources[len(cj.Sources)-1]
	var want int64
	for i, s := range cj.Sources {
		want += entryBytes(&s)
		if s.TopicID != first.TopicID || s.Partition != first.Partition || (i > 0 && s.BaseOffset != cj.Sources[i-1].LastOffset+1) {
			return fmt.Errorf("key cleaning sources must be adjacent entries of one partition (source %d)", i)
		}
	}
	if want > r.cfg.MaxJobBytes {
		return fmt.Errorf("job reads %d bytes, more than this agent takes (%d)", want, r.cfg.MaxJobBytes)
	}
	m := stats[meta.JobCleanKeys]
	data, read, err := r.readEntries(ctx, cj.Sources)
	m.bytesRead.Add(int(read))
	if err != nil {
		return err
	}
	// The batches with the absolute base offsets the fetch path gives
	// them: the first at the entry's base, each next after the last.
	var in []Batch
	for i, s := range cj.Sources {
		next := s.BaseOffset
		err := codec.SplitBatches(data[i], func(b []byte) error {
			h, err := codec.CheckStoredBatch(b)
			if err != nil {
				return err
			}
			in = append(in, Batch{Base: next, Data: b})
			next += int64(h.LastOffsetDelta) + 1
			return nil
		})
		if err == nil && next != s.LastOffset+1 {
			err = fmt.Errorf("%w: batches take offsets [%d, %d), entry says [%d, %d]", codec.ErrCorrupt, s.BaseOffset, next, s.BaseOffset, s.LastOffset)
		}
		if err != nil {
			return fmt.Errorf("source [%d, %d] of %s: %w", s.BaseOffset, s.LastOffset, s.ObjectKey, err)
		}
	}

	dirty := max(cj.Clean.DirtyStart, first.BaseOffset)
	km := NewKeyMap(keyMapBytes(last.LastOffset-dirty+1, r.cfg.KeyMapBytes))
	var out []Batch // copies: Emit's bytes live only during the call
	arena := make([]byte, 0, want)
	st, err := CompactKeys(km, in, CleanConfig{
		Start: first.BaseOffset, DirtyStart: dirty, CleanUpTo: last.LastOffset, TombstoneHorizon: cj.Clean.TombstoneHorizon,
		Aborted: cj.Clean.Aborted,
	}, func(base int64, b []byte) error {
		at := len(arena)
		arena = append(arena, b...)
		out = append(out, Batch{Base: base, Data: arena[at:len(arena):len(arena)]})
		return nil
	})
	if err != nil {
		return err
	}
	// A full key map ends the output early: the rest goes unchanged.
	for _, b := range in {
		if b.Base > st.End {
			if b.Base != st.End+1 && len(out) > 0 {
				return fmt.Errorf("BUG: jobs: cleaned output ends at %d inside a batch starting at %d", st.End, b.Base)
			}
			out = append(out, b)
			st.End = b.Base + int64(lastDelta(b.Data))
		}
	}
	if st.End != last.LastOffset {
		return fmt.Errorf("BUG: jobs: cleaned output covers [%d, %d], the range is [%d, %d]", first.BaseOffset, st.End, first.BaseOffset, last.LastOffset)
	}
	object, size, entries, err := layoutBatches(cj, first.TopicID, first.Partition, out)
	if err != nil {
		return err
	}
	key := meta.ObjectKey(cj.Output)
	if err := r.pace.wait(ctx, size); err != nil {
		return err
	}
	if err := r.cfg.Store.PutReader(ctx, key, objstore.NewParts(object), size); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	m.written.Add(int(size))
	res, err := r.cfg.Meta.CompleteCompaction(ctx, meta.CompactResult{
		JobID: job.ID, Output: cj.Output, ObjectKey: key, Size: size,
		Entries: entries, BytesRead: read, CleanedUpTo: st.CleanedUpTo,
	})
	if err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	m.entriesSwapped.Add(res.Swapped)
	m.entriesRefused.Add(res.Refused)
	if res.Swapped > 0 {
		mAbortedDropped.Add(int(st.AbortedDropped))
		mMarkersDropped.Add(int(st.MarkersDropped))
	}
	r.log.Debug("jobs: cleaned", "job", job.ID, "partition", first.Partition, "range", [2]int64{first.BaseOffset, last.LastOffset},
		"records_in", st.RecordsIn, "records_out", st.RecordsOut, "bytes_in", st.BytesIn, "bytes_out", size,
		"tombstones_dropped", st.TombstonesDropped, "aborted_dropped", st.AbortedDropped, "markers_dropped", st.MarkersDropped,
		"cleaned_up_to", st.CleanedUpTo)
	return nil
}

func lastDelta(b []byte) int32 {
	h, _ := codec.ParseBatchHeader(b)
	return h.LastOffsetDelta
}

// keyMapBytes sizes a key map for a dirty range of n offsets (at most n
// keys), within limit.
func keyMapBytes(n, limit int64) int {
	want := n*keyMapSlotSize*keyMapLoadDen/keyMapLoadNum + 64*keyMapSlotSize
	return int(min(max(want, 1<<16), limit))
}

// layoutBatches writes one partition's batches, in offset order, as an
// object (as parts aliasing the batches, see FinishParts), cutting them
// into entries of at most MaxEntryBytes.
func layoutBatches(cj *meta.CompactJob, topic meta.TopicID, part int32, batches []Batch) ([][]byte, int64, []meta.IndexEntry, error) {
	b := codec.NewSegmentBuilder(cj.Output)
	var ents []*outEntry
	var cur *outEntry
	for _, bt := range batches {
		h, err := codec.CheckStoredBatch(bt.Data)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("cleaned batch at %d: %w", bt.Base, err)
		}
		if cur == nil || (cur.bytes+int64(len(bt.Data)) > cj.MaxEntryBytes && cj.MaxEntryBytes > 0) {
			cur = &outEntry{e: meta.IndexEntry{TopicID: topic, Partition: part, BaseOffset: bt.Base, MaxTimestamp: -1}, first: -1}
			ents = append(ents, cur)
		}
		idx := b.Add(topic, part, bt.Data, h)
		if cur.first < 0 {
			cur.first = idx
		}
		cur.last = idx
		cur.bytes += int64(len(bt.Data))
		cur.e.LastOffset = bt.Base + int64(h.LastOffsetDelta)
		cur.e.MaxTimestamp = max(cur.e.MaxTimestamp, h.MaxTimestamp)
	}
	object, size, metas := b.FinishParts()
	key := meta.ObjectKey(cj.Output)
	entries := make([]meta.IndexEntry, 0, len(ents))
	for _, oe := range ents {
		e := oe.e
		e.SegmentID, e.ObjectKey, e.ObjectSize = cj.Output, key, int64(size)
		e.Start = metas[oe.first].Start
		e.Length = metas[oe.last].End() - e.Start
		entries = append(entries, e)
	}
	return object, int64(size), entries, nil
}

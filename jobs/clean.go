package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	in, err := entryBatches(cj.Sources, data, nil)
	if err != nil {
		return err
	}

	dirty := max(cj.Clean.DirtyStart, first.BaseOffset)
	cfg := CleanConfig{
		Start: first.BaseOffset, DirtyStart: dirty, CleanUpTo: last.LastOffset, TombstoneHorizon: cj.Clean.TombstoneHorizon,
		Aborted: cj.Clean.Aborted, FromLogStart: cj.Clean.FromLogStart,
	}
	windowed := cj.Clean.KeyEnd > 0
	if windowed {
		// A window of a pass (meta's cleanPass): judged against the
		// keys of [DirtyStart, KeyEnd], part of which may lie in the
		// key sources after it.
		cfg.CleanUpTo = cj.Clean.KeyEnd
	}
	km := NewKeyMap(keyMapBytes(cfg.CleanUpTo-dirty+1, r.cfg.KeyMapBytes))
	keys := &keySourceReader{ctx: ctx, r: r, window: in, srcs: cj.Clean.KeySources}
	complete, err := BuildKeyMap(km, keys, cfg)
	m.bytesRead.Add(int(keys.read))
	read += keys.read
	if err != nil {
		return err
	}
	if windowed && complete < cj.Clean.KeyEnd {
		// Every window of a pass must be judged against the same keys
		// (see meta.CleanSpec.KeyEnd): fail. The job is given back
		// and tried again after meta's cooldown; only a map configured
		// below meta's maxPassOffsets keys can get here.
		return fmt.Errorf("the key map (%d keys in %d bytes, the jobs config's KeyMapBytes) holds the keys only up to offset %d of a windowed cleaning's %d", km.Cap(), km.MemBytes(), complete, cj.Clean.KeyEnd)
	}
	cfg.CleanUpTo = min(cfg.CleanUpTo, complete)
	var out []Batch // copies: Emit's bytes live only during the call
	arena := make([]byte, 0, want)
	st, err := CleanRange(km, NewSliceBatches(in), cfg, func(base int64, b []byte) error {
		at := len(arena)
		arena = append(arena, b...)
		out = append(out, Batch{Base: base, Data: arena[at:len(arena):len(arena)]})
		return nil
	})
	if err != nil {
		return err
	}
	if windowed && last.LastOffset < cj.Clean.KeyEnd && st.RecordsOut == st.RecordsIn && st.BatchesOut == st.BatchesIn {
		// A window before the pass's last that kept every record in
		// place: its output would be its input. Nothing to write.
		if _, err := r.cfg.Meta.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: cj.Output, BytesRead: read, Unchanged: true}); err != nil {
			return fmt.Errorf("complete: %w", err)
		}
		r.log.Debug("jobs: cleaning window unchanged", "job", job.ID, "partition", first.Partition, "range", [2]int64{first.BaseOffset, last.LastOffset})
		return nil
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

// entryBatches appends to dst the batches of each entry's bytes, with the
// absolute base offsets the fetch path gives them: the first at the
// entry's base, each next after the last.
func entryBatches(srcs []meta.IndexEntry, data [][]byte, dst []Batch) ([]Batch, error) {
	for i, s := range srcs {
		next := s.BaseOffset
		err := codec.SplitBatches(data[i], func(b []byte) error {
			h, err := codec.CheckStoredBatch(b)
			if err != nil {
				return err
			}
			dst = append(dst, Batch{Base: next, Data: b})
			next += int64(h.LastOffsetDelta) + 1
			return nil
		})
		if err == nil && next != s.LastOffset+1 {
			err = fmt.Errorf("%w: batches take offsets [%d, %d), entry says [%d, %d]", codec.ErrCorrupt, s.BaseOffset, next, s.BaseOffset, s.LastOffset)
		}
		if err != nil {
			return dst, fmt.Errorf("source [%d, %d] of %s: %w", s.BaseOffset, s.LastOffset, s.ObjectKey, err)
		}
	}
	return dst, nil
}

// keySourceChunk bounds what a keySourceReader holds at once.
const keySourceChunk = 16 << 20

// keySourceReader yields, for BuildKeyMap, a window's batches and then
// those of its key sources, read a chunk at a time and let go after:
// a pass's dirty range is read once per window, never held whole.
type keySourceReader struct {
	ctx    context.Context
	r      *Runner
	window []Batch
	srcs   []meta.IndexEntry // not read yet
	cur    []Batch
	read   int64
}

// NextBatch implements BatchReader.
func (k *keySourceReader) NextBatch() (Batch, error) {
	if len(k.window) > 0 {
		b := k.window[0]
		k.window = k.window[1:]
		return b, nil
	}
	for len(k.cur) == 0 {
		if len(k.srcs) == 0 {
			return Batch{}, io.EOF
		}
		n, bytes := 0, int64(0)
		for n < len(k.srcs) && (n == 0 || bytes+k.srcs[n].Length <= keySourceChunk) {
			bytes += k.srcs[n].Length
			n++
		}
		chunk := k.srcs[:n]
		k.srcs = k.srcs[n:]
		data, read, err := k.r.readEntries(k.ctx, chunk)
		k.read += read
		if err != nil {
			return Batch{}, fmt.Errorf("key sources: %w", err)
		}
		if k.cur, err = entryBatches(chunk, data, k.cur[:0]); err != nil {
			return Batch{}, fmt.Errorf("key sources: %w", err)
		}
	}
	b := k.cur[0]
	k.cur = k.cur[1:]
	return b, nil
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

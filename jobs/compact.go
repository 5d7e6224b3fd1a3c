package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"sluice.dev/codec"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// coalesceGap: ranges of one object closer than this are read with one
// GET. A GET costs as much as reading about a quarter MiB at S3's
// per-request price and first-byte latency, so reading a small gap is
// cheaper than a second request.
const coalesceGap = 256 << 10

// compact runs a compaction job: read every source range, lay the
// batches out as one object in which each partition is contiguous, PUT
// it, and report the new entries. The object is written as a vector of
// the batches read (codec.SegmentBuilder.FinishParts, objstore.Parts),
// never copied into one buffer: an 80 MiB job's copy and the zeroing of
// its new buffer were a third of an agent's CPU while compacting at
// full produce speed. Meta swaps them in only if the index
// still holds the sources (meta.JobsClient.CompleteCompaction).
func (r *Runner) compact(ctx context.Context, job meta.Job) error {
	cj := job.Compact
	if cj == nil || len(cj.Sources) == 0 {
		return errors.New("compaction job without sources")
	}
	var want int64
	for i := range cj.Sources {
		want += entryBytes(&cj.Sources[i])
	}
	if want > r.cfg.MaxJobBytes {
		return fmt.Errorf("job reads %d bytes, more than this agent takes (%d); raise the jobs agent's memory limit", want, r.cfg.MaxJobBytes)
	}
	m := stats[meta.JobCompact]
	data, read, err := r.readEntries(ctx, cj.Sources)
	m.bytesRead.Add(int(read))
	if err != nil {
		return err
	}
	object, size, entries, err := layout(cj, data)
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
	out, err := r.cfg.Meta.CompleteCompaction(ctx, meta.CompactResult{
		JobID:     job.ID,
		Output:    cj.Output,
		ObjectKey: key,
		Size:      size,
		Entries:   entries,
		BytesRead: read,
	})
	if err != nil {
		// The object is an orphan now, or will be swapped in by a retry
		// of the same result; either way nothing is lost.
		return fmt.Errorf("complete: %w", err)
	}
	m.entriesSwapped.Add(out.Swapped)
	m.entriesRefused.Add(out.Refused)
	r.log.Debug("jobs: compacted", "job", job.ID, "level", cj.Level, "sources", len(cj.Sources),
		"bytes", size, "entries", len(entries), "swapped", out.Swapped, "refused", out.Refused)
	return nil
}

// readEntries reads the bytes of a job's sources. A transaction marker
// (an entry without an object, issue 15) is not read: it becomes the
// control batch the fetch path would render for it, so the output holds
// it as bytes and meta's index loses the entry.
func (r *Runner) readEntries(ctx context.Context, srcs []meta.IndexEntry) ([][]byte, int64, error) {
	data := make([]meta.IndexEntry, 0, len(srcs))
	for i := range srcs {
		if !srcs[i].IsMarker() {
			data = append(data, srcs[i])
		}
	}
	read, n, err := r.readSources(ctx, data)
	if err != nil || len(data) == len(srcs) {
		return read, n, err
	}
	out := make([][]byte, len(srcs))
	for i, k := 0, 0; i < len(srcs); i++ {
		e := &srcs[i]
		if !e.IsMarker() {
			out[i], k = read[k], k+1
			continue
		}
		if e.LastOffset != e.BaseOffset {
			return nil, n, fmt.Errorf("%w: transaction marker [%d, %d] spans more than one offset", codec.ErrCorrupt, e.BaseOffset, e.LastOffset)
		}
		out[i] = codec.AppendControlBatch(nil, e.BaseOffset, e.ProducerID, e.ProducerEpoch, e.Control == meta.ControlCommit, e.MaxTimestamp)
	}
	return out, n, nil
}

// entryBytes is what source e adds to a job's input.
func entryBytes(e *meta.IndexEntry) int64 {
	if e.IsMarker() {
		return codec.ControlBatchSize
	}
	return e.Length
}

// readSources reads the bytes of every source entry, one GET per run of
// nearby ranges of one object, and returns them in the order of srcs.
// The slices alias the GETs' buffers.
func (r *Runner) readSources(ctx context.Context, srcs []meta.IndexEntry) ([][]byte, int64, error) {
	order := make([]int, len(srcs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		sa, sb := &srcs[a], &srcs[b]
		if c := strings.Compare(sa.ObjectKey, sb.ObjectKey); c != 0 {
			return c
		}
		return cmp.Compare(sa.Start, sb.Start)
	})
	type span struct {
		key        string
		start, end int64
		members    []int
	}
	var spans []*span
	for _, i := range order {
		s := &srcs[i]
		if s.Length <= 0 || s.Start < 0 {
			return nil, 0, fmt.Errorf("%w: source entry [%d, %d] of %s has range %d+%d", codec.ErrCorrupt, s.BaseOffset, s.LastOffset, s.ObjectKey, s.Start, s.Length)
		}
		if n := len(spans); n > 0 && spans[n-1].key == s.ObjectKey && s.Start <= spans[n-1].end+coalesceGap {
			sp := spans[n-1]
			sp.end = max(sp.end, s.Start+s.Length)
			sp.members = append(sp.members, i)
			continue
		}
		spans = append(spans, &span{key: s.ObjectKey, start: s.Start, end: s.Start + s.Length, members: []int{i}})
	}
	out := make([][]byte, len(srcs))
	var read int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.cfg.ReadConcurrency)
	bufs := make([][]byte, len(spans))
	for k, sp := range spans {
		g.Go(func() error {
			if err := r.pace.wait(gctx, sp.end-sp.start); err != nil {
				return err
			}
			b, err := r.cfg.Store.GetRange(gctx, sp.key, sp.start, sp.end-sp.start)
			if err != nil {
				return fmt.Errorf("read %s [%d, %d): %w", sp.key, sp.start, sp.end, err)
			}
			bufs[k] = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	for k, sp := range spans {
		read += int64(len(bufs[k]))
		for _, i := range sp.members {
			s := &srcs[i]
			out[i] = bufs[k][s.Start-sp.start : s.Start-sp.start+s.Length : s.Start-sp.start+s.Length]
		}
	}
	return out, read, nil
}

// outEntry is one output index entry being built: chunks [first, last]
// of the builder.
type outEntry struct {
	e           meta.IndexEntry
	first, last int
	bytes       int64
}

// layout walks every source's batches, checking each (CRC, framing) and
// that together they take exactly the offsets the entry promises, adds
// them to a segment builder (which groups them by partition), and cuts
// each partition's run into entries of at most MaxEntryBytes at batch
// boundaries. A run never spans a gap in offsets between two sources.
// The object is returned as parts aliasing data (see FinishParts).
func layout(cj *meta.CompactJob, data [][]byte) ([][]byte, int64, []meta.IndexEntry, error) {
	b := codec.NewSegmentBuilder(cj.Output)
	var ents []*outEntry
	// open holds the entry being extended per partition.
	open := make(map[meta.TopicPartition]*outEntry)
	for i := range cj.Sources {
		s := &cj.Sources[i]
		tp := meta.TopicPartition{TopicID: s.TopicID, Partition: s.Partition}
		next := s.BaseOffset
		pos := 0
		err := codec.SplitBatches(data[i], func(batch []byte) error {
			// The same bytes, but with data[i]'s capacity behind them, so
			// FinishParts sees that consecutive batches of the source are
			// adjacent and writes them as one part.
			batch = data[i][pos : pos+len(batch)]
			pos += len(batch)
			h, err := codec.CheckStoredBatch(batch)
			if err != nil {
				return err
			}
			count := int64(h.LastOffsetDelta) + 1
			cur := open[tp]
			if cur == nil || cur.e.LastOffset+1 != next || (cur.bytes+int64(len(batch)) > cj.MaxEntryBytes && cj.MaxEntryBytes > 0) {
				cur = &outEntry{e: meta.IndexEntry{
					TopicID: s.TopicID, Partition: s.Partition,
					BaseOffset: next, MaxTimestamp: -1,
				}, first: -1}
				open[tp] = cur
				ents = append(ents, cur)
			}
			idx := b.Add(s.TopicID, s.Partition, batch, h)
			if cur.first < 0 {
				cur.first = idx
			}
			cur.last = idx
			cur.bytes += int64(len(batch))
			cur.e.LastOffset = next + count - 1
			cur.e.MaxTimestamp = max(cur.e.MaxTimestamp, h.MaxTimestamp)
			next += count
			return nil
		})
		if err == nil && next != s.LastOffset+1 {
			err = fmt.Errorf("%w: batches take offsets [%d, %d), entry says [%d, %d]", codec.ErrCorrupt, s.BaseOffset, next, s.BaseOffset, s.LastOffset)
		}
		if err != nil {
			return nil, 0, nil, fmt.Errorf("source %s [%d, %d] of %s: %w", tp.TopicID, s.BaseOffset, s.LastOffset, s.ObjectKey, err)
		}
	}
	object, size, metas := b.FinishParts()
	key := meta.ObjectKey(cj.Output)
	entries := make([]meta.IndexEntry, 0, len(ents))
	for _, oe := range ents {
		e := oe.e
		e.SegmentID, e.ObjectKey, e.ObjectSize = cj.Output, key, int64(size)
		e.Start = metas[oe.first].Start
		e.Length = metas[oe.last].End() - e.Start
		if e.Length != oe.bytes {
			// The builder keeps one partition's chunks together in
			// arrival order, so an entry's chunks are adjacent.
			return nil, 0, nil, fmt.Errorf("BUG: jobs: entry [%d, %d] spans %d bytes for %d of batches", e.BaseOffset, e.LastOffset, e.Length, oe.bytes)
		}
		entries = append(entries, e)
	}
	// Partition order, then offsets: what meta expects, and stable.
	slices.SortFunc(entries, func(a, b meta.IndexEntry) int {
		if c := compareTP(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.BaseOffset, b.BaseOffset)
	})
	return object, int64(size), entries, nil
}

func compareTP(a, b meta.IndexEntry) int {
	for i := range a.TopicID {
		if a.TopicID[i] != b.TopicID[i] {
			return int(a.TopicID[i]) - int(b.TopicID[i])
		}
	}
	return int(a.Partition - b.Partition)
}

package jobs

// Key compaction of one partition range: the record-level work of a
// compacted topic's cleaning job (cleanup.policy=compact), free of I/O. The
// job reads the batches, calls BuildKeyMap and CleanRange (or CompactKeys
// for batches held in memory), and writes what CleanRange emits into a new
// object; meta then swaps the range's index entries for the new ones.
//
// It is Kafka's log cleaner (LogCleaner.scala, Cleaner.doClean) for one
// range:
//
//  1. BuildKeyMap indexes the dirty part [dirtyStart, upTo]: every keyed
//     record's offset under its key, the latest winning. When the map is
//     full it stops and says up to which offset it is complete; the caller
//     cleans only that far and runs again later (multi-pass, never fail).
//  2. CleanRange rewrites [start, cleanUpTo], the clean part and the
//     indexed dirty part, keeping a record unless a later record of the
//     same key exists (or it is a tombstone old enough to go, below).
//
// The rules, record by record (offset o, in a batch whose header is h):
//
//   - A data batch of an aborted transaction (transactional, of a
//     producer with an aborted range in cfg.Aborted that holds the
//     batch's base offset) is dropped whole and never enters the map, so
//     an aborted value never wins over a committed one (Kafka's
//     CleanedTransactionMetadata). The caller keeps the range below the
//     last stable offset, so every transaction in it has ended.
//   - A control batch (transaction marker) never enters the map. A
//     commit marker goes when its transaction kept no record in this
//     output (every one was superseded; so the transaction must lie in
//     the range: the range starts at the log start, or an earlier marker
//     of the producer is in it), it lies in the clean part and
//     its timestamp is below tombstoneHorizon: the rule of tombstones,
//     which is Kafka's rule for markers of emptied transactions too. An
//     abort marker is kept: meta's aborted transactions index still
//     names it, and a read_committed consumer told of an aborted range
//     drops that producer's batches until it sees the marker (so it
//     could go only together with the index entry; not built). A kept
//     control batch is never widened over the offsets of dropped
//     batches, nor moved back over them, and an empty batch made for
//     such offsets never has the control attribute.
//   - A record above cleanUpTo is kept: the caller leaves the newest data
//     alone (min.compaction.lag.ms, an incomplete map).
//   - A record with a null key is kept: it cannot be compacted. Kafka
//     refuses such records on compacted topics at produce time; here they
//     may predate a change of cleanup.policy.
//   - A record whose key has a later offset in the map is dropped.
//     Otherwise it is the latest of its key (a key absent from the map
//     lies in the clean part and was the latest when that was cleaned).
//   - A tombstone (null value) that is the latest of its key is dropped
//     when it lies in the clean part (o < dirtyStart: it has been through
//     one cleaning already, so consumers have had a cleaning cycle to see
//     it, as in Kafka where tombstones are removed only from the clean
//     section) and its timestamp (as a consumer sees it: the batch's
//     maxTimestamp under LogAppendTime) is below tombstoneHorizon. The
//     caller sets the horizon to "now − delete.retention.ms" (or, like
//     Kafka's legacy rule, the clean part's newest timestamp −
//     delete.retention.ms). Not the batch's maxTimestamp: cleaning
//     recomputes it from the records kept, so it can fall below the
//     horizon on the next pass with nothing else changed, and a second
//     pass would then drop what the first kept (the property test found
//     this; the record's own timestamp never changes).
//
// The output tiles the range without gaps (fetch computes each batch's base
// offset as the previous base + lastOffsetDelta + 1, see server/fetch.go):
// a batch that keeps no record is dropped and its offsets are folded into
// the previous kept batch (its lastOffsetDelta grows), or, when there is
// none, into the next kept one (its base offset moves back and its records'
// deltas are re-based); a range that keeps nothing at all becomes one empty
// batch, so the range stays readable. A batch that keeps every record and
// its own base is copied byte for byte, not recompressed. Compacting the
// output again with the same inputs changes nothing.
//
// Transactions: the aborted ranges come from meta (its aborted
// transactions index), as Kafka's cleaner reads them from the segment's
// transaction index. Meta's markers are index entries without bytes; the
// job renders them into control batches (codec.AppendControlBatch) before
// cleaning, so the output holds them as stored batches and meta's index
// loses an entry per marker.

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"sluice.dev/codec"
	"sluice.dev/meta"
)

// Batch is one stored batch of a partition with its absolute base offset,
// as the fetch path computes it from the index entry (the baseOffset field
// in the bytes is not trusted).
type Batch struct {
	Base int64
	Data []byte
}

// end returns the last offset the batch covers, from its header.
func (b Batch) end(h codec.BatchHeader) int64 { return b.Base + int64(h.LastOffsetDelta) }

// BatchReader yields a partition's batches in offset order, contiguous,
// and io.EOF after the last. The bytes of a batch need to stay valid only
// until the next call.
type BatchReader interface {
	NextBatch() (Batch, error)
}

// SliceBatches is a BatchReader over batches held in memory.
type SliceBatches struct {
	b []Batch
	i int
}

// NewSliceBatches returns a reader of b.
func NewSliceBatches(b []Batch) *SliceBatches { return &SliceBatches{b: b} }

// NextBatch implements BatchReader.
func (s *SliceBatches) NextBatch() (Batch, error) {
	if s.i == len(s.b) {
		return Batch{}, io.EOF
	}
	s.i++
	return s.b[s.i-1], nil
}

// DefaultMaxDecompressed bounds a compressed batch's records when the
// caller sets no bound: Kafka's default max.message.bytes (1 MiB) times
// codec.MaxDecompressedRatio, what the produce path accepted.
const DefaultMaxDecompressed = codec.MaxDecompressedRatio << 20

// ErrKeyMapTooSmall is returned when the key map cannot hold even one key.
var ErrKeyMapTooSmall = errors.New("jobs: key map holds no key")

// BuildKeyMap clears m and indexes the latest offset of every keyed record
// with an offset in [cfg.DirtyStart, cfg.CleanUpTo] among the batches r
// yields (which may start before DirtyStart; it stops reading after the
// batch holding CleanUpTo). It returns completeUpTo, the last offset up
// to which the map is complete: CleanUpTo (or the last offset r had, if
// less) when everything fit, less when the map filled, never less than
// the first dirty record's offset. cfg.MaxDecompressed bounds a
// compressed batch's records (0: the default). Control batches and the
// batches of aborted transactions (cfg.Aborted) are not indexed.
func BuildKeyMap(m *KeyMap, r BatchReader, cfg CleanConfig) (completeUpTo int64, err error) {
	dirtyStart, upTo, maxDecompressed := cfg.DirtyStart, cfg.CleanUpTo, cfg.MaxDecompressed
	if m.Cap() < 1 {
		return dirtyStart - 1, ErrKeyMapTooSmall
	}
	if maxDecompressed <= 0 {
		maxDecompressed = DefaultMaxDecompressed
	}
	m.Clear()
	var txns txnScan
	txns.reset(cfg.Aborted)
	var it codec.RecordIter
	defer it.Close()
	completeUpTo = dirtyStart - 1
	for {
		b, err := r.NextBatch()
		if err == io.EOF {
			return min(completeUpTo, upTo), nil
		}
		if err != nil {
			return completeUpTo, fmt.Errorf("jobs: key map: reading batches: %w", err)
		}
		if b.Base > upTo {
			return upTo, nil
		}
		h, err := codec.ValidateCompactedBatch(b.Data)
		if err != nil {
			return completeUpTo, fmt.Errorf("jobs: key map: batch at offset %d: %w", b.Base, err)
		}
		end := b.end(h)
		if end < dirtyStart || h.IsControl() || txns.abortedBatch(h, b.Base) {
			completeUpTo = max(completeUpTo, end)
			continue
		}
		if err := it.Reset(b.Data, h, maxDecompressed); err != nil {
			return completeUpTo, fmt.Errorf("jobs: key map: batch at offset %d: %w", b.Base, err)
		}
		for it.Next() {
			rec := it.Record()
			off := b.Base + int64(rec.OffsetDelta)
			if off < dirtyStart || rec.Key == nil {
				continue
			}
			if off > upTo {
				return upTo, nil
			}
			if !m.Put(rec.Key, off) {
				// Full: complete up to the record before this one
				// (records of this batch before it are in, which is
				// harmless: they are later than completeUpTo and a
				// later record does supersede older ones).
				return off - 1, nil
			}
		}
		if err := it.Err(); err != nil {
			return completeUpTo, fmt.Errorf("jobs: key map: batch at offset %d: %w", b.Base, err)
		}
		completeUpTo = max(completeUpTo, end)
	}
}

// CleanConfig says what CleanRange rewrites and how.
type CleanConfig struct {
	// Start is the first offset of the range to rewrite: the base offset
	// of the first batch the reader yields.
	Start int64
	// DirtyStart is the first offset not cleaned before: below it is the
	// clean part, where keys absent from the map are kept and old
	// tombstones may go.
	DirtyStart int64
	// CleanUpTo is the last offset whose records are judged (inclusive),
	// at most the completeUpTo of the BuildKeyMap that filled the map.
	// Records above it are kept; the output ends with the batch that
	// holds it.
	CleanUpTo int64
	// TombstoneHorizon: a latest-of-its-key tombstone in the clean part
	// whose timestamp is below it is dropped (see the file
	// comment). math.MinInt64 keeps every tombstone.
	TombstoneHorizon int64
	// MaxDecompressed bounds a compressed batch's records; 0 is
	// DefaultMaxDecompressed.
	MaxDecompressed int
	// Aborted lists the partition's aborted transactions that overlap
	// the range, from meta's aborted transactions index: a producer id,
	// the transaction's first offset in the partition, and its abort
	// marker's offset. Any order.
	Aborted []meta.AbortedTxn
	// FromLogStart: the range starts at the partition's log start, so a
	// transaction whose marker is in the range has all its remaining
	// records in it. Otherwise a commit marker may go only when an
	// earlier marker of its producer in the range shows that its
	// transaction began in the range.
	FromLogStart bool
}

// CleanStats counts what a CleanRange did.
type CleanStats struct {
	BatchesIn, BatchesOut int
	RecordsIn, RecordsOut int64
	BytesIn, BytesOut     int64
	// TombstonesDropped counts tombstones dropped because they were past
	// the horizon (superseded ones count as any superseded record).
	TombstonesDropped int64
	// AbortedDropped counts the records of aborted transactions
	// dropped; MarkersDropped the commit markers of emptied
	// transactions dropped.
	AbortedDropped, MarkersDropped int64
	// Keys is the number of keys in the map.
	Keys int
	// End is the last offset the output covers: the output tiles
	// [Start, End]. End < Start when nothing was read.
	End int64
	// CleanedUpTo is the last offset whose records were judged:
	// min(CleanUpTo, End). The next run's DirtyStart is CleanedUpTo+1.
	CleanedUpTo int64
}

// Emit receives one output batch and its base offset (also written into
// the batch's baseOffset field). batch is only valid during the call.
type Emit func(base int64, batch []byte) error

// CleanRange rewrites the batches r yields, from cfg.Start through the
// batch holding cfg.CleanUpTo, against the map BuildKeyMap filled, and
// passes the output batches in offset order to emit. See the file comment
// for the rules. An error from emit stops it and is returned as is.
func CleanRange(m *KeyMap, r BatchReader, cfg CleanConfig, emit Emit) (CleanStats, error) {
	c := cleaners.Get().(*cleaner)
	*c = cleaner{
		m: m, cfg: cfg, emit: emit, covered: cfg.Start, next: cfg.Start,
		bb: c.bb, pend: c.pend[:0], // reused: compressors and buffers
	}
	if c.cfg.MaxDecompressed <= 0 {
		c.cfg.MaxDecompressed = DefaultMaxDecompressed
	}
	c.stats.End = cfg.Start - 1
	c.stats.CleanedUpTo = cfg.Start - 1
	c.stats.Keys = m.Len()
	c.txns.reset(cfg.Aborted)
	err := c.run(r)
	st := c.stats
	c.it.Close()
	c.m, c.emit = nil, nil
	if cap(c.pend) > maxPooledPend {
		c.pend = nil
	}
	cleaners.Put(c)
	return st, err
}

// cleaners keeps cleaners, and with them their BatchBuilder's compressors
// (a zstd encoder costs megabytes to set up), from one CleanRange to the
// next.
var cleaners = sync.Pool{New: func() any { return new(cleaner) }}

// maxPooledPend is the largest output buffer a pooled cleaner keeps: a few
// producer-sized batches.
const maxPooledPend = 8 << 20

// cleaner is the state of one CleanRange.
//
// Invariant between batches: the output emitted so far plus the pending
// batch tile [Start, covered-1] exactly; when there is no pending batch,
// the input batches in [covered, next-1] kept nothing and still need a
// home (the next kept batch moves back over them, or an empty batch).
// Every span (pending batch, gap) stays within an int32 lastOffsetDelta.
type cleaner struct {
	m     *KeyMap
	cfg   CleanConfig
	emit  Emit
	it    codec.RecordIter
	bb    codec.BatchBuilder
	stats CleanStats
	txns  txnScan

	next    int64 // the base offset the next input batch must have
	covered int64 // first offset not covered by emitted or pending output

	hasPend  bool
	pend     []byte // the last kept batch, held back: later empty batches may widen it
	pendBase int64
	pendEnd  int64 // last offset it covers; its header says so only after flush

	gapHdr codec.BatchHeader // header of the first input batch in [covered, next)
	gapSet bool
}

func (c *cleaner) run(r BatchReader) error {
	for c.next <= c.cfg.CleanUpTo {
		b, err := r.NextBatch()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("jobs: clean: reading batches: %w", err)
		}
		if err := c.batch(b); err != nil {
			return err
		}
	}
	if err := c.flush(); err != nil {
		return err
	}
	if c.covered < c.next {
		// Nothing kept since covered and no batch before to widen:
		// one empty batch keeps the offsets readable.
		if err := c.emitEmpty(c.covered, c.next-1); err != nil {
			return err
		}
	}
	c.stats.End = c.next - 1
	c.stats.CleanedUpTo = min(c.cfg.CleanUpTo, c.stats.End)
	return nil
}

// batch cleans one input batch.
func (c *cleaner) batch(b Batch) error {
	h, err := codec.ValidateCompactedBatch(b.Data)
	if err != nil {
		return fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	if b.Base != c.next {
		return fmt.Errorf("jobs: clean: batch at offset %d, want %d: the batches are not contiguous", b.Base, c.next)
	}
	end := b.end(h)
	c.stats.BatchesIn++
	c.stats.BytesIn += int64(len(b.Data))
	c.stats.RecordsIn += int64(h.NumRecords)

	// Where the batch will start: right after the pending batch, or back
	// at the first uncovered offset when emptied batches precede it with
	// nothing to widen, unless that is too far for int32 deltas: then the
	// gap becomes an empty batch of its own. Checked for every batch, kept
	// or not, so a gap never outgrows an int32 lastOffsetDelta.
	base := b.Base
	if !c.hasPend && c.covered < b.Base {
		moveBack := true
		if h.IsControl() {
			// A kept marker stays where it is (see the file
			// comment); a dropped one joins the gap.
			keep, err := c.markerKept(b, h)
			if err != nil {
				return err
			}
			moveBack = !keep
		}
		if end-c.covered <= math.MaxInt32 && moveBack {
			base = c.covered
		} else if err := c.emitEmpty(c.covered, b.Base-1); err != nil {
			return err
		}
	}
	if err := c.it.Reset(b.Data, h, c.cfg.MaxDecompressed); err != nil {
		return fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	c.bb.Reset(h, base)
	kept := 0
	aborted := c.txns.abortedBatch(h, b.Base)
	for c.it.Next() {
		rec := c.it.Record()
		off := b.Base + int64(rec.OffsetDelta)
		var keep bool
		switch {
		case h.IsControl():
			if keep = c.keepMarker(h, rec, off); !keep {
				c.stats.MarkersDropped++
			}
		case aborted:
			c.stats.AbortedDropped++
		default:
			keep = c.keep(rec, off)
		}
		if keep {
			c.bb.Add(rec, off)
			kept++
		}
	}
	if err := c.it.Err(); err != nil {
		return fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	c.next = end + 1
	if h.IsControl() {
		c.txns.ended(h.ProducerID)
	} else if kept > 0 && h.IsTransactional() {
		c.txns.keptOne(h.ProducerID)
	}

	if kept == 0 {
		if c.hasPend {
			if end-c.pendBase <= math.MaxInt32 {
				c.pendEnd = end
				c.covered = end + 1
				return nil
			}
			if err := c.flush(); err != nil {
				return err
			}
		}
		if !c.gapSet {
			c.gapHdr, c.gapSet = h, true
		}
		return nil
	}
	if err := c.flush(); err != nil {
		return err
	}
	c.pend = c.pend[:0]
	if kept == int(h.NumRecords) && base == b.Base {
		// Unchanged: the producer's bytes, not a recompression.
		c.pend = append(c.pend, b.Data...)
		codec.SetBaseOffset(c.pend, base)
	} else if c.pend, err = c.bb.AppendTo(c.pend, int32(end-base)); err != nil {
		return fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	c.stats.RecordsOut += int64(kept)
	c.hasPend, c.pendBase, c.pendEnd, c.covered, c.gapSet = true, base, end, end+1, false
	if h.IsControl() {
		return c.flush() // never widened: see the file comment
	}
	return nil
}

// keep decides one record of a data batch (see the file comment).
func (c *cleaner) keep(rec *codec.Record, off int64) bool {
	if off > c.cfg.CleanUpTo || rec.Key == nil {
		return true
	}
	if latest, ok := c.m.Get(rec.Key); ok && latest > off {
		return false
	}
	if rec.NullValue && off < c.cfg.DirtyStart && rec.Timestamp < c.cfg.TombstoneHorizon {
		c.stats.TombstonesDropped++
		return false
	}
	return true
}

// keepMarker decides a control batch's record (see the file comment).
func (c *cleaner) keepMarker(h codec.BatchHeader, rec *codec.Record, off int64) bool {
	typ, ok := codec.ControlType(rec.Key)
	return !ok || typ != codec.ControlTypeCommit || off >= c.cfg.DirtyStart || off > c.cfg.CleanUpTo ||
		rec.Timestamp >= c.cfg.TombstoneHorizon || c.txns.keptAny(h.ProducerID) || !(c.cfg.FromLogStart || c.txns.begunHere(h.ProducerID))
}

// markerKept reports whether a control batch keeps any record, before
// the batch is cleaned: whether it may move back decides its base.
func (c *cleaner) markerKept(b Batch, h codec.BatchHeader) (bool, error) {
	if err := c.it.Reset(b.Data, h, c.cfg.MaxDecompressed); err != nil {
		return false, fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	keep := false
	for c.it.Next() {
		rec := c.it.Record()
		keep = keep || c.keepMarker(h, rec, b.Base+int64(rec.OffsetDelta))
	}
	if err := c.it.Err(); err != nil {
		return false, fmt.Errorf("jobs: clean: batch at offset %d: %w", b.Base, err)
	}
	return keep, nil
}

// flush emits the pending batch, widened to pendEnd.
func (c *cleaner) flush() error {
	if !c.hasPend {
		return nil
	}
	c.hasPend = false
	h, err := codec.ParseBatchHeader(c.pend)
	if err != nil {
		panic("BUG: jobs: pending batch without a header: " + err.Error())
	}
	if lod := int32(c.pendEnd - c.pendBase); lod != h.LastOffsetDelta {
		codec.SetLastOffsetDelta(c.pend, lod)
	}
	return c.out(c.pendBase, c.pend)
}

// emitEmpty emits a batch with no records covering [first, last], with the
// header of the first input batch of that gap.
func (c *cleaner) emitEmpty(first, last int64) error {
	if !c.gapSet {
		panic(fmt.Sprintf("BUG: jobs: empty batch for [%d, %d] without a source batch", first, last))
	}
	c.bb.Reset(c.gapHdr.WithoutControl(), first)
	var err error
	if c.pend, err = c.bb.AppendTo(c.pend[:0], int32(last-first)); err != nil {
		return fmt.Errorf("jobs: clean: empty batch at offset %d: %w", first, err)
	}
	c.covered, c.gapSet = last+1, false
	return c.out(first, c.pend)
}

func (c *cleaner) out(base int64, batch []byte) error {
	codec.SetBaseOffset(batch, base)
	c.stats.BatchesOut++
	c.stats.BytesOut += int64(len(batch))
	return c.emit(base, batch)
}

// CompactKeys cleans a partition range held in memory: batches tile
// [cfg.Start, …] in order. It builds the map over the dirty part up to
// cfg.CleanUpTo, lowers CleanUpTo to where the map is complete, cleans,
// and returns the stats (stats.End is where the output stops; when it is
// below the range's end, run again later from a DirtyStart past what this
// run indexed, as Kafka does when its dedupe buffer is full).
func CompactKeys(m *KeyMap, batches []Batch, cfg CleanConfig, emit Emit) (CleanStats, error) {
	complete, err := BuildKeyMap(m, NewSliceBatches(batches), cfg)
	if err != nil {
		return CleanStats{End: cfg.Start - 1}, err
	}
	cfg.CleanUpTo = min(cfg.CleanUpTo, complete)
	return CleanRange(m, NewSliceBatches(batches), cfg, emit)
}

// txnScan follows the transactions of a partition through its batches,
// which it is shown in offset order: which data batches belong to an
// aborted transaction, and whether each producer's current transaction
// has kept a record. A producer has at most one transaction open at a
// time, so its batches between two of its markers are one transaction.
// The maps are made only for partitions with transactions.
type txnScan struct {
	aborted []meta.AbortedTxn // by first offset
	next    int               // aborted[:next] have begun
	// open maps a producer to the abort marker offset of its latest
	// begun aborted transaction.
	open map[int64]int64
	// kept holds the producers whose current transaction kept a record.
	kept map[int64]bool
	// marked holds the producers with a marker earlier in the range:
	// their current transaction began in it.
	marked map[int64]bool
}

func (s *txnScan) reset(aborted []meta.AbortedTxn) {
	s.aborted = s.aborted[:0]
	s.aborted = append(s.aborted, aborted...)
	slices.SortFunc(s.aborted, func(a, b meta.AbortedTxn) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	s.next = 0
	clear(s.open)
	clear(s.kept)
	clear(s.marked)
}

// abortedBatch reports whether the batch at base with header h is data
// of an aborted transaction. Calls come in offset order.
func (s *txnScan) abortedBatch(h codec.BatchHeader, base int64) bool {
	for s.next < len(s.aborted) && s.aborted[s.next].FirstOffset <= base {
		a := &s.aborted[s.next]
		if s.open == nil {
			s.open = make(map[int64]int64)
		}
		s.open[a.ProducerID] = a.LastOffset
		s.next++
	}
	if !h.IsTransactional() || h.IsControl() || len(s.open) == 0 {
		return false
	}
	last, ok := s.open[h.ProducerID]
	return ok && base < last
}

// keptOne notes that pid's current transaction kept a record.
func (s *txnScan) keptOne(pid int64) {
	if s.kept == nil {
		s.kept = make(map[int64]bool)
	}
	s.kept[pid] = true
}

// keptAny reports whether pid's current transaction kept a record.
func (s *txnScan) keptAny(pid int64) bool { return s.kept[pid] }

// ended notes pid's marker: its next batches are a new transaction.
func (s *txnScan) ended(pid int64) {
	delete(s.kept, pid)
	if s.marked == nil {
		s.marked = make(map[int64]bool)
	}
	s.marked[pid] = true
}

// begunHere reports whether pid's current transaction began in the range.
func (s *txnScan) begunHere(pid int64) bool { return s.marked[pid] }

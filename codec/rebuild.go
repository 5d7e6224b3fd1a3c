package codec

// Rebuilding batches: the record-level half of compacted topics. A
// compaction job reads a partition's batches record by record (RecordIter)
// and writes new batches holding a subset of each source batch's records
// (BatchBuilder), so that each record keeps its absolute offset and the
// new batches still tile the partition's offset range without a gap.
//
// What a rebuilt batch looks like, and why:
//
//   - The header is the source's: magic 2, attributes (codec, timestamp
//     type, transactional and control bits), producer id and epoch, base
//     sequence, partition leader epoch. Kafka's cleaner does the same
//     (MemoryRecords.filterTo): a consumer of a transactional topic still
//     needs the producer id to match records with their commit markers.
//   - baseOffset is where the batch now starts. It may be lower than the
//     source's when the batches before it were emptied and folded into it.
//     Every kept record's offsetDelta is re-based so that
//     baseOffset+offsetDelta is still the record's own offset: offsets are
//     no longer dense inside the batch, as in Kafka after cleaning.
//   - lastOffsetDelta is chosen by the caller and may exceed the last kept
//     record's delta: it keeps the batch's offset span, which is how fetch
//     (server/fetch.go) and ListOffsets find the next batch's base offset
//     (base + lastOffsetDelta + 1). Kafka keeps lastOffsetDelta after
//     cleaning for the same reason.
//   - firstTimestamp is the first kept record's timestamp and maxTimestamp
//     the largest (for LogAppendTime, the source's maxTimestamp, which is
//     the timestamp of every record); every record's timestampDelta is
//     re-based onto the new firstTimestamp. An empty batch keeps the
//     source's two timestamps: retention by time still sees when its range
//     was written.
//   - Records are compressed with the source's codec, except that a batch
//     with no records has no records section at all and the codec bits
//     cleared (as Kafka's DefaultRecordBatch.writeEmptyHeader does): a
//     consumer never has to decompress nothing, and some decoders refuse an
//     empty lz4 or gzip stream.
//
// Such a batch is not something a producer may send (ValidateBatch refuses
// offset gaps and empty batches, because offset assignment trusts the
// record count); ValidateCompactedBatch is the check for it.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ValidateCompactedBatch checks that b is exactly one complete, intact v2
// batch as compaction writes it and returns its header: what ValidateBatch
// checks (magic 2, batchLength, CRC-32C, a known codec) except that the
// batch may hold fewer records than its offset span, none at all included.
// It does not walk the records; RecordIter does, checking that their offset
// deltas increase within [0, lastOffsetDelta].
func ValidateCompactedBatch(b []byte) (BatchHeader, error) {
	if len(b) <= offMagic {
		return BatchHeader{}, fmt.Errorf("%w: batch of %d bytes is truncated", ErrCorrupt, len(b))
	}
	if err := checkMagic(b); err != nil {
		return BatchHeader{}, err
	}
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: batch of %d bytes is shorter than its header", ErrCorrupt, len(b))
	}
	h := parseBatchHeader(b)
	if h.BatchLength < minBatchLength || h.Size() != len(b) {
		return BatchHeader{}, fmt.Errorf("%w: batchLength %d does not match %d bytes", ErrCorrupt, h.BatchLength, len(b))
	}
	if crc := crc32.Checksum(b[offAttributes:], castagnoli); crc != h.CRC {
		return BatchHeader{}, fmt.Errorf("%w: CRC-32C is %#08x, header says %#08x", ErrCorrupt, crc, h.CRC)
	}
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1 {
		return BatchHeader{}, fmt.Errorf("%w: %d records in an offset span of lastOffsetDelta %d", ErrCorrupt, h.NumRecords, h.LastOffsetDelta)
	}
	if c := h.Compression(); c > CompressionZstd {
		return BatchHeader{}, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	return h, nil
}

// SetLastOffsetDelta rewrites the batch's lastOffsetDelta and recomputes its
// CRC (the field is covered by it, unlike baseOffset). Compaction uses it to
// widen a kept batch over the offsets of emptied batches after it. batch
// must be a whole batch with a header.
func SetLastOffsetDelta(batch []byte, d int32) {
	binary.BigEndian.PutUint32(batch[offLastOffsetDelta:], uint32(d))
	binary.BigEndian.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
}

// Record is one record of a batch as RecordIter yields it. The slices alias
// the batch or the iterator's buffer and are valid until the next call to
// Next, Reset or Close.
type Record struct {
	// OffsetDelta is the record's offset minus the batch's base offset.
	OffsetDelta int32
	// Timestamp is the record's timestamp as a consumer sees it:
	// firstTimestamp + timestampDelta, or the batch's maxTimestamp when
	// the batch has LogAppendTime.
	Timestamp int64
	// CreateTimestamp is firstTimestamp + timestampDelta whatever the
	// timestamp type: what a rebuilt batch encodes for this record.
	CreateTimestamp int64
	// Key is nil for a null key (and empty, not nil, for an empty one).
	Key []byte
	// Value is nil when NullValue is set.
	Value []byte
	// NullValue marks a tombstone.
	NullValue bool
	// Attributes is the record's attributes byte (unused by Kafka today,
	// carried through as is).
	Attributes byte
	// Raw is the whole record: its length varint and body. (For a
	// compressed batch the length varint is re-encoded, minimally.)
	Raw []byte
	// tail is the part of Raw after the offset delta (key, value,
	// headers), which a rebuilt batch copies unchanged.
	tail []byte
}

// RecordIter walks the records of one batch of any codec. Compressed
// batches are decompressed streaming, with the pooled decoders of
// ValidateRecords and a bound on the decompressed size; each record is read
// into a buffer the iterator reuses, so a walk allocates nothing once the
// buffer has grown to the largest record. The zero value is ready for
// Reset; Close returns the decoder to the pool.
//
//	var it RecordIter
//	defer it.Close()
//	if err := it.Reset(batch, h, max); err != nil { … }
//	for it.Next() { r := it.Record(); … }
//	if err := it.Err(); err != nil { … }
//
// It checks what it needs to yield sound records: every field within its
// record, exactly NumRecords records, offset deltas strictly increasing
// within [0, lastOffsetDelta] (dense for a batch as produced, with gaps for
// one compaction rewrote), nothing after the last record. Errors are in the
// ErrInvalidRecord class.
type RecordIter struct {
	h    BatchHeader
	src  source
	dec  *decompressor
	max  int
	i    int32
	prev int64 // previous record's offset delta, -1 before the first
	rec  Record
	buf  []byte // the current record, for compressed batches
	err  error
}

// Reset starts a walk of batch, whose header h was checked with
// ValidateBatch or ValidateCompactedBatch. maxDecompressed bounds the bytes
// a compressed batch's records may inflate to (see MaxDecompressedRatio),
// and so also the largest record.
func (it *RecordIter) Reset(batch []byte, h BatchHeader, maxDecompressed int) error {
	it.release()
	*it = RecordIter{buf: it.buf[:0], h: h, max: maxDecompressed, prev: -1}
	if len(batch) < BatchHeaderSize {
		it.err = fmt.Errorf("%w: batch of %d bytes has no records section", ErrInvalidRecord, len(batch))
		return it.err
	}
	body := batch[BatchHeaderSize:]
	if h.Compression() == CompressionNone || (h.NumRecords == 0 && len(body) == 0) {
		it.src = source{b: body}
		return nil
	}
	it.dec = decompressors.Get().(*decompressor)
	br, err := it.dec.open(h.Compression(), body, maxDecompressed)
	if err != nil {
		it.err = fmt.Errorf("%w: %s payload: %w", ErrInvalidRecord, codecName(h.Compression()), err)
		return it.err
	}
	it.src = source{br: br}
	return nil
}

// Close returns the iterator's decoder, if any, to the pool. The iterator
// may be Reset again afterwards.
func (it *RecordIter) Close() { it.release() }

func (it *RecordIter) release() {
	if it.dec != nil {
		it.dec.release()
		it.dec = nil
	}
	it.src = source{}
}

// Err returns the error that ended the walk, nil if it ran to the end.
func (it *RecordIter) Err() error { return it.err }

// Record returns the record Next moved to.
func (it *RecordIter) Record() *Record { return &it.rec }

// Next moves to the next record and reports whether there is one. At the
// end, or at an error (see Err), it returns false and releases the decoder.
func (it *RecordIter) Next() bool {
	if it.err != nil {
		return false
	}
	if it.i == it.h.NumRecords {
		it.finish()
		return false
	}
	if err := it.read(); err != nil {
		if it.dec != nil && (it.dec.lim.exceeded || errors.Is(err, errDecompressLimit)) {
			err = fmt.Errorf("%s payload decompresses past %d bytes", codecName(it.h.Compression()), it.max)
		}
		it.err = fmt.Errorf("%w: record %d of %d: %w", ErrInvalidRecord, it.i, it.h.NumRecords, err)
		it.release()
		return false
	}
	it.i++
	return true
}

// finish checks that nothing follows the last record (for a compressed
// batch this also reads the codec's trailer and checksum).
func (it *RecordIter) finish() {
	switch _, err := it.src.ReadByte(); {
	case err == nil:
		it.err = fmt.Errorf("%w: bytes after the %d records the header claims", ErrInvalidRecord, it.h.NumRecords)
	case err != io.EOF:
		it.err = fmt.Errorf("%w: after the last record: %w", ErrInvalidRecord, err)
	}
	it.release()
}

// read reads one record into it.rec.
func (it *RecordIter) read() error {
	var raw []byte
	if it.src.br == nil {
		// In place.
		rest := it.src.b[it.src.pos:]
		l, n := binary.Varint(rest)
		if n <= 0 || n > 5 || l < 1 || l > int64(len(rest)-n) {
			return fmt.Errorf("length %d (%d varint bytes) with %d bytes left", l, n, len(rest))
		}
		raw = rest[:n+int(l)]
		it.src.pos += len(raw)
	} else {
		l, _, err := readVarint(&it.src, 5)
		if err != nil {
			return fmt.Errorf("length: %w", err)
		}
		if l < 1 || l > int64(it.max) {
			// Bounded before the buffer grows: a record cannot be
			// larger than the batch may inflate to.
			return fmt.Errorf("length %d", l)
		}
		it.buf = binary.AppendVarint(it.buf[:0], l)
		start := len(it.buf)
		it.buf = grow(it.buf, int(l))
		if _, err := io.ReadFull(it.src.br, it.buf[start:]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		raw = it.buf
	}
	return it.parse(raw)
}

// grow extends b by n bytes, reusing its capacity.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// parse decodes the record raw (length varint included) into it.rec.
func (it *RecordIter) parse(raw []byte) error {
	_, n := binary.Varint(raw)
	p := recParser{b: raw[n:]}
	r := &it.rec
	*r = Record{Raw: raw}
	r.Attributes = p.byte()
	tsDelta := p.varint(10)
	offDelta := p.varint(5)
	tail := p.pos
	keyLen := p.varint(5)
	r.Key = p.bytes(keyLen, true)
	valLen := p.varint(5)
	r.Value = p.bytes(valLen, true)
	r.NullValue = valLen == -1
	headers := p.varint(5)
	if p.err == nil && (headers < 0 || headers > int64(len(p.b)-p.pos)/2) {
		p.err = fmt.Errorf("header count %d with %d bytes left", headers, len(p.b)-p.pos)
	}
	for j := int64(0); j < headers && p.err == nil; j++ {
		p.bytes(p.varint(5), false)
		p.bytes(p.varint(5), true)
	}
	switch {
	case p.err != nil:
		return p.err
	case p.pos != len(p.b):
		return errLongRecord
	case offDelta <= it.prev || offDelta > int64(it.h.LastOffsetDelta):
		return fmt.Errorf("offset delta %d after %d, lastOffsetDelta %d", offDelta, it.prev, it.h.LastOffsetDelta)
	}
	it.prev = offDelta
	ts := it.h.FirstTimestamp + tsDelta
	if (tsDelta > 0 && ts < it.h.FirstTimestamp) || (tsDelta < 0 && ts > it.h.FirstTimestamp) {
		return fmt.Errorf("timestamp delta %d overflows", tsDelta)
	}
	r.OffsetDelta = int32(offDelta)
	r.CreateTimestamp = ts
	r.Timestamp = ts
	if it.h.TimestampType() == 1 {
		r.Timestamp = it.h.MaxTimestamp
	}
	r.tail = p.b[tail:]
	return nil
}

// recParser reads the fields of one record body with a sticky error.
type recParser struct {
	b   []byte
	pos int
	err error
}

func (p *recParser) byte() byte {
	if p.err != nil {
		return 0
	}
	if p.pos >= len(p.b) {
		p.err = errShortRecord
		return 0
	}
	c := p.b[p.pos]
	p.pos++
	return c
}

func (p *recParser) varint(maxLen int) int64 {
	if p.err != nil {
		return 0
	}
	x, n := binary.Varint(p.b[p.pos:])
	switch {
	case n == 0:
		p.err = errShortRecord
		return 0
	case n < 0 || n > maxLen || (maxLen == 5 && (x > math.MaxInt32 || x < math.MinInt32)):
		p.err = errVarint
		return 0
	}
	p.pos += n
	return x
}

// bytes returns the next l bytes; l == -1 is a null field (nil) where
// nullable.
func (p *recParser) bytes(l int64, nullable bool) []byte {
	if p.err != nil {
		return nil
	}
	switch {
	case l == -1 && nullable:
		return nil
	case l < 0:
		p.err = fmt.Errorf("length %d", l)
		return nil
	case l > int64(len(p.b)-p.pos):
		p.err = errShortRecord
		return nil
	}
	v := p.b[p.pos : p.pos+int(l) : p.pos+int(l)]
	p.pos += int(l)
	return v
}

// BatchBuilder writes one v2 batch from a source batch's header and a
// chosen subset of its records (see the file comment for what it keeps and
// what it recomputes). It holds the uncompressed records of the batch being
// built and one compressor per codec, all reused across batches: keep one
// builder per job. The zero value is ready for Reset.
type BatchBuilder struct {
	src     BatchHeader
	base    int64
	recs    []byte
	n       int32
	last    int64 // offset delta of the last record added, -1 if none
	firstTS int64
	maxTS   int64

	gz  *gzip.Writer
	lz  *lz4.Writer
	zs  *zstd.Encoder
	out appender
}

// Reset starts a new batch with src's header fields, starting at
// baseOffset.
func (b *BatchBuilder) Reset(src BatchHeader, baseOffset int64) {
	b.src, b.base, b.recs, b.n, b.last = src, baseOffset, b.recs[:0], 0, -1
}

// Len returns the number of records added since Reset.
func (b *BatchBuilder) Len() int { return int(b.n) }

// UncompressedLen returns the size of the records added so far, before
// compression.
func (b *BatchBuilder) UncompressedLen() int { return len(b.recs) }

// Add appends r, which is at absolute offset offset, to the batch. Offsets
// must increase from one Add to the next and lie within an int32 delta of
// the base offset; a violation is the caller's bug and panics.
func (b *BatchBuilder) Add(r *Record, offset int64) {
	d := offset - b.base
	if d <= b.last || d > math.MaxInt32 {
		panic(fmt.Sprintf("BUG: codec: BatchBuilder.Add offset %d (delta %d) after delta %d", offset, d, b.last))
	}
	if b.n == 0 {
		b.firstTS, b.maxTS = r.CreateTimestamp, r.CreateTimestamp
	}
	b.maxTS = max(b.maxTS, r.CreateTimestamp)
	tsDelta := r.CreateTimestamp - b.firstTS
	bodyLen := 1 + varintLen(tsDelta) + varintLen(d) + len(r.tail)
	b.recs = binary.AppendVarint(b.recs, int64(bodyLen))
	b.recs = append(b.recs, r.Attributes)
	b.recs = binary.AppendVarint(b.recs, tsDelta)
	b.recs = binary.AppendVarint(b.recs, d)
	b.recs = append(b.recs, r.tail...)
	b.n++
	b.last = d
}

// varintLen is the size of x as a zigzag varint.
func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	n := 1
	for ux >= 0x80 {
		ux >>= 7
		n++
	}
	return n
}

// AppendTo appends the finished batch to dst, with lastOffsetDelta as its
// offset span (at least the last record's delta), and returns the extended
// slice. The builder stays as it is: AppendTo may be called again with
// another lastOffsetDelta.
func (b *BatchBuilder) AppendTo(dst []byte, lastOffsetDelta int32) ([]byte, error) {
	if int64(lastOffsetDelta) < b.last || lastOffsetDelta < 0 {
		panic(fmt.Sprintf("BUG: codec: lastOffsetDelta %d below the last record's delta %d", lastOffsetDelta, b.last))
	}
	start := len(dst)
	attrs := b.src.Attributes
	first, maxTS := b.src.FirstTimestamp, b.src.MaxTimestamp
	if b.n == 0 {
		attrs &^= attrCompressionMask
	} else {
		first = b.firstTS
		if b.src.TimestampType() == 0 {
			maxTS = b.maxTS
		}
	}
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(b.base))
	dst = be.AppendUint32(dst, 0) // batchLength, below
	dst = be.AppendUint32(dst, uint32(b.src.PartitionLeaderEpoch))
	dst = append(dst, 2)
	dst = be.AppendUint32(dst, 0) // crc, below
	dst = be.AppendUint16(dst, uint16(attrs))
	dst = be.AppendUint32(dst, uint32(lastOffsetDelta))
	dst = be.AppendUint64(dst, uint64(first))
	dst = be.AppendUint64(dst, uint64(maxTS))
	dst = be.AppendUint64(dst, uint64(b.src.ProducerID))
	dst = be.AppendUint16(dst, uint16(b.src.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(b.src.BaseSequence))
	dst = be.AppendUint32(dst, uint32(b.n))
	if b.n > 0 {
		var err error
		if dst, err = b.compress(dst, int8(attrs&attrCompressionMask)); err != nil {
			return dst[:start], fmt.Errorf("codec: compressing a rebuilt batch with %s: %w", codecName(int8(attrs&attrCompressionMask)), err)
		}
	}
	batch := dst[start:]
	if len(batch)-batchLengthOverhead > math.MaxInt32 {
		return dst[:start], fmt.Errorf("codec: rebuilt batch of %d bytes", len(batch))
	}
	be.PutUint32(batch[offBatchLength:], uint32(len(batch)-batchLengthOverhead))
	be.PutUint32(batch[offCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
	return dst, nil
}

// compress appends b.recs compressed with codec to dst. Settings follow
// franz-go's producer (kgo/compression.go), so consumers get what they
// would get from a producer: lz4 frames with default options, zstd with a
// 64 KiB window (small decoder memory for every client), raw snappy
// blocks, gzip at the default level.
func (b *BatchBuilder) compress(dst []byte, codec int8) ([]byte, error) {
	switch codec {
	case CompressionNone:
		return append(dst, b.recs...), nil
	case CompressionGzip:
		b.out.b = dst
		if b.gz == nil {
			b.gz = gzip.NewWriter(&b.out)
		} else {
			b.gz.Reset(&b.out)
		}
		if _, err := b.gz.Write(b.recs); err != nil {
			return dst, err
		}
		err := b.gz.Close()
		dst, b.out.b = b.out.b, nil
		return dst, err
	case CompressionLZ4:
		b.out.b = dst
		if b.lz == nil {
			// 64 KiB blocks as Kafka's own LZ4 stream writes them: the
			// library's default of 4 MiB makes every reader of the batch
			// (consumers, and our own cleaners) set up a 4 MiB buffer.
			b.lz = lz4.NewWriter(&b.out)
			if err := b.lz.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
				return dst, fmt.Errorf("BUG: lz4 options: %w", err)
			}
		} else {
			b.lz.Reset(&b.out)
		}
		if _, err := b.lz.Write(b.recs); err != nil {
			return dst, err
		}
		err := b.lz.Close()
		dst, b.out.b = b.out.b, nil
		return dst, err
	case CompressionZstd:
		if b.zs == nil {
			zs, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
			if err != nil {
				return dst, fmt.Errorf("BUG: zstd options: %w", err)
			}
			b.zs = zs
		}
		return b.zs.EncodeAll(b.recs, dst), nil
	case CompressionSnappy:
		n := len(dst)
		dst = grow(dst, s2.MaxEncodedLen(len(b.recs)))
		enc := s2.EncodeSnappy(dst[n:], b.recs)
		return dst[:n+len(enc)], nil
	}
	return dst, fmt.Errorf("unknown compression codec %d", codec)
}

// appender is an io.Writer that appends to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

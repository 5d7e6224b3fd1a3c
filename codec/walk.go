package codec

// Record walking: the check that a batch's records are what its header
// says, before the batch is acknowledged.
//
// Why the header is not enough: the CRC only proves that the bytes are the
// ones the producer sent, not that the producer told the truth. A 61-byte
// batch with a valid CRC can claim 1,000,000,000 records; the offset
// assignment trusts recordCount, so the next honest batch would land at
// offset 1,000,000,000 and a consumer reading the gap loops forever. So
// every record is walked: its length, the varints inside it, its header
// count, an offset delta equal to its index (dense from 0 to
// lastOffsetDelta), and a timestamp that does not exceed the batch's
// maxTimestamp. Compressed batches are decompressed (streaming, with pooled
// decoders) and walked the same way.
//
// Record layout (v2), all varints zigzag-encoded:
//
//	length         varint  bytes of the record after this field
//	attributes     int8    unused
//	timestampDelta varlong added to firstTimestamp
//	offsetDelta    varint  added to baseOffset
//	keyLength      varint  -1 for a null key
//	key            bytes
//	valueLength    varint  -1 for a null value
//	value          bytes
//	headerCount    varint
//	headers        headerKeyLength varint (>= 0), key, headerValueLength varint (-1 for null), value

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// ErrInvalidRecord is the class of errors about a batch whose bytes are
// intact (the CRC matches) but whose records are not what the header claims
// or do not parse: a wrong record count, an offset gap, a truncated varint,
// a compressed payload that does not decompress. The server answers
// INVALID_RECORD for it. It deliberately matches neither ErrCorrupt nor
// ErrUnsupportedMagic.
var ErrInvalidRecord = errors.New("codec: invalid record")

// MaxDecompressedRatio bounds how far a compressed batch may inflate, as a
// multiple of the largest batch the topic accepts (max.message.bytes): a
// batch whose records decompress past max.message.bytes ×
// MaxDecompressedRatio is refused.
//
// Why a multiple and why this one: max.message.bytes limits the batch as
// sent, that is compressed, and producers fill batches by uncompressed size
// (franz-go and librdkafka close a batch at about 1 MB of records), so a
// real batch inflates by its compression ratio, rarely 10 for text and more
// only for degenerate payloads such as runs of zeros. Without a bound, a
// decompression bomb (a few KiB of zstd that inflates to gigabytes) costs
// seconds of CPU per request. Walking is streaming, so memory does not grow
// with the bound (only raw snappy needs its whole block, whose size is
// itself bounded by snappy's maximum ratio); the bound is about CPU: 32 MiB
// at the default max.message.bytes is tens of milliseconds to inflate.
const MaxDecompressedRatio = 32

// ValidateRecords walks the records of batch, which ValidateBatch accepted
// with header h, and checks that they are exactly what h claims (see the
// file comment). maxDecompressed bounds the bytes a compressed batch's
// records may inflate to. Errors are in the ErrInvalidRecord class.
//
// Uncompressed batches are walked in place and allocate nothing;
// compressed ones use pooled decoders and buffers.
func ValidateRecords(batch []byte, h BatchHeader, maxDecompressed int) error {
	return validateRecords(batch, h, maxDecompressed, false)
}

// ValidateKeyedRecords is ValidateRecords for a compacted topic
// (cleanup.policy=compact): a record without a key is invalid too, as in
// Kafka, since compaction keeps the latest record per key.
func ValidateKeyedRecords(batch []byte, h BatchHeader, maxDecompressed int) error {
	return validateRecords(batch, h, maxDecompressed, true)
}

func validateRecords(batch []byte, h BatchHeader, maxDecompressed int, needKey bool) error {
	if len(batch) < BatchHeaderSize {
		return fmt.Errorf("%w: batch of %d bytes has no records section", ErrInvalidRecord, len(batch))
	}
	body := batch[BatchHeaderSize:]
	if h.Compression() == CompressionNone {
		src := source{b: body}
		return walkRecords(&src, h, needKey)
	}
	d := decompressors.Get().(*decompressor)
	defer d.release()
	br, err := d.open(h.Compression(), body, maxDecompressed)
	if err != nil {
		return fmt.Errorf("%w: %s payload: %w", ErrInvalidRecord, codecName(h.Compression()), err)
	}
	src := source{br: br}
	if err := walkRecords(&src, h, needKey); err != nil {
		if d.lim.exceeded || errors.Is(err, errDecompressLimit) {
			return fmt.Errorf("%w: %s payload decompresses past %d bytes (%d× max.message.bytes)",
				ErrInvalidRecord, codecName(h.Compression()), maxDecompressed, MaxDecompressedRatio)
		}
		return fmt.Errorf("%s payload: %w", codecName(h.Compression()), err)
	}
	return nil
}

func codecName(c int8) string {
	switch c {
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return "uncompressed"
}

// walkRecords reads exactly h.NumRecords records from src and then expects
// src to be exhausted. Any error is in the ErrInvalidRecord class.
func walkRecords(src *source, h BatchHeader, needKey bool) error {
	for i := int32(0); i < h.NumRecords; i++ {
		if err := walkRecord(src, h, i, needKey); err != nil {
			return fmt.Errorf("%w: record %d of %d: %w", ErrInvalidRecord, i, h.NumRecords, err)
		}
	}
	switch _, err := src.ReadByte(); {
	case err == nil:
		return fmt.Errorf("%w: bytes after the %d records the header claims", ErrInvalidRecord, h.NumRecords)
	case err != io.EOF:
		// A decompressor's trailer (gzip CRC, lz4 and zstd checksums) is
		// checked at the end of its stream.
		return fmt.Errorf("%w: after the last record: %w", ErrInvalidRecord, err)
	}
	return nil
}

var (
	errShortRecord = errors.New("record shorter than its fields")
	errLongRecord  = errors.New("record length covers bytes no field reads")
)

// walkRecord reads record i. rem counts the bytes of the record left to
// read, so a field running past the record's length is caught.
func walkRecord(src *source, h BatchHeader, i int32, needKey bool) error {
	length, _, err := readVarint(src, 5)
	if err != nil {
		return fmt.Errorf("length: %w", err)
	}
	if length < 1 || length > math.MaxInt32 {
		return fmt.Errorf("length %d", length)
	}
	rem := length
	if _, err := src.ReadByte(); err != nil { // attributes
		return fmt.Errorf("attributes: %w", err)
	}
	rem--
	tsDelta, n, err := readVarint(src, 10)
	if err != nil {
		return fmt.Errorf("timestamp delta: %w", err)
	}
	rem -= int64(n)
	offDelta, n, err := readVarint(src, 5)
	if err != nil {
		return fmt.Errorf("offset delta: %w", err)
	}
	rem -= int64(n)
	if offDelta != int64(i) {
		// Offsets inside a batch are dense from 0: offset assignment
		// gives the batch NumRecords offsets, and a consumer expects
		// record i at baseOffset+i.
		return fmt.Errorf("offset delta %d, want %d", offDelta, i)
	}
	ts := h.FirstTimestamp + tsDelta
	if (tsDelta > 0 && ts < h.FirstTimestamp) || (tsDelta < 0 && ts > h.FirstTimestamp) {
		return fmt.Errorf("timestamp delta %d overflows", tsDelta)
	}
	if ts > h.MaxTimestamp {
		// ListOffsets by time and retention trust maxTimestamp.
		return fmt.Errorf("timestamp %d past the batch's maxTimestamp %d", ts, h.MaxTimestamp)
	}
	// Key and value: -1 is null (a key only where needKey is false).
	if rem, err = skipBytesField(src, rem, !needKey); err != nil {
		if needKey {
			return fmt.Errorf("key (a compacted topic, cleanup.policy=compact, takes only records with keys): %w", err)
		}
		return fmt.Errorf("key: %w", err)
	}
	if rem, err = skipBytesField(src, rem, true); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	headers, n, err := readVarint(src, 5)
	if err != nil {
		return fmt.Errorf("header count: %w", err)
	}
	rem -= int64(n)
	// Every header takes at least two bytes, so a count beyond rem/2 is a
	// lie; this also keeps the loop below bounded by the record length.
	if headers < 0 || headers > rem/2 {
		return fmt.Errorf("header count %d with %d bytes left", headers, rem)
	}
	for j := int64(0); j < headers; j++ {
		if rem, err = skipBytesField(src, rem, false); err != nil { // header keys are never null
			return fmt.Errorf("header %d key: %w", j, err)
		}
		if rem, err = skipBytesField(src, rem, true); err != nil {
			return fmt.Errorf("header %d value: %w", j, err)
		}
	}
	switch {
	case rem < 0:
		return errShortRecord
	case rem > 0:
		return errLongRecord
	}
	return nil
}

// skipBytesField reads a varint length and skips that many bytes, within
// the rem bytes left of the record. nullable allows length -1.
func skipBytesField(src *source, rem int64, nullable bool) (int64, error) {
	l, n, err := readVarint(src, 5)
	if err != nil {
		return rem, err
	}
	rem -= int64(n)
	switch {
	case l == -1 && nullable:
		return rem, nil
	case l < 0:
		return rem, fmt.Errorf("length %d", l)
	case l > rem:
		return rem, fmt.Errorf("length %d with %d bytes of the record left", l, rem)
	}
	if err := src.Discard(int(l)); err != nil {
		return rem, err
	}
	return rem - l, nil
}

var errVarint = errors.New("varint too long")

// readVarint reads a zigzag varint of at most maxLen bytes (5 for Kafka's
// int32 varints, 10 for varlongs) and returns it with its length. An int32
// varint whose value does not fit int32 is refused.
func readVarint(src *source, maxLen int) (int64, int, error) {
	if src.br == nil {
		// In place: the common, uncompressed case, without a call per byte.
		x, n := binary.Varint(src.b[src.pos:])
		switch {
		case n == 0:
			src.pos = len(src.b)
			return 0, 0, io.ErrUnexpectedEOF
		case n < 0 || n > maxLen || (maxLen == 5 && (x > math.MaxInt32 || x < math.MinInt32)):
			return 0, maxLen, errVarint
		}
		src.pos += n
		return x, n, nil
	}
	var ux uint64
	for i := 0; i < maxLen; i++ {
		c, err := src.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, i, err
		}
		ux |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			x := int64(ux >> 1)
			if ux&1 != 0 {
				x = ^x
			}
			if maxLen == 5 && (x > math.MaxInt32 || x < math.MinInt32) {
				return 0, i + 1, errVarint
			}
			return x, i + 1, nil
		}
	}
	return 0, maxLen, errVarint
}

// source is what the walker reads records from: the batch itself in
// place, or, when br is set, a buffered decompressor. One concrete type
// rather than an interface keeps it on the stack: the uncompressed walk
// allocates nothing.
type source struct {
	b   []byte
	pos int
	br  *bufio.Reader
}

func (s *source) ReadByte() (byte, error) {
	if s.br != nil {
		return s.br.ReadByte()
	}
	if s.pos >= len(s.b) {
		return 0, io.EOF
	}
	c := s.b[s.pos]
	s.pos++
	return c, nil
}

func (s *source) Discard(n int) error {
	if s.br != nil {
		_, err := s.br.Discard(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if n > len(s.b)-s.pos {
		s.pos = len(s.b)
		return io.ErrUnexpectedEOF
	}
	s.pos += n
	return nil
}

// decompressor holds one of each decoder, reused through the decompressors
// pool: a gzip reader, lz4 reader or zstd decoder costs tens to hundreds of
// KiB to set up, more than validating a typical batch.
type decompressor struct {
	in  bytes.Reader
	lim limitReader
	buf *bufio.Reader

	gz   *gzip.Reader
	lz   *lz4.Reader
	zs   *zstd.Decoder
	snap snappyReader
}

var decompressors = sync.Pool{New: func() any {
	return &decompressor{buf: bufio.NewReaderSize(nil, 16<<10)}
}}

// zstdMaxWindow is the largest zstd window accepted. The decoder allocates
// its history buffer at the frame's window size, so an attacker's frame
// header must not choose it. 8 MiB is the window zstd's format recommends
// every decoder support, and what producers use at their default levels.
const zstdMaxWindow = 8 << 20

// open returns a buffered reader of the decompressed records of body.
func (d *decompressor) open(codec int8, body []byte, max int) (*bufio.Reader, error) {
	d.in.Reset(body)
	var r io.Reader
	switch codec {
	case CompressionGzip:
		if d.gz == nil {
			d.gz = new(gzip.Reader)
		}
		if err := d.gz.Reset(&d.in); err != nil {
			return nil, err
		}
		r = d.gz
	case CompressionLZ4:
		if d.lz == nil {
			d.lz = lz4.NewReader(nil)
		}
		d.lz.Reset(&d.in)
		r = d.lz
	case CompressionZstd:
		if d.zs == nil {
			zs, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
			if err != nil {
				return nil, fmt.Errorf("BUG: zstd options: %w", err)
			}
			d.zs = zs
		}
		if err := d.zs.Reset(&d.in); err != nil {
			return nil, err
		}
		r = d.zs
	case CompressionSnappy:
		d.snap.reset(body, max)
		r = &d.snap
	default:
		return nil, fmt.Errorf("unknown compression codec %d", codec)
	}
	d.lim = limitReader{r: r, left: int64(max)}
	d.buf.Reset(&d.lim)
	return d.buf, nil
}

// release drops references to the batch and returns d to the pool.
func (d *decompressor) release() {
	d.in.Reset(nil)
	d.lim = limitReader{}
	d.buf.Reset(nil)
	d.snap.reset(nil, 0)
	decompressors.Put(d)
}

var errDecompressLimit = errors.New("decompressed size limit reached")

// limitReader fails once more than left bytes come out of r.
type limitReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		// Probe for one more byte: a stream that ends exactly at the
		// limit is fine.
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.exceeded = true
			return 0, errDecompressLimit
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// xerialPrefix starts snappy data framed the way the Java client does
// (snappy-java's stream format): the prefix, a version and a minimum
// compatible version (4 bytes each), then chunks of a big-endian int32
// length and a raw snappy block. Kafka's snappy payload is that framing or
// one raw block; franz-go's kgo/compression.go decodes the same way.
var xerialPrefix = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// snappyMaxRatio is the most one byte of a snappy block can decode to: the
// best op, a 3-byte copy, yields 64 bytes. A block claiming more is a lie,
// refused before its buffer is allocated.
const snappyMaxRatio = 22

// snappyPooledMax is the largest decode buffer kept for reuse: a raw
// (unframed) snappy payload is one block decoded whole, and producers' default
// batches stay under 1 MiB of records, so 4 MiB covers them with room.
const snappyPooledMax = 4 << 20

// snappyReader decodes xerial chunks (or one raw block) one at a time into
// a reused buffer.
type snappyReader struct {
	src    []byte
	xerial bool
	max    int // decoded bytes still allowed
	out    []byte
	pos    int
}

func (s *snappyReader) reset(src []byte, max int) {
	s.src, s.max, s.out, s.pos = src, max, s.out[:0], 0
	s.xerial = len(src) >= 16 && bytes.HasPrefix(src, xerialPrefix)
	if s.xerial {
		s.src = src[16:]
	}
	if cap(s.out) > snappyPooledMax {
		s.out = nil // do not keep one huge raw block's buffer in the pool
	}
}

var errSnappyFraming = errors.New("malformed xerial snappy framing")

func (s *snappyReader) Read(p []byte) (int, error) {
	for s.pos == len(s.out) {
		if len(s.src) == 0 {
			return 0, io.EOF
		}
		block := s.src
		if s.xerial {
			if len(s.src) < 4 {
				return 0, errSnappyFraming
			}
			n := binary.BigEndian.Uint32(s.src)
			if uint64(n) > uint64(len(s.src)-4) {
				return 0, errSnappyFraming
			}
			block, s.src = s.src[4:4+n], s.src[4+n:]
		} else {
			s.src = nil
		}
		l, err := s2.DecodedLen(block)
		if err != nil {
			return 0, err
		}
		if l > snappyMaxRatio*len(block) {
			return 0, fmt.Errorf("snappy block of %d bytes claims to decode to %d", len(block), l)
		}
		if l > s.max {
			return 0, errDecompressLimit
		}
		s.max -= l
		if cap(s.out) < l {
			s.out = make([]byte, l)
		}
		if s.out, err = s2.Decode(s.out[:l], block); err != nil {
			return 0, err
		}
		s.pos = 0
	}
	n := copy(p, s.out[s.pos:])
	s.pos += n
	return n, nil
}

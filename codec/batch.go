// Package codec holds Sluice's byte formats: the Kafka record batch (v2,
// "magic 2") header as clients send it and fetchers receive it, and the
// segment object that packs many batches of many partitions into one object
// in the bucket (segment.go, docs/segment-format.md).
//
// Everything here is allocation-free on the hot path: validating, splitting
// and parsing batches read fields in place from the caller's bytes and never
// copy record data.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is the class of every error about bytes that cannot be what they
// claim to be: a CRC mismatch, a length that does not fit, an unknown magic.
// Errors wrap it with detail, so test with errors.Is. The server answers
// CORRUPT_MESSAGE for it; segment readers treat the object as damaged.
var ErrCorrupt = errors.New("codec: corrupt data")

// ErrUnsupportedMagic is returned for message sets of magic 0 or 1, which are
// well-formed Kafka but a format Sluice does not store (clients fall back to
// v2 when the broker advertises Produce v3+). It deliberately does not match
// ErrCorrupt, so the server can map it to UNSUPPORTED_FOR_MESSAGE_FORMAT no
// matter in which order it tests the two.
var ErrUnsupportedMagic = errors.New("codec: unsupported message format (magic 0 or 1)")

// castagnoli is the CRC-32C table. The Castagnoli polynomial is what Kafka
// uses for v2 batches, and hash/crc32 computes it with the SSE4.2/ARMv8 CRC
// instructions when available, so checksumming runs at memory speed.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeaderSize is the size of a v2 record batch header: everything before
// the first record.
const BatchHeaderSize = 61

// Byte offsets of the v2 record batch header fields (big-endian):
//
//	 0 baseOffset           int64
//	 8 batchLength          int32  bytes after this field (size - 12)
//	12 partitionLeaderEpoch int32
//	16 magic                int8   2
//	17 crc                  uint32 CRC-32C of bytes [21, end)
//	21 attributes           int16
//	23 lastOffsetDelta      int32
//	27 firstTimestamp       int64
//	35 maxTimestamp         int64
//	43 producerId           int64
//	51 producerEpoch        int16
//	53 baseSequence         int32
//	57 recordCount          int32
//	61 records...
//
// The CRC starts at attributes so that baseOffset and partitionLeaderEpoch,
// which the broker rewrites, can be patched without recomputing it.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57

	// batchLengthOverhead is the part of a batch that batchLength does not
	// count: baseOffset and batchLength itself.
	batchLengthOverhead = 12
	// minBatchLength is the smallest batchLength a v2 batch can have: a
	// header with no records.
	minBatchLength = BatchHeaderSize - batchLengthOverhead
)

// Attribute bits of a v2 batch.
const (
	attrCompressionMask = 0x07
	attrTimestampType   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Compression codecs as numbered in the attributes (Compression returns one).
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

// BatchHeader is the decoded header of a v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Compression returns the codec number in the attributes (CompressionNone…).
func (h BatchHeader) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// TimestampType returns 0 for CreateTime and 1 for LogAppendTime.
func (h BatchHeader) TimestampType() int8 {
	if h.Attributes&attrTimestampType != 0 {
		return 1
	}
	return 0
}

// IsTransactional reports whether the batch belongs to a transaction.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds a control record (commit/abort
// marker) rather than user data.
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// WithoutControl returns h with the control attribute cleared. Key
// cleaning uses it for the empty batch that keeps the offsets of dropped
// batches readable: a control batch without its record would puzzle
// clients that read a control batch's first record.
func (h BatchHeader) WithoutControl() BatchHeader {
	h.Attributes &^= attrControl
	return h
}

// Size returns the size of the whole batch in bytes, header included.
func (h BatchHeader) Size() int { return batchLengthOverhead + int(h.BatchLength) }

// ParseBatchHeader decodes the header fields of the batch b starts with. It
// checks nothing but the length: no magic, no CRC (see ValidateBatch).
func ParseBatchHeader(b []byte) (BatchHeader, error) {
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("%w: batch header needs %d bytes, have %d", ErrCorrupt, BatchHeaderSize, len(b))
	}
	return parseBatchHeader(b), nil
}

// parseBatchHeader decodes a header from b, which holds at least
// BatchHeaderSize bytes.
func parseBatchHeader(b []byte) BatchHeader {
	_ = b[BatchHeaderSize-1] // one bounds check for all the reads below
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offRecordCount:])),
	}
}

// checkMagic classifies the magic byte at offset 16, which sits at the same
// place in every Kafka message format (v0/v1 message sets have offset,
// size, crc there instead of offset, length, epoch). b holds at least 17
// bytes.
func checkMagic(b []byte) error {
	switch m := int8(b[offMagic]); m {
	case 2:
		return nil
	case 0, 1:
		return fmt.Errorf("%w: magic %d", ErrUnsupportedMagic, m)
	default:
		return fmt.Errorf("%w: unknown magic %d", ErrCorrupt, m)
	}
}

// ValidateBatch checks that b is exactly one complete, intact v2 batch and
// returns its header. It checks what a broker must before accepting the
// bytes as they are: magic 2, a batchLength that accounts for exactly len(b),
// the CRC-32C, at least one record, lastOffsetDelta == records-1 (producers
// never leave offset gaps, and the offset assignment relies on it), and a
// known compression codec. It does not decompress or walk the records: the
// CRC already vouches that they are what the producer sent.
func ValidateBatch(b []byte) (BatchHeader, error) {
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
	if h.NumRecords < 1 {
		return BatchHeader{}, fmt.Errorf("%w: record count %d", ErrCorrupt, h.NumRecords)
	}
	if h.LastOffsetDelta != h.NumRecords-1 {
		return BatchHeader{}, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorrupt, h.LastOffsetDelta, h.NumRecords)
	}
	if c := h.Compression(); c > CompressionZstd {
		return BatchHeader{}, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	return h, nil
}

// CheckStoredBatch checks a batch read back from an object: magic 2, a
// batchLength that accounts for exactly len(b), the CRC-32C and a known
// codec. Unlike ValidateBatch it accepts what compaction of a compacted
// topic leaves (as Kafka's cleaner does): fewer records than offsets, and
// batches with no records at all. lastOffsetDelta must not be negative: a
// batch always takes at least one offset.
func CheckStoredBatch(b []byte) (BatchHeader, error) {
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
	if h.LastOffsetDelta < 0 || h.NumRecords < 0 || h.NumRecords > h.LastOffsetDelta+1 {
		return BatchHeader{}, fmt.Errorf("%w: lastOffsetDelta %d with %d records", ErrCorrupt, h.LastOffsetDelta, h.NumRecords)
	}
	if c := h.Compression(); c > CompressionZstd {
		return BatchHeader{}, fmt.Errorf("%w: unknown compression codec %d", ErrCorrupt, c)
	}
	return h, nil
}

// SplitBatches walks records, the Records field of one partition in a
// Produce request, which may hold several batches back to back, and calls fn
// with each batch's bytes. The slices alias records; nothing is copied. It
// checks only framing (a batch's length fits what is left, and is at least a
// header) and the magic; fn is where to call ValidateBatch. An error from fn
// stops the walk and is returned as is. Empty records yields no calls and no
// error: whether a partition without batches is acceptable is the caller's
// decision.
func SplitBatches(records []byte, fn func(batch []byte) error) error {
	for pos := 0; pos < len(records); {
		rest := records[pos:]
		if len(rest) <= offMagic {
			return fmt.Errorf("%w: %d trailing bytes at %d are not a batch", ErrCorrupt, len(rest), pos)
		}
		// The magic first: a v0/v1 message set should be reported as the
		// unsupported format it is, not as a length error.
		if err := checkMagic(rest); err != nil {
			return err
		}
		n := int32(binary.BigEndian.Uint32(rest[offBatchLength:]))
		if n < minBatchLength {
			return fmt.Errorf("%w: batchLength %d at %d", ErrCorrupt, n, pos)
		}
		size := batchLengthOverhead + int(n)
		if size > len(rest) {
			return fmt.Errorf("%w: batch at %d needs %d bytes, %d left", ErrCorrupt, pos, size, len(rest))
		}
		if err := fn(rest[:size:size]); err != nil {
			return err
		}
		pos += size
	}
	return nil
}

// SetBaseOffset writes off into the batch's baseOffset field. The CRC does
// not cover the field, so the batch stays valid; fetch uses this to give a
// stored batch the offsets meta assigned. batch must hold a header.
func SetBaseOffset(batch []byte, off int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(off))
}

// PatchedHeaderSize is how much of a batch SetBaseOffset and
// SetPartitionLeaderEpoch write into: its first bytes, up to the end of
// the partition leader epoch. A reader that sends a stored batch with
// those fields patched copies only these bytes and can refer to the rest.
const PatchedHeaderSize = offLeaderEpoch + 4

// SetPartitionLeaderEpoch writes epoch into the batch's partitionLeaderEpoch
// field, which the CRC does not cover either. batch must hold a header.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

package codec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// batchOpts describes a v2 batch for appendTestBatch. The zero value plus
// records >= 1 is a valid uncompressed batch.
type batchOpts struct {
	records       int
	valueSize     int // bytes of value per record
	attrs         int16
	baseOffset    int64
	leaderEpoch   int32
	firstTS       int64
	producerID    int64
	producerEpoch int16
	baseSeq       int32
}

// appendTestBatch appends a valid v2 record batch, encoded by hand the way a
// producer does, so that the tests do not trust the code under test to build
// their input. Records are written uncompressed whatever attrs says: nothing
// in this package decompresses.
func appendTestBatch(dst []byte, o batchOpts) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, uint64(o.baseOffset))
	dst = be.AppendUint32(dst, 0) // batchLength, patched below
	dst = be.AppendUint32(dst, uint32(o.leaderEpoch))
	dst = append(dst, 2)          // magic
	dst = be.AppendUint32(dst, 0) // crc, patched below
	dst = be.AppendUint16(dst, uint16(o.attrs))
	dst = be.AppendUint32(dst, uint32(o.records-1))
	dst = be.AppendUint64(dst, uint64(o.firstTS))
	dst = be.AppendUint64(dst, uint64(o.firstTS+int64(max(o.records-1, 0))))
	dst = be.AppendUint64(dst, uint64(o.producerID))
	dst = be.AppendUint16(dst, uint16(o.producerEpoch))
	dst = be.AppendUint32(dst, uint32(o.baseSeq))
	dst = be.AppendUint32(dst, uint32(o.records))

	var body []byte
	for i := range o.records {
		key := fmt.Appendf(nil, "key-%d", i)
		body = body[:0]
		body = append(body, 0)                            // attributes
		body = binary.AppendVarint(body, int64(i))        // timestampDelta
		body = binary.AppendVarint(body, int64(i))        // offsetDelta
		body = binary.AppendVarint(body, int64(len(key))) // key length
		body = append(body, key...)
		body = binary.AppendVarint(body, int64(o.valueSize)) // value length
		for j := range o.valueSize {
			body = append(body, byte(i+j))
		}
		body = binary.AppendVarint(body, 0) // header count
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	fixBatch(dst[start:])
	return dst
}

// fixBatch recomputes batchLength and the CRC of a batch after a test edited
// it, so that the edit reaches the check it targets.
func fixBatch(b []byte) {
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthOverhead))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], crc32.MakeTable(crc32.Castagnoli)))
}

// batchOfSize returns a valid batch of about size bytes (within a record's
// worth), with records of ~100 bytes like a typical producer's.
func batchOfSize(size int) []byte {
	const valueSize = 100
	n := max((size-BatchHeaderSize)/(valueSize+12), 1)
	return appendTestBatch(nil, batchOpts{records: n, valueSize: valueSize, firstTS: 1_700_000_000_000})
}

// topic returns a topic id whose bytes all read b, except the first which is
// hi: hi makes ordering tests easy to reason about.
func topic(hi, b byte) [16]byte {
	var id [16]byte
	for i := range id {
		id[i] = b
	}
	id[0] = hi
	return id
}

// resealSegment recomputes the index CRC and the trailer CRC of a segment
// from the positions its trailer names, so that a test's edit of the index
// or trailer reaches the structural check it targets instead of a checksum.
// It does nothing to an object too short to hold a trailer or with an index
// range outside it.
func resealSegment(obj []byte) {
	if len(obj) < SegmentTrailerSize {
		return
	}
	p := obj[len(obj)-SegmentTrailerSize:]
	be := binary.BigEndian
	off, n := be.Uint64(p[0:]), uint64(be.Uint32(p[8:]))
	if off <= uint64(len(obj)) && n <= uint64(len(obj))-off {
		be.PutUint32(p[16:], crc32.Checksum(obj[off:off+n], castagnoli))
	}
	resealTrailer(obj)
}

// resealTrailer recomputes only the trailer's own CRC.
func resealTrailer(obj []byte) {
	p := obj[len(obj)-SegmentTrailerSize:]
	binary.BigEndian.PutUint32(p[24:], crc32.Checksum(p[:24], castagnoli))
}

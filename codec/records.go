package codec

import "encoding/binary"

// RecordTimestamps calls fn with each record's offset delta and timestamp
// in an uncompressed batch, stopping when fn returns false. It reads only
// each record's length, timestamp delta and offset delta. A compressed
// batch, or one whose records do not parse, reports ok=false: the caller
// then has batch-level precision only (FirstTimestamp, MaxTimestamp).
func RecordTimestamps(batch []byte, h BatchHeader, fn func(offsetDelta int32, ts int64) bool) (ok bool) {
	if h.Compression() != CompressionNone || len(batch) < BatchHeaderSize {
		return false
	}
	b := batch[BatchHeaderSize:]
	for i := int32(0); i < h.NumRecords; i++ {
		n, w := binary.Varint(b)
		if w <= 0 || n < 0 || int64(len(b)-w) < n {
			return false
		}
		rec := b[w : w+int(n)]
		b = b[w+int(n):]
		if len(rec) < 1 {
			return false
		}
		tsDelta, w1 := binary.Varint(rec[1:])
		if w1 <= 0 {
			return false
		}
		offDelta, w2 := binary.Varint(rec[1+w1:])
		if w2 <= 0 {
			return false
		}
		if !fn(int32(offDelta), h.FirstTimestamp+tsDelta) {
			return true
		}
	}
	return true
}

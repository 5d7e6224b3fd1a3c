package codec

import (
	"encoding/binary"
	"hash/crc32"
)

// Control batches (transactions, issue 15). Meta stores a transaction
// marker as an index entry without bytes; the agent renders it, at fetch
// time, as the control batch Kafka clients expect (Kafka's
// EndTransactionMarker / MemoryRecords.withEndTransactionMarker):
//
//	batch header (61 bytes): base offset | batch length | partition
//	    leader epoch 0 | magic 2 | CRC-32C | attributes 0x30
//	    (transactional | control) | last offset delta 0 | base and max
//	    timestamp | producer id | producer epoch | base sequence -1 |
//	    record count 1
//	one record (17 bytes): length 16 | attributes 0 | timestamp delta 0
//	    | offset delta 0 | key length 4 | key: version int16 0, type
//	    int16 (0 abort, 1 commit) | value length 6 | value: version int16
//	    0, coordinator epoch int32 | no headers
//
// The CRC covers attributes to the end, as in every v2 batch.

// ControlBatchSize is the size of a rendered marker.
const ControlBatchSize = BatchHeaderSize + 17

// AppendControlBatch appends the control batch of a commit (commit set)
// or abort marker at offset, of producer pid and epoch, stamped ts (unix
// ms).
func AppendControlBatch(dst []byte, offset, pid int64, epoch int16, commit bool, ts int64) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = be.AppendUint64(dst, uint64(offset))
	dst = be.AppendUint32(dst, ControlBatchSize-12)
	dst = be.AppendUint32(dst, 0) // partition leader epoch
	dst = append(dst, 2)
	dst = be.AppendUint32(dst, 0) // CRC, below
	dst = be.AppendUint16(dst, attrTransactional|attrControl)
	dst = be.AppendUint32(dst, 0) // last offset delta
	dst = be.AppendUint64(dst, uint64(ts))
	dst = be.AppendUint64(dst, uint64(ts))
	dst = be.AppendUint64(dst, uint64(pid))
	dst = be.AppendUint16(dst, uint16(epoch))
	dst = be.AppendUint32(dst, 0xffffffff) // base sequence -1
	dst = be.AppendUint32(dst, 1)
	typ := byte(0)
	if commit {
		typ = 1
	}
	// Varints are zigzag: 16 → 32, 4 → 8, 6 → 12.
	dst = append(dst, 32, 0, 0, 0, 8, 0, 0, 0, typ, 12, 0, 0, 0, 0, 0, 0, 0)
	be.PutUint32(dst[start+offCRC:], crc32.Checksum(dst[start+offAttributes:], castagnoli))
	return dst
}

// Control record types: the int16 after the version in a control
// record's key.
const (
	ControlTypeAbort  int16 = 0
	ControlTypeCommit int16 = 1
)

// ControlType returns the type of a control record from its key, and
// false when the key is too short to hold one.
func ControlType(key []byte) (int16, bool) {
	if len(key) < 4 {
		return 0, false
	}
	return int16(binary.BigEndian.Uint16(key[2:])), true
}

package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// Fuzz targets. Run one with, e.g.,
//
//	go test -run='^$' -fuzz=FuzzOpenSegment -fuzztime=20s ./codec/
//
// A crasher lands in testdata/fuzz/<target>/ and then runs with every
// `go test`; keep it there as the regression test, with a comment in the
// commit telling its story.

// FuzzOpenSegment checks that no object makes the segment reader panic, and
// that whatever it accepts is exactly what the builder would write for the
// same chunks: the reader accepts nothing the writer would not produce.
//
// With reseal set, the checksums are recomputed after mutation. Random
// mutations almost never survive three CRCs, so without this the fuzzer
// would spend its time on the first checks and never reach the structural
// ones (chunk bounds, ordering, batch headers against the index).
func FuzzOpenSegment(f *testing.F) {
	for _, seed := range [][]byte{smallSegment(4), smallSegment(1), smallSegment(0)} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, obj []byte, reseal bool) {
		if reseal && len(obj) >= SegmentHeaderSize+SegmentTrailerSize {
			p := obj[len(obj)-SegmentTrailerSize:]
			binary.BigEndian.PutUint32(p[20:], crc32.Checksum(obj[:SegmentHeaderSize], castagnoli))
			resealSegment(obj)
		}
		id, chunks, err := OpenSegment(obj)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the ErrCorrupt class: %v", err)
			}
			return
		}
		b := NewSegmentBuilder(id)
		for _, m := range chunks {
			batch := obj[m.Start:m.End()]
			h, err := ParseBatchHeader(batch)
			if err != nil {
				t.Fatalf("accepted chunk without a header: %v", err)
			}
			b.Add(m.TopicID, m.Partition, batch, h)
		}
		again, _ := b.Finish()
		if !bytes.Equal(again, obj) {
			t.Fatalf("accepted a segment the builder lays out differently")
		}
		// The tail alone must give the same answer.
		tr, err := ParseTrailer(obj)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := ParseIndex(obj[tr.IndexOffset:tr.IndexOffset+int64(tr.IndexLength)], tr)
		if err != nil || len(idx) != len(chunks) {
			t.Fatalf("ParseIndex disagrees with OpenSegment: %v", err)
		}
	})
}

// smallSegment builds a segment of n tiny chunks over three partitions as a
// fuzz seed. Small matters: the fuzzer minimizes every new interesting
// input byte by byte, for up to a minute each (-fuzzminimizetime), and with
// multi-KiB seeds that starved the actual fuzzing.
func smallSegment(n int) []byte {
	b := NewSegmentBuilder(topic(8, 8))
	for i := range n {
		batch := appendTestBatch(nil, batchOpts{records: 1 + i%2, valueSize: i % 3, producerID: int64(i)})
		h, _ := ValidateBatch(batch)
		k := testKeys[i%3]
		b.Add(k.TopicID, k.Partition, batch, h)
	}
	obj, _ := b.Finish()
	return obj
}

// FuzzValidateBatch checks that ValidateBatch never panics, classifies every
// error, and that an accepted batch stays accepted after the fields fetch
// rewrites are patched. With fixCRC set the CRC is recomputed after
// mutation, so that the checks behind it are reached.
func FuzzValidateBatch(f *testing.F) {
	for _, seed := range [][]byte{
		appendTestBatch(nil, batchOpts{records: 1}),
		appendTestBatch(nil, batchOpts{records: 3, valueSize: 7, attrs: 0x14, producerID: 5}),
		{},
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= BatchHeaderSize {
			binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
		}
		h, err := ValidateBatch(b)
		if err != nil {
			if errors.Is(err, ErrCorrupt) == errors.Is(err, ErrUnsupportedMagic) {
				t.Fatalf("error in both or neither class: %v", err)
			}
			return
		}
		if h.Size() != len(b) || h.Magic != 2 || h.NumRecords < 1 || h.Compression() > CompressionZstd {
			t.Fatalf("accepted %+v for %d bytes", h, len(b))
		}
		SetBaseOffset(b, 12345)
		SetPartitionLeaderEpoch(b, 6)
		if _, err := ValidateBatch(b); err != nil {
			t.Fatalf("patching offset and epoch broke the batch: %v", err)
		}
	})
}

// FuzzSplitBatches checks that splitting never panics and that on success
// the batches tile the input exactly, in order, each aliasing it.
func FuzzSplitBatches(f *testing.F) {
	two := appendTestBatch(nil, batchOpts{records: 2, valueSize: 3})
	two = appendTestBatch(two, batchOpts{records: 1})
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, records []byte) {
		pos := 0
		err := SplitBatches(records, func(b []byte) error {
			if len(b) < BatchHeaderSize || pos+len(b) > len(records) || &b[0] != &records[pos] {
				t.Fatalf("batch of %d bytes at %d does not alias the input", len(b), pos)
			}
			pos += len(b)
			_, err := ValidateBatch(b)
			return err
		})
		if err == nil && pos != len(records) {
			t.Fatalf("split %d of %d bytes without an error", pos, len(records))
		}
		if err != nil && errors.Is(err, ErrCorrupt) == errors.Is(err, ErrUnsupportedMagic) {
			t.Fatalf("error in both or neither class: %v", err)
		}
	})
}

// FuzzValidateRecords checks that the record walker never panics, whatever
// the bytes and codec, and classifies every error as ErrInvalidRecord. It
// is seeded with batches compressed by franz-go's producer code for every
// codec and with xerial-framed snappy, as the Java client sends. An
// accepted uncompressed batch must agree with RecordTimestamps, the other
// walker of the same bytes: every record is visited, with dense offsets.
func FuzzValidateRecords(f *testing.F) {
	plain := appendTestBatch(nil, batchOpts{records: 3, valueSize: 5, firstTS: 100})
	f.Add(plain, false)
	f.Add(appendRecordsBatch(10, 10, []testRecord{{key: nil, value: []byte("v"), headers: [][2][]byte{{[]byte("h"), nil}}}}), false)
	for _, c := range realCodecs {
		f.Add(compressWith(f, c.kgo, c.codec, plain), false)
	}
	f.Add(withRecords(plain, CompressionSnappy, xerialFrame(plain[BatchHeaderSize:], 16)), false)
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool) {
		if fixCRC && len(b) >= BatchHeaderSize {
			fixBatch(b)
		}
		h, err := ValidateBatch(b)
		if err != nil {
			return
		}
		err = ValidateRecords(b, h, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("error outside the ErrInvalidRecord class: %v", err)
			}
			return
		}
		if h.Compression() != CompressionNone {
			return
		}
		next := int32(0)
		ok := RecordTimestamps(b, h, func(d int32, ts int64) bool {
			if d != next || ts > h.MaxTimestamp {
				t.Fatalf("accepted record %d with offset delta %d, timestamp %d (max %d)", next, d, ts, h.MaxTimestamp)
			}
			next++
			return true
		})
		if !ok || next != h.NumRecords {
			t.Fatalf("accepted a batch RecordTimestamps walks to %d of %d records (ok=%v)", next, h.NumRecords, ok)
		}
	})
}

package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestValidateBatchRoundTrip(t *testing.T) {
	for _, o := range []batchOpts{
		{records: 1},
		{records: 1, valueSize: 1000},
		{records: 17, valueSize: 30, baseOffset: 99, leaderEpoch: 7, firstTS: 1_700_000_000_123, producerID: 42, producerEpoch: 3, baseSeq: 1000},
		{records: 500, valueSize: 10, attrs: 0x04 | 0x08 | 0x10, producerID: -1, producerEpoch: -1, baseSeq: -1},
		{records: 1, attrs: 0x20 | 0x10}, // a control batch (commit marker)
	} {
		b := appendTestBatch(nil, o)
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		want := BatchHeader{
			BaseOffset: o.baseOffset, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: o.leaderEpoch,
			Magic: 2, CRC: binary.BigEndian.Uint32(b[17:]), Attributes: o.attrs,
			LastOffsetDelta: int32(o.records - 1), FirstTimestamp: o.firstTS, MaxTimestamp: o.firstTS + int64(o.records-1),
			ProducerID: o.producerID, ProducerEpoch: o.producerEpoch, BaseSequence: o.baseSeq, NumRecords: int32(o.records),
		}
		if h != want {
			t.Errorf("%+v:\n got %+v\nwant %+v", o, h, want)
		}
		if p, err := ParseBatchHeader(b); err != nil || p != h {
			t.Errorf("ParseBatchHeader = %+v, %v; ValidateBatch said %+v", p, err, h)
		}
		if h.Size() != len(b) {
			t.Errorf("Size() = %d, batch has %d bytes", h.Size(), len(b))
		}
		checkAgainstKmsg(t, b, h)
	}
}

// checkAgainstKmsg decodes b with franz-go's generated types, an independent
// reading of the format, and compares: it guards both the header parser and
// the hand-written test encoder.
func checkAgainstKmsg(t *testing.T, b []byte, h BatchHeader) {
	t.Helper()
	var kb kmsg.RecordBatch
	if err := kb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg cannot read the batch: %v", err)
	}
	got := BatchHeader{
		BaseOffset: kb.FirstOffset, BatchLength: kb.Length, PartitionLeaderEpoch: kb.PartitionLeaderEpoch,
		Magic: kb.Magic, CRC: uint32(kb.CRC), Attributes: kb.Attributes, LastOffsetDelta: kb.LastOffsetDelta,
		FirstTimestamp: kb.FirstTimestamp, MaxTimestamp: kb.MaxTimestamp, ProducerID: kb.ProducerID,
		ProducerEpoch: kb.ProducerEpoch, BaseSequence: kb.FirstSequence, NumRecords: kb.NumRecords,
	}
	if got != h {
		t.Errorf("kmsg reads\n %+v\nwe read\n %+v", got, h)
	}
	// Walk the records too: the test encoder must produce exactly
	// NumRecords records that fill the batch.
	rest := kb.Records
	for i := range int(kb.NumRecords) {
		n, m := binary.Varint(rest)
		if m <= 0 || int(n) > len(rest)-m {
			t.Fatalf("record %d: bad length prefix", i)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rest[:m+int(n)]); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if int(r.OffsetDelta) != i {
			t.Fatalf("record %d has offsetDelta %d", i, r.OffsetDelta)
		}
		rest = rest[m+int(n):]
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the last record", len(rest))
	}
}

func TestBatchHeaderAttributes(t *testing.T) {
	for _, tc := range []struct {
		attrs             int16
		codec, tsType     int8
		transactional, ct bool
	}{
		{0, 0, 0, false, false},
		{0x01, CompressionGzip, 0, false, false},
		{0x02, CompressionSnappy, 0, false, false},
		{0x03, CompressionLZ4, 0, false, false},
		{0x04 | 0x08, CompressionZstd, 1, false, false},
		{0x10, 0, 0, true, false},
		{0x30, 0, 0, true, true},
		{0x40 | 0x01, CompressionGzip, 0, false, false}, // bit 6 (delete horizon) is not ours to judge
	} {
		h := BatchHeader{Attributes: tc.attrs}
		if h.Compression() != tc.codec || h.TimestampType() != tc.tsType || h.IsTransactional() != tc.transactional || h.IsControl() != tc.ct {
			t.Errorf("attrs %#x: codec %d tsType %d transactional %v control %v", tc.attrs, h.Compression(), h.TimestampType(), h.IsTransactional(), h.IsControl())
		}
	}
}

func TestValidateBatchErrors(t *testing.T) {
	good := appendTestBatch(nil, batchOpts{records: 5, valueSize: 20, producerID: 7})
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"payload byte flipped", func(b []byte) []byte { b[len(b)-3] ^= 0x40; return b }, ErrCorrupt},
		{"attributes flipped", func(b []byte) []byte { b[offAttributes+1] ^= 0x08; return b }, ErrCorrupt},
		{"crc flipped", func(b []byte) []byte { b[offCRC] ^= 1; return b }, ErrCorrupt},
		{"magic 0", func(b []byte) []byte { b[offMagic] = 0; return b }, ErrUnsupportedMagic},
		{"magic 1", func(b []byte) []byte { b[offMagic] = 1; return b }, ErrUnsupportedMagic},
		{"magic 3", func(b []byte) []byte { b[offMagic] = 3; return b }, ErrCorrupt},
		{"magic -1", func(b []byte) []byte { b[offMagic] = 0xff; return b }, ErrCorrupt},
		{"truncated by one", func(b []byte) []byte { return b[:len(b)-1] }, ErrCorrupt},
		{"truncated to header", func(b []byte) []byte { return b[:BatchHeaderSize] }, ErrCorrupt},
		{"truncated to 20", func(b []byte) []byte { return b[:20] }, ErrCorrupt},
		{"empty", func(b []byte) []byte { return nil }, ErrCorrupt},
		{"trailing byte", func(b []byte) []byte { return append(b, 0) }, ErrCorrupt},
		{"batchLength too big", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b))); return b }, ErrCorrupt},
		{"batchLength negative", func(b []byte) []byte { binary.BigEndian.PutUint32(b[offBatchLength:], 0x80000000); return b }, ErrCorrupt},
		{"batchLength below header", func(b []byte) []byte {
			b = b[:BatchHeaderSize-1]
			fixBatch(b)
			return b
		}, ErrCorrupt},
		{"zero records", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			fixBatch(b)
			return b
		}, ErrCorrupt},
		{"negative records", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], 0xfffffffe)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xfffffffd)
			fixBatch(b)
			return b
		}, ErrCorrupt},
		{"offset gap", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 5) // 5 records: must be 4
			fixBatch(b)
			return b
		}, ErrCorrupt},
		{"compression 5", func(b []byte) []byte { b[offAttributes+1] |= 0x05; fixBatch(b); return b }, ErrCorrupt},
		{"compression 7", func(b []byte) []byte { b[offAttributes+1] |= 0x07; fixBatch(b); return b }, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(good))
			h, err := ValidateBatch(b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if h != (BatchHeader{}) {
				t.Errorf("header %+v returned with an error", h)
			}
			// The server maps the two classes to different Kafka codes: they
			// must not overlap.
			if errors.Is(err, ErrCorrupt) == errors.Is(err, ErrUnsupportedMagic) {
				t.Errorf("err %v is in both or neither class", err)
			}
		})
	}
}

func TestParseBatchHeaderShort(t *testing.T) {
	b := appendTestBatch(nil, batchOpts{records: 1})
	for n := range BatchHeaderSize {
		if _, err := ParseBatchHeader(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%d bytes: err = %v", n, err)
		}
	}
	if _, err := ParseBatchHeader(b[:BatchHeaderSize]); err != nil {
		t.Fatalf("a whole header: %v", err)
	}
}

func TestSetBaseOffsetAndEpoch(t *testing.T) {
	b := appendTestBatch(nil, batchOpts{records: 3, valueSize: 8})
	SetBaseOffset(b, 1<<40+5)
	SetPartitionLeaderEpoch(b, 12)
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatalf("patched batch no longer valid: %v", err)
	}
	if h.BaseOffset != 1<<40+5 || h.PartitionLeaderEpoch != 12 {
		t.Fatalf("got base offset %d epoch %d", h.BaseOffset, h.PartitionLeaderEpoch)
	}
	SetBaseOffset(b, -1)
	SetPartitionLeaderEpoch(b, -1)
	if h, _ := ParseBatchHeader(b); h.BaseOffset != -1 || h.PartitionLeaderEpoch != -1 {
		t.Fatalf("got base offset %d epoch %d", h.BaseOffset, h.PartitionLeaderEpoch)
	}
}

func TestSplitBatches(t *testing.T) {
	var records []byte
	var starts []int
	for i, n := range []int{1, 4, 30} {
		starts = append(starts, len(records))
		records = appendTestBatch(records, batchOpts{records: n, valueSize: 10 * i, baseSeq: int32(i)})
	}
	var got []int
	err := SplitBatches(records, func(b []byte) error {
		// The batch aliases records: no copy, and the capacity is cut so
		// an append by fn cannot overwrite the next batch.
		start := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(records))))
		if cap(b) != len(b) {
			t.Errorf("batch at %d: cap %d > len %d", start, cap(b), len(b))
		}
		h, err := ValidateBatch(b)
		if err != nil {
			return err
		}
		if h.BaseSequence != int32(len(got)) {
			t.Errorf("batch %d has sequence %d", len(got), h.BaseSequence)
		}
		got = append(got, start)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInts(got, starts) {
		t.Fatalf("batches at %v, want %v", got, starts)
	}

	calls := 0
	if err := SplitBatches(nil, func([]byte) error { calls++; return nil }); err != nil || calls != 0 {
		t.Fatalf("empty records: err %v, %d calls", err, calls)
	}

	stop := errors.New("stop")
	calls = 0
	if err := SplitBatches(records, func([]byte) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("fn's error: got %v after %d calls", err, calls)
	}

	second := records[starts[1]:starts[2]]
	for _, tc := range []struct {
		name    string
		records []byte
		want    error
		calls   int // batches seen before the error
	}{
		{"trailing partial batch", records[:len(records)-1], ErrCorrupt, 2},
		{"trailing 12 bytes", append(bytes.Clone(records), second[:12]...), ErrCorrupt, 3},
		{"trailing header", append(bytes.Clone(records), second[:BatchHeaderSize]...), ErrCorrupt, 3},
		{"trailing zero byte", append(bytes.Clone(records), 0), ErrCorrupt, 3},
		{"length too small", setU32(records, starts[1]+offBatchLength, 10), ErrCorrupt, 1},
		{"length negative", setU32(records, starts[1]+offBatchLength, 0xffffffff), ErrCorrupt, 1},
		{"length past end", setU32(records, starts[1]+offBatchLength, uint32(len(records))), ErrCorrupt, 1},
		{"magic 1 batch", setByte(records, starts[2]+offMagic, 1), ErrUnsupportedMagic, 2},
		{"magic 9 batch", setByte(records, starts[0]+offMagic, 9), ErrCorrupt, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := SplitBatches(tc.records, func([]byte) error { calls++; return nil })
			if !errors.Is(err, tc.want) || calls != tc.calls {
				t.Fatalf("err = %v after %d calls, want %v after %d", err, calls, tc.want, tc.calls)
			}
		})
	}
}

func setU32(b []byte, at int, v uint32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[at:], v)
	return b
}

func setByte(b []byte, at int, v byte) []byte {
	b = bytes.Clone(b)
	b[at] = v
	return b
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBatchDecodersEveryPrefix feeds every prefix of three concatenated
// batches to each decoder, the way a stream would deliver them one byte at
// a time: none may panic, and each must tell a complete input from an
// incomplete one.
func TestBatchDecodersEveryPrefix(t *testing.T) {
	var records []byte
	ends := map[int]bool{0: true}
	for _, n := range []int{1, 3, 7} {
		records = appendTestBatch(records, batchOpts{records: n, valueSize: 5})
		ends[len(records)] = true
	}
	first := int(binary.BigEndian.Uint32(records[offBatchLength:])) + 12
	for n := 0; n <= len(records); n++ {
		p := records[:n:n] // cap cut: a read past n would panic
		_, err := ValidateBatch(p)
		if (err == nil) != (n == first) {
			t.Fatalf("ValidateBatch(%d bytes): %v", n, err)
		}
		_, err = ParseBatchHeader(p)
		if (err == nil) != (n >= BatchHeaderSize) {
			t.Fatalf("ParseBatchHeader(%d bytes): %v", n, err)
		}
		err = SplitBatches(p, func(b []byte) error { _, err := ValidateBatch(b); return err })
		if (err == nil) != ends[n] || (err != nil && !errors.Is(err, ErrCorrupt)) {
			t.Fatalf("SplitBatches(%d bytes): %v", n, err)
		}
	}
}

// TestBatchZeroAllocs pins the allocation-free promise of the hot path; the
// benchmarks show the same, this fails the build when it breaks.
func TestBatchZeroAllocs(t *testing.T) {
	records := appendTestBatch(nil, batchOpts{records: 10, valueSize: 50})
	records = appendTestBatch(records, batchOpts{records: 3, valueSize: 50})
	n := 0
	fn := func(b []byte) error {
		_, err := ValidateBatch(b)
		n++
		return err
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseBatchHeader(records); err != nil {
			t.Fatal(err)
		}
		if err := SplitBatches(records, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per run", allocs)
	}
}

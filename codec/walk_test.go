package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/twmb/franz-go/pkg/kgo"
)

// realCodecs are the compressors franz-go's producer uses, by the codec
// number they write into the batch attributes.
var realCodecs = []struct {
	name  string
	codec int8
	kgo   kgo.CompressionCodec
}{
	{"gzip", CompressionGzip, kgo.GzipCompression()},
	{"snappy", CompressionSnappy, kgo.SnappyCompression()},
	{"lz4", CompressionLZ4, kgo.Lz4Compression()},
	{"zstd", CompressionZstd, kgo.ZstdCompression()},
}

// compressWith turns an uncompressed batch into one whose records are
// compressed by franz-go's own producer compressor, as a real client sends.
func compressWith(t testing.TB, c kgo.CompressionCodec, codec int8, batch []byte) []byte {
	t.Helper()
	comp, err := kgo.DefaultCompressor(c)
	if err != nil {
		t.Fatal(err)
	}
	out, typ := comp.Compress(new(bytes.Buffer), batch[BatchHeaderSize:])
	if int8(typ) != codec {
		t.Fatalf("franz-go compressed with codec %d, want %d", typ, codec)
	}
	return withRecords(batch, codec, out)
}

// withRecords returns batch's header with codec set and records as its
// records section, length and CRC fixed.
func withRecords(batch []byte, codec int8, records []byte) []byte {
	b := append([]byte(nil), batch[:BatchHeaderSize]...)
	attrs := binary.BigEndian.Uint16(b[offAttributes:])&^attrCompressionMask | uint16(codec)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	b = append(b, records...)
	fixBatch(b)
	return b
}

// xerialFrame frames raw snappy blocks of chunk bytes the way the Java
// client (snappy-java) does.
func xerialFrame(data []byte, chunk int) []byte {
	out := append(append([]byte(nil), xerialPrefix...), 0, 0, 0, 1, 0, 0, 0, 1)
	for len(data) > 0 {
		n := min(chunk, len(data))
		blk := s2.EncodeSnappy(nil, data[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(blk)))
		out = append(out, blk...)
		data = data[n:]
	}
	return out
}

func mustValidate(t testing.TB, b []byte) BatchHeader {
	t.Helper()
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatalf("ValidateBatch: %v", err)
	}
	return h
}

// librdkafkaBatches reads the batches kcat (librdkafka 2.x) produced into
// an agent, one per codec, kept as fuzz seeds in testdata: a second real
// client's encoders besides franz-go's.
func librdkafkaBatches(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/fuzz/FuzzValidateRecords/librdkafka-*")
	if err != nil || len(files) < 5 {
		t.Fatalf("librdkafka seeds: %d files, %v", len(files), err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(raw), "\n")
		lit, ok := strings.CutPrefix(lines[1], "[]byte(")
		if !ok {
			t.Fatalf("%s: not a []byte seed", f)
		}
		b, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = []byte(b)
	}
	return out
}

func TestValidateRecordsAcceptsRealBatches(t *testing.T) {
	plain := appendTestBatch(nil, batchOpts{records: 50, valueSize: 200, firstTS: 1_700_000_000_000})
	cases := map[string][]byte{"none": plain}
	for _, c := range realCodecs {
		cases[c.name] = compressWith(t, c.kgo, c.codec, plain)
	}
	cases["snappy-xerial"] = withRecords(plain, CompressionSnappy, xerialFrame(plain[BatchHeaderSize:], 1024))
	// Null key and value, headers, negative timestamp deltas: all legal.
	cases["nulls-and-headers"] = appendRecordsBatch(1000, 1005, []testRecord{
		{tsDelta: 5, key: nil, value: nil, headers: [][2][]byte{{[]byte("h"), nil}, {[]byte(""), []byte("v")}}},
		{tsDelta: -3, key: []byte("k"), value: []byte{}},
	})
	for name, b := range librdkafkaBatches(t) {
		cases[name] = b
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			h := mustValidate(t, b)
			if err := ValidateRecords(b, h, 1<<20); err != nil {
				t.Fatalf("ValidateRecords: %v", err)
			}
		})
	}
}

// testRecord is one record for appendRecordsBatch, which writes exactly
// what it is given (offset deltas included), so tests can lie.
type testRecord struct {
	tsDelta    int64
	offDelta   int64
	key, value []byte // nil is null
	headers    [][2][]byte
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(v))), v...)
}

func encodeRecord(r testRecord) []byte {
	var body []byte
	body = append(body, 0)
	body = binary.AppendVarint(body, r.tsDelta)
	body = binary.AppendVarint(body, r.offDelta)
	body = appendVarBytes(body, r.key)
	body = appendVarBytes(body, r.value)
	body = binary.AppendVarint(body, int64(len(r.headers)))
	for _, h := range r.headers {
		body = appendVarBytes(body, h[0])
		body = appendVarBytes(body, h[1])
	}
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

// appendRecordsBatch builds a batch of recs with dense offset deltas
// filled in, header counts matching.
func appendRecordsBatch(firstTS, maxTS int64, recs []testRecord) []byte {
	b := appendTestBatch(nil, batchOpts{records: len(recs), firstTS: firstTS})[:BatchHeaderSize]
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
	for i, r := range recs {
		r.offDelta = int64(i)
		b = append(b, encodeRecord(r)...)
	}
	fixBatch(b)
	return b
}

// The attack that motivated walking records: a 61-byte batch whose CRC is
// valid claims a billion records. Before, it was acknowledged at offset 0,
// the next honest batch landed at offset 1,000,000,000, and a consumer
// reading the partition looped forever over the gap.
func TestValidateRecordsBillionRecordHeader(t *testing.T) {
	b := appendTestBatch(nil, batchOpts{records: 1})[:BatchHeaderSize]
	binary.BigEndian.PutUint32(b[offRecordCount:], 1_000_000_000)
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 1_000_000_000-1)
	fixBatch(b)
	h := mustValidate(t, b) // the header alone is consistent
	if err := ValidateRecords(b, h, 1<<20); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("billion-record header: %v, want ErrInvalidRecord", err)
	}
}

// Each way a CRC-valid batch can lie about its records is refused.
func TestValidateRecordsRefusesLies(t *testing.T) {
	rec := func(i int) testRecord { return testRecord{tsDelta: int64(i), key: []byte("k"), value: []byte("value")} }
	good := appendRecordsBatch(100, 102, []testRecord{rec(0), rec(1), rec(2)})
	mutate := func(f func(b []byte) []byte) []byte {
		b := f(append([]byte(nil), good...))
		fixBatch(b)
		return b
	}
	setCount := func(n int32) func(b []byte) []byte {
		return func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offRecordCount:], uint32(n))
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(n-1))
			return b
		}
	}
	withRecs := func(maxTS int64, recs ...testRecord) []byte {
		b := append([]byte(nil), good[:BatchHeaderSize]...)
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTS))
		for _, r := range recs {
			b = append(b, encodeRecord(r)...)
		}
		return mutate(func([]byte) []byte { return b })
	}
	gap := rec(2)
	gap.offDelta = 3
	tooManyHeaders := encodeRecord(rec(2))
	// The last byte is the header count 0; claim 1000 headers.
	tooManyHeaders = append(tooManyHeaders[:len(tooManyHeaders)-1], binary.AppendVarint(nil, 1000)...)
	tooManyHeaders[0] = byte(binary.AppendVarint(nil, int64(len(tooManyHeaders)-1))[0])
	cases := map[string][]byte{
		"more records claimed":        mutate(setCount(4)),
		"fewer records claimed":       mutate(setCount(2)),
		"offset gap":                  withRecs(102, rec(0), func() testRecord { r := rec(1); r.offDelta = 1; return r }(), gap),
		"timestamp past maxTimestamp": withRecs(101, rec(0), testRecord{offDelta: 1, tsDelta: 1}, testRecord{offDelta: 2, tsDelta: 9}),
		"truncated last record":       mutate(func(b []byte) []byte { return b[:len(b)-1] }),
		"trailing byte":               mutate(func(b []byte) []byte { return append(b, 0) }),
		"record length too long": mutate(func(b []byte) []byte {
			b[BatchHeaderSize] += 2 // zigzag: +1
			return append(b, 0)
		}),
		"header count lie": mutate(func(b []byte) []byte {
			return append(b[:len(b)-len(encodeRecord(rec(2)))], tooManyHeaders...)
		}),
		"varint too long": mutate(func(b []byte) []byte {
			return append(b[:BatchHeaderSize], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}),
	}
	// A key length of -2 is not -1 (null), so it is refused.
	neg := encodeRecord(testRecord{offDelta: 0})
	neg[4] = byte(binary.AppendVarint(nil, -2)[0]) // length, attrs, ts, off, then key length
	cases["negative key length"] = mutate(func([]byte) []byte {
		b := append([]byte(nil), good[:BatchHeaderSize]...)
		binary.BigEndian.PutUint32(b[offRecordCount:], 1)
		binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0)
		return append(b, neg...)
	})
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := ValidateBatch(b)
			if err != nil {
				t.Fatalf("the case must pass the header checks to test the walk: %v", err)
			}
			err = ValidateRecords(b, h, 1<<20)
			if !errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrInvalidRecord only", err)
			}
		})
	}
}

// Compressed payloads that do not decompress, or whose checksums fail,
// are refused, and so is the same lie as above inside a compressed batch.
func TestValidateRecordsRefusesBadCompressed(t *testing.T) {
	plain := appendTestBatch(nil, batchOpts{records: 20, valueSize: 100, firstTS: 5})
	lie := append([]byte(nil), plain...)
	binary.BigEndian.PutUint32(lie[offRecordCount:], 21)
	binary.BigEndian.PutUint32(lie[offLastOffsetDelta:], 20)
	for _, c := range realCodecs {
		t.Run(c.name, func(t *testing.T) {
			good := compressWith(t, c.kgo, c.codec, plain)
			payload := good[BatchHeaderSize:]
			bad := map[string][]byte{
				"truncated":  withRecords(good, c.codec, payload[:len(payload)-3]),
				"empty":      withRecords(good, c.codec, nil),
				"garbage":    withRecords(good, c.codec, bytes.Repeat([]byte{0xa5}, 64)),
				"count lie":  compressWith(t, c.kgo, c.codec, lie),
				"wrong kind": withRecords(good, c.codec%4+1, payload),
			}
			if c.codec != CompressionSnappy { // raw snappy has no checksum
				flipped := append([]byte(nil), payload...)
				flipped[len(flipped)/2] ^= 0x40
				bad["flipped"] = withRecords(good, c.codec, flipped)
			}
			for name, b := range bad {
				h := mustValidate(t, b)
				if err := ValidateRecords(b, h, 1<<20); !errors.Is(err, ErrInvalidRecord) {
					t.Errorf("%s: got %v, want ErrInvalidRecord", name, err)
				}
			}
		})
	}
	// Xerial framing errors.
	x := xerialFrame(plain[BatchHeaderSize:], 512)
	for name, p := range map[string][]byte{
		"chunk past end": x[:len(x)-1],
		"short length":   append(append([]byte(nil), x...), 0, 0),
	} {
		b := withRecords(plain, CompressionSnappy, p)
		if err := ValidateRecords(b, mustValidate(t, b), 1<<20); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("xerial %s: got %v", name, err)
		}
	}
}

// A decompression bomb stops at the bound: a batch of a few KiB that
// inflates to 4 MiB is refused under a 1 MiB bound and accepted under 8.
func TestValidateRecordsDecompressionBound(t *testing.T) {
	zeros := make([]byte, 4<<20)
	plain := appendRecordsBatch(0, 0, []testRecord{{value: zeros}})
	for _, c := range realCodecs {
		t.Run(c.name, func(t *testing.T) {
			b := compressWith(t, c.kgo, c.codec, plain)
			if c.codec == CompressionSnappy {
				// Raw snappy is one block; check the xerial chunks too.
				bx := withRecords(plain, CompressionSnappy, xerialFrame(plain[BatchHeaderSize:], 32<<10))
				err := ValidateRecords(bx, mustValidate(t, bx), 1<<20)
				if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "past") {
					t.Fatalf("xerial bomb: %v", err)
				}
			}
			h := mustValidate(t, b)
			err := ValidateRecords(b, h, 1<<20)
			if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "past") {
				t.Fatalf("%d-byte batch inflating to 4 MiB under a 1 MiB bound: %v", len(b), err)
			}
			if err := ValidateRecords(b, h, 8<<20); err != nil {
				t.Fatalf("under an 8 MiB bound: %v", err)
			}
			// Exactly at the bound is fine.
			if err := ValidateRecords(b, h, len(plain)-BatchHeaderSize); err != nil {
				t.Fatalf("exactly at the bound: %v", err)
			}
		})
	}
}

// A raw snappy block claiming to decode to more than snappy can express is
// refused before its buffer is allocated.
func TestValidateRecordsSnappyClaimedLength(t *testing.T) {
	plain := appendTestBatch(nil, batchOpts{records: 1})
	blk := binary.AppendUvarint(nil, 1<<30) // claims 1 GiB
	blk = append(blk, 0, 0, 0, 0)
	b := withRecords(plain, CompressionSnappy, blk)
	h := mustValidate(t, b)
	allocs := testing.AllocsPerRun(5, func() {
		if err := ValidateRecords(b, h, 2<<30); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("got %v", err)
		}
	})
	before := totalAlloc()
	_ = ValidateRecords(b, h, 2<<30)
	if d := totalAlloc() - before; d > 1<<20 {
		t.Fatalf("refusing a 1 GiB claim allocated %d bytes (%v allocs)", d, allocs)
	}
}

// Validation stays off the allocator: none at all for uncompressed
// batches, a handful for compressed ones once the pools are warm (error
// wrapping aside, which only failures pay).
func TestValidateRecordsAllocations(t *testing.T) {
	plain := batchOfSize(64 << 10)
	h := mustValidate(t, plain)
	if n := testing.AllocsPerRun(20, func() {
		if err := ValidateRecords(plain, h, 1<<20); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("uncompressed: %v allocations per batch, want 0", n)
	}
	for _, c := range realCodecs {
		b := compressWith(t, c.kgo, c.codec, plain)
		h := mustValidate(t, b)
		n := testing.AllocsPerRun(20, func() {
			if err := ValidateRecords(b, h, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: %v allocations per batch", c.name, n)
		if n > 4 && !raceEnabled {
			t.Errorf("%s: %v allocations per batch, want at most 4", c.name, n)
		}
	}
}

func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

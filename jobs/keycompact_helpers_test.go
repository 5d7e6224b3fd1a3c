package jobs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"sluice.dev/codec"
)

// The tests build their input by hand, the way a producer encodes it, so
// that they do not trust the code under test (codec.BatchBuilder) to make
// what it is tested on. Compressed batches use franz-go's producer
// compressors.

// tRec is one record of a test batch. A nil key or value is null.
type tRec struct {
	key, value []byte
	ts         int64
}

// tBatch describes one test batch.
type tBatch struct {
	recs    []tRec
	codec   int8
	control bool
	txnal   bool  // transactional (control batches are too)
	pid     int64 // producer id; 0 is 42
	logTime bool  // LogAppendTime, with maxTS as the append time
	maxTS   int64
}

var kgoCodecs = map[int8]kgo.CompressionCodec{
	1: kgo.GzipCompression(),
	2: kgo.SnappyCompression(),
	3: kgo.Lz4Compression(),
	4: kgo.ZstdCompression(),
}

// compressors caches franz-go's compressors: making one sets up encoder
// pools (a zstd encoder is megabytes), which would dominate the tests.
var compressors sync.Map // int8 -> kgo.Compressor

func compressorFor(t testing.TB, c int8) kgo.Compressor {
	if v, ok := compressors.Load(c); ok {
		return v.(kgo.Compressor)
	}
	comp, err := kgo.DefaultCompressor(kgoCodecs[c])
	if err != nil {
		t.Fatal(err)
	}
	compressors.Store(c, comp)
	return comp
}

func appendVarBytes(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(v))), v...)
}

// encodeBatch writes tb as a v2 batch with dense offsets (baseOffset field
// 0, as clients send).
func encodeBatch(t testing.TB, tb tBatch) []byte {
	t.Helper()
	first, maxTS := int64(0), tb.maxTS
	if len(tb.recs) > 0 {
		first = tb.recs[0].ts
	}
	var recs, body []byte
	for i, r := range tb.recs {
		if !tb.logTime {
			maxTS = max(maxTS, r.ts)
		}
		body = body[:0]
		body = append(body, 0)
		body = binary.AppendVarint(body, r.ts-first)
		body = binary.AppendVarint(body, int64(i))
		body = appendVarBytes(body, r.key)
		body = appendVarBytes(body, r.value)
		body = binary.AppendVarint(body, 1)
		body = appendVarBytes(body, []byte("hdr"))
		body = appendVarBytes(body, fmt.Appendf(nil, "h%d", i))
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	if tb.codec != 0 {
		comp := compressorFor(t, tb.codec)
		out, typ := comp.Compress(new(bytes.Buffer), recs)
		if int8(typ) != tb.codec {
			t.Fatalf("franz-go compressed with %d, want %d", typ, tb.codec)
		}
		recs = append([]byte(nil), out...)
	}
	attrs := uint16(tb.codec)
	if tb.logTime {
		attrs |= 0x08
	}
	if tb.control {
		attrs |= 0x10 | 0x20
	}
	if tb.txnal {
		attrs |= 0x10
	}
	pid := tb.pid
	if pid == 0 {
		pid = 42
	}
	be := binary.BigEndian
	b := be.AppendUint64(nil, 0)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, 0)
	b = append(b, 2)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint16(b, attrs)
	b = be.AppendUint32(b, uint32(len(tb.recs)-1))
	b = be.AppendUint64(b, uint64(first))
	b = be.AppendUint64(b, uint64(maxTS))
	b = be.AppendUint64(b, uint64(pid))
	b = be.AppendUint16(b, 1)
	b = be.AppendUint32(b, 0)
	b = be.AppendUint32(b, uint32(len(tb.recs)))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	if _, err := codec.ValidateBatch(b); err != nil {
		t.Fatalf("test batch: %v", err)
	}
	return b
}

// partition lays batches out from base, dense.
func partition(t testing.TB, base int64, tbs []tBatch) []Batch {
	out := make([]Batch, len(tbs))
	for i, tb := range tbs {
		out[i] = Batch{Base: base, Data: encodeBatch(t, tb)}
		base += int64(len(tb.recs))
	}
	return out
}

// flatRec is a record of a partition as the oracle sees it.
type flatRec struct {
	off                int64
	key, value         string
	nullKey, nullValue bool
	ts                 int64 // create timestamp
	tsSeen             int64 // the timestamp a consumer sees
	control            bool
	txnal              bool
	pid                int64
}

func (r flatRec) String() string {
	k, v := r.key, r.value
	if r.nullKey {
		k = "<nil>"
	}
	if r.nullValue {
		v = "<nil>"
	}
	c := ""
	if r.control {
		c = "C"
	} else if r.txnal {
		c = fmt.Sprintf("T%d", r.pid)
	}
	return fmt.Sprintf("%d%s:%s=%s@%d", r.off, c, k, v, r.ts)
}

// flatten walks batches, checking that every one is valid and that they
// tile [first, …] without a gap, and returns their records and the last
// offset covered.
func flatten(t testing.TB, batches []Batch, first int64) ([]flatRec, int64) {
	t.Helper()
	var out []flatRec
	next := first
	var it codec.RecordIter
	defer it.Close()
	for i, b := range batches {
		h, err := codec.ValidateCompactedBatch(b.Data)
		if err != nil {
			t.Fatalf("batch %d at %d: %v", i, b.Base, err)
		}
		if b.Base != next {
			t.Fatalf("batch %d at %d, want %d: not contiguous", i, b.Base, next)
		}
		if err := it.Reset(b.Data, h, 1<<24); err != nil {
			t.Fatal(err)
		}
		for it.Next() {
			r := it.Record()
			out = append(out, flatRec{
				off: b.Base + int64(r.OffsetDelta), key: string(r.Key), value: string(r.Value),
				nullKey: r.Key == nil, nullValue: r.NullValue, ts: r.CreateTimestamp,
				tsSeen: r.Timestamp, control: h.IsControl(), txnal: h.IsTransactional(), pid: h.ProducerID,
			})
		}
		if err := it.Err(); err != nil {
			t.Fatalf("batch %d at %d: %v", i, b.Base, err)
		}
		next = b.Base + int64(h.LastOffsetDelta) + 1
	}
	for i := 1; i < len(out); i++ {
		if out[i].off <= out[i-1].off {
			t.Fatalf("offsets do not increase: %v then %v", out[i-1], out[i])
		}
	}
	return out, next - 1
}

// collectEmit returns an Emit that copies the output into *out, after
// checking that the batch's baseOffset field is its base.
func collectEmit(out *[]Batch) Emit {
	return func(base int64, batch []byte) error {
		if h, err := codec.ParseBatchHeader(batch); err != nil || h.BaseOffset != base {
			return fmt.Errorf("emitted batch at %d with header %+v (%v)", base, h, err)
		}
		*out = append(*out, Batch{Base: base, Data: append([]byte(nil), batch...)})
		return nil
	}
}

// batchEnds returns the last offset of each batch.
func batchEnds(t testing.TB, batches []Batch) []int64 {
	ends := make([]int64, len(batches))
	for i, b := range batches {
		h, err := codec.ParseBatchHeader(b.Data)
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = b.Base + int64(h.LastOffsetDelta)
	}
	return ends
}

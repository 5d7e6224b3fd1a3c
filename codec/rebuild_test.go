package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// rebuildRecord is what the rebuild tests compare: a record's content and
// its place, independent of how the batch encodes it.
type rebuildRecord struct {
	offset, ts, createTS int64
	key, value           string
	nullKey, nullValue   bool
}

// collect walks batch (at absolute base offset base) with a RecordIter.
func collect(t testing.TB, batch []byte, base int64) (BatchHeader, []rebuildRecord) {
	t.Helper()
	h, err := ValidateCompactedBatch(batch)
	if err != nil {
		t.Fatalf("ValidateCompactedBatch: %v", err)
	}
	var it RecordIter
	defer it.Close()
	if err := it.Reset(batch, h, 1<<20); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	var out []rebuildRecord
	for it.Next() {
		r := it.Record()
		out = append(out, rebuildRecord{
			offset: base + int64(r.OffsetDelta), ts: r.Timestamp, createTS: r.CreateTimestamp,
			key: string(r.Key), value: string(r.Value), nullKey: r.Key == nil, nullValue: r.NullValue,
		})
	}
	if err := it.Err(); err != nil {
		t.Fatalf("walk: %v", err)
	}
	return h, out
}

// variedBatch is a batch of n records with null keys every 5th, tombstones
// every 7th, headers every 3rd and timestamps that go back and forth.
func variedBatch(n int, firstTS int64) []byte {
	recs := make([]testRecord, n)
	maxTS := firstTS
	for i := range recs {
		r := testRecord{tsDelta: int64((i * 37) % 11), key: fmt.Appendf(nil, "k%d", i%4), value: fmt.Appendf(nil, "value-%d-%s", i, bytes.Repeat([]byte("x"), i%50))}
		if i%5 == 4 {
			r.key = nil
		}
		if i%7 == 6 {
			r.value = nil
		}
		if i%3 == 0 {
			r.headers = [][2][]byte{{[]byte("h"), []byte("hv")}, {[]byte("n"), nil}}
		}
		recs[i] = r
		maxTS = max(maxTS, firstTS+r.tsDelta)
	}
	return appendRecordsBatch(firstTS, maxTS, recs)
}

// codecCases returns batch under every codec, compressed by franz-go's
// producer compressor.
func codecCases(t testing.TB, plain []byte) map[string][]byte {
	cases := map[string][]byte{"none": plain}
	for _, c := range realCodecs {
		cases[c.name] = compressWith(t, c.kgo, c.codec, plain)
	}
	cases["snappy-xerial"] = withRecords(plain, CompressionSnappy, xerialFrame(plain[BatchHeaderSize:], 64))
	return cases
}

// The iterator yields what the producer wrote, for every codec.
func TestRecordIterAllCodecs(t *testing.T) {
	plain := variedBatch(40, 1_700_000_000_000)
	_, want := collect(t, plain, 500)
	if len(want) != 40 {
		t.Fatalf("walked %d records of 40", len(want))
	}
	for i, r := range want {
		if r.offset != 500+int64(i) || r.nullKey != (i%5 == 4) || r.nullValue != (i%7 == 6) {
			t.Fatalf("record %d: %+v", i, r)
		}
		if !r.nullKey && r.key != fmt.Sprintf("k%d", i%4) {
			t.Fatalf("record %d key %q", i, r.key)
		}
	}
	for name, b := range codecCases(t, plain) {
		t.Run(name, func(t *testing.T) {
			_, got := collect(t, b, 500)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("records differ from the uncompressed walk:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// LogAppendTime batches carry the append time in maxTimestamp; every
// record has it, whatever its delta says.
func TestRecordIterLogAppendTime(t *testing.T) {
	b := appendRecordsBatch(100, 5000, []testRecord{{tsDelta: 1, key: []byte("a")}, {tsDelta: 2, key: []byte("b")}})
	binary.BigEndian.PutUint16(b[offAttributes:], attrTimestampType)
	fixBatch(b)
	_, recs := collect(t, b, 0)
	for _, r := range recs {
		if r.ts != 5000 {
			t.Fatalf("LogAppendTime record timestamp %d, want 5000", r.ts)
		}
	}
	if recs[0].createTS != 101 || recs[1].createTS != 102 {
		t.Fatalf("create timestamps %d, %d", recs[0].createTS, recs[1].createTS)
	}
}

// rebuild keeps the records of src whose index keep selects, at base,
// with lastOffsetDelta lod.
func rebuild(t testing.TB, bb *BatchBuilder, src []byte, srcBase, base int64, lod int32, keep func(i int) bool) []byte {
	t.Helper()
	h, err := ValidateCompactedBatch(src)
	if err != nil {
		t.Fatal(err)
	}
	var it RecordIter
	defer it.Close()
	if err := it.Reset(src, h, 1<<20); err != nil {
		t.Fatal(err)
	}
	bb.Reset(h, base)
	for i := 0; it.Next(); i++ {
		if keep(i) {
			bb.Add(it.Record(), srcBase+int64(it.Record().OffsetDelta))
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	out, err := bb.AppendTo(nil, lod)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A rebuilt batch keeps the chosen records at their absolute offsets, with
// the source's header fields and codec, timestamps recomputed from what it
// kept, and a CRC the validator accepts; whole batches rebuilt at their own
// base are valid as produced, too.
func TestBatchBuilderSubset(t *testing.T) {
	plain := variedBatch(30, 1_000)
	binary.BigEndian.PutUint64(plain[offProducerID:], 77)
	binary.BigEndian.PutUint16(plain[offProducerEpoch:], 3)
	binary.BigEndian.PutUint32(plain[offBaseSequence:], 900)
	binary.BigEndian.PutUint32(plain[offLeaderEpoch:], 5)
	binary.BigEndian.PutUint16(plain[offAttributes:], attrTransactional)
	fixBatch(plain)
	_, all := collect(t, plain, 1000)
	var bb BatchBuilder
	for name, src := range codecCases(t, plain) {
		t.Run(name, func(t *testing.T) {
			srcH := mustValidate(t, src)
			keep := func(i int) bool { return i%3 == 1 }
			// Starts 10 offsets early (emptied batches folded in) and
			// spans 5 past the source (emptied batches after).
			out := rebuild(t, &bb, src, 1000, 990, 44, keep)
			h, got := collect(t, out, 990)
			var want []rebuildRecord
			for i, r := range all {
				if keep(i) {
					want = append(want, r)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("kept records:\n got %v\nwant %v", got, want)
			}
			if h.BaseOffset != 990 || h.LastOffsetDelta != 44 || int(h.NumRecords) != len(want) {
				t.Fatalf("header base %d lod %d n %d", h.BaseOffset, h.LastOffsetDelta, h.NumRecords)
			}
			minTS, maxTS := want[0].createTS, want[0].createTS
			for _, r := range want {
				maxTS = max(maxTS, r.createTS)
			}
			if h.FirstTimestamp != minTS || h.MaxTimestamp != maxTS {
				t.Fatalf("timestamps first %d max %d, want %d %d", h.FirstTimestamp, h.MaxTimestamp, minTS, maxTS)
			}
			if h.Attributes != srcH.Attributes || h.ProducerID != 77 || h.ProducerEpoch != 3 || h.BaseSequence != 900 || h.PartitionLeaderEpoch != 5 {
				t.Fatalf("header fields not carried: %+v from %+v", h, srcH)
			}

			// Everything kept, same base and span: a batch a producer
			// could have sent, records and all.
			whole := rebuild(t, &bb, src, 1000, 1000, srcH.LastOffsetDelta, func(int) bool { return true })
			wh := mustValidate(t, whole)
			if err := ValidateRecords(whole, wh, 1<<20); err != nil {
				t.Fatalf("whole rebuild: %v", err)
			}
			if _, again := collect(t, whole, 1000); fmt.Sprint(again) != fmt.Sprint(all) {
				t.Fatalf("whole rebuild changed records")
			}
		})
	}
}

// A batch may end with no records: it keeps its span and the source's
// timestamps, has no records section and no codec, and walks to nothing.
func TestBatchBuilderEmpty(t *testing.T) {
	plain := variedBatch(10, 7_000)
	srcH := mustValidate(t, plain)
	var bb BatchBuilder
	for name, src := range codecCases(t, plain) {
		t.Run(name, func(t *testing.T) {
			out := rebuild(t, &bb, src, 0, 0, 25, func(int) bool { return false })
			h, recs := collect(t, out, 0)
			if len(recs) != 0 || h.NumRecords != 0 || len(out) != BatchHeaderSize {
				t.Fatalf("empty batch: %d records, header count %d, %d bytes", len(recs), h.NumRecords, len(out))
			}
			if h.LastOffsetDelta != 25 || h.Compression() != CompressionNone ||
				h.FirstTimestamp != srcH.FirstTimestamp || h.MaxTimestamp != srcH.MaxTimestamp {
				t.Fatalf("empty batch header %+v", h)
			}
			if _, err := ValidateBatch(out); err == nil {
				t.Fatal("ValidateBatch (the produce check) accepted an empty batch")
			}
		})
	}
}

// LogAppendTime: maxTimestamp stays the append time, record deltas are
// re-based on the first kept record's create time.
func TestBatchBuilderLogAppendTime(t *testing.T) {
	src := appendRecordsBatch(100, 5000, []testRecord{{tsDelta: 1, key: []byte("a")}, {tsDelta: 9, key: []byte("b")}, {tsDelta: 4, key: []byte("c")}})
	binary.BigEndian.PutUint16(src[offAttributes:], attrTimestampType)
	fixBatch(src)
	var bb BatchBuilder
	out := rebuild(t, &bb, src, 0, 0, 2, func(i int) bool { return i > 0 })
	h, recs := collect(t, out, 0)
	if h.MaxTimestamp != 5000 || h.FirstTimestamp != 109 || h.TimestampType() != 1 {
		t.Fatalf("header first %d max %d type %d", h.FirstTimestamp, h.MaxTimestamp, h.TimestampType())
	}
	if len(recs) != 2 || recs[0].createTS != 109 || recs[1].createTS != 104 || recs[1].ts != 5000 {
		t.Fatalf("records %+v", recs)
	}
}

// SetLastOffsetDelta widens a finished batch and keeps its CRC right.
func TestSetLastOffsetDelta(t *testing.T) {
	var bb BatchBuilder
	out := rebuild(t, &bb, variedBatch(5, 0), 0, 0, 4, func(i int) bool { return i != 4 })
	SetLastOffsetDelta(out, 99)
	h, recs := collect(t, out, 0)
	if h.LastOffsetDelta != 99 || len(recs) != 4 {
		t.Fatalf("lod %d, %d records", h.LastOffsetDelta, len(recs))
	}
}

// The walk refuses records that break the batch's promises, compacted or
// not: deltas that do not increase, that pass lastOffsetDelta, a count that
// does not match.
func TestRecordIterRefuses(t *testing.T) {
	rec := func(d int64) testRecord { return testRecord{offDelta: d, key: []byte("k"), value: []byte("v")} }
	build := func(lod int32, recs ...testRecord) []byte {
		b := appendTestBatch(nil, batchOpts{records: 1})[:BatchHeaderSize]
		binary.BigEndian.PutUint32(b[offRecordCount:], uint32(len(recs)))
		binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lod))
		for _, r := range recs {
			b = append(b, encodeRecord(r)...)
		}
		fixBatch(b)
		return b
	}
	good := build(9, rec(0), rec(4), rec(9))
	if _, recs := collect(t, good, 0); len(recs) != 3 || recs[1].offset != 4 {
		t.Fatalf("gapped batch: %+v", recs)
	}
	for name, b := range map[string][]byte{
		"repeated delta":   build(9, rec(0), rec(4), rec(4)),
		"decreasing delta": build(9, rec(5), rec(4)),
		"past lod":         build(3, rec(0), rec(4)),
		"negative delta":   build(3, rec(-1)),
		"fewer than count": func() []byte {
			b := build(9, rec(0), rec(1))
			b = b[:len(b)-len(encodeRecord(rec(1)))]
			fixBatch(b)
			return b
		}(),
		"trailing bytes": func() []byte { b := append(build(9, rec(0)), 0); fixBatch(b); return b }(),
		"long record":    func() []byte { b := build(9, rec(0)); b[BatchHeaderSize] += 2; b = append(b, 0); fixBatch(b); return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			h, err := ValidateCompactedBatch(b)
			if err != nil {
				return // refused at the header: fine too
			}
			var it RecordIter
			defer it.Close()
			err = it.Reset(b, h, 1<<20)
			if err == nil {
				for it.Next() {
				}
				err = it.Err()
			}
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("walk: %v, want ErrInvalidRecord", err)
			}
		})
	}
	// The header check: more records than the span can hold.
	b := build(0, rec(0), rec(1))
	if _, err := ValidateCompactedBatch(b); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("2 records in a span of 1: %v", err)
	}
}

// A compressed record longer than the decompression bound is refused
// before its buffer is allocated.
func TestRecordIterBound(t *testing.T) {
	plain := appendRecordsBatch(0, 0, []testRecord{{key: []byte("k"), value: bytes.Repeat([]byte("z"), 10_000)}})
	for _, c := range realCodecs {
		b := compressWith(t, c.kgo, c.codec, plain)
		h := mustValidate(t, b)
		var it RecordIter
		err := it.Reset(b, h, 1000)
		if err == nil {
			for it.Next() {
			}
			err = it.Err()
		}
		it.Close()
		if !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: %v, want ErrInvalidRecord", c.name, err)
		}
	}
}

// Walking and rebuilding an uncompressed batch allocates nothing once the
// builder's buffers have grown.
func TestRebuildAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool is randomised under -race")
	}
	src := variedBatch(100, 0)
	h := mustValidate(t, src)
	var it RecordIter
	var bb BatchBuilder
	dst := make([]byte, 0, 2*len(src))
	run := func() {
		if err := it.Reset(src, h, 1<<20); err != nil {
			t.Fatal(err)
		}
		bb.Reset(h, 0)
		for it.Next() {
			if r := it.Record(); r.OffsetDelta%2 == 0 {
				bb.Add(r, int64(r.OffsetDelta))
			}
		}
		var err error
		if dst, err = bb.AppendTo(dst[:0], h.LastOffsetDelta); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if n := testing.AllocsPerRun(20, run); n != 0 {
		t.Fatalf("%.1f allocations per rebuild, want 0", n)
	}
	lz := compressWith(t, realCodecs[2].kgo, realCodecs[2].codec, src)
	h = mustValidate(t, lz)
	src = lz
	run()
	if n := testing.AllocsPerRun(20, run); n > 2 {
		t.Fatalf("%.1f allocations per lz4 rebuild", n)
	}
}

// FuzzRebuild checks that the iterator never panics on any bytes, that its
// errors are in the ErrInvalidRecord class, and that whatever it walks
// rebuilds, under the same codec, into a batch that walks to the same
// records: a rebuild loses nothing it keeps.
func FuzzRebuild(f *testing.F) {
	plain := variedBatch(12, 50)
	for _, b := range codecCases(f, plain) {
		f.Add(b, false, uint16(0xffff))
	}
	f.Add(appendRecordsBatch(10, 10, []testRecord{{key: nil, value: nil}}), false, uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, fixCRC bool, mask uint16) {
		if fixCRC && len(b) >= BatchHeaderSize {
			fixBatch(b)
		}
		h, err := ValidateCompactedBatch(b)
		if err != nil {
			return
		}
		var it RecordIter
		defer it.Close()
		var recs []rebuildRecord
		var bb BatchBuilder
		bb.Reset(h, 1)
		if err = it.Reset(b, h, 1<<20); err == nil {
			for i := 0; it.Next(); i++ {
				r := it.Record()
				if mask&(1<<(i%16)) != 0 {
					recs = append(recs, rebuildRecord{offset: 1 + int64(r.OffsetDelta), ts: r.Timestamp, createTS: r.CreateTimestamp,
						key: string(r.Key), value: string(r.Value), nullKey: r.Key == nil, nullValue: r.NullValue})
					bb.Add(r, 1+int64(r.OffsetDelta))
				}
			}
			err = it.Err()
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error outside the ErrInvalidRecord class: %v", err)
			}
			return
		}
		out, err := bb.AppendTo(nil, h.LastOffsetDelta)
		if err != nil {
			t.Fatalf("AppendTo: %v", err)
		}
		oh, got := collect(t, out, 1)
		if h.TimestampType() == 1 {
			for i := range recs {
				recs[i].ts = oh.MaxTimestamp // the append time stays the source's
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(recs) {
			t.Fatalf("rebuilt records differ:\n got %v\nwant %v", got, recs)
		}
	})
}

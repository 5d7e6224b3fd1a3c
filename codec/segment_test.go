package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// addedChunk is what a test remembers about one Add.
type addedChunk struct {
	topic     [16]byte
	partition int32
	batch     []byte
	h         BatchHeader
}

// buildSegment adds n batches spread over the given partitions in a random
// (seeded) interleaving and finishes the segment.
func buildSegment(t testing.TB, seed uint64, id [16]byte, keys []ChunkMeta, n int) (obj []byte, metas []ChunkMeta, added []addedChunk) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	b := NewSegmentBuilder(id)
	seq := map[int]int32{}
	for i := range n {
		k := rng.IntN(len(keys))
		batch := appendTestBatch(nil, batchOpts{
			records: 1 + rng.IntN(20), valueSize: rng.IntN(64),
			firstTS: 1_700_000_000_000 + int64(i), producerID: int64(k), producerEpoch: 1, baseSeq: seq[k],
		})
		h, err := ValidateBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		seq[k] += h.NumRecords
		if got := b.Add(keys[k].TopicID, keys[k].Partition, batch, h); got != i {
			t.Fatalf("Add returned %d for chunk %d", got, i)
		}
		added = append(added, addedChunk{keys[k].TopicID, keys[k].Partition, batch, h})
	}
	if b.Len() != n {
		t.Fatalf("Len() = %d, added %d", b.Len(), n)
	}
	size := b.Size()
	obj, metas = b.Finish()
	if len(obj) != size || cap(obj) != size {
		t.Fatalf("object len %d cap %d, Size() said %d", len(obj), cap(obj), size)
	}
	return obj, metas, added
}

// testKeys are partitions of three topics, in deliberately unsorted order.
var testKeys = []ChunkMeta{
	{TopicID: topic(9, 1), Partition: 0},
	{TopicID: topic(1, 2), Partition: 3},
	{TopicID: topic(1, 2), Partition: -1}, // sorts before 3: signed order
	{TopicID: topic(1, 2), Partition: 1},
	{TopicID: topic(5, 5), Partition: 1 << 30},
	{TopicID: topic(1, 1), Partition: 0},
}

func TestSegmentRoundTrip(t *testing.T) {
	id := topic(0xaa, 0x55)
	obj, metas, added := buildSegment(t, 1, id, testKeys, 200)

	// metas are indexed by arrival and point at the unchanged input bytes.
	if len(metas) != len(added) {
		t.Fatalf("%d metas for %d chunks", len(metas), len(added))
	}
	for i, m := range metas {
		a := added[i]
		want := ChunkMeta{
			TopicID: a.topic, Partition: a.partition, Start: m.Start, Length: int32(len(a.batch)),
			RecordCount: a.h.NumRecords, FirstTimestamp: a.h.FirstTimestamp, MaxTimestamp: a.h.MaxTimestamp,
			ProducerID: a.h.ProducerID, ProducerEpoch: a.h.ProducerEpoch, BaseSequence: a.h.BaseSequence,
		}
		if m != want {
			t.Fatalf("meta %d:\n got %+v\nwant %+v", i, m, want)
		}
		if !bytes.Equal(obj[m.Start:m.End()], a.batch) {
			t.Fatalf("chunk %d bytes differ from its batch", i)
		}
	}

	// Layout: grouped by ascending (topic, partition), each partition one
	// contiguous range, arrival order inside it.
	layout := slices.Clone(metas)
	slices.SortFunc(layout, func(a, b ChunkMeta) int { return int(a.Start - b.Start) })
	pos := int64(SegmentHeaderSize)
	for i, m := range layout {
		if m.Start != pos {
			t.Fatalf("chunk %d in layout starts at %d, expected %d", i, m.Start, pos)
		}
		pos = m.End()
		if i > 0 && compareKey(&layout[i-1], &layout[i]) > 0 {
			t.Fatalf("chunk %d out of key order", i)
		}
	}
	for _, k := range testKeys {
		var arrivalStarts []int64
		for i, a := range added {
			if a.topic == k.TopicID && a.partition == k.Partition {
				arrivalStarts = append(arrivalStarts, metas[i].Start)
			}
		}
		if !slices.IsSorted(arrivalStarts) {
			t.Fatalf("partition %x/%d: arrival order not kept: %v", k.TopicID[0], k.Partition, arrivalStarts)
		}
	}

	// Reading the whole object gives back the same metas in layout order.
	gotID, chunks, err := OpenSegment(obj)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id {
		t.Fatalf("id %x, want %x", gotID, id)
	}
	if !slices.Equal(chunks, layout) {
		t.Fatalf("OpenSegment chunks differ from Finish metas")
	}

	// So does reading only the tail, as a reader with one ranged GET does.
	tr, err := ParseTrailer(obj[len(obj)-SegmentTrailerSize:])
	if err != nil {
		t.Fatal(err)
	}
	if tr.ObjectSize() != int64(len(obj)) || tr.ChunkCount != int32(len(metas)) || tr.Version != SegmentVersion {
		t.Fatalf("trailer %+v for an object of %d bytes", tr, len(obj))
	}
	tail := obj[int64(len(obj))-tr.TailSize():]
	tr2, err := ParseTrailer(tail) // a longer suffix works as well
	if err != nil || tr2 != tr {
		t.Fatalf("ParseTrailer(tail) = %+v, %v", tr2, err)
	}
	idx, err := ParseIndex(tail[:tr.IndexLength], tr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx, layout) {
		t.Fatalf("ParseIndex chunks differ from Finish metas")
	}

	// FindPartition finds each partition's one contiguous range.
	for _, k := range testKeys {
		first, end := FindPartition(chunks, k.TopicID, k.Partition)
		var want []ChunkMeta
		for _, m := range layout {
			if m.TopicID == k.TopicID && m.Partition == k.Partition {
				want = append(want, m)
			}
		}
		if !slices.Equal(chunks[first:end], want) {
			t.Fatalf("FindPartition(%x/%d) = [%d,%d)", k.TopicID[0], k.Partition, first, end)
		}
	}
	if first, end := FindPartition(chunks, topic(1, 2), 2); first != end {
		t.Fatalf("FindPartition of an absent partition = [%d,%d)", first, end)
	}
	if first, end := FindPartition(chunks, topic(0xff, 0xff), 0); first != end || first != len(chunks) {
		t.Fatalf("FindPartition past the last key = [%d,%d)", first, end)
	}
}

func TestSegmentEmpty(t *testing.T) {
	b := NewSegmentBuilder(topic(1, 1))
	if b.Size() != SegmentHeaderSize+SegmentTrailerSize {
		t.Fatalf("empty Size() = %d", b.Size())
	}
	obj, metas := b.Finish()
	if len(metas) != 0 || len(obj) != SegmentHeaderSize+SegmentTrailerSize {
		t.Fatalf("empty segment: %d bytes, %d metas", len(obj), len(metas))
	}
	id, chunks, err := OpenSegment(obj)
	if err != nil || id != topic(1, 1) || len(chunks) != 0 {
		t.Fatalf("OpenSegment(empty) = %x, %v, %v", id, chunks, err)
	}
}

func TestSegmentBuilderReuse(t *testing.T) {
	// A reused builder must produce exactly what a fresh one does.
	want, wantMetas, added := buildSegment(t, 7, topic(2, 2), testKeys, 50)
	b := NewSegmentBuilder(topic(3, 3))
	for range 3 {
		for _, a := range added[:10] {
			b.Add(a.topic, a.partition, a.batch, a.h)
		}
		b.Finish()
		b.Reset(topic(2, 2))
		for _, a := range added {
			b.Add(a.topic, a.partition, a.batch, a.h)
		}
		got, gotMetas := b.Finish()
		if !bytes.Equal(got, want) || !slices.Equal(gotMetas, wantMetas) {
			t.Fatal("reused builder laid out a different segment")
		}
		b.Reset(topic(3, 3))
	}
	for _, c := range b.chunks[:cap(b.chunks)] {
		if c.batch != nil {
			t.Fatal("a reset builder still references a batch")
		}
	}
}

func TestSegmentBuilderMisuse(t *testing.T) {
	batch := appendTestBatch(nil, batchOpts{records: 1})
	h, _ := ValidateBatch(batch)
	for name, f := range map[string]func(b *SegmentBuilder){
		"Add after Finish": func(b *SegmentBuilder) { b.Finish(); b.Add(topic(1, 1), 0, batch, h) },
		"Finish twice":     func(b *SegmentBuilder) { b.Finish(); b.Finish() },
		"Add wrong header": func(b *SegmentBuilder) { b.Add(topic(1, 1), 0, batch[:len(batch)-1], h) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if r, _ := recover().(string); len(r) < 4 || r[:4] != "BUG:" {
					t.Fatalf("recovered %q, want a BUG: panic", r)
				}
			}()
			f(NewSegmentBuilder(topic(1, 1)))
		})
	}
}

// TestSegmentFinishAllocs pins that laying out a segment allocates the
// object and the metas slice and nothing else, however many chunks.
func TestSegmentFinishAllocs(t *testing.T) {
	batch := appendTestBatch(nil, batchOpts{records: 2, valueSize: 10})
	h, _ := ValidateBatch(batch)
	for _, n := range []int{1, 100, 5000} {
		b := NewSegmentBuilder(topic(1, 1))
		fill := func() {
			b.Reset(topic(1, 1))
			for i := range n {
				b.Add(testKeys[i%len(testKeys)].TopicID, testKeys[i%len(testKeys)].Partition, batch, h)
			}
		}
		fill()
		b.Finish() // warm up: the builder's own slices grow once
		allocs := testing.AllocsPerRun(20, func() {
			fill()
			b.Finish()
		})
		if allocs != 2 {
			t.Errorf("%d chunks: %v allocations per Reset+Add+Finish, want 2", n, allocs)
		}
	}
}

func TestOpenSegmentCorrupt(t *testing.T) {
	good, metas, _ := buildSegment(t, 3, topic(4, 4), testKeys, 12)
	tr, err := ParseTrailer(good)
	if err != nil {
		t.Fatal(err)
	}
	be := binary.BigEndian
	ts := len(good) - SegmentTrailerSize // trailer start
	io := int(tr.IndexOffset)            // index start
	entry := func(i int) int { return io + i*SegmentIndexEntrySize }
	layout := slices.Clone(metas)
	slices.SortFunc(layout, func(a, b ChunkMeta) int { return int(a.Start - b.Start) })

	for _, tc := range []struct {
		name   string
		edit   func(b []byte) []byte
		reseal bool // recompute index and trailer CRCs so a deeper check fires
		want   error
	}{
		{"empty", func(b []byte) []byte { return nil }, false, ErrCorrupt},
		{"truncated by one", func(b []byte) []byte { return b[:len(b)-1] }, false, ErrCorrupt},
		{"truncated at index", func(b []byte) []byte { return b[:io] }, false, ErrCorrupt},
		{"front cut", func(b []byte) []byte { return b[1:] }, false, ErrCorrupt},
		{"extra byte", func(b []byte) []byte { return append(b, 0) }, false, ErrCorrupt},
		{"extra byte before trailer", func(b []byte) []byte { return slices.Insert(b, ts, 0) }, false, ErrCorrupt},
		{"trailer magic", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, false, ErrCorrupt},
		{"trailer version", func(b []byte) []byte { be.PutUint32(b[ts+28:], 2); return b }, false, ErrUnsupportedVersion},
		{"trailer crc", func(b []byte) []byte { b[ts+24] ^= 1; return b }, false, ErrCorrupt},
		{"trailer index offset", func(b []byte) []byte { b[ts+7] ^= 1; return b }, false, ErrCorrupt},
		{"index offset resealed", func(b []byte) []byte { be.PutUint64(b[ts:], uint64(io-1)); return b }, true, ErrCorrupt},
		{"index offset huge", func(b []byte) []byte { be.PutUint64(b[ts:], 1<<63-10); return b }, true, ErrCorrupt},
		{"index offset inside header", func(b []byte) []byte { be.PutUint64(b[ts:], 3); return b }, true, ErrCorrupt},
		{"chunk count", func(b []byte) []byte { be.PutUint32(b[ts+12:], uint32(len(metas)+1)); return b }, true, ErrCorrupt},
		{"chunk count huge", func(b []byte) []byte { be.PutUint32(b[ts+12:], 1<<31); return b }, true, ErrCorrupt},
		{"index length", func(b []byte) []byte { be.PutUint32(b[ts+8:], 0xffffffff); return b }, true, ErrCorrupt},
		{"index crc", func(b []byte) []byte { b[ts+16] ^= 1; resealTrailer(b); return b }, false, ErrCorrupt},
		{"index byte", func(b []byte) []byte { b[entry(3)+40] ^= 1; return b }, false, ErrCorrupt},
		{"header magic", func(b []byte) []byte { b[0] ^= 1; return b }, false, ErrCorrupt},
		{"header version", func(b []byte) []byte { b[7] = 2; return b }, false, ErrCorrupt},
		{"header id", func(b []byte) []byte { b[20] ^= 1; return b }, false, ErrCorrupt},
		{"header crc", func(b []byte) []byte { b[ts+20] ^= 1; return b }, true, ErrCorrupt},
		{"chunk start outside body", func(b []byte) []byte { be.PutUint64(b[entry(0)+20:], uint64(len(b))); return b }, true, ErrCorrupt},
		{"chunk start in header", func(b []byte) []byte { be.PutUint64(b[entry(0)+20:], 0); return b }, true, ErrCorrupt},
		{"chunk start overlaps previous", func(b []byte) []byte {
			be.PutUint64(b[entry(2)+20:], uint64(layout[2].Start-1))
			return b
		}, true, ErrCorrupt},
		{"chunk gap", func(b []byte) []byte {
			be.PutUint64(b[entry(2)+20:], uint64(layout[2].Start+1))
			return b
		}, true, ErrCorrupt},
		{"last chunk past index", func(b []byte) []byte {
			n := len(metas) - 1
			be.PutUint32(b[entry(n)+28:], uint32(layout[n].Length+1))
			return b
		}, true, ErrCorrupt},
		{"last chunk short of index", func(b []byte) []byte {
			n := len(metas) - 1
			be.PutUint32(b[entry(n)+28:], uint32(layout[n].Length-1))
			return b
		}, true, ErrCorrupt},
		{"chunk length negative", func(b []byte) []byte { be.PutUint32(b[entry(1)+28:], 0xfffffff0); return b }, true, ErrCorrupt},
		{"chunk shorter than a batch header", func(b []byte) []byte { be.PutUint32(b[entry(1)+28:], 10); return b }, true, ErrCorrupt},
		{"record count zero", func(b []byte) []byte { be.PutUint32(b[entry(1)+32:], 0); return b }, true, ErrCorrupt},
		{"record count disagrees", func(b []byte) []byte { be.PutUint32(b[entry(1)+32:], uint32(layout[1].RecordCount+1)); return b }, true, ErrCorrupt},
		{"timestamp disagrees", func(b []byte) []byte { b[entry(1)+43] ^= 1; return b }, true, ErrCorrupt},
		{"producer epoch disagrees", func(b []byte) []byte { b[entry(1)+61] ^= 1; return b }, true, ErrCorrupt},
		{"keys out of order", func(b []byte) []byte { b[entry(len(metas)-1)] = 0; return b }, true, ErrCorrupt},
		{"batch magic in body", func(b []byte) []byte { b[layout[2].Start+offMagic] = 1; return b }, false, ErrCorrupt},
		{"batch length in body", func(b []byte) []byte { b[layout[2].Start+offBatchLength+3] ^= 1; return b }, false, ErrCorrupt},
		{"batch producer id in body", func(b []byte) []byte { b[layout[2].Start+offProducerID+7] ^= 1; return b }, false, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(good))
			if tc.reseal {
				resealSegment(b)
			}
			id, chunks, err := OpenSegment(b)
			t.Log(err)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if id != ([16]byte{}) || chunks != nil {
				t.Fatalf("returned id %x and %d chunks with an error", id, len(chunks))
			}
		})
	}
}

// TestOpenSegmentEveryPrefix feeds every prefix and every suffix of a
// segment to the readers: a short read must be an error, never a panic.
func TestOpenSegmentEveryPrefix(t *testing.T) {
	obj, _, _ := buildSegment(t, 5, topic(6, 6), testKeys, 8)
	for n := 0; n < len(obj); n++ {
		if _, _, err := OpenSegment(obj[:n:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("OpenSegment(%d of %d bytes): %v", n, len(obj), err)
		}
		if _, _, err := OpenSegment(obj[n+1:]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("OpenSegment(last %d of %d bytes): %v", len(obj)-n-1, len(obj), err)
		}
		tail := obj[len(obj)-n:]
		if tr, err := ParseTrailer(tail); err == nil {
			if n < SegmentTrailerSize {
				t.Fatalf("ParseTrailer(%d bytes) succeeded", n)
			}
			if int64(n) >= tr.TailSize() {
				if _, err := ParseIndex(tail[int64(n)-tr.TailSize():][:tr.IndexLength], tr); err != nil {
					t.Fatalf("ParseIndex from a %d-byte tail: %v", n, err)
				}
			}
		}
	}
}

// TestOpenSegmentEveryByteFlipped flips each bit position of a small
// segment once. Outside the body every byte is covered by a checksum or an
// exact comparison, so each flip must be caught; in the body only the batch
// header fields the index repeats are, the rest is the batch CRC's job
// (ValidateBatch), so there the test asks only for no panic.
func TestOpenSegmentEveryByteFlipped(t *testing.T) {
	obj, _, _ := buildSegment(t, 9, topic(7, 7), testKeys[:3], 4)
	tr, _ := ParseTrailer(obj)
	b := bytes.Clone(obj)
	for i := range b {
		for bit := range 8 {
			b[i] ^= 1 << bit
			_, _, err := OpenSegment(b)
			inBody := int64(i) >= SegmentHeaderSize && int64(i) < tr.IndexOffset
			if !inBody && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip of bit %d at %d not detected: %v", bit, i, err)
			}
			b[i] ^= 1 << bit
		}
	}
}

// TestFinishPartsIsFinish: the parts of FinishParts concatenate to exactly
// the object Finish lays out, with the same metas, for batches that are
// separate allocations and for batches carved one after another out of
// one buffer (which FinishParts joins into one part where the body keeps
// them adjacent, and must not join where it does not).
func TestFinishPartsIsFinish(t *testing.T) {
	for _, carve := range []bool{false, true} {
		for seed := range uint64(20) {
			want, wantMetas, added := buildSegment(t, seed, topic(4, 4), testKeys, 1+int(seed)*13)
			if carve {
				var all []byte
				for _, a := range added {
					all = append(all, a.batch...)
				}
				off := 0
				for i := range added {
					n := len(added[i].batch)
					added[i].batch = all[off : off+n]
					off += n
				}
			}
			b := NewSegmentBuilder(topic(4, 4))
			for _, a := range added {
				b.Add(a.topic, a.partition, a.batch, a.h)
			}
			size := b.Size()
			parts, gotSize, gotMetas := b.FinishParts()
			got := bytes.Join(parts, nil)
			if gotSize != size || len(got) != size || !bytes.Equal(got, want) || !slices.Equal(gotMetas, wantMetas) {
				t.Fatalf("carve=%v seed %d: parts (%d bytes in %d parts, size %d) differ from Finish (%d bytes)", carve, seed, len(got), len(parts), gotSize, len(want))
			}
			if !carve && len(parts) != len(added)+2 {
				t.Fatalf("seed %d: %d parts for %d separate batches, want header, each batch, index", seed, len(parts), len(added))
			}
			if carve && len(added) > 1 && len(parts) >= len(added)+2 && len(testKeys) > 1 {
				// With batches carved in arrival order, runs of one
				// partition that arrived together must have been joined.
				joined := false
				for i := 1; i < len(added); i++ {
					if added[i].topic == added[i-1].topic && added[i].partition == added[i-1].partition {
						joined = true
					}
				}
				if joined {
					t.Fatalf("seed %d: %d parts for %d carved batches: adjacent batches were not joined", seed, len(parts), len(added))
				}
			}
		}
	}
}

// TestFinishOverReusedMemory: Finish lays segments out into memory it does
// not clear (internal/uninit). With the heap's free memory painted 0xAA
// first, each object must still equal the concatenation of FinishParts,
// which is built without it: a byte Finish left unwritten would show.
func TestFinishOverReusedMemory(t *testing.T) {
	for seed := range uint64(10) {
		_, _, added := buildSegment(t, seed, topic(4, 4), testKeys, 1+int(seed)*150)
		parts := NewSegmentBuilder(topic(4, 4))
		whole := NewSegmentBuilder(topic(4, 4))
		for _, a := range added {
			parts.Add(a.topic, a.partition, a.batch, a.h)
			whole.Add(a.topic, a.partition, a.batch, a.h)
		}
		size := whole.Size()
		// Paint buffers of about the object's size, then free them.
		for k := range 8 {
			p := make([]byte, size+k*512)
			for i := range p {
				p[i] = 0xAA
			}
			runtime.KeepAlive(p)
		}
		runtime.GC()
		got, _ := whole.Finish()
		ps, _, _ := parts.FinishParts()
		if want := bytes.Join(ps, nil); !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Fatalf("seed %d: Finish's %d bytes differ from FinishParts' %d from byte %d", seed, len(got), len(want), i)
		}
		if _, _, err := OpenSegment(got); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

package codec

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"sluice.dev/internal/hugepage"
	"sluice.dev/internal/uninit"
)

// A segment is one object in the bucket holding the record batches
// ("chunks") that one agent accepted for all its partitions during one flush
// interval. docs/segment-format.md is the full description; the layout, all
// integers big-endian:
//
//	offset                 size  field
//	---------------------  ----  ------------------------------------------
//	0                      4     magic "SLSG"                        } header
//	4                      4     format version (1)                  } 24 B,
//	8                      16    segment id                          } CRC'd
//	24                     ...   body: the chunks, raw v2 batches exactly as
//	                             produced, grouped by (topic id, partition)
//	                             ascending, arrival order within a partition,
//	                             no gaps
//	indexOffset            66×n  index: one entry per chunk, in body order
//	  +0                   16    topic id
//	  +16                  4     partition
//	  +20                  8     start (absolute byte position in the object)
//	  +28                  4     length
//	  +32                  4     record count (lastOffsetDelta+1)
//	  +36                  8     first timestamp
//	  +44                  8     max timestamp
//	  +52                  8     producer id
//	  +60                  2     producer epoch
//	  +62                  4     base sequence
//	size-36                36    trailer:
//	  +0                   8     index offset
//	  +8                   4     index length (= 66 × chunk count)
//	  +12                  4     chunk count
//	  +16                  4     CRC-32C of the index
//	  +20                  4     CRC-32C of the header
//	  +24                  4     CRC-32C of trailer bytes [0, 24)
//	  +28                  4     format version (1)
//	  +32                  4     magic "SLSG"
//
// Why the index is at the tail: the writer learns every chunk's position only
// as it lays out the body, and it should not have to hold the body twice or
// rewrite the front of the object. Readers benefit too: one suffix-range GET
// (bytes=-N) of the last few KiB returns trailer and index together, which is
// all the metadata, without knowing the object's size. The version and magic
// are the very last bytes, so a reader can tell a future, larger trailer
// apart before interpreting anything else.
//
// What each checksum covers: the header CRC covers the 24 header bytes (the
// id), the index CRC the whole index, the trailer CRC the trailer's variable
// fields (version and magic are compared exactly instead). Chunk bytes are
// covered by each batch's own CRC-32C, from its attributes to its end, which
// travels with the batch to the consumer; the uncovered baseOffset and
// partitionLeaderEpoch are rewritten on fetch anyway, and the batchLength
// and magic are cross-checked against the index by OpenSegment.

const (
	// SegmentVersion is the format version this package writes and the only
	// one it reads.
	SegmentVersion = 1
	// SegmentHeaderSize is the size of the header before the first chunk.
	SegmentHeaderSize = 24
	// SegmentIndexEntrySize is the size of one chunk's index entry.
	SegmentIndexEntrySize = 66
	// SegmentTrailerSize is the size of the fixed trailer at the end of every
	// segment.
	SegmentTrailerSize = 36
)

// segmentMagic opens the header and closes the trailer.
const segmentMagic = "SLSG"

// ErrUnsupportedVersion is returned for a segment whose magic is right but
// whose format version this code does not know, e.g. one written by a newer
// agent. It wraps ErrCorrupt (the object is unusable here) but can be told
// apart from damage with errors.Is.
var ErrUnsupportedVersion = fmt.Errorf("%w: unsupported segment format version", ErrCorrupt)

// ChunkMeta describes one chunk, a record batch, of a segment. It is what the
// agent commits to meta per chunk and what the index stores.
type ChunkMeta struct {
	TopicID        [16]byte
	Partition      int32
	Start          int64 // byte position of the batch in the object
	Length         int32 // batch size in bytes
	RecordCount    int32 // lastOffsetDelta+1: offsets the batch takes
	FirstTimestamp int64
	MaxTimestamp   int64
	ProducerID     int64
	ProducerEpoch  int16
	BaseSequence   int32
	// Transactional: the batch's transactional attribute bit, for
	// meta's transaction check at commit (issue 15). Not a field of the
	// segment's index entry (the batch header holds it); ParseIndex
	// leaves it false.
	Transactional bool
}

// End returns the byte position just after the chunk.
func (m ChunkMeta) End() int64 { return m.Start + int64(m.Length) }

// Trailer is the decoded fixed-size trailer of a segment.
type Trailer struct {
	IndexOffset int64
	IndexLength int32
	ChunkCount  int32
	IndexCRC    uint32
	HeaderCRC   uint32
	Version     uint32
}

// ObjectSize returns the size of the whole object the trailer describes.
func (t Trailer) ObjectSize() int64 {
	return t.IndexOffset + int64(t.IndexLength) + SegmentTrailerSize
}

// TailSize returns how many bytes from the end of the object hold the index
// and the trailer: the one ranged read that yields all metadata.
func (t Trailer) TailSize() int64 { return int64(t.IndexLength) + SegmentTrailerSize }

// SegmentBuilder collects batches for one segment and lays them out into the
// object. It is not safe for concurrent use. Its life: Add…, Finish, Reset,
// Add…; Reset keeps the allocations for the next segment.
type SegmentBuilder struct {
	id       [16]byte
	chunks   []pendingChunk // arrival order
	bodySize int
	finished bool

	// Chunks are grouped by partition as they arrive, so that Finish sorts
	// the distinct partitions, usually far fewer than the chunks, and then
	// places the chunks with a counting pass: O(chunks + partitions·log)
	// instead of sorting every chunk. (Sorting all chunks by key and
	// arrival was a third of Finish's time with 8k chunks of 16
	// partitions.) Arrival order inside a partition falls out of placing
	// chunks in arrival order.
	groupOf map[partitionKey]int32 // partition → index in groups
	groups  []chunkGroup           // first-arrival order
	order   []int32                // scratch for Finish: groups by key
	layout  []int32                // scratch for Finish: chunks in body order
}

// partitionKey names a partition; body order is ascending by it.
type partitionKey struct {
	topicID   [16]byte
	partition int32
}

func comparePartitionKey(a, b *partitionKey) int {
	if c := bytes.Compare(a.topicID[:], b.topicID[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.partition, b.partition)
}

// chunkGroup is one partition's chunks in the builder.
type chunkGroup struct {
	key   partitionKey
	count int32 // chunks of this partition
	next  int32 // during Finish: body slot of the group's next chunk
}

// pendingChunk is one added batch awaiting Finish.
type pendingChunk struct {
	batch []byte    // aliases the caller's bytes until Finish
	group int32     // index in groups
	meta  ChunkMeta // all but Start
}

// NewSegmentBuilder returns an empty builder for the segment id.
func NewSegmentBuilder(id [16]byte) *SegmentBuilder {
	return &SegmentBuilder{id: id, groupOf: make(map[partitionKey]int32)}
}

// Add appends one batch, already checked with ValidateBatch which returned h,
// for a partition, and returns the chunk's arrival index: Finish's metas[i]
// describes the chunk for which Add returned i. The builder keeps batch, not
// a copy, until Finish returns; the caller must not modify or reuse it
// before then.
func (b *SegmentBuilder) Add(topicID [16]byte, partition int32, batch []byte, h BatchHeader) int {
	if b.finished {
		panic("BUG: codec: SegmentBuilder.Add after Finish without Reset")
	}
	if len(batch) != h.Size() {
		panic(fmt.Sprintf("BUG: codec: SegmentBuilder.Add: %d bytes for a header of size %d", len(batch), h.Size()))
	}
	if b.groupOf == nil {
		b.groupOf = make(map[partitionKey]int32) // a zero SegmentBuilder works too
	}
	key := partitionKey{topicID, partition}
	g, ok := b.groupOf[key]
	if !ok {
		g = int32(len(b.groups))
		b.groups = append(b.groups, chunkGroup{key: key})
		b.groupOf[key] = g
	}
	b.groups[g].count++
	b.chunks = append(b.chunks, pendingChunk{
		batch: batch,
		group: g,
		meta: ChunkMeta{
			TopicID:        topicID,
			Partition:      partition,
			Length:         int32(len(batch)),
			RecordCount:    h.LastOffsetDelta + 1,
			FirstTimestamp: h.FirstTimestamp,
			MaxTimestamp:   h.MaxTimestamp,
			ProducerID:     h.ProducerID,
			ProducerEpoch:  h.ProducerEpoch,
			BaseSequence:   h.BaseSequence,
			Transactional:  h.IsTransactional(),
		},
	})
	b.bodySize += len(batch)
	return len(b.chunks) - 1
}

// Len returns the number of chunks added.
func (b *SegmentBuilder) Len() int { return len(b.chunks) }

// Size returns the size the object will have after Finish.
func (b *SegmentBuilder) Size() int {
	return SegmentHeaderSize + b.bodySize + len(b.chunks)*SegmentIndexEntrySize + SegmentTrailerSize
}

// Finish lays the segment out into one new slice of exactly Size bytes and
// returns it with the chunks' metadata, indexed by arrival (metas[i] is the
// chunk Add returned i for), with their final Start positions. Afterwards
// the builder holds no reference to the added batches; Reset it to reuse it.
//
// Allocations: the object and the metas slice; the scratch slices are
// reused across Reset.
func (b *SegmentBuilder) Finish() (object []byte, metas []ChunkMeta) {
	metas = b.plan()
	size := b.Size()
	// Not cleared: every byte up to size is appended below (the check
	// after says so), and clearing reused memory cost as much as the
	// copy (internal/uninit).
	object = uninit.Bytes(size)
	// Fresh memory until the agent's block cache is full: huge pages
	// make first touches far cheaper (internal/hugepage).
	hugepage.Advise(object)
	object = appendSegmentHeader(object, b.id)
	for _, i := range b.layout {
		object = append(object, b.chunks[i].batch...)
	}
	object = b.appendIndex(object, metas, crc32.Checksum(object[:SegmentHeaderSize], castagnoli))
	if len(object) != size {
		panic(fmt.Sprintf("BUG: codec: segment laid out to %d bytes, Size said %d", len(object), size))
	}
	b.dropBatches()
	return object, metas
}

// FinishParts is Finish without laying the bytes out: it returns the
// object as a vector whose concatenation is exactly what Finish would
// return (header, the added batches in body order, index and trailer),
// for a caller that writes the parts out one after another (a vectored
// write to a file, or a streamed PUT) instead of copying them into one
// new buffer first. Batches that sit next to each other in the caller's
// memory and in the body are one part. The parts alias the added batches:
// the caller keeps them unmodified until it has written the parts out.
// The builder drops its references, as after Finish.
func (b *SegmentBuilder) FinishParts() (parts [][]byte, size int, metas []ChunkMeta) {
	metas = b.plan()
	size = b.Size()
	parts = make([][]byte, 0, 2+len(b.layout))
	parts = append(parts, appendSegmentHeader(make([]byte, 0, SegmentHeaderSize), b.id))
	for _, i := range b.layout {
		batch := b.chunks[i].batch
		if last := parts[len(parts)-1]; len(parts) > 1 && adjacent(last, batch) {
			parts[len(parts)-1] = last[:len(last)+len(batch)]
			continue
		}
		parts = append(parts, batch)
	}
	tail := make([]byte, 0, len(b.chunks)*SegmentIndexEntrySize+SegmentTrailerSize)
	parts = append(parts, b.appendIndex(tail, metas, crc32.Checksum(parts[0], castagnoli)))
	b.dropBatches()
	return parts, size, metas
}

// adjacent reports whether next starts where prev ends, in one backing
// array that prev's capacity reaches into, so prev can be extended over
// next without copying.
func adjacent(prev, next []byte) bool {
	if len(next) == 0 || cap(prev)-len(prev) < len(next) {
		return false
	}
	return &prev[:len(prev)+1][len(prev)] == &next[0]
}

// plan orders the chunks by partition (b.layout, body order) and returns
// their metadata with final Start positions.
func (b *SegmentBuilder) plan() []ChunkMeta {
	if b.finished {
		panic("BUG: codec: SegmentBuilder.Finish called twice without Reset")
	}
	b.finished = true
	n := len(b.chunks)

	// Group by partition: one partition's batches of this segment become
	// one contiguous byte range, so a fetch of that partition is one ranged
	// read, and ascending keys let a reader binary-search the index.
	b.order = slices.Grow(b.order[:0], len(b.groups))
	for g := range b.groups {
		b.order = append(b.order, int32(g))
	}
	slices.SortFunc(b.order, func(x, y int32) int {
		return comparePartitionKey(&b.groups[x].key, &b.groups[y].key)
	})
	slot := int32(0)
	for _, g := range b.order {
		b.groups[g].next = slot
		slot += b.groups[g].count
	}
	b.layout = slices.Grow(b.layout[:0], n)[:n]
	for i := range b.chunks {
		g := &b.groups[b.chunks[i].group]
		b.layout[g.next] = int32(i)
		g.next++
	}
	metas := make([]ChunkMeta, n)
	pos := int64(SegmentHeaderSize)
	for _, i := range b.layout {
		m := b.chunks[i].meta
		m.Start = pos
		pos += int64(len(b.chunks[i].batch))
		metas[i] = m
	}
	return metas
}

// appendIndex appends the index (in body order) and the trailer of the
// planned segment to dst; headerCRC is the CRC of its header.
func (b *SegmentBuilder) appendIndex(dst []byte, metas []ChunkMeta, headerCRC uint32) []byte {
	start := len(dst)
	for _, i := range b.layout {
		dst = appendIndexEntry(dst, &metas[i])
	}
	return appendTrailer(dst, Trailer{
		IndexOffset: int64(SegmentHeaderSize + b.bodySize),
		IndexLength: int32(len(dst) - start),
		ChunkCount:  int32(len(b.chunks)),
		IndexCRC:    crc32.Checksum(dst[start:], castagnoli),
		HeaderCRC:   headerCRC,
		Version:     SegmentVersion,
	})
}

// dropBatches drops the references to the caller's batches: they may be
// pooled buffers, and a builder waiting for Reset must not keep them alive.
func (b *SegmentBuilder) dropBatches() {
	for i := range b.chunks {
		b.chunks[i].batch = nil
	}
}

// SetID names the segment Finish writes, in place of the id the builder
// was made with: the pipeline names a segment when it seals it.
func (b *SegmentBuilder) SetID(id [16]byte) { b.id = id }

// Reset empties the builder for a new segment id, keeping its allocations.
func (b *SegmentBuilder) Reset(id [16]byte) {
	clear(b.chunks) // no stale references to batches in the spare capacity
	b.chunks = b.chunks[:0]
	clear(b.groupOf) // keeps the map's buckets for the next segment
	b.groups = b.groups[:0]
	b.id = id
	b.bodySize = 0
	b.finished = false
}

// appendSegmentHeader appends the 24-byte header: magic, version, id.
func appendSegmentHeader(dst []byte, id [16]byte) []byte {
	dst = append(dst, segmentMagic...)
	dst = binary.BigEndian.AppendUint32(dst, SegmentVersion)
	return append(dst, id[:]...)
}

// appendIndexEntry appends one chunk's 66-byte index entry.
func appendIndexEntry(dst []byte, m *ChunkMeta) []byte {
	be := binary.BigEndian
	dst = append(dst, m.TopicID[:]...)
	dst = be.AppendUint32(dst, uint32(m.Partition))
	dst = be.AppendUint64(dst, uint64(m.Start))
	dst = be.AppendUint32(dst, uint32(m.Length))
	dst = be.AppendUint32(dst, uint32(m.RecordCount))
	dst = be.AppendUint64(dst, uint64(m.FirstTimestamp))
	dst = be.AppendUint64(dst, uint64(m.MaxTimestamp))
	dst = be.AppendUint64(dst, uint64(m.ProducerID))
	dst = be.AppendUint16(dst, uint16(m.ProducerEpoch))
	return be.AppendUint32(dst, uint32(m.BaseSequence))
}

// appendTrailer appends the 36-byte trailer, computing its own CRC.
func appendTrailer(dst []byte, t Trailer) []byte {
	be := binary.BigEndian
	start := len(dst)
	dst = be.AppendUint64(dst, uint64(t.IndexOffset))
	dst = be.AppendUint32(dst, uint32(t.IndexLength))
	dst = be.AppendUint32(dst, uint32(t.ChunkCount))
	dst = be.AppendUint32(dst, t.IndexCRC)
	dst = be.AppendUint32(dst, t.HeaderCRC)
	dst = be.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	dst = be.AppendUint32(dst, t.Version)
	return append(dst, segmentMagic...)
}

// ParseTrailer decodes and checks the trailer in the last SegmentTrailerSize
// bytes of tail; tail may be any suffix of the object at least that long
// (such as the result of one suffix-range GET). It checks magic, version and
// the trailer CRC, and that the fields are consistent with each other
// (index length = chunk count × entry size, nothing overflows). Whether the
// object really has ObjectSize bytes is for the caller to compare.
func ParseTrailer(tail []byte) (Trailer, error) {
	if len(tail) < SegmentTrailerSize {
		return Trailer{}, fmt.Errorf("%w: segment trailer needs %d bytes, have %d", ErrCorrupt, SegmentTrailerSize, len(tail))
	}
	p := tail[len(tail)-SegmentTrailerSize:]
	be := binary.BigEndian
	if string(p[32:36]) != segmentMagic {
		return Trailer{}, fmt.Errorf("%w: segment trailer magic %q", ErrCorrupt, p[32:36])
	}
	t := Trailer{Version: be.Uint32(p[28:])}
	if t.Version != SegmentVersion {
		return Trailer{}, fmt.Errorf("%w: version %d in trailer", ErrUnsupportedVersion, t.Version)
	}
	if crc, want := crc32.Checksum(p[:24], castagnoli), be.Uint32(p[24:]); crc != want {
		return Trailer{}, fmt.Errorf("%w: segment trailer CRC-32C is %#08x, trailer says %#08x", ErrCorrupt, crc, want)
	}
	indexOffset := be.Uint64(p[0:])
	indexLength := be.Uint32(p[8:])
	chunkCount := be.Uint32(p[12:])
	t.IndexCRC = be.Uint32(p[16:])
	t.HeaderCRC = be.Uint32(p[20:])
	if uint64(indexLength) != uint64(chunkCount)*SegmentIndexEntrySize || indexLength > math.MaxInt32 {
		return Trailer{}, fmt.Errorf("%w: segment index of %d bytes for %d chunks", ErrCorrupt, indexLength, chunkCount)
	}
	// The object size must fit an int64 so that every position computed
	// from these fields does.
	if indexOffset < SegmentHeaderSize || indexOffset > math.MaxInt64-uint64(indexLength)-SegmentTrailerSize {
		return Trailer{}, fmt.Errorf("%w: segment index offset %d", ErrCorrupt, indexOffset)
	}
	t.IndexOffset = int64(indexOffset)
	t.IndexLength = int32(indexLength)
	t.ChunkCount = int32(chunkCount)
	return t, nil
}

// ParseIndex decodes the index t describes, index being exactly its bytes
// (object[t.IndexOffset : t.IndexOffset+t.IndexLength]). It verifies the
// index CRC and that the chunks tile the body: the first starts right after
// the header, each starts where the previous ended, the last ends at the
// index, each is at least a batch header long, and the (topic id, partition)
// keys ascend. A writer never leaves gaps, so a gap would only hide damage.
// The chunks come back in body order.
func ParseIndex(index []byte, t Trailer) ([]ChunkMeta, error) {
	if int64(len(index)) != int64(t.IndexLength) || int64(t.IndexLength) != int64(t.ChunkCount)*SegmentIndexEntrySize {
		return nil, fmt.Errorf("%w: segment index of %d bytes, trailer says %d for %d chunks", ErrCorrupt, len(index), t.IndexLength, t.ChunkCount)
	}
	if crc := crc32.Checksum(index, castagnoli); crc != t.IndexCRC {
		return nil, fmt.Errorf("%w: segment index CRC-32C is %#08x, trailer says %#08x", ErrCorrupt, crc, t.IndexCRC)
	}
	// Bounded by the bytes at hand: ChunkCount × entry size == len(index).
	chunks := make([]ChunkMeta, t.ChunkCount)
	be := binary.BigEndian
	next := int64(SegmentHeaderSize)
	for i := range chunks {
		e := index[i*SegmentIndexEntrySize : (i+1)*SegmentIndexEntrySize]
		m := &chunks[i]
		copy(m.TopicID[:], e[0:16])
		m.Partition = int32(be.Uint32(e[16:]))
		start := be.Uint64(e[20:])
		m.Length = int32(be.Uint32(e[28:]))
		m.RecordCount = int32(be.Uint32(e[32:]))
		m.FirstTimestamp = int64(be.Uint64(e[36:]))
		m.MaxTimestamp = int64(be.Uint64(e[44:]))
		m.ProducerID = int64(be.Uint64(e[52:]))
		m.ProducerEpoch = int16(be.Uint16(e[60:]))
		m.BaseSequence = int32(be.Uint32(e[62:]))

		if start != uint64(next) {
			return nil, fmt.Errorf("%w: segment chunk %d starts at %d, expected %d", ErrCorrupt, i, start, next)
		}
		m.Start = next
		if m.Length < BatchHeaderSize || m.End() > t.IndexOffset {
			return nil, fmt.Errorf("%w: segment chunk %d of %d bytes at %d does not fit a body ending at %d", ErrCorrupt, i, m.Length, m.Start, t.IndexOffset)
		}
		if m.RecordCount < 1 {
			return nil, fmt.Errorf("%w: segment chunk %d has record count %d", ErrCorrupt, i, m.RecordCount)
		}
		if i > 0 && compareKey(&chunks[i-1], m) > 0 {
			return nil, fmt.Errorf("%w: segment chunk %d is out of (topic, partition) order", ErrCorrupt, i)
		}
		next = m.End()
	}
	if next != t.IndexOffset {
		return nil, fmt.Errorf("%w: segment chunks end at %d, index starts at %d", ErrCorrupt, next, t.IndexOffset)
	}
	return chunks, nil
}

// compareKey orders chunk metas by (topic id, partition), the body order.
func compareKey(a, b *ChunkMeta) int {
	if c := bytes.Compare(a.TopicID[:], b.TopicID[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// OpenSegment checks a whole segment held in memory and returns its id and
// chunks in body order: header magic, version and CRC, the trailer, the
// index (see ParseIndex), the object size, and for every chunk that the
// batch header at its start agrees with its index entry (magic 2,
// batchLength, record count, timestamps, producer fields). It does not
// verify each batch's CRC over its records: that is a full pass over the
// data, which ValidateBatch does for callers that need it (compaction), and
// consumers check on their own.
func OpenSegment(object []byte) (id [16]byte, chunks []ChunkMeta, err error) {
	if len(object) < SegmentHeaderSize+SegmentTrailerSize {
		return id, nil, fmt.Errorf("%w: segment of %d bytes is truncated", ErrCorrupt, len(object))
	}
	t, err := ParseTrailer(object)
	if err != nil {
		return id, nil, err
	}
	if t.ObjectSize() != int64(len(object)) {
		return id, nil, fmt.Errorf("%w: segment of %d bytes, trailer says %d", ErrCorrupt, len(object), t.ObjectSize())
	}
	h := object[:SegmentHeaderSize]
	if string(h[0:4]) != segmentMagic {
		return id, nil, fmt.Errorf("%w: segment header magic %q", ErrCorrupt, h[0:4])
	}
	if v := binary.BigEndian.Uint32(h[4:]); v != t.Version {
		return id, nil, fmt.Errorf("%w: segment header version %d, trailer version %d", ErrCorrupt, v, t.Version)
	}
	if crc := crc32.Checksum(h, castagnoli); crc != t.HeaderCRC {
		return id, nil, fmt.Errorf("%w: segment header CRC-32C is %#08x, trailer says %#08x", ErrCorrupt, crc, t.HeaderCRC)
	}
	chunks, err = ParseIndex(object[t.IndexOffset:t.IndexOffset+int64(t.IndexLength)], t)
	if err != nil {
		return id, nil, err
	}
	for i := range chunks {
		m := &chunks[i]
		if err := checkChunk(object[m.Start:m.End()], m); err != nil {
			return id, nil, fmt.Errorf("segment chunk %d at %d: %w", i, m.Start, err)
		}
	}
	copy(id[:], h[8:])
	return id, chunks, nil
}

// checkChunk compares the batch header at the start of b, the chunk's bytes,
// with its index entry m. ParseIndex made sure b holds a header.
func checkChunk(b []byte, m *ChunkMeta) error {
	// Sluice stores only v2 batches: in a segment, even magic 0 or 1 is
	// damage, not an unsupported format.
	if m := int8(b[offMagic]); m != 2 {
		return fmt.Errorf("%w: batch magic %d", ErrCorrupt, m)
	}
	h := parseBatchHeader(b)
	switch {
	case h.Size() != len(b):
		return fmt.Errorf("%w: batchLength %d in a chunk of %d bytes", ErrCorrupt, h.BatchLength, len(b))
	case h.LastOffsetDelta+1 != m.RecordCount,
		h.FirstTimestamp != m.FirstTimestamp,
		h.MaxTimestamp != m.MaxTimestamp,
		h.ProducerID != m.ProducerID,
		h.ProducerEpoch != m.ProducerEpoch,
		h.BaseSequence != m.BaseSequence:
		return fmt.Errorf("%w: batch header disagrees with the index entry", ErrCorrupt)
	}
	return nil
}

// FindPartition returns the range [first, end) of chunks, in body order as
// ParseIndex and OpenSegment return them, that belong to the partition; it
// is empty (first == end) when the segment holds none. Since a partition's
// chunks are contiguous, its bytes in the object are the single range
// [chunks[first].Start, chunks[end-1].End()).
func FindPartition(chunks []ChunkMeta, topicID [16]byte, partition int32) (first, end int) {
	key := ChunkMeta{TopicID: topicID, Partition: partition}
	first, _ = slices.BinarySearchFunc(chunks, &key, func(m ChunkMeta, k *ChunkMeta) int { return compareKey(&m, k) })
	end = first
	for end < len(chunks) && chunks[end].TopicID == topicID && chunks[end].Partition == partition {
		end++
	}
	return first, end
}

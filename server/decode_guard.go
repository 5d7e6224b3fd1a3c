package server

// Decode guard: a request is checked against what decoding it would cost
// before kmsg decodes it.
//
// Why: kmsg sizes each array by the count the client wrote, checking only
// that the count times a small per-element minimum fits the bytes left. An
// element in memory is much larger than its smallest encoding (a Produce
// topic is 64 bytes in memory, 2 bytes on the wire), so a 16 MiB Produce
// v3, Fetch v4 or OffsetCommit v2 frame whose first array claims 8 million
// topics made kmsg allocate 512 MiB before failing on the missing bytes,
// and several connections decode at once. Issue 11 measured 1.3–1.6 GiB of
// RSS from three such frames.
//
// How: each guarded API has a schema (below, transcribed from kmsg's
// generated readFrom for the versions we serve) that the guard walks
// without allocating. Every array's elements must really be there before
// the next is looked at, and the memory kmsg will allocate for them (count
// × element size in memory) is summed; a frame whose decode would allocate
// more than maxDecodeRatio × its size + decodeSlack is refused as a bad
// request. Strings and bytes cost nothing: UnsafeReadFrom aliases them.
// So a well-formed request is never refused for lying (the walk proves
// every claimed element is there), and only one that packs more than
// maxDecodeRatio times its size into slice headers, such as a million
// empty topic names, is refused for its cost; no client sends that.
//
// APIs without a schema get a small frame limit (unguardedFrameLimit)
// instead: their worst case, measured by TestDecodeAllocationBounded, is
// about 19× the frame, so the limit keeps it within the same bound.
//
// Considered and rejected: upgrading kmsg (v1.15.1 already checks counts
// against per-element minimum sizes, which is what leaves the 32× above);
// a global budget of decode memory (bounds the sum but lets one request
// still take 32× its size); deriving schemas from kmsg by reflection
// (version presence and tagged fields cannot be seen from the Go types).

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxDecodeRatio and decodeSlack bound what decoding one request may
// allocate: maxDecodeRatio × frame bytes + decodeSlack. 8× covers every
// real request (a Fetch partition is 72 bytes in memory for 28 on the
// wire); the slack covers the request struct itself and small frames of
// many tiny elements.
const (
	maxDecodeRatio = 8
	decodeSlack    = 1 << 20
)

// unguardedFrameLimit is the largest frame accepted for an API without a
// schema: admin and coordination requests, which Kafka clients send in a
// few KiB. At the worst ratio measured for them (~19×) a frame this size
// allocates about 1.2 MiB, within 8× + decodeSlack.
const unguardedFrameLimit = 64 << 10

type wireKind uint8

const (
	wInt8 wireKind = iota // and bool
	wInt16
	wInt32
	wInt64
	wUUID
	wString  // int16 length, or compact uvarint length+1; -1/0 is null
	wNString // a nullable string: kmsg allocates a *string for each non-null one
	wBytes   // int32 length, or compact uvarint length+1; -1/0 is null
	wArray   // int32 count, or compact uvarint count+1; -1/0 is null
)

// Null strings, bytes and arrays are accepted wherever they appear, as kmsg
// accepts them: the guard bounds cost, it does not judge nullability.

// wireField is one field of a schema, present in versions [min, max].
type wireField struct {
	kind     wireKind
	min, max int16
	// For arrays: the element's fields and its size in memory.
	elem     []wireField
	elemSize int
	// prim: elements are a single primitive (an []int32, a []string),
	// with no tag section of their own.
	prim bool
}

func field(k wireKind) wireField              { return wireField{kind: k, min: 0, max: 32767} }
func since(v int16, k wireKind) wireField     { return wireField{kind: k, min: v, max: 32767} }
func upto(v int16, k wireKind) wireField      { return wireField{kind: k, min: 0, max: v} }
func within(a, b int16, k wireKind) wireField { return wireField{kind: k, min: a, max: b} }

// array is an array field of elements of size elemSize in memory.
func array(elemSize uintptr, elem ...wireField) wireField {
	return wireField{kind: wArray, min: 0, max: 32767, elem: elem, elemSize: int(elemSize)}
}

// primArray is an array of one primitive kind, elemSize bytes each in
// memory.
func primArray(elemSize uintptr, k wireKind) wireField {
	f := array(elemSize, field(k))
	f.prim = true
	return f
}

func (f wireField) since(v int16) wireField { f.min = v; return f }
func (f wireField) upto(v int16) wireField  { f.max = v; return f }

type wireSchema struct {
	flexibleFrom int16
	fields       []wireField
}

var (
	topicNameV12 = upto(12, wString) // names until topic ids took over in v13
	// sizeofString is what a []string or a *string element costs.
	sizeofString = unsafe.Sizeof("")
)

// guards are the schemas of the APIs whose frames can legitimately be
// large, by API key. Versions outside a schema's fields are not served
// (see each API's register call); the walk only needs the fields of the
// versions we serve to be right, and TestDecodeGuardAcceptsKmsg checks
// that against kmsg's encoder for every version.
var guards = map[int16]wireSchema{
	int16(kmsg.Produce): {9, []wireField{
		since(3, wNString), // transactional id
		field(wInt16), field(wInt32),
		array(unsafe.Sizeof(kmsg.ProduceRequestTopic{}),
			topicNameV12, since(13, wUUID),
			array(unsafe.Sizeof(kmsg.ProduceRequestTopicPartition{}), field(wInt32), field(wBytes))),
	}},
	int16(kmsg.Fetch): {12, []wireField{
		upto(14, wInt32), field(wInt32), field(wInt32), since(3, wInt32), since(4, wInt8),
		since(7, wInt32), since(7, wInt32),
		array(unsafe.Sizeof(kmsg.FetchRequestTopic{}),
			topicNameV12, since(13, wUUID),
			array(unsafe.Sizeof(kmsg.FetchRequestTopicPartition{}),
				field(wInt32), since(9, wInt32), field(wInt64), since(12, wInt32),
				since(5, wInt64), field(wInt32))),
		array(unsafe.Sizeof(kmsg.FetchRequestForgottenTopic{}),
			within(7, 12, wString), since(13, wUUID),
			primArray(4, wInt32)).since(7),
		since(11, wString), // rack
	}},
	int16(kmsg.OffsetCommit): {8, []wireField{
		field(wString), since(1, wInt32), since(1, wString), since(7, wNString), within(2, 4, wInt64),
		array(unsafe.Sizeof(kmsg.OffsetCommitRequestTopic{}),
			upto(9, wString), since(10, wUUID),
			array(unsafe.Sizeof(kmsg.OffsetCommitRequestTopicPartition{}),
				field(wInt32), field(wInt64), within(1, 1, wInt64), since(6, wInt32), field(wNString))),
	}},
	int16(kmsg.OffsetFetch): {6, []wireField{
		upto(7, wString),
		array(unsafe.Sizeof(kmsg.OffsetFetchRequestTopic{}),
			field(wString), primArray(4, wInt32)).upto(7),
		array(unsafe.Sizeof(kmsg.OffsetFetchRequestGroup{}),
			field(wString), since(9, wNString), since(9, wInt32),
			array(unsafe.Sizeof(kmsg.OffsetFetchRequestGroupTopic{}),
				upto(9, wString), since(10, wUUID), primArray(4, wInt32))).since(8),
		since(7, wInt8),
	}},
	int16(kmsg.ListOffsets): {6, []wireField{
		field(wInt32), since(2, wInt8),
		array(unsafe.Sizeof(kmsg.ListOffsetsRequestTopic{}),
			field(wString),
			array(unsafe.Sizeof(kmsg.ListOffsetsRequestTopicPartition{}),
				field(wInt32), since(4, wInt32), field(wInt64), upto(0, wInt32))),
		since(10, wInt32),
	}},
	int16(kmsg.Metadata): {9, []wireField{
		// Before v10 kmsg allocates each topic's name pointer even
		// though the name is not nullable there.
		array(unsafe.Sizeof(kmsg.MetadataRequestTopic{})+sizeofString,
			since(10, wUUID), field(wString)),
		since(4, wInt8), within(8, 10, wInt8), since(8, wInt8),
	}},
	int16(kmsg.JoinGroup): {6, []wireField{
		field(wString), field(wInt32), since(1, wInt32), field(wString), since(5, wNString), field(wString),
		array(unsafe.Sizeof(kmsg.JoinGroupRequestProtocol{}), field(wString), field(wBytes)),
		since(8, wNString),
	}},
	int16(kmsg.SyncGroup): {4, []wireField{
		field(wString), field(wInt32), field(wString), since(3, wNString), since(5, wNString), since(5, wNString),
		array(unsafe.Sizeof(kmsg.SyncGroupRequestGroupAssignment{}), field(wString), field(wBytes)),
	}},
	// Admin tools list every group or topic of a cluster in one request.
	int16(kmsg.DescribeGroups): {5, []wireField{primArray(sizeofString, wString), since(3, wInt8)}},
	int16(kmsg.DeleteGroups):   {2, []wireField{primArray(sizeofString, wString)}},
	int16(kmsg.DeleteTopics): {4, []wireField{
		primArray(sizeofString, wString).upto(5),
		array(unsafe.Sizeof(kmsg.DeleteTopicsRequestTopic{}), field(wNString), field(wUUID)).since(6),
		field(wInt32),
	}},
	int16(kmsg.DeleteRecords): {2, []wireField{
		array(unsafe.Sizeof(kmsg.DeleteRecordsRequestTopic{}),
			field(wString),
			array(unsafe.Sizeof(kmsg.DeleteRecordsRequestTopicPartition{}), field(wInt32), field(wInt64))),
		field(wInt32),
	}},
	int16(kmsg.CreateTopics): {5, []wireField{
		array(unsafe.Sizeof(kmsg.CreateTopicsRequestTopic{}),
			field(wString), field(wInt32), field(wInt16),
			array(unsafe.Sizeof(kmsg.CreateTopicsRequestTopicReplicaAssignment{}),
				field(wInt32), primArray(4, wInt32)),
			array(unsafe.Sizeof(kmsg.CreateTopicsRequestTopicConfig{}), field(wString), field(wNString))),
		field(wInt32), since(1, wInt8),
	}},
	int16(kmsg.DescribeConfigs): {4, []wireField{
		array(unsafe.Sizeof(kmsg.DescribeConfigsRequestResource{}),
			field(wInt8), field(wString), primArray(sizeofString, wString)),
		since(1, wInt8), since(3, wInt8),
	}},
	// Transactions (issue 15): a transaction's offsets, up to every
	// partition a member consumed.
	int16(kmsg.TxnOffsetCommit): {3, []wireField{
		field(wString), field(wString), field(wInt64), field(wInt16),
		since(3, wInt32), since(3, wString), since(3, wNString),
		array(unsafe.Sizeof(kmsg.TxnOffsetCommitRequestTopic{}),
			field(wString),
			array(unsafe.Sizeof(kmsg.TxnOffsetCommitRequestTopicPartition{}),
				field(wInt32), field(wInt64), since(2, wInt32), field(wNString))),
	}},
}

// decodeGuard walks one request body.
type decodeGuard struct {
	b       []byte
	version int16
	flex    bool
	alloc   int
	budget  int
	bad     string
}

// checkDecodeCost refuses a frame whose body would make kmsg allocate
// beyond the bound, or that the API's schema does not accept. frameLen is
// the whole frame, body what follows the request header.
func checkDecodeCost(key, version int16, flexible bool, frameLen int, body []byte) error {
	s, ok := guards[key]
	if !ok {
		if frameLen > unguardedFrameLimit {
			return decodeError(kmsg.NameForKey(key) + " frame of " + strconv.Itoa(frameLen) +
				" bytes is over the " + strconv.Itoa(unguardedFrameLimit) + "-byte limit for this API")
		}
		return nil
	}
	g := decodeGuard{b: body, version: version, flex: flexible, budget: maxDecodeRatio*frameLen + decodeSlack}
	g.walk(s.fields, true)
	if g.bad != "" {
		return decodeError(kmsg.NameForKey(key) + " v" + strconv.Itoa(int(version)) + ": " + g.bad)
	}
	return nil
}

// charge adds n bytes to what kmsg will allocate and fails the walk once
// that is over the budget.
func (g *decodeGuard) charge(n int) {
	g.alloc += n
	if g.alloc > g.budget {
		g.fail("decoding would allocate over " + strconv.Itoa(g.alloc) + " bytes, more than " +
			strconv.Itoa(maxDecodeRatio) + "× the frame")
	}
}

func (g *decodeGuard) fail(why string) {
	if g.bad == "" {
		g.bad = why
	}
	g.b = nil
}

func (g *decodeGuard) skip(n int) {
	if n < 0 || n > len(g.b) {
		g.fail("field runs past the frame")
		return
	}
	g.b = g.b[n:]
}

func (g *decodeGuard) uvarint() uint64 {
	v, n := binary.Uvarint(g.b)
	if n <= 0 {
		g.fail("bad varint")
		return 0
	}
	g.b = g.b[n:]
	return v
}

// length reads a string, bytes or array length of width bytes (2 or 4)
// in classic versions, a compact length in flexible ones. Null is -1.
func (g *decodeGuard) length(width int) int {
	if g.flex {
		v := g.uvarint()
		if v > uint64(len(g.b))+1 {
			g.fail("length past the frame")
			return 0
		}
		return int(v) - 1
	}
	if len(g.b) < width {
		g.fail("length past the frame")
		return 0
	}
	var n int
	if width == 2 {
		n = int(int16(binary.BigEndian.Uint16(g.b)))
	} else {
		n = int(int32(binary.BigEndian.Uint32(g.b)))
	}
	g.b = g.b[width:]
	if n < -1 {
		g.fail("negative length")
		return 0
	}
	return n
}

// walk reads one struct (or, unless isStruct, one primitive element): its
// fields in this version, then its tag section in flexible versions.
func (g *decodeGuard) walk(fields []wireField, isStruct bool) {
	for _, f := range fields {
		if g.bad != "" {
			return
		}
		if g.version < f.min || g.version > f.max {
			continue
		}
		switch f.kind {
		case wInt8:
			g.skip(1)
		case wInt16:
			g.skip(2)
		case wInt32:
			g.skip(4)
		case wInt64:
			g.skip(8)
		case wUUID:
			g.skip(16)
		case wString:
			g.skip(max(g.length(2), 0))
		case wNString:
			if n := g.length(2); n >= 0 {
				g.charge(int(sizeofString))
				g.skip(n)
			}
		case wBytes:
			g.skip(max(g.length(4), 0))
		case wArray:
			n := g.length(4)
			if g.bad != "" {
				return
			}
			// Each element takes at least one byte, so n is at most
			// the bytes left and the product cannot overflow.
			if n > len(g.b) {
				g.fail("array count " + strconv.Itoa(n) + " past the frame")
				return
			}
			if g.charge(n * f.elemSize); g.bad != "" {
				return
			}
			for i := 0; i < n && g.bad == ""; i++ {
				g.walk(f.elem, !f.prim)
			}
		}
	}
	if isStruct && g.flex && g.bad == "" {
		g.tags()
	}
}

// tags skips a tag section: a count, then per field a tag and a sized
// value.
func (g *decodeGuard) tags() {
	n := g.uvarint()
	for i := uint64(0); i < n && g.bad == ""; i++ {
		g.uvarint()
		size := g.uvarint()
		if size > uint64(len(g.b)) {
			g.fail("tagged field past the frame")
			return
		}
		g.skip(int(size))
	}
}

package server

import (
	"encoding/binary"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A fetch response as a vector: the framing (header, topics, partitions'
// fields) in one small buffer, and each partition's record batches as
// pieces of their own (a recordSet: copies, and batches lent by the block
// cache, fetch_records.go), so that the megabytes of records are handed
// to the socket as they are instead of being copied once more into one
// encoded buffer (kmsg's AppendTo). The pieces are written in order by
// one writev; the copies' buffers go back to their pool, and the lent
// blocks are released, when the transport has taken them
// (releaseResponses).
//
// The encoding is Kafka's Fetch response, v4 to v17, exactly as kmsg
// encodes it (TestFetchVecMatchesKmsg compares the two byte for byte).
// Tagged fields are not written here: a response with any (diverging
// epoch, current leader, snapshot id, node endpoints, or unknown tags)
// is encoded by kmsg instead; Sluice sets none today.

// mFetchFramingGrew counts fetch framings that outgrew the size
// encodeFetchVec computed for them: harmless (see there), but a sign that
// the count misses a field.
var mFetchFramingGrew = metrics.NewCounter(`sluice_fetch_framing_grew_total`)

// inlineRecords: record sets up to this size are copied into the framing
// buffer rather than given an iovec of their own, so a fetch of many
// nearly idle partitions is not a long vector of tiny pieces.
const inlineRecords = 16 << 10

// respondFetch completes a fetch whose partitions' record batches are
// recs (in the order of resp's partitions), lent from the blocks leases
// holds: encoded as a vector when it can be, else by kmsg. Either way
// recs and leases are handed over: pieces of the vector are given back
// once written (the leases with its last), the rest (copied into the
// framing, or encoded by kmsg) at once.
func (rc *reqCtx) respondFetch(resp *kmsg.FetchResponse, recs []recordSet, leases *fetchLeases) {
	resp.SetVersion(rc.version)
	vec, ok := encodeFetchVec(resp, rc.corrID, recs)
	if !ok {
		k := 0
		for ti := range resp.Topics {
			ps := resp.Topics[ti].Partitions
			for pi := range ps {
				b := recs[k].flat()
				if b == nil && !recs[k].null {
					b = []byte{} // empty, never null (librdkafka rejects null)
				}
				ps[pi].RecordBatches = b
				k++
			}
		}
		rc.respond(resp)
		for ti := range resp.Topics {
			ps := resp.Topics[ti].Partitions
			for pi := range ps {
				ps[pi].RecordBatches = nil
			}
		}
		for i := range recs {
			recs[i].release()
		}
		leases.release()
		return
	}
	if rc.done {
		panic("BUG: request completed twice")
	}
	rc.done = true
	// Pieces are written in order: once the last is, nothing refers to
	// the lent blocks any more. (The last of all may be empty, and an
	// empty piece is never queued.)
	last := len(vec) - 1
	for last > 0 && len(vec[last].b) == 0 {
		last--
	}
	vec[last].leases = leases.take()
	rc.c.respond(rc.seq, vec)
	observeRequest(rc.key, rc.start)
}

// fetchVecEligible reports whether resp carries nothing encodeFetchVec
// leaves out (tagged fields).
func fetchVecEligible(resp *kmsg.FetchResponse) bool {
	if resp.Version < 4 || resp.Version > 17 || resp.UnknownTags.Len() > 0 || len(resp.Brokers) > 0 {
		return false
	}
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if t.UnknownTags.Len() > 0 {
			return false
		}
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.UnknownTags.Len() > 0 ||
				p.DivergingEpoch.Epoch != -1 || p.DivergingEpoch.EndOffset != -1 || p.DivergingEpoch.UnknownTags.Len() > 0 ||
				p.CurrentLeader.LeaderID != -1 || p.CurrentLeader.LeaderEpoch != -1 || p.CurrentLeader.UnknownTags.Len() > 0 ||
				p.SnapshotID.EndOffset != -1 || p.SnapshotID.Epoch != -1 || p.SnapshotID.UnknownTags.Len() > 0 {
				return false
			}
			for ai := range p.AbortedTransactions {
				if p.AbortedTransactions[ai].UnknownTags.Len() > 0 {
					return false
				}
			}
		}
	}
	return true
}

// encodeFetchVec frames resp (its version set) with its size and
// correlation id as pieces (see above); false when resp is not eligible
// (recs untouched then). recs are the partitions' record batches in
// resp's order; nil takes each partition's RecordBatches instead. A
// record set over inlineRecords goes out as its pieces (recordSet.take),
// a smaller one is copied into the framing and released; the framing
// pieces are slices of one buffer, never released.
func encodeFetchVec(resp *kmsg.FetchResponse, corrID int32, recs []recordSet) ([]outBuf, bool) {
	if !fetchVecEligible(resp) {
		return nil, false
	}
	if recs == nil {
		for ti := range resp.Topics {
			ps := resp.Topics[ti].Partitions
			for pi := range ps {
				recs = append(recs, recordSetOf(ps[pi].RecordBatches))
			}
		}
	}
	v := resp.Version
	flex := v >= 12
	// The framing's size, enough for every field (each length prefix at
	// its widest, an aborted transaction's tag section too), so that the
	// buffer does not grow. Were it to (a field this count missed), the
	// pieces cut so far keep the bytes they were cut with, and the size
	// is written through the first piece: still correct, only a copy.
	size, pieces, k := 4+4+1+4+2+4+5+1, 1, 0
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		size += 5 + len(t.Topic) + 16 + 5 + 1
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			size += 4 + 2 + 8 + 8 + 8 + 5 + 17*len(p.AbortedTransactions) + 4 + 5 + 1
			if rs := &recs[k]; rs.n > inlineRecords {
				pieces += 2 + len(rs.pieces)
			} else {
				size += rs.n
			}
			k++
		}
	}
	b := make([]byte, 8, size)
	binary.BigEndian.PutUint32(b[4:], uint32(corrID))
	if flex {
		b = append(b, 0) // response header v1: no tagged fields
	}
	vec := make([]outBuf, 0, pieces)
	cut := 0 // b[cut:] is framing not yet in vec
	b = binary.BigEndian.AppendUint32(b, uint32(resp.ThrottleMillis))
	if v >= 7 {
		b = binary.BigEndian.AppendUint16(b, uint16(resp.ErrorCode))
		b = binary.BigEndian.AppendUint32(b, uint32(resp.SessionID))
	}
	b = appendLen(b, len(resp.Topics), flex)
	k = 0
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		if v <= 12 {
			if flex {
				b = binary.AppendUvarint(b, uint64(len(t.Topic))+1)
			} else {
				b = binary.BigEndian.AppendUint16(b, uint16(len(t.Topic)))
			}
			b = append(b, t.Topic...)
		} else {
			b = append(b, t.TopicID[:]...)
		}
		b = appendLen(b, len(t.Partitions), flex)
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			b = binary.BigEndian.AppendUint32(b, uint32(p.Partition))
			b = binary.BigEndian.AppendUint16(b, uint16(p.ErrorCode))
			b = binary.BigEndian.AppendUint64(b, uint64(p.HighWatermark))
			b = binary.BigEndian.AppendUint64(b, uint64(p.LastStableOffset))
			if v >= 5 {
				b = binary.BigEndian.AppendUint64(b, uint64(p.LogStartOffset))
			}
			switch {
			case p.AbortedTransactions == nil && flex:
				b = append(b, 0)
			case p.AbortedTransactions == nil:
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			default:
				b = appendLen(b, len(p.AbortedTransactions), flex)
				for _, a := range p.AbortedTransactions {
					b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
					b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
					if flex {
						b = append(b, 0)
					}
				}
			}
			if v >= 11 {
				b = binary.BigEndian.AppendUint32(b, uint32(p.PreferredReadReplica))
			}
			rs := &recs[k]
			k++
			switch {
			case rs.null && flex:
				b = append(b, 0)
			case rs.null:
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
			case flex:
				b = binary.AppendUvarint(b, uint64(rs.n)+1)
			default:
				b = binary.BigEndian.AppendUint32(b, uint32(rs.n))
			}
			if rs.n > inlineRecords {
				vec = append(vec, outBuf{b: b[cut:len(b):len(b)]})
				vec = append(vec, rs.take()...)
				cut = len(b)
			} else {
				b = append(b, rs.flat()...)
				rs.release()
			}
			if flex {
				b = append(b, 0) // partition: no tagged fields
			}
		}
		if flex {
			b = append(b, 0) // topic: no tagged fields
		}
	}
	if flex {
		b = append(b, 0) // response: no tagged fields
	}
	if cap(b) != size {
		mFetchFramingGrew.Inc()
	}
	vec = append(vec, outBuf{b: b[cut:len(b):len(b)]})
	binary.BigEndian.PutUint32(vec[0].b[0:4], uint32(outLen(vec)-4))
	return vec, true
}

// appendLen appends an array's length: compact (length+1, uvarint) in
// flexible versions, else int32.
func appendLen(b []byte, n int, flex bool) []byte {
	if flex {
		return binary.AppendUvarint(b, uint64(n)+1)
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

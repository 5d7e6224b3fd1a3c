package controller

import (
	"errors"
	"fmt"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// What the transaction coordinator stores (issue 15; txn.go). Integers
// big-endian, every value opens with its format byte:
//
//	txns        transactional id    -> v | producer id (8) | epoch (2) |
//	                                   timeout ms (4) | ongoing (1) |
//	                                   start ms (8) | last end (1) |
//	                                   last change ms (8) |
//	                                   uvarint n | n × (topic id (16) |
//	                                   partition (4) | first offset (8)) |
//	                                   uvarint groups | groups × (uvarint
//	                                   len | group | uvarint n | n ×
//	                                   (topic id (16) | partition (4) |
//	                                   offset (8) | leader epoch (4) |
//	                                   uvarint len | metadata))
//	txnaborted  topic id (16) + partition (4) + marker offset (8)
//	                                -> v | producer id (8) | first offset (8)
//	index       (a marker entry, one offset, no object)
//	                                -> 3 | control (1) | producer id (8) |
//	                                   epoch (2) | max timestamp (8)
//
// A marker is an index entry of one offset, so its key's base offset is
// its last offset too. The aborted index's keys sort by partition then
// offset, which is the order TxnPartition searches.

// recFormatMarker opens an index value that is a transaction marker.
const recFormatMarker = 3

func appendMarkerValue(v []byte, e *meta.IndexEntry) []byte {
	v = append(v, recFormatMarker, byte(e.Control))
	v = be.AppendUint64(v, uint64(e.ProducerID))
	v = be.AppendUint16(v, uint16(e.ProducerEpoch))
	return be.AppendUint64(v, uint64(e.MaxTimestamp))
}

func decodeMarkerValue(e meta.IndexEntry, k, v []byte) (meta.IndexEntry, int8, error) {
	d := decoder{b: v[1:]}
	e.LastOffset = e.BaseOffset
	e.Control = int8(d.u8())
	e.ProducerID = int64(d.u64())
	e.ProducerEpoch = int16(d.u16())
	e.MaxTimestamp = int64(d.u64())
	if err := d.finish(); err != nil || (e.Control != meta.ControlAbort && e.Control != meta.ControlCommit) {
		return meta.IndexEntry{}, 0, fmt.Errorf("%w: marker entry %x: %x", meta.ErrCorrupt, k, v)
	}
	return e, 0, nil
}

func appendTxnValue(v []byte, t *txnState) []byte {
	v = append(v, recFormat)
	v = be.AppendUint64(v, uint64(t.pid))
	v = be.AppendUint16(v, uint16(t.epoch))
	v = be.AppendUint32(v, uint32(t.timeoutMs))
	ongoing := byte(0)
	if t.ongoing {
		ongoing = 1
	}
	v = append(v, ongoing)
	v = be.AppendUint64(v, uint64(t.startMs))
	v = append(v, byte(t.lastEnd))
	v = be.AppendUint64(v, uint64(t.lastMs))
	v = appendUvarint(v, uint64(len(t.parts)))
	for tp, first := range t.parts {
		v = appendTPKey(v, tp)
		v = be.AppendUint64(v, uint64(first))
	}
	v = appendUvarint(v, uint64(len(t.groups)))
	for grp, offs := range t.groups {
		v = appendUvarint(v, uint64(len(grp)))
		v = append(v, grp...)
		v = appendUvarint(v, uint64(len(offs)))
		for tp, o := range offs {
			v = append(v, tp.TopicID[:]...)
			v = be.AppendUint32(v, uint32(tp.Partition))
			v = be.AppendUint64(v, uint64(o.Offset))
			v = be.AppendUint32(v, uint32(o.LeaderEpoch))
			v = appendUvarint(v, uint64(len(o.Metadata)))
			v = append(v, o.Metadata...)
		}
	}
	return v
}

func appendUvarint(v []byte, x uint64) []byte {
	for x >= 0x80 {
		v = append(v, byte(x)|0x80)
		x >>= 7
	}
	return append(v, byte(x))
}

// maxTxnItems bounds the counts a stored transaction may claim, so a
// damaged record cannot make Open allocate without bound.
const maxTxnItems = 1 << 24

func decodeTxnValue(id string, v []byte, st *state) (*txnState, error) {
	d := decoder{b: v}
	d.format()
	t := &txnState{id: id}
	t.pid = int64(d.u64())
	t.epoch = int16(d.u16())
	t.timeoutMs = int32(d.u32())
	t.ongoing = d.u8() == 1
	t.startMs = int64(d.u64())
	t.lastEnd = int8(d.u8())
	t.lastMs = int64(d.u64())
	n := d.uvarint()
	if n > maxTxnItems {
		d.bad = true
		n = 0
	}
	if n > 0 || t.ongoing {
		t.parts = make(map[tpKey]int64, n)
	}
	for range n {
		// A partition of a topic deleted since stays, as in memory:
		// EndTxn skips it (no marker goes nowhere).
		tp := tpKey{topic: meta.TopicID(d.id16()), part: int32(d.u32())}
		t.parts[tp] = int64(d.u64())
	}
	ng := d.uvarint()
	if ng > maxTxnItems {
		d.bad = true
		ng = 0
	}
	for range ng {
		if t.groups == nil {
			t.groups = make(map[string]map[meta.TopicPartition]meta.CommittedOffset)
		}
		grp := string(d.take(int(min(d.uvarint(), maxTxnItems))))
		m := make(map[meta.TopicPartition]meta.CommittedOffset)
		no := d.uvarint()
		if no > maxTxnItems {
			d.bad = true
			no = 0
		}
		for range no {
			var o meta.CommittedOffset
			o.TopicID = meta.TopicID(d.id16())
			o.Partition = int32(d.u32())
			o.Offset = int64(d.u64())
			o.LeaderEpoch = int32(d.u32())
			o.Metadata = string(d.take(int(min(d.uvarint(), maxTxnItems))))
			m[o.TopicPartition] = o
		}
		t.groups[grp] = m
	}
	if err := d.finish(); err != nil || t.pid < 0 || t.epoch < 0 || t.pid >= st.nextPID {
		return nil, fmt.Errorf("%w: transaction %q: %x", meta.ErrCorrupt, id, v)
	}
	return t, nil
}

// writeTxns writes the group's changed transactions and aborted index
// entries.
func writeTxns(tx kv.KVTx, g *group, put func(b, k []byte, fn func([]byte) []byte) error) error {
	for id := range g.txnDead {
		if _, reborn := g.txns[id]; !reborn {
			if err := tx.Delete(kv.BucketTxns, []byte(id)); err != nil {
				return err
			}
		}
	}
	for id, t := range g.txns {
		if err := put(kv.BucketTxns, []byte(id), func(v []byte) []byte { return appendTxnValue(v, t) }); err != nil {
			return err
		}
	}
	for _, a := range g.txnAborts {
		k := be.AppendUint64(appendTPKey(nil, a.tp), uint64(a.a.LastOffset))
		err := put(kv.BucketTxnAborted, k, func(v []byte) []byte {
			return be.AppendUint64(be.AppendUint64(append(v, recFormat), uint64(a.a.ProducerID)), uint64(a.a.FirstOffset))
		})
		if err != nil {
			return err
		}
	}
	for _, d := range g.partOrder {
		if !d.trimmed {
			continue
		}
		for _, a := range g.st.aborted[d.ps.tp][:abortedBelow(g.st.aborted[d.ps.tp], d.logStart)] {
			if err := tx.Delete(kv.BucketTxnAborted, be.AppendUint64(appendTPKey(nil, d.ps.tp), uint64(a.LastOffset))); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadTxns loads both buckets and derives the per-partition state.
func loadTxns(tx kv.KVTx, st *state, stale *staleRecords) error {
	err := tx.ForEach(kv.BucketTxns, func(k, v []byte) error {
		t, err := decodeTxnValue(string(k), v, st)
		if err != nil {
			return err
		}
		st.txns[t.id] = t
		st.indexTxn(t)
		return nil
	})
	if err != nil {
		return err
	}
	return tx.ForEach(kv.BucketTxnAborted, func(k, v []byte) error {
		if len(k) != 28 {
			return fmt.Errorf("%w: aborted transaction key %x", meta.ErrCorrupt, k)
		}
		ps, err := st.partByKey(k[:20])
		if errors.Is(err, errNoTopic) {
			stale.add(kv.BucketTxnAborted, k)
			return nil
		}
		if err != nil {
			return err
		}
		d := decoder{b: v}
		d.format()
		a := meta.AbortedTxn{ProducerID: int64(d.u64()), FirstOffset: int64(d.u64()), LastOffset: int64(be.Uint64(k[20:]))}
		if err := d.finish(); err != nil || a.FirstOffset > a.LastOffset {
			return fmt.Errorf("%w: aborted transaction %x: %x", meta.ErrCorrupt, k, v)
		}
		st.aborted[ps.tp] = append(st.aborted[ps.tp], a)
		return nil
	})
}

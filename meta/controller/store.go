package controller

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// The store (a KV: the embedded bbolt file <Config.Dir>/meta.db, or
// PostgreSQL) holds the buckets below. Open reads all of it into memory
// (state.go); afterwards it is only written, one transaction per commit
// group (committer.go).
//
// Buckets, keys and values (integers big-endian; every binary value
// starts with a format byte, 1 today, so a later version can tell old
// records from new):
//
//	meta        "format"            -> 1 byte: storeFormat
//	            "cluster_id"        -> the cluster id, created once
//	            "next_producer_id"  -> 8 bytes: next producer id to hand out
//	topics      topic id (16)       -> JSON topicRecord
//	partitions  topic id (16) + partition (4)
//	                                -> v | logStart (8) | next offset (8)
//	                                   [| clean end (8): first offset key
//	                                   cleaning has not judged, once it ran]
//	            (only partitions that were written to; others are at 0/0)
//	index       topic id (16) + partition (4) + base offset (8)
//	                                -> v | lastOffset (8) | segment id (16) |
//	                                   objectSize (8) | start (8) | length (8) |
//	                                   maxTimestamp (8) | objectKey (rest)
//	                                   (v = 2: the object is a compaction
//	                                   output; v is followed by its level (1))
//	producers   producer id (8)     -> v | epoch (2) | last use, unix ms (8)
//	                                   (stores of older versions: no last use)
//	            producer id (8) + topic id (16) + partition (4)
//	                                -> v | epoch (2) | n (1) |
//	                                   n × (first seq (4) | last seq (4) | base offset (8))
//	            (v = 3: a transaction marker, no object: see
//	            store_txn.go)
//	segments    commit time ns (8) + segment id (16)
//	                                -> v | uvarint n | n × (status (1) |
//	                                   varint baseOffset | varint logStartOffset)
//
// Index keys sort by partition, then offset, so a cursor Seek lands on a
// partition's entries in order. Segment keys sort by commit time, so
// pruning the oldest answers is a walk from the front.

const (
	storeFormat = 1
	recFormat   = 1 // first byte of every binary value
	// recFormatLevel opens an index value whose object is a compaction
	// output: the format byte, then the object's level (1 byte), then
	// the fields of a format-1 index value.
	recFormatLevel = 2
)

var be = binary.BigEndian

// The buckets are named in meta/kv (every store creates or checks them);
// what goes in them is written above.
var (
	bucketMeta       = kv.BucketMeta
	bucketTopics     = kv.BucketTopics
	bucketPartitions = kv.BucketPartitions
	bucketIndex      = kv.BucketIndex
	bucketProducers  = kv.BucketProducers
	bucketSegments   = kv.BucketSegments
	bucketOffsets    = kv.BucketOffsets

	keyFormat    = []byte("format")
	keyClusterID = []byte("cluster_id")
	keyNextPID   = []byte("next_producer_id")
)

// loadStore prepares a new store (format, cluster id) or checks an
// existing one, then reads all of it into memory. Records left over from
// deleted topics (see staleRecords) are dropped from the state and then
// deleted from the store, with one warning line.
func loadStore(store kv.KV, log *slog.Logger) (*state, error) {
	if err := store.Update(initStore); err != nil {
		return nil, fmt.Errorf("meta: init %s: %w", store, err)
	}
	var (
		st    *state
		stale staleRecords
	)
	err := store.View(func(tx kv.KVTx) error {
		var err error
		st, err = loadState(tx, &stale)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("meta: load %s: %w", store, err)
	}
	if len(stale.keys) > 0 {
		err := store.Update(func(tx kv.KVTx) error {
			for _, k := range stale.keys {
				if err := tx.Delete(k.bucket, k.key); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("meta: delete %d records of deleted topics from %s: %w", len(stale.keys), store, err)
		}
		log.Warn("meta: dropped records that name deleted topics (left by a topic delete of an older version); removed from the store",
			"store", store.String(), "records", len(stale.keys), "by_bucket", stale.counts())
	}
	return st, nil
}

// staleRecords collects the keys of records that name a topic the store
// does not hold. Versions before the fix for issue 11 left a deleted
// topic's producer states and committed offsets behind, and refusing
// such a store at load bricked the whole cluster after one topic delete.
// A topic id is random and never reused, so such records can belong to
// nothing but a deleted topic: they are dropped, not treated as
// corruption. A record naming a partition beyond an existing topic's
// count still is corruption: no operation shrinks a topic.
type staleRecords struct {
	keys []bucketKey
}

type bucketKey struct{ bucket, key []byte }

func (r *staleRecords) add(bucket, key []byte) {
	r.keys = append(r.keys, bucketKey{bucket: bucket, key: bytes.Clone(key)})
}

func (r *staleRecords) counts() string {
	n := map[string]int{}
	for _, k := range r.keys {
		n[string(k.bucket)]++
	}
	var out []string
	for b, c := range n {
		out = append(out, fmt.Sprintf("%s=%d", b, c))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// initStore writes the format and cluster id of a new store and checks
// the format of an existing one.
func initStore(tx kv.KVTx) error {
	f, err := tx.Get(bucketMeta, keyFormat)
	if err != nil {
		return err
	}
	switch {
	case f == nil:
		if err := tx.Put(bucketMeta, keyFormat, []byte{storeFormat}); err != nil {
			return err
		}
	case len(f) != 1 || f[0] != storeFormat:
		return fmt.Errorf("%w: store format %x, this version reads %d", meta.ErrCorrupt, f, storeFormat)
	}
	id, err := tx.Get(bucketMeta, keyClusterID)
	if err != nil {
		return err
	}
	if id == nil {
		if err := tx.Put(bucketMeta, keyClusterID, []byte(newClusterID())); err != nil {
			return err
		}
	}
	return nil
}

// newClusterID returns a random (version 4) UUID in the spelling Kafka
// uses for cluster ids: 22 characters of unpadded URL-safe base64.
func newClusterID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// topicRecord is a topic as stored.
type topicRecord struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"` // hex
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

func loadState(tx kv.KVTx, stale *staleRecords) (*state, error) {
	st := newState()
	cid, err := tx.Get(bucketMeta, keyClusterID)
	if err != nil {
		return nil, err
	}
	st.clusterID = string(cid)
	v, err := tx.Get(bucketMeta, keyNextPID)
	if err != nil {
		return nil, err
	}
	if v != nil {
		if len(v) != 8 {
			return nil, fmt.Errorf("%w: next producer id %x", meta.ErrCorrupt, v)
		}
		st.nextPID = int64(be.Uint64(v))
	}

	err = tx.ForEach(bucketTopics, func(k, v []byte) error {
		var r topicRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("%w: topic %x: %v", meta.ErrCorrupt, k, err)
		}
		var id meta.TopicID
		if n, err := hex.Decode(id[:], []byte(r.ID)); err != nil || n != len(id) || string(k) != string(id[:]) {
			return fmt.Errorf("%w: topic %x has id %q", meta.ErrCorrupt, k, r.ID)
		}
		if r.Partitions < 1 || st.topicsByName[r.Name] != nil {
			return fmt.Errorf("%w: topic %q: %d partitions or a second topic of that name", meta.ErrCorrupt, r.Name, r.Partitions)
		}
		st.addTopic(newTopicState(meta.Topic{Name: r.Name, ID: id, Partitions: r.Partitions, Configs: r.Configs}))
		return nil
	})
	if err != nil {
		return nil, err
	}
	st.sortNames()

	if err := loadOffsets(tx, st, stale); err != nil {
		return nil, err
	}
	// SASL (issue 14)
	if err := loadScram(tx, st); err != nil {
		return nil, err
	}
	err = tx.ForEach(bucketPartitions, func(k, v []byte) error {
		ps, err := st.partByKey(k)
		if errors.Is(err, errNoTopic) {
			stale.add(bucketPartitions, k)
			return nil
		}
		if err != nil {
			return err
		}
		d := decoder{b: v}
		d.format()
		ps.logStart = int64(d.u64())
		ps.next = int64(d.u64())
		if len(d.b) == 8 {
			ps.cleanEnd = int64(d.u64()) // written once a key cleaning ran
		}
		if err := d.finish(); err != nil || ps.logStart < 0 || ps.next < ps.logStart || ps.cleanEnd < 0 || ps.cleanEnd > ps.next {
			return fmt.Errorf("%w: partition %x: %x", meta.ErrCorrupt, k, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Entries of one segment share their object key string.
	keys := make(map[meta.SegmentID]string)
	err = tx.ForEach(bucketIndex, func(k, v []byte) error {
		if len(k) != 28 {
			return fmt.Errorf("%w: index key %x", meta.ErrCorrupt, k)
		}
		ps, err := st.partByKey(k[:20])
		if errors.Is(err, errNoTopic) {
			stale.add(bucketIndex, k)
			return nil
		}
		if err != nil {
			return err
		}
		e, level, err := decodeIndexEntry(k, v)
		if err != nil {
			return err
		}
		if key, ok := keys[e.SegmentID]; ok && key == e.ObjectKey {
			e.ObjectKey = key
		} else {
			keys[e.SegmentID] = e.ObjectKey
		}
		ps.entries.append(e)
		st.objs.ref(&e, level, e.SegmentID.Time().UnixMilli())
		return nil
	})
	st.objs.sortLoaded()
	if err != nil {
		return nil, err
	}

	loadMs := time.Now().UnixMilli()
	err = tx.ForEach(bucketProducers, func(k, v []byte) error {
		d := decoder{b: v}
		d.format()
		switch len(k) {
		case 8:
			pid := int64(be.Uint64(k))
			epoch := int16(d.u16())
			use := loadMs // older versions stored no last use: count from now
			if len(v) == 11 {
				use = int64(d.u64())
			}
			if err := d.finish(); err != nil || pid < 0 || pid >= st.nextPID || epoch < 0 {
				return fmt.Errorf("%w: producer %x: %x", meta.ErrCorrupt, k, v)
			}
			st.epochs[pid] = epoch
			st.pidUse[pid] = use
		case 28:
			ps, err := st.partByKey(k[8:])
			if errors.Is(err, errNoTopic) {
				stale.add(bucketProducers, k)
				return nil
			}
			if err != nil {
				return err
			}
			var pp prodPart
			pp.epoch = int16(d.u16())
			pp.n = d.u8()
			if pp.n > producerWindow {
				return fmt.Errorf("%w: producer state %x: %x", meta.ErrCorrupt, k, v)
			}
			for i := range int(pp.n) {
				pp.win[i] = seqBatch{first: int32(d.u32()), last: int32(d.u32()), baseOffset: int64(d.u64())}
			}
			if err := d.finish(); err != nil || pp.n == 0 {
				return fmt.Errorf("%w: producer state %x: %x", meta.ErrCorrupt, k, v)
			}
			st.prodParts[pidTP{pid: int64(be.Uint64(k)), tp: ps.tp}] = pp
		default:
			return fmt.Errorf("%w: producer key %x", meta.ErrCorrupt, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = tx.ForEach(bucketSegments, func(k, v []byte) error {
		if len(k) != len(segKey{}) {
			return fmt.Errorf("%w: segment key %x", meta.ErrCorrupt, k)
		}
		if _, err := decodeCommitResult(v); err != nil {
			return fmt.Errorf("segment %x: %w", k, err)
		}
		sk := segKey(k)
		st.segs[sk.id()] = append([]byte(nil), v...)
		st.segOrder = append(st.segOrder, sk)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := loadACLs(tx, st); err != nil {
		return nil, err
	}
	// Transactions (issue 15), after topics and producers.
	if err := loadTxns(tx, st, stale); err != nil {
		return nil, err
	}
	return st, st.verify()
}

func newTopicState(t meta.Topic) *topicState {
	ts := &topicState{topic: t, parts: make([]*partState, t.Partitions)}
	for i := range ts.parts {
		ts.parts[i] = &partState{tp: tpKey{topic: t.ID, part: int32(i)}}
	}
	return ts
}

// addTopic adds t to the maps (used while loading, before st is shared).
func (st *state) addTopic(t *topicState) {
	st.topicsByName[t.topic.Name] = t
	st.topicsByID[t.topic.ID] = t
	st.names = append(st.names, t.topic.Name)
}

func (st *state) sortNames() { slices.Sort(st.names) }

// errNoTopic: a record names a topic id the store does not hold (see
// staleRecords).
var errNoTopic = errors.New("meta: record of a deleted topic")

// partByKey finds the partition a 20-byte key (topic id + partition)
// names. A key naming a topic that does not exist is errNoTopic; one
// naming a partition beyond an existing topic's count is corruption.
func (st *state) partByKey(k []byte) (*partState, error) {
	if len(k) != 20 {
		return nil, fmt.Errorf("%w: partition key %x", meta.ErrCorrupt, k)
	}
	t := st.topicsByID[meta.TopicID(k[:16])]
	if t == nil {
		return nil, errNoTopic
	}
	p := int32(be.Uint32(k[16:]))
	if p < 0 || int(p) >= len(t.parts) {
		return nil, fmt.Errorf("%w: key %x names no partition", meta.ErrCorrupt, k)
	}
	return t.parts[p], nil
}

// verify checks invariant 3 (doc.go) for every partition, and that every
// producer id in use was handed out.
func (st *state) verify() error {
	for _, t := range st.topicsByID {
		for _, ps := range t.parts {
			// The first entry holds the log start (DeleteRecords may have
			// moved it inside the entry); the rest are dense.
			want := ps.logStart
			if ps.entries.len() > 0 {
				if first := ps.entries.at(0); first.BaseOffset <= ps.logStart && first.LastOffset >= ps.logStart {
					want = first.BaseOffset
				}
			}
			for i := range ps.entries.len() {
				e := ps.entries.at(i)
				if e.BaseOffset != want || e.LastOffset < e.BaseOffset {
					return fmt.Errorf("%w: %s/%d: entry %d covers [%d, %d], want it to start at %d",
						meta.ErrCorrupt, t.topic.Name, ps.tp.part, i, e.BaseOffset, e.LastOffset, want)
				}
				want = e.LastOffset + 1
			}
			if want != ps.next {
				return fmt.Errorf("%w: %s/%d: entries end at %d, high watermark is %d",
					meta.ErrCorrupt, t.topic.Name, ps.tp.part, want, ps.next)
			}
		}
	}
	for k := range st.prodParts {
		if k.pid < 0 {
			return fmt.Errorf("%w: producer state for id %d", meta.ErrCorrupt, k.pid)
		}
	}
	return nil
}

// writeGroup writes a group's changes in tx. Keys are built in kbuf
// (a KV copies keys); values are appended to *arena, which must not be
// reused before tx has ended (a KV may keep values until the commit).
func writeGroup(tx kv.KVTx, g *group, arena *[]byte) error {
	var kbuf [28]byte
	a := (*arena)[:0]
	defer func() { *arena = a }()
	// put appends the value built by fn to the arena and puts it.
	put := func(b, k []byte, fn func([]byte) []byte) error {
		start := len(a)
		a = fn(a)
		return tx.Put(b, k, a[start:len(a):len(a)])
	}

	for _, t := range g.newTopics {
		v, err := json.Marshal(topicRecord{
			Name:       t.topic.Name,
			ID:         t.topic.ID.String(),
			Partitions: t.topic.Partitions,
			Configs:    t.topic.Configs,
		})
		if err != nil {
			return err
		}
		if err := tx.Put(bucketTopics, t.topic.ID[:], v); err != nil {
			return err
		}
	}

	for _, d := range g.partOrder {
		k := appendTPKey(kbuf[:0], d.ps.tp)
		err := put(bucketPartitions, k, func(v []byte) []byte {
			v = append(v, recFormat)
			v = be.AppendUint64(v, uint64(d.logStart))
			v = be.AppendUint64(v, uint64(d.next))
			if d.cleanEnd > 0 {
				v = be.AppendUint64(v, uint64(d.cleanEnd))
			}
			return v
		})
		if err != nil {
			return err
		}
		if d.trimmed {
			for i := range trimCount(d.ps, d.logStart) {
				k := be.AppendUint64(appendTPKey(kbuf[:0], d.ps.tp), uint64(d.ps.entries.at(i).BaseOffset))
				if err := tx.Delete(bucketIndex, k); err != nil {
					return err
				}
			}
		}
		// Swaps after the trim: a key both trimmed and swapped in is
		// put (the last write to a key wins, in both stores), an entry
		// swapped in wholly below the new log start is not written, so
		// the store holds what mergeLocked leaves in memory.
		for _, sw := range d.swaps {
			for i := sw.i; i < sw.j; i++ {
				k := be.AppendUint64(appendTPKey(kbuf[:0], d.ps.tp), uint64(d.ps.entries.at(i).BaseOffset))
				if err := tx.Delete(bucketIndex, k); err != nil {
					return err
				}
			}
			for i := range sw.with {
				e := &sw.with[i]
				if e.LastOffset < d.logStart {
					continue
				}
				k := be.AppendUint64(appendTPKey(kbuf[:0], d.ps.tp), uint64(e.BaseOffset))
				if err := put(bucketIndex, k, func(v []byte) []byte { return appendIndexValue(v, e, sw.level) }); err != nil {
					return err
				}
			}
		}
		for i := range d.entries {
			e := &d.entries[i]
			if e.LastOffset < d.logStart {
				continue // deleted in this same group
			}
			k := be.AppendUint64(appendTPKey(kbuf[:0], d.ps.tp), uint64(e.BaseOffset))
			if err := put(bucketIndex, k, func(v []byte) []byte { return appendIndexValue(v, e, 0) }); err != nil {
				return err
			}
		}
	}

	// A producer id's record holds its epoch and last use: written when
	// either changed in the group.
	putPID := func(pid int64) error {
		epoch, _ := g.epoch(pid)
		use := g.st.pidUse[pid]
		if ms, ok := g.pidUse[pid]; ok {
			use = ms
		}
		k := be.AppendUint64(kbuf[:0], uint64(pid))
		return put(bucketProducers, k, func(v []byte) []byte {
			return be.AppendUint64(be.AppendUint16(append(v, recFormat), uint16(epoch)), uint64(use))
		})
	}
	for pid := range g.epochs {
		if err := putPID(pid); err != nil {
			return err
		}
	}
	for pid := range g.pidUse {
		if _, done := g.epochs[pid]; !done {
			if err := putPID(pid); err != nil {
				return err
			}
		}
	}
	if err := writeExpired(tx, g); err != nil {
		return err
	}
	for key, pp := range g.prodParts {
		k := appendTPKey(be.AppendUint64(kbuf[:0], uint64(key.pid)), key.tp)
		if err := put(bucketProducers, k, func(v []byte) []byte { return appendProdPart(v, &pp) }); err != nil {
			return err
		}
	}

	if g.pidChanged {
		if err := put(bucketMeta, keyNextPID, func(v []byte) []byte { return be.AppendUint64(v, uint64(g.nextPID)) }); err != nil {
			return err
		}
	}

	if err := writeOffsets(tx, g.offsets); err != nil {
		return err
	}
	// SASL (issue 14)
	if err := writeScram(tx, g.scram); err != nil {
		return err
	}

	st := g.st
	for i := st.segHead; i < st.segHead+g.prune; i++ {
		if err := tx.Delete(bucketSegments, st.segOrder[i][:]); err != nil {
			return err
		}
	}
	for i := range g.segs {
		if err := tx.Put(bucketSegments, g.segs[i].key[:], g.segs[i].enc); err != nil {
			return err
		}
	}
	if err := writeACLs(tx, g.acls); err != nil {
		return err
	}
	// Transactions (issue 15)
	if err := writeTxns(tx, g, put); err != nil {
		return err
	}
	return writeTopicChanges(tx, g)
}

func appendTPKey(dst []byte, tp tpKey) []byte {
	dst = append(dst, tp.topic[:]...)
	return be.AppendUint32(dst, uint32(tp.part))
}

func appendIndexValue(v []byte, e *meta.IndexEntry, level int8) []byte {
	if e.IsMarker() {
		return appendMarkerValue(v, e)
	}
	if level == 0 {
		v = append(v, recFormat)
	} else {
		v = append(v, recFormatLevel, byte(level))
	}
	v = be.AppendUint64(v, uint64(e.LastOffset))
	v = append(v, e.SegmentID[:]...)
	v = be.AppendUint64(v, uint64(e.ObjectSize))
	v = be.AppendUint64(v, uint64(e.Start))
	v = be.AppendUint64(v, uint64(e.Length))
	v = be.AppendUint64(v, uint64(e.MaxTimestamp))
	return append(v, e.ObjectKey...)
}

// decodeIndexEntry decodes an index record; k is its 28-byte key. It
// returns the level of the entry's object too (0 for format 1 records).
func decodeIndexEntry(k, v []byte) (meta.IndexEntry, int8, error) {
	e := meta.IndexEntry{
		TopicID:    meta.TopicID(k[:16]),
		Partition:  int32(be.Uint32(k[16:20])),
		BaseOffset: int64(be.Uint64(k[20:28])),
	}
	if len(v) > 0 && v[0] == recFormatMarker {
		return decodeMarkerValue(e, k, v)
	}
	d := decoder{b: v}
	var level int8
	if len(v) > 0 && v[0] == recFormatLevel {
		d.u8()
		level = int8(d.u8())
		if level < 1 {
			d.bad = true
		}
	} else {
		d.format()
	}
	e.LastOffset = int64(d.u64())
	e.SegmentID = meta.SegmentID(d.id16())
	e.ObjectSize = int64(d.u64())
	e.Start = int64(d.u64())
	e.Length = int64(d.u64())
	e.MaxTimestamp = int64(d.u64())
	e.ObjectKey = string(d.rest())
	if err := d.finish(); err != nil {
		return meta.IndexEntry{}, 0, fmt.Errorf("index entry %x: %w", k, err)
	}
	return e, level, nil
}

func appendProdPart(v []byte, pp *prodPart) []byte {
	v = append(v, recFormat)
	v = be.AppendUint16(v, uint16(pp.epoch))
	v = append(v, pp.n)
	for _, b := range pp.win[:pp.n] {
		v = be.AppendUint32(v, uint32(b.first))
		v = be.AppendUint32(v, uint32(b.last))
		v = be.AppendUint64(v, uint64(b.baseOffset))
	}
	return v
}

func appendCommitResult(v []byte, rs []meta.ChunkResult) []byte {
	v = append(v, recFormat)
	v = binary.AppendUvarint(v, uint64(len(rs)))
	for _, r := range rs {
		v = append(v, byte(r.Status))
		v = binary.AppendVarint(v, r.BaseOffset)
		v = binary.AppendVarint(v, r.LogStartOffset)
	}
	return v
}

func decodeCommitResult(v []byte) (meta.CommitResult, error) {
	d := decoder{b: v}
	d.format()
	n := d.uvarint()
	// Each result takes at least 3 bytes; refuse a count the value
	// cannot hold before allocating for it.
	if n > uint64(len(v))/3 {
		return meta.CommitResult{}, fmt.Errorf("%w: commit result of %d chunks in %d bytes", meta.ErrCorrupt, n, len(v))
	}
	r := meta.CommitResult{Chunks: make([]meta.ChunkResult, n)}
	for i := range r.Chunks {
		r.Chunks[i] = meta.ChunkResult{Status: meta.ChunkStatus(d.u8()), BaseOffset: d.varint(), LogStartOffset: d.varint()}
	}
	if err := d.finish(); err != nil {
		return meta.CommitResult{}, err
	}
	return r, nil
}

// decoder reads big-endian fields with a sticky error: a short read
// yields zeros and marks the decoder bad; finish reports it once.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) take(n int) []byte {
	if d.bad || len(d.b) < n {
		d.bad = true
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) format() {
	if d.u8() != recFormat {
		d.bad = true
	}
}

func (d *decoder) u8() uint8      { return d.take(1)[0] }
func (d *decoder) u16() uint16    { return be.Uint16(d.take(2)) }
func (d *decoder) u32() uint32    { return be.Uint32(d.take(4)) }
func (d *decoder) u64() uint64    { return be.Uint64(d.take(8)) }
func (d *decoder) id16() [16]byte { return [16]byte(d.take(16)) }

func (d *decoder) rest() []byte {
	p := d.b
	d.b = nil
	return p
}

func (d *decoder) uvarint() uint64 {
	if d.bad {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.bad {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return x
}

// finish reports a short, malformed or overlong value.
func (d *decoder) finish() error {
	if d.bad || len(d.b) != 0 {
		return fmt.Errorf("%w: malformed record", meta.ErrCorrupt)
	}
	return nil
}

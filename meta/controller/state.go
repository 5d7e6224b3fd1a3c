package controller

import (
	"slices"
	"sort"

	"sluice.dev/meta"
)

// tpKey names one partition inside meta.
type tpKey struct {
	topic meta.TopicID
	part  int32
}

// state is everything meta knows, in memory. Open loads it from bbolt;
// afterwards only the committer changes it (see Service.mu).
type state struct {
	clusterID string
	nextPID   int64 // next producer id to allocate

	topicsByName map[string]*topicState
	topicsByID   map[meta.TopicID]*topicState
	names        []string // all topic names, sorted

	// epochs holds the current epoch of every producer id InitProducerID
	// handed out.
	epochs map[int64]int16
	// prodParts holds sequence state per (producer id, partition).
	prodParts map[pidTP]prodPart
	// pidUse holds when each producer id of epochs was last used (unix
	// ms, as stored: updated at most every touchEvery), for expiry.
	pidUse map[int64]int64

	// segs holds the answers to committed segments, encoded (see
	// appendCommitResult), for idempotent re-commits. segOrder lists their
	// store keys in commit order from segHead on, so that pruning takes
	// the oldest from the front.
	segs     map[meta.SegmentID][]byte
	segOrder []segKey
	segHead  int

	// objs are the objects the index points into, and the dead ones
	// awaiting deletion (objects.go).
	objs *objects

	// offsets holds consumer groups' committed offsets.
	offsets map[string]map[meta.TopicPartition]meta.CommittedOffset

	// acls holds the ACL bindings by meta.ACLKey (acls.go).
	acls map[string]meta.ACLBinding
	// SASL (issue 14): scram holds SCRAM credentials (scram.go).
	scram map[scramKey]*meta.ScramCredential

	// Transactions (issue 15, txn.go): txns by transactional id, the
	// same by producer id, the first offsets of ongoing transactions
	// per partition (derived) and the aborted transactions index per
	// partition, sorted by LastOffset.
	txns     map[string]*txnState
	txnPID   map[int64]*txnState
	openTxns map[tpKey]map[int64]int64
	aborted  map[tpKey][]meta.AbortedTxn
}

func newState() *state {
	return &state{
		topicsByName: make(map[string]*topicState),
		topicsByID:   make(map[meta.TopicID]*topicState),
		epochs:       make(map[int64]int16),
		prodParts:    make(map[pidTP]prodPart),
		pidUse:       make(map[int64]int64),
		segs:         make(map[meta.SegmentID][]byte),
		offsets:      make(map[string]map[meta.TopicPartition]meta.CommittedOffset),
		objs:         newObjects(),
		acls:         make(map[string]meta.ACLBinding),
		scram:        make(map[scramKey]*meta.ScramCredential),
		txns:         make(map[string]*txnState),
		txnPID:       make(map[int64]*txnState),
		openTxns:     make(map[tpKey]map[int64]int64),
		aborted:      make(map[tpKey][]meta.AbortedTxn),
	}
}

// topicState is one topic. topic is never modified after creation;
// its Configs map is copied before it is handed out.
type topicState struct {
	topic meta.Topic
	parts []*partState
}

// partState is one partition.
type partState struct {
	tp       tpKey
	logStart int64
	next     int64 // high watermark: the next offset to assign
	// cleanEnd is the first offset key cleaning has not judged
	// (compacted topics; 0 before the first cleaning).
	cleanEnd int64
	entries  entryList
}

// segKey is a segment's key in the segments bucket: the big-endian unix
// nanosecond commit time (made strictly increasing by the committer) and
// the segment id. Keys sort in commit order, so pruning the oldest is a
// walk from the front.
type segKey [24]byte

func (k segKey) id() meta.SegmentID {
	var id meta.SegmentID
	copy(id[:], k[8:])
	return id
}

func (k segKey) nanos() int64 { return int64(be.Uint64(k[:8])) }

func makeSegKey(nanos int64, id meta.SegmentID) segKey {
	var k segKey
	be.PutUint64(k[:8], uint64(nanos))
	copy(k[8:], id[:])
	return k
}

// segLen is the number of segment answers kept.
func (st *state) segLen() int { return len(st.segOrder) - st.segHead }

// lastSegNanos is the commit time of the newest kept answer, 0 if none.
func (st *state) lastSegNanos() int64 {
	if st.segLen() == 0 {
		return 0
	}
	return st.segOrder[len(st.segOrder)-1].nanos()
}

// entryBlock is the capacity of one block of an entryList.
const entryBlock = 512

// entryList holds a partition's index entries in blocks of entryBlock,
// so that appending never copies a long partition's whole index (which
// would happen under the write lock), trimming the front for retention
// drops whole blocks, and a compaction swap copies only the entries from
// the swapped range on (swaps hit recent data, near the tail). Entries
// are sorted by BaseOffset and dense (invariant 3 in doc.go).
//
// Readers may keep a view (a copy of the struct with its own blocks
// slice header) and read it without Service.mu (timestamps.go): so no
// method writes a slot a view could see. append writes only past every
// block's length, trimFront only moves off and drops blocks, and
// replace builds new blocks for everything from the swapped range on.
type entryList struct {
	// blocks: every block but the last is full; the first block's
	// first off entries are no longer in the list.
	blocks [][]meta.IndexEntry
	off    int
	n      int
}

func (l *entryList) len() int { return l.n }

func (l *entryList) at(i int) *meta.IndexEntry {
	p := i + l.off
	return &l.blocks[p/entryBlock][p%entryBlock]
}

func (l *entryList) append(es ...meta.IndexEntry) {
	for len(es) > 0 {
		if len(l.blocks) == 0 || len(l.blocks[len(l.blocks)-1]) == entryBlock {
			l.blocks = append(l.blocks, make([]meta.IndexEntry, 0, entryBlock))
		}
		b := &l.blocks[len(l.blocks)-1]
		k := min(entryBlock-len(*b), len(es))
		*b = append(*b, es[:k]...)
		l.n += k
		es = es[k:]
	}
}

// find returns the index of the entry holding offset: the last entry
// whose BaseOffset is <= offset, or -1 when offset is before the first.
func (l *entryList) find(offset int64) int {
	if l.n == 0 {
		return -1
	}
	// The last block whose first live entry starts at or before offset.
	first := func(bi int) int {
		if bi == 0 {
			return l.off
		}
		return 0
	}
	bi := sort.Search(len(l.blocks), func(i int) bool { return l.blocks[i][first(i)].BaseOffset > offset }) - 1
	if bi < 0 {
		return -1
	}
	b := l.blocks[bi][first(bi):]
	ei := sort.Search(len(b), func(i int) bool { return b[i].BaseOffset > offset }) - 1
	return bi*entryBlock + first(bi) + ei - l.off
}

// copyRange appends entries [from, from+n) to dst.
func (l *entryList) copyRange(dst []meta.IndexEntry, from, n int) []meta.IndexEntry {
	for n > 0 && from < l.n {
		p := from + l.off
		b := l.blocks[p/entryBlock][p%entryBlock:]
		k := min(n, len(b))
		dst = append(dst, b[:k]...)
		from += k
		n -= k
	}
	return dst
}

// trimFront drops the first k entries.
func (l *entryList) trimFront(k int) {
	k = min(k, l.n)
	if k <= 0 {
		return
	}
	l.n -= k
	l.off += k
	drop := l.off / entryBlock
	if l.n == 0 {
		*l = entryList{}
		return
	}
	// Dropped blocks are released, not cleared: a view may still read
	// them.
	l.blocks = l.blocks[drop:]
	l.off -= drop * entryBlock
}

// replace puts with in place of entries [i, j).
func (l *entryList) replace(i, j int, with []meta.IndexEntry) {
	tail := l.copyRange(nil, j, l.n-j)
	p := i + l.off
	bi := p / entryBlock
	head := slices.Clone(l.blocks[bi][:p%entryBlock])
	l.blocks = l.blocks[:bi:bi] // never append into a block a view holds
	if len(head) > 0 {
		// The partial block is rebuilt from its live prefix: a new
		// block, full-capacity, so that later appends go to it.
		nb := make([]meta.IndexEntry, len(head), entryBlock)
		copy(nb, head)
		l.blocks = append(l.blocks, nb)
	}
	l.n = i
	if bi == 0 {
		// The rebuilt first block starts at slot off still: keep it.
		if len(head) == 0 {
			l.off = 0
		}
	}
	l.append(with...)
	l.append(tail...)
}

// prodPart is the sequence state of one producer on one partition: the
// epoch of its latest batch and up to producerWindow of its latest
// appended batches, oldest first.
type prodPart struct {
	epoch int16
	n     uint8
	win   [producerWindow]seqBatch
}

// seqBatch is one appended batch of an idempotent producer.
type seqBatch struct {
	first, last int32 // sequence numbers, inclusive
	baseOffset  int64
}

type pidTP struct {
	pid int64
	tp  tpKey
}

// group is the overlay of one commit group: the changes its ops made,
// read through by later ops of the same group, written to bbolt in one
// transaction and merged into state only after that transaction
// succeeded. The committer reuses one group; reset empties it.
type group struct {
	st *state

	newTopics    []*topicState
	topicsByName map[string]*topicState
	topicsByID   map[meta.TopicID]*topicState

	parts     map[*partState]*partDelta
	partOrder []*partDelta // in order of first touch
	deltaFree []*partDelta // recycled deltas

	epochs     map[int64]int16
	prodParts  map[pidTP]prodPart
	nextPID    int64
	pidChanged bool
	// pidUse: producer ids used in this group (written with their epoch);
	// deadPIDs: producer ids expired in this group.
	pidUse     map[int64]int64
	deadPIDs   map[int64]bool
	touchEvery int64 // ms; see touchPID
	nowMs      int64 // the commit time of the op being applied

	segs      []newSeg
	segIdx    map[meta.SegmentID]int // index in segs
	lastNanos int64                  // commit time of the newest key, this group included
	prune     int                    // number of segOrder entries to drop from segHead

	seq uint64 // number of the commit being applied, for index runs

	offsets []offsetChange // committed offsets, in order

	topicChanges []topicChange // deleted or changed topics, in order

	// objsNew are objects committed in this group: agents' segments and
	// compaction outputs. One that no entry points into after the merge
	// is dead at once (objects.bornDead).
	objsNew []bornObj
	// forget: deleted objects meta stops tracking (CompleteDelete).
	forget []meta.SegmentID

	// acls: ACL bindings created or deleted in this group (acls.go).
	acls map[string]aclChange
	// SASL (issue 14): SCRAM credentials changed, in order (scram.go).
	scram []scramChange
	// Transactions (issue 15): changed transactional ids (clones of
	// the state's) and aborted transactions index entries added.
	txns      map[string]*txnState
	txnAborts []txnAbort
	txnDead   map[string]bool // expired in this group
}

type bornObj struct {
	id    meta.SegmentID
	key   string
	size  int64
	level int8
}

// entrySwap replaces the committed entries [i, j) of a partition by
// with, entries of a compaction output of level (swap.go).
type entrySwap struct {
	i, j  int
	with  []meta.IndexEntry
	level int8
}

// partDelta is a partition's change in a group.
type partDelta struct {
	ps       *partState
	next     int64
	logStart int64
	cleanEnd int64
	// trimmed: logStart moved forward in this group (DeleteRecords).
	trimmed bool
	entries []meta.IndexEntry // new entries, appended after ps.entries
	// swaps replace ranges of the committed entries (compaction); their
	// ranges never overlap. Applied before the appends and the trim.
	swaps []entrySwap
	// runSeq is the group.seq of the commit whose chunk ended the last
	// entry, while the next chunk of that commit may still extend it;
	// 0 when no run is open.
	runSeq uint64
	// stable is the partition's transaction state after the group, set
	// by mergeLocked for its commit events (issue 15/13).
	stable meta.StableState
}

type newSeg struct {
	key segKey
	enc []byte // encoded CommitResult; also the bbolt value
}

func newGroup(st *state) *group {
	return &group{
		st:           st,
		topicsByName: make(map[string]*topicState),
		topicsByID:   make(map[meta.TopicID]*topicState),
		parts:        make(map[*partState]*partDelta),
		epochs:       make(map[int64]int16),
		prodParts:    make(map[pidTP]prodPart),
		pidUse:       make(map[int64]int64),
		deadPIDs:     make(map[int64]bool),
		segIdx:       make(map[meta.SegmentID]int),
		acls:         make(map[string]aclChange),
		txns:         make(map[string]*txnState),
		txnDead:      make(map[string]bool),
	}
}

// reset empties the group for the next one, keeping its allocations.
func (g *group) reset() {
	clear(g.newTopics)
	g.newTopics = g.newTopics[:0]
	clear(g.topicsByName)
	clear(g.topicsByID)
	clear(g.parts)
	for _, d := range g.partOrder {
		clear(d.entries)
		clear(d.swaps)
		*d = partDelta{entries: d.entries[:0], swaps: d.swaps[:0]}
		g.deltaFree = append(g.deltaFree, d)
	}
	clear(g.partOrder)
	g.partOrder = g.partOrder[:0]
	clear(g.epochs)
	clear(g.prodParts)
	clear(g.pidUse)
	clear(g.deadPIDs)
	g.nextPID = g.st.nextPID
	g.pidChanged = false
	clear(g.segs)
	g.segs = g.segs[:0]
	clear(g.segIdx)
	g.lastNanos = g.st.lastSegNanos()
	g.prune = 0
	clear(g.offsets)
	g.offsets = g.offsets[:0]
	clear(g.topicChanges)
	g.topicChanges = g.topicChanges[:0]
	clear(g.objsNew)
	g.objsNew = g.objsNew[:0]
	g.forget = g.forget[:0]
	clear(g.acls)
	clear(g.scram)
	g.scram = g.scram[:0]
	clear(g.txns)
	clear(g.txnDead)
	clear(g.txnAborts)
	g.txnAborts = g.txnAborts[:0]
}

// dirty reports whether the group changed anything that must be written.
func (g *group) dirty() bool {
	return len(g.newTopics) > 0 || len(g.partOrder) > 0 || len(g.epochs) > 0 || len(g.pidUse) > 0 || len(g.deadPIDs) > 0 ||
		len(g.prodParts) > 0 || g.pidChanged || len(g.segs) > 0 || len(g.offsets) > 0 || len(g.topicChanges) > 0 ||
		len(g.acls) > 0 ||
		len(g.scram) > 0 || // SASL (issue 14)
		len(g.txns) > 0 || len(g.txnAborts) > 0 || len(g.txnDead) > 0 // transactions (issue 15)
}

func (g *group) topicByName(name string) *topicState {
	if t, ok := g.topicsByName[name]; ok {
		return t
	}
	return g.st.topicsByName[name]
}

func (g *group) topicByID(id meta.TopicID) *topicState {
	if t, ok := g.topicsByID[id]; ok {
		return t
	}
	return g.st.topicsByID[id]
}

func (g *group) addTopic(t *topicState) {
	g.newTopics = append(g.newTopics, t)
	g.topicsByName[t.topic.Name] = t
	g.topicsByID[t.topic.ID] = t
}

// partExists reports whether tp names a partition in the group's view.
func (g *group) partExists(tp meta.TopicPartition) bool {
	t := g.topicByID(tp.TopicID)
	return t != nil && tp.Partition >= 0 && int(tp.Partition) < len(t.parts)
}

// part returns ps's delta, creating it on first touch.
func (g *group) part(ps *partState) *partDelta {
	if d, ok := g.parts[ps]; ok {
		return d
	}
	var d *partDelta
	if n := len(g.deltaFree); n > 0 {
		d = g.deltaFree[n-1]
		g.deltaFree = g.deltaFree[:n-1]
	} else {
		d = new(partDelta)
	}
	d.ps = ps
	d.next = ps.next
	d.logStart = ps.logStart
	d.cleanEnd = ps.cleanEnd
	d.stable = meta.StableState{}
	g.parts[ps] = d
	g.partOrder = append(g.partOrder, d)
	return d
}

func (g *group) epoch(pid int64) (int16, bool) {
	if g.deadPIDs[pid] {
		return 0, false
	}
	if e, ok := g.epochs[pid]; ok {
		return e, true
	}
	e, ok := g.st.epochs[pid]
	return e, ok
}

func (g *group) prodPart(k pidTP) (prodPart, bool) {
	if g.deadPIDs[k.pid] {
		return prodPart{}, false
	}
	if p, ok := g.prodParts[k]; ok {
		return p, true
	}
	p, ok := g.st.prodParts[k]
	return p, ok
}

// segment returns the stored answer to a segment committed before or
// earlier in this group.
func (g *group) segment(id meta.SegmentID) ([]byte, bool) {
	if i, ok := g.segIdx[id]; ok {
		return g.segs[i].enc, true
	}
	enc, ok := g.st.segs[id]
	return enc, ok
}

func (g *group) addSegment(id meta.SegmentID, enc []byte, nowNanos int64) {
	// Keys must increase strictly so that they sort in commit order and
	// never collide, whatever the clock does.
	n := max(nowNanos, g.lastNanos+1)
	g.lastNanos = n
	g.segIdx[id] = len(g.segs)
	g.segs = append(g.segs, newSeg{key: makeSegKey(n, id), enc: enc})
}

// planPrune decides how many of the oldest kept segment answers this
// group drops: those committed before cutoff, and as many as it takes to
// keep at most limit answers. At most maxPrune go per group so that a
// large backlog (after lowering the limit, or a long pause) is worked off
// over several groups instead of stalling one.
func (g *group) planPrune(cutoffNanos int64, limit, maxPrune int) {
	st := g.st
	total := st.segLen() + len(g.segs)
	i := st.segHead
	for i < len(st.segOrder) && i-st.segHead < maxPrune {
		k := st.segOrder[i]
		if k.nanos() >= cutoffNanos && total <= limit {
			break
		}
		// An op of this group may have been answered from an entry
		// pruned here; that answer was durable, so it stands.
		total--
		i++
	}
	g.prune = i - st.segHead
}

// mergeLocked applies the group to state. It must be called with
// Service.mu held for writing, after the group was written durably.
func (g *group) mergeLocked() {
	st := g.st
	for _, t := range g.newTopics {
		st.topicsByName[t.topic.Name] = t
		st.topicsByID[t.topic.ID] = t
		i, _ := slices.BinarySearch(st.names, t.topic.Name)
		st.names = slices.Insert(st.names, i, t.topic.Name)
	}
	objs, now := st.objs, g.nowMs
	for _, d := range g.partOrder {
		d.ps.next = d.next
		d.ps.logStart = d.logStart
		d.ps.cleanEnd = d.cleanEnd
		// Swaps first, last range first: their indices are into the
		// committed list. Then appends, then the trim (writeGroup
		// writes the same outcome: see there).
		slices.SortFunc(d.swaps, func(a, b entrySwap) int { return b.i - a.i })
		for _, sw := range d.swaps {
			for k := sw.i; k < sw.j; k++ {
				objs.unref(d.ps.entries.at(k), now)
			}
			d.ps.entries.replace(sw.i, sw.j, sw.with)
			for k := range sw.with {
				objs.ref(&sw.with[k], sw.level, now)
			}
		}
		for k := range d.entries {
			objs.ref(&d.entries[k], 0, now)
		}
		d.ps.entries.append(d.entries...)
		if d.trimmed {
			n := trimCount(d.ps, d.logStart)
			for k := range n {
				objs.unref(d.ps.entries.at(k), now)
			}
			d.ps.entries.trimFront(n)
		}
	}
	for pid, e := range g.epochs {
		st.epochs[pid] = e
	}
	for k, p := range g.prodParts {
		st.prodParts[k] = p
	}
	for pid, ms := range g.pidUse {
		st.pidUse[pid] = ms
	}
	mergeExpiredLocked(st, g.deadPIDs)
	st.nextPID = g.nextPID
	mergeOffsetsLocked(st, g.offsets)
	mergeTopicChangesLocked(st, g.topicChanges, now)
	mergeACLsLocked(st, g.acls)
	mergeScramLocked(st, g.scram) // SASL (issue 14)
	mergeTxnsLocked(st, g)        // transactions (issue 15)
	// read_committed from the agents' index caches (issue 15/13): every
	// partition the group touched tells its state after the group with
	// its events. The LSO and the aborted index change only in groups
	// that touch the partition (a marker, a transactional write, a trim).
	for _, d := range g.partOrder {
		d.stable = st.stableLocked(d.ps)
	}
	for _, b := range g.objsNew {
		objs.bornDead(b.id, b.key, b.size, b.level, now)
	}
	objs.forget(g.forget)
	for i := 0; i < g.prune; i++ {
		k := st.segOrder[st.segHead]
		delete(st.segs, k.id())
		st.segOrder[st.segHead] = segKey{}
		st.segHead++
	}
	// Compact the order queue once its dead front outweighs the live part.
	if st.segHead > 1024 && st.segHead > len(st.segOrder)/2 {
		n := copy(st.segOrder, st.segOrder[st.segHead:])
		st.segOrder = st.segOrder[:n]
		st.segHead = 0
	}
	for _, s := range g.segs {
		st.segs[s.key.id()] = s.enc
		st.segOrder = append(st.segOrder, s.key)
	}
}

// events lists the group's new index entries as commit events, each
// with its partition's high watermark after the group.
func (g *group) events() []meta.CommitEvent {
	n := 0
	for _, d := range g.partOrder {
		n += len(d.entries)
		if d.trimmed {
			n++
		}
		for _, sw := range d.swaps {
			n += len(sw.with)
		}
	}
	if len(g.acls) > 0 {
		n++
	}
	if n == 0 {
		return nil
	}
	evs := make([]meta.CommitEvent, 0, n)
	if len(g.acls) > 0 {
		// One event for any number of changes: agents re-read them all.
		evs = append(evs, meta.CommitEvent{ACLs: true})
	}
	for _, d := range g.partOrder {
		if d.trimmed {
			evs = append(evs, meta.CommitEvent{
				Entry:          meta.IndexEntry{TopicID: d.ps.tp.topic, Partition: d.ps.tp.part, BaseOffset: d.logStart, LastOffset: d.logStart - 1},
				HighWatermark:  d.next,
				LogStartOffset: d.logStart,
				Trim:           true,
				Stable:         d.stable,
			})
		}
		// Swaps in offset order (mergeLocked sorted them last first).
		for k := len(d.swaps) - 1; k >= 0; k-- {
			for _, e := range d.swaps[k].with {
				evs = append(evs, meta.CommitEvent{Entry: e, HighWatermark: d.next, LogStartOffset: d.logStart, Swap: true, Stable: d.stable})
			}
		}
		for _, e := range d.entries {
			ev := meta.CommitEvent{Entry: e, HighWatermark: d.next, LogStartOffset: d.logStart, Stable: d.stable}
			if e.Control == meta.ControlAbort {
				ev.AbortFirstOffset = g.abortFirst(d.ps.tp, e.BaseOffset)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

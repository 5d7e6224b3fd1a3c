package controller

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"sluice.dev/meta"
)

// The transaction coordinator (issue 15, docs/transactions.md).
//
// A transactional id's state is one txnState, kept in memory and stored
// whole in the txns bucket whenever it changes (store_txn.go). Every
// change goes through the committer like any write, so the markers an
// EndTxn places, the transaction's new state and the offsets it
// commits are one store transaction: there is no prepared state a
// failover could find half done.
//
// States: Empty (no transaction) and Ongoing (partitions or a group
// added). AddPartitionsToTxn and AddOffsetsToTxn move Empty to Ongoing;
// EndTxn and the timeout janitor move Ongoing back to Empty. A newer
// epoch (InitProducerID) fences the older ones; it first aborts the
// transaction the old epoch left open, in the same write.
//
// Per partition the state holds, derived from the txnStates (rebuilt by
// merge and by Open), the first offset of every ongoing transaction
// that wrote there (openTxns, for the last stable offset), and, stored,
// the aborted transactions index (aborted, for read_committed fetches).

// defaultMaxTxnTimeout is Kafka's transaction.max.timeout.ms.
const defaultMaxTxnTimeout = 15 * 60 * 1000 // ms

// txnState is one transactional id. A txnState in state is never
// modified: the committer changes a clone in the group (group.txnMut).
type txnState struct {
	id        string
	pid       int64
	epoch     int16
	timeoutMs int32
	ongoing   bool
	startMs   int64 // when the ongoing transaction started
	// lastEnd is the result of the last EndTxn at this epoch
	// (meta.ControlCommit or ControlAbort; ControlNone after a bump), so
	// that a retried EndTxn is answered as the first one was.
	lastEnd int8
	// lastMs is when the id last changed (unix ms): an Empty id unused
	// for Config.TransactionalIDExpiration is forgotten (expireTxnIDs).
	lastMs int64
	// parts are the partitions added, each with the first offset the
	// transaction wrote there (-1 before its first write).
	parts map[tpKey]int64
	// groups are the groups added (AddOffsetsToTxn) with their pending
	// offsets (TxnOffsetCommit), by partition.
	groups map[string]map[meta.TopicPartition]meta.CommittedOffset
}

func (t *txnState) clone() *txnState {
	c := *t
	c.parts = maps.Clone(t.parts)
	if t.groups != nil {
		c.groups = make(map[string]map[meta.TopicPartition]meta.CommittedOffset, len(t.groups))
		for g, m := range t.groups {
			c.groups[g] = maps.Clone(m)
		}
	}
	return &c
}

// txnAbort is an aborted transactions index entry added in a group.
type txnAbort struct {
	tp tpKey
	a  meta.AbortedTxn
}

// txn returns the transactional id's state as of the group, nil if none.
func (g *group) txn(id string) *txnState {
	if t, ok := g.txns[id]; ok {
		return t
	}
	if g.txnDead[id] {
		return nil
	}
	return g.st.txns[id]
}

// txnByPID returns the transaction state that holds producer id pid.
func (g *group) txnByPID(pid int64) *txnState {
	for _, t := range g.txns {
		if t.pid == pid {
			return t
		}
	}
	t := g.st.txnPID[pid]
	if t != nil {
		if o, ok := g.txns[t.id]; ok && o.pid != pid || g.txnDead[t.id] {
			return nil // moved to a new producer id, or expired, in this group
		}
	}
	return t
}

// txnMut returns a clone of id's state that the group may change, and
// notes the change's time.
func (g *group) txnMut(id string) *txnState {
	if t, ok := g.txns[id]; ok {
		t.lastMs = g.nowMs
		return t
	}
	t := g.st.txns[id].clone()
	t.lastMs = g.nowMs
	g.txns[id] = t
	return t
}

// checkTxnProducer checks a request's producer against its
// transactional id: the id must hold that producer id, and the epoch
// must be the current one.
func (g *group) checkTxnProducer(p meta.TxnProducer) (*txnState, error) {
	t := g.txn(p.TransactionalID)
	if t == nil || t.pid != p.ProducerID {
		return nil, fmt.Errorf("%w: transactional id %q, producer id %d", meta.ErrInvalidProducerIDMapping, p.TransactionalID, p.ProducerID)
	}
	if p.ProducerEpoch != t.epoch {
		return nil, fmt.Errorf("%w: transactional id %q epoch %d, current %d", meta.ErrProducerFenced, p.TransactionalID, p.ProducerEpoch, t.epoch)
	}
	return t, nil
}

// startTxn makes id's transaction Ongoing (if it is not) and returns
// its mutable state.
func (g *group) startTxn(id string) *txnState {
	t := g.txnMut(id)
	if !t.ongoing {
		t.ongoing = true
		t.startMs = g.nowMs
		t.lastEnd = meta.ControlNone
		t.parts = make(map[tpKey]int64)
		t.groups = nil
	}
	return t
}

// applyInitTxnProducer is InitProducerID with a transactional id.
func applyInitTxnProducer(g *group, req meta.ProducerIDRequest, maxTimeoutMs int32) (meta.ProducerIDResult, error) {
	if req.TransactionTimeoutMs <= 0 || req.TransactionTimeoutMs > maxTimeoutMs {
		return meta.ProducerIDResult{}, fmt.Errorf("%w: transaction.timeout.ms %d must be in 1..%d (meta's --max-transaction-timeout)",
			meta.ErrInvalidTxnTimeout, req.TransactionTimeoutMs, maxTimeoutMs)
	}
	id := req.TransactionalID
	old := g.txn(id)
	if old == nil {
		r := g.allocPID()
		delete(g.txnDead, id) // expired earlier in this group: a new life
		g.txns[id] = &txnState{id: id, pid: r.ProducerID, epoch: r.ProducerEpoch, timeoutMs: req.TransactionTimeoutMs, lastMs: g.nowMs}
		return r, nil
	}
	if req.ProducerID >= 0 && (req.ProducerID != old.pid || req.ProducerEpoch != old.epoch) {
		// KIP-360: a producer that names its id must hold the current
		// epoch; an older one is a zombie.
		return meta.ProducerIDResult{}, fmt.Errorf("%w: transactional id %q is at producer id %d epoch %d, not %d/%d",
			meta.ErrProducerFenced, id, old.pid, old.epoch, req.ProducerID, req.ProducerEpoch)
	}
	t := g.txnMut(id)
	t.timeoutMs = req.TransactionTimeoutMs
	bumpTxnEpoch(g, t)
	if t.ongoing {
		// The old epoch's transaction is aborted in this same write;
		// its markers carry the new epoch, which fences the old one.
		g.endTxn(t, false)
	}
	t.lastEnd = meta.ControlNone
	return meta.ProducerIDResult{ProducerID: t.pid, ProducerEpoch: t.epoch}, nil
}

// bumpTxnEpoch moves t to its next epoch, or to a new producer id when
// the epochs are used up (as Kafka does). The producer's epoch record
// moves too, so that its old epoch's batches are fenced (producer.go).
func bumpTxnEpoch(g *group, t *txnState) {
	if t.epoch >= math.MaxInt16-1 {
		r := g.allocPID()
		t.pid, t.epoch = r.ProducerID, r.ProducerEpoch
		return
	}
	t.epoch++
	g.epochs[t.pid] = t.epoch
	g.pidUse[t.pid] = g.nowMs
}

// endTxn places a marker in every partition of t's transaction,
// records the aborted ranges (abort) or the pending offsets (commit),
// and leaves t Empty. t must be the group's mutable state.
func (g *group) endTxn(t *txnState, commit bool) {
	ctl := meta.ControlAbort
	if commit {
		ctl = meta.ControlCommit
	}
	tps := slices.SortedFunc(maps.Keys(t.parts), func(a, b tpKey) int {
		if c := strings.Compare(string(a.topic[:]), string(b.topic[:])); c != 0 {
			return c
		}
		return cmp.Compare(a.part, b.part)
	})
	for _, tp := range tps {
		first := t.parts[tp]
		tt := g.topicByID(tp.topic)
		if tt == nil || int(tp.part) >= len(tt.parts) {
			continue // the topic was deleted since
		}
		ps := tt.parts[tp.part]
		d := g.part(ps)
		off := d.next
		d.next++
		d.entries = append(d.entries, meta.IndexEntry{
			TopicID: tp.topic, Partition: tp.part, BaseOffset: off, LastOffset: off,
			MaxTimestamp: g.nowMs, Control: ctl, ProducerID: t.pid, ProducerEpoch: t.epoch,
		})
		d.runSeq = 0 // a marker ends any run: the next chunk starts an entry
		if !commit && first >= 0 {
			g.txnAborts = append(g.txnAborts, txnAbort{tp: tp, a: meta.AbortedTxn{ProducerID: t.pid, FirstOffset: first, LastOffset: off}})
		}
	}
	if commit {
		for grp, offs := range t.groups {
			for _, o := range offs {
				if g.partExists(o.TopicPartition) {
					o.CommitTime = g.nowMs
					g.offsets = append(g.offsets, offsetChange{group: grp, off: o})
				}
			}
		}
	}
	t.ongoing = false
	t.startMs = 0
	t.parts = nil
	t.groups = nil
	t.lastEnd = ctl
}

// txnReq is one of the transactional ops (opTxn).
type txnReq struct {
	kind    txnOpKind
	p       meta.TxnProducer
	tps     []meta.TopicPartition
	group   string
	offsets []meta.CommittedOffset
	commit  bool
	// member is who a TxnOffsetCommit commits as (KIP-447): member id,
	// instance id and generation, checked against the group's
	// membership (groups.Coordinator.CheckTxnCommit).
	member meta.OffsetCommitRequest
}

type txnOpKind uint8

const (
	txnAddPartitions txnOpKind = iota
	txnAddOffsets
	txnOffsetCommit
	txnEnd
	txnTimeouts
	txnExpire
)

// applyTxn runs one transactional op; per-item errors go to
// o.adminErrs, the count of timed out transactions to o.count.
func (s *Service) applyTxn(g *group, o *op) {
	r := o.txn
	switch r.kind {
	case txnTimeouts:
		o.count = applyTxnTimeouts(g)
		return
	case txnExpire:
		o.count = applyExpireTxnIDs(g, s.cfg.TransactionalIDExpiration)
		return
	}
	t, err := g.checkTxnProducer(r.p)
	if err != nil {
		o.err = err
		return
	}
	switch r.kind {
	case txnAddPartitions:
		errs := make([]error, len(r.tps))
		bad := false
		for i, tp := range r.tps {
			if !g.partExists(tp) {
				errs[i] = meta.ErrUnknownTopicOrPartition
				bad = true
			}
		}
		if bad {
			for i := range errs {
				if errs[i] == nil {
					errs[i] = meta.ErrOperationNotAttempted
				}
			}
			o.adminErrs = errs
			return
		}
		t = g.startTxn(t.id)
		for _, tp := range r.tps {
			k := tpKey{topic: tp.TopicID, part: tp.Partition}
			if _, ok := t.parts[k]; !ok {
				t.parts[k] = -1
			}
		}
		o.adminErrs = errs
	case txnAddOffsets:
		if r.group == "" {
			o.err = fmt.Errorf("%w: empty group id", meta.ErrInvalidGroupID)
			return
		}
		t = g.startTxn(t.id)
		if t.groups == nil {
			t.groups = make(map[string]map[meta.TopicPartition]meta.CommittedOffset)
		}
		if t.groups[r.group] == nil {
			t.groups[r.group] = make(map[meta.TopicPartition]meta.CommittedOffset)
		}
	case txnOffsetCommit:
		if !t.ongoing || t.groups[r.group] == nil {
			o.err = fmt.Errorf("%w: group %q was not added to the transaction of %q (AddOffsetsToTxn)", meta.ErrInvalidTxnState, r.group, t.id)
			return
		}
		// A zombie member (fenced by a rebalance) may not commit over
		// its partitions' new owner; checked after the producer, as
		// Kafka verifies the transaction before the group.
		if err := s.groups.CheckTxnCommit(r.member, func(name string) bool { return g.st.offsets[name] != nil }); err != nil {
			o.err = err
			return
		}
		t = g.txnMut(t.id)
		errs := make([]error, len(r.offsets))
		for i, off := range r.offsets {
			switch {
			case !g.partExists(off.TopicPartition):
				errs[i] = meta.ErrUnknownTopicOrPartition
			case len(off.Metadata) > meta.MaxOffsetMetadataBytes:
				errs[i] = meta.ErrOffsetMetadataTooLarge
			default:
				off.CommitTime = 0 // set when the transaction commits
				t.groups[r.group][off.TopicPartition] = off
			}
		}
		o.adminErrs = errs
	case txnEnd:
		want := meta.ControlAbort
		if r.commit {
			want = meta.ControlCommit
		}
		if !t.ongoing {
			if t.lastEnd == want {
				return // a retry of the EndTxn that ended it
			}
			verb := "abort"
			if r.commit {
				verb = "commit"
			}
			o.err = fmt.Errorf("%w: transactional id %q has no ongoing transaction to %s", meta.ErrInvalidTxnState, t.id, verb)
			return
		}
		g.endTxn(g.txnMut(t.id), r.commit)
	}
}

// applyTxnTimeouts aborts every ongoing transaction older than its
// timeout and bumps its epoch, as Kafka's coordinator does: the
// producer's next request is fenced.
func applyTxnTimeouts(g *group) int {
	n := 0
	for id, t := range g.st.txns {
		if _, changed := g.txns[id]; changed || !t.ongoing || g.nowMs-t.startMs <= int64(t.timeoutMs) {
			continue
		}
		m := g.txnMut(id)
		bumpTxnEpoch(g, m)
		g.endTxn(m, false)
		m.lastEnd = meta.ControlNone
		n++
	}
	return n
}

// checkTxnChunk verifies a transactional batch at commit (KIP-890's
// verification, where offsets are assigned, so it cannot race an
// EndTxn): its producer must have an ongoing transaction at the batch's
// epoch with the partition added.
func (g *group) checkTxnChunk(ch *meta.Chunk, tp tpKey) meta.ChunkStatus {
	t := g.txnByPID(ch.ProducerID)
	switch {
	case t == nil:
		return meta.ChunkInvalidTxnState
	case ch.ProducerEpoch != t.epoch:
		return meta.ChunkFenced
	case !t.ongoing:
		return meta.ChunkInvalidTxnState
	}
	if _, ok := t.parts[tp]; !ok {
		return meta.ChunkInvalidTxnState
	}
	return meta.ChunkAppended
}

// noteTxnWrite records base as the transaction's first offset on tp if
// it is its first write there.
func (g *group) noteTxnWrite(pid int64, tp tpKey, base int64) {
	t := g.txnByPID(pid)
	if t == nil || t.parts[tp] >= 0 {
		return
	}
	g.txnMut(t.id).parts[tp] = base
}

// applyExpireTxnIDs forgets every Empty transactional id unchanged for
// exp (Kafka's transactional.id.expiration.ms). Its producer id stays,
// as an idempotent one, until producer id expiry forgets it too.
func applyExpireTxnIDs(g *group, exp time.Duration) int {
	n := 0
	for id, t := range g.st.txns {
		if _, changed := g.txns[id]; changed || t.ongoing || g.txnDead[id] || g.nowMs-t.lastMs <= exp.Milliseconds() {
			continue
		}
		g.txnDead[id] = true
		n++
	}
	return n
}

// ExpireTxnIDs runs applyExpireTxnIDs (the janitor's job) and returns
// how many ids it forgot.
func (s *Service) ExpireTxnIDs(ctx context.Context) (int, error) {
	o, err := s.submitTxn(ctx, &txnReq{kind: txnExpire})
	return o.count, err
}

// mergeTxnsLocked installs the group's changed transactions and their
// derived per-partition state.
func mergeTxnsLocked(st *state, g *group) {
	for id := range g.txnDead {
		if old := st.txns[id]; old != nil {
			st.unindexTxn(old)
			delete(st.txns, id)
		}
	}
	for id, t := range g.txns {
		if old := st.txns[id]; old != nil {
			st.unindexTxn(old)
		}
		st.txns[id] = t
		st.indexTxn(t)
	}
	for _, a := range g.txnAborts {
		st.aborted[a.tp] = append(st.aborted[a.tp], a.a)
	}
	// Retention and DeleteRecords: aborted transactions that end below
	// the new log start are gone with their records (writeTxns deletes
	// the same ones).
	for _, d := range g.partOrder {
		if !d.trimmed {
			continue
		}
		if n := abortedBelow(st.aborted[d.ps.tp], d.logStart); n > 0 {
			st.aborted[d.ps.tp] = slices.Delete(st.aborted[d.ps.tp], 0, n)
			if len(st.aborted[d.ps.tp]) == 0 {
				delete(st.aborted, d.ps.tp)
			}
		}
	}
}

// abortedBelow counts the aborted transactions of as (sorted by
// LastOffset) that end below logStart.
func abortedBelow(as []meta.AbortedTxn, logStart int64) int {
	n, _ := slices.BinarySearchFunc(as, logStart, func(a meta.AbortedTxn, off int64) int { return cmp.Compare(a.LastOffset, off) })
	return n
}

func (st *state) indexTxn(t *txnState) {
	st.txnPID[t.pid] = t
	if !t.ongoing {
		return
	}
	for tp, first := range t.parts {
		if first < 0 {
			continue
		}
		m := st.openTxns[tp]
		if m == nil {
			m = make(map[int64]int64)
			st.openTxns[tp] = m
		}
		m[t.pid] = first
	}
}

func (st *state) unindexTxn(t *txnState) {
	if st.txnPID[t.pid] == t {
		delete(st.txnPID, t.pid)
	}
	for tp := range t.parts {
		if m := st.openTxns[tp]; m != nil {
			delete(m, t.pid)
			if len(m) == 0 {
				delete(st.openTxns, tp)
			}
		}
	}
}

// lsoLocked is ps's last stable offset: the first offset of its oldest
// ongoing transaction, or the high watermark; never below the log start.
func (st *state) lsoLocked(ps *partState) int64 {
	lso := ps.next
	for _, first := range st.openTxns[ps.tp] {
		lso = min(lso, first)
	}
	return max(lso, ps.logStart)
}

// stableLocked is what an agent needs to serve read_committed fetches
// of ps from its index cache (meta.StableState, issue 15/13).
func (st *state) stableLocked(ps *partState) meta.StableState {
	s := meta.StableState{Known: true, LastStableOffset: st.lsoLocked(ps), LastAbortOffset: -1}
	if ab := st.aborted[ps.tp]; len(ab) > 0 {
		s.LastAbortOffset = ab[len(ab)-1].LastOffset // sorted by LastOffset
	}
	return s
}

// abortFirst is the first offset of the transaction whose abort marker
// this group placed at off in tp, or -1 when that transaction wrote
// nothing in tp (endTxn records no aborted range then). A group aborts
// few transactions: a scan is enough.
func (g *group) abortFirst(tp tpKey, off int64) int64 {
	for _, a := range g.txnAborts {
		if a.tp == tp && a.a.LastOffset == off {
			return a.a.FirstOffset
		}
	}
	return -1
}

// The API (meta.Transactions).

func (s *Service) submitTxn(ctx context.Context, r *txnReq) (*op, error) {
	o := &op{kind: opTxn, txn: r}
	err := s.submit(ctx, o)
	return o, err
}

// AddPartitionsToTxn implements meta.Transactions.
func (s *Service) AddPartitionsToTxn(ctx context.Context, p meta.TxnProducer, tps []meta.TopicPartition) ([]error, error) {
	o, err := s.submitTxn(ctx, &txnReq{kind: txnAddPartitions, p: p, tps: tps})
	return o.adminErrs, err
}

// AddOffsetsToTxn implements meta.Transactions.
func (s *Service) AddOffsetsToTxn(ctx context.Context, p meta.TxnProducer, group string) error {
	_, err := s.submitTxn(ctx, &txnReq{kind: txnAddOffsets, p: p, group: group})
	return err
}

// TxnOffsetCommit implements meta.Transactions.
func (s *Service) TxnOffsetCommit(ctx context.Context, p meta.TxnProducer, req meta.OffsetCommitRequest) ([]error, error) {
	member := meta.OffsetCommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation}
	o, err := s.submitTxn(ctx, &txnReq{kind: txnOffsetCommit, p: p, group: req.Group, offsets: req.Offsets, member: member})
	return o.adminErrs, err
}

// EndTxn implements meta.Transactions.
func (s *Service) EndTxn(ctx context.Context, p meta.TxnProducer, commit bool) error {
	_, err := s.submitTxn(ctx, &txnReq{kind: txnEnd, p: p, commit: commit})
	return err
}

// AbortTimedOutTxns aborts every transaction past its timeout (the
// janitor's job) and returns how many.
func (s *Service) AbortTimedOutTxns(ctx context.Context) (int, error) {
	o, err := s.submitTxn(ctx, &txnReq{kind: txnTimeouts})
	return o.count, err
}

// TxnPartition implements meta.Transactions.
func (s *Service) TxnPartition(ctx context.Context, tp meta.TopicPartition, from int64) (meta.TxnPartitionState, error) {
	if err := s.readable(ctx); err != nil {
		return meta.TxnPartitionState{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := s.partLocked(tp)
	if ps == nil {
		return meta.TxnPartitionState{}, meta.ErrUnknownTopicOrPartition
	}
	r := meta.TxnPartitionState{LastStableOffset: s.st.lsoLocked(ps), HighWatermark: ps.next, LogStartOffset: ps.logStart}
	ab := s.st.aborted[ps.tp]
	// Sorted by LastOffset (markers are placed in offset order): skip
	// those that ended before from.
	i, _ := slices.BinarySearchFunc(ab, from, func(a meta.AbortedTxn, off int64) int { return cmp.Compare(a.LastOffset, off) })
	for _, a := range ab[i:] {
		if a.FirstOffset < r.LastStableOffset {
			r.Aborted = append(r.Aborted, a)
		}
	}
	return r, nil
}

func describeTxn(t *txnState) meta.TxnDescription {
	d := meta.TxnDescription{TransactionalID: t.id, State: meta.TxnStateEmpty, ProducerID: t.pid, ProducerEpoch: t.epoch,
		TimeoutMs: t.timeoutMs, StartMs: -1}
	switch t.lastEnd {
	case meta.ControlCommit:
		d.State = meta.TxnStateCompleteCommit
	case meta.ControlAbort:
		d.State = meta.TxnStateCompleteAbort
	}
	if t.ongoing {
		d.State, d.StartMs = meta.TxnStateOngoing, t.startMs
		for tp := range t.parts {
			d.Partitions = append(d.Partitions, meta.TopicPartition{TopicID: tp.topic, Partition: tp.part})
		}
		slices.SortFunc(d.Partitions, func(a, b meta.TopicPartition) int {
			if c := strings.Compare(string(a.TopicID[:]), string(b.TopicID[:])); c != 0 {
				return c
			}
			return cmp.Compare(a.Partition, b.Partition)
		})
	}
	return d
}

// DescribeTransactions implements meta.Transactions.
func (s *Service) DescribeTransactions(ctx context.Context, ids []string) ([]meta.TxnDescription, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]meta.TxnDescription, len(ids))
	for i, id := range ids {
		if t := s.st.txns[id]; t != nil {
			out[i] = describeTxn(t)
		} else {
			out[i] = meta.TxnDescription{TransactionalID: id, Err: meta.ErrTransactionalIDNotFound}
		}
	}
	return out, nil
}

// ListTransactions implements meta.Transactions, in id order.
func (s *Service) ListTransactions(ctx context.Context) ([]meta.TxnDescription, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]meta.TxnDescription, 0, len(s.st.txns))
	for _, t := range s.st.txns {
		out = append(out, describeTxn(t))
	}
	slices.SortFunc(out, func(a, b meta.TxnDescription) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out, nil
}

// anyTxnDue reports whether some ongoing transaction is past its
// timeout (a read; the abort is a write).
func (s *Service) anyTxnDue() bool {
	now := time.Now().UnixMilli() // s.now is the committer's
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.st.txns {
		if t.ongoing && now-t.startMs > int64(t.timeoutMs) {
			return true
		}
	}
	return false
}

// PendingTxnOffsets implements meta.Transactions. It walks every
// transactional id: OffsetFetch asks it only with require_stable.
func (s *Service) PendingTxnOffsets(ctx context.Context, group string) ([]meta.TopicPartition, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []meta.TopicPartition
	for _, t := range s.st.txns {
		if !t.ongoing {
			continue
		}
		for tp := range t.groups[group] {
			out = append(out, tp)
		}
	}
	return out, nil
}

// DescribeProducers implements meta.Transactions. It walks every
// producer's partition state: an admin request, not a hot path.
func (s *Service) DescribeProducers(ctx context.Context, tps []meta.TopicPartition) ([]meta.PartitionProducers, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]meta.PartitionProducers, len(tps))
	idx := make(map[tpKey][]int, len(tps))
	for i, tp := range tps {
		out[i].TopicPartition = tp
		if s.partLocked(tp) == nil {
			out[i].Err = meta.ErrUnknownTopicOrPartition
			continue
		}
		k := tpKey{topic: tp.TopicID, part: tp.Partition}
		idx[k] = append(idx[k], i)
	}
	for k, pp := range s.st.prodParts {
		is := idx[k.tp]
		if len(is) == 0 || pp.n == 0 {
			continue
		}
		ps := meta.ProducerState{ProducerID: k.pid, ProducerEpoch: pp.epoch, LastSequence: pp.win[pp.n-1].last, CurrentTxnStartOffset: -1}
		if first, ok := s.st.openTxns[k.tp][k.pid]; ok {
			ps.CurrentTxnStartOffset = first
		}
		for _, i := range is {
			out[i].Producers = append(out[i].Producers, ps)
		}
	}
	for i := range out {
		slices.SortFunc(out[i].Producers, func(a, b meta.ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	}
	return out, nil
}

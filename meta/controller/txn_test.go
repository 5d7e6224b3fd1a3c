package controller

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/planner"
)

// txnSeg is a segment with one transactional chunk of n records.
func txnSeg(tp meta.TopicID, part int32, n int32, pid int64, epoch int16, seq int32) *segment {
	sg := newSegment().addP(tp, part, n, 100*n, pid, epoch, seq)
	sg.Chunks[0].Transactional = true
	return sg
}

func txnState1(t *testing.T, s *Service, tp meta.TopicPartition, from int64) meta.TxnPartitionState {
	t.Helper()
	st, err := s.TxnPartition(ctxT(t), tp, from)
	if err != nil {
		t.Fatalf("TxnPartition: %v", err)
	}
	return st
}

// TestTxnLifecycle walks one transactional id through commit, abort,
// fencing by a new epoch (which aborts the open transaction) and the
// refusals of the produce verification, reopening the store after each
// step: every change is one committer write and survives exactly.
func TestTxnLifecycle(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	top := createTopic(t, s, "tx", 2)
	p0 := meta.TopicPartition{TopicID: top.ID, Partition: 0}
	p1 := meta.TopicPartition{TopicID: top.ID, Partition: 1}

	res, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "t1", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
	if err != nil || res.ProducerEpoch != 0 {
		t.Fatalf("InitProducerID: %+v, %v", res, err)
	}
	prod := meta.TxnProducer{TransactionalID: "t1", ProducerID: res.ProducerID, ProducerEpoch: 0}
	s = reopen(t, s)

	// A transactional write before AddPartitionsToTxn is refused.
	if r := commit(t, s, txnSeg(top.ID, 0, 1, prod.ProducerID, 0, 0)); r.Chunks[0].Status != meta.ChunkInvalidTxnState {
		t.Fatalf("write before AddPartitionsToTxn: status %d, want ChunkInvalidTxnState", r.Chunks[0].Status)
	}
	errs, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0, p1})
	if err != nil || len(errs) != 2 || errs[0] != nil || errs[1] != nil {
		t.Fatalf("AddPartitionsToTxn: %v %v", errs, err)
	}
	s = reopen(t, s)
	if r := commit(t, s, txnSeg(top.ID, 0, 3, prod.ProducerID, 0, 0)); r.Chunks[0].Status != meta.ChunkAppended || r.Chunks[0].BaseOffset != 0 {
		t.Fatalf("transactional write: %+v", r.Chunks[0])
	}
	commit(t, s, newSegment().add(top.ID, 0, 2, 50)) // plain data after it: offsets 3, 4
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 0 || st.HighWatermark != 5 {
		t.Fatalf("open transaction: LSO %d HWM %d, want 0 and 5", st.LastStableOffset, st.HighWatermark)
	}
	if err := s.AddOffsetsToTxn(ctx, prod, "g"); err != nil {
		t.Fatal(err)
	}
	errs, err = s.TxnOffsetCommit(ctx, prod, meta.OffsetCommitRequest{Group: "g", Generation: -1, Offsets: []meta.CommittedOffset{{TopicPartition: p0, Offset: 42, Metadata: "m"}}})
	if err != nil || errs[0] != nil {
		t.Fatalf("TxnOffsetCommit: %v %v", errs, err)
	}
	if offs, _ := s.FetchOffsets(ctx, "g", []meta.TopicPartition{p0}); len(offs) == 1 && offs[0].Offset == 42 {
		t.Fatalf("a pending transactional offset is visible before the commit: %+v", offs)
	}
	s = reopen(t, s)

	if err := s.EndTxn(ctx, prod, true); err != nil {
		t.Fatalf("EndTxn(commit): %v", err)
	}
	// Markers: p0 at 5 (after the plain data), p1 at 0.
	if es := allEntries(t, s, top.ID, 0); len(es) == 0 || !es[len(es)-1].IsMarker() || es[len(es)-1].BaseOffset != 5 ||
		es[len(es)-1].Control != meta.ControlCommit || es[len(es)-1].ProducerID != prod.ProducerID {
		t.Fatalf("p0 entries after commit: %+v", es)
	}
	if es := allEntries(t, s, top.ID, 1); len(es) != 1 || es[0].Control != meta.ControlCommit || es[0].BaseOffset != 0 {
		t.Fatalf("p1 entries after commit: %+v", es)
	}
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 6 || st.HighWatermark != 6 || len(st.Aborted) != 0 {
		t.Fatalf("after commit: %+v, want LSO = HWM = 6, nothing aborted", st)
	}
	if offs, err := s.FetchOffsets(ctx, "g", []meta.TopicPartition{p0}); err != nil || len(offs) != 1 || offs[0].Offset != 42 || offs[0].Metadata != "m" {
		t.Fatalf("offsets after commit: %+v %v", offs, err)
	}
	s = reopen(t, s)
	if err := s.EndTxn(ctx, prod, true); err != nil {
		t.Fatalf("retried EndTxn(commit): %v", err)
	}
	if err := s.EndTxn(ctx, prod, false); !errors.Is(err, meta.ErrInvalidTxnState) {
		t.Fatalf("EndTxn(abort) after a commit: %v, want ErrInvalidTxnState", err)
	}

	// An aborted transaction lands in the aborted index.
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	if r := commit(t, s, txnSeg(top.ID, 0, 2, prod.ProducerID, 0, 3)); r.Chunks[0].Status != meta.ChunkAppended || r.Chunks[0].BaseOffset != 6 {
		t.Fatalf("second transaction's write: %+v", r.Chunks[0])
	}
	if err := s.EndTxn(ctx, prod, false); err != nil {
		t.Fatal(err)
	}
	want := []meta.AbortedTxn{{ProducerID: prod.ProducerID, FirstOffset: 6, LastOffset: 8}}
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 9 || !slices.Equal(st.Aborted, want) {
		t.Fatalf("after abort: %+v, want LSO 9 and %+v", st, want)
	}
	if st := txnState1(t, s, p0, 9); len(st.Aborted) != 0 {
		t.Fatalf("aborted transactions ending before the fetch offset: %+v", st.Aborted)
	}
	s = reopen(t, s)

	// A third transaction left open, then a new instance of the id:
	// the open one is aborted in the same write, the old epoch fenced.
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p1}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, txnSeg(top.ID, 1, 1, prod.ProducerID, 0, 0))
	res2, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "t1", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
	if err != nil || res2.ProducerID != prod.ProducerID || res2.ProducerEpoch != 1 {
		t.Fatalf("second InitProducerID: %+v %v", res2, err)
	}
	if st := txnState1(t, s, p1, 0); st.LastStableOffset != 3 || len(st.Aborted) != 1 || st.Aborted[0].FirstOffset != 1 || st.Aborted[0].LastOffset != 2 {
		t.Fatalf("p1 after the fencing InitProducerID: %+v", st)
	}
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); !errors.Is(err, meta.ErrProducerFenced) {
		t.Fatalf("AddPartitionsToTxn of the old epoch: %v, want ErrProducerFenced", err)
	}
	if err := s.EndTxn(ctx, prod, true); !errors.Is(err, meta.ErrProducerFenced) {
		t.Fatalf("EndTxn of the old epoch: %v, want ErrProducerFenced", err)
	}
	prod.ProducerEpoch = 1
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	if r := commit(t, s, txnSeg(top.ID, 0, 1, prod.ProducerID, 0, 5)); r.Chunks[0].Status != meta.ChunkFenced {
		t.Fatalf("write of the old epoch: status %d, want ChunkFenced", r.Chunks[0].Status)
	}
	if r := commit(t, s, txnSeg(top.ID, 1, 1, prod.ProducerID, 1, 0)); r.Chunks[0].Status != meta.ChunkInvalidTxnState {
		t.Fatalf("write to a partition not added: status %d, want ChunkInvalidTxnState", r.Chunks[0].Status)
	}
	// An unknown partition fails the whole AddPartitionsToTxn.
	errs, err = s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p1, {TopicID: top.ID, Partition: 9}})
	if err != nil || !errors.Is(errs[0], meta.ErrOperationNotAttempted) || !errors.Is(errs[1], meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("AddPartitionsToTxn with an unknown partition: %v %v", errs, err)
	}
	d, _ := s.DescribeTransactions(ctx, []string{"t1", "nope"})
	if d[0].State != meta.TxnStateOngoing || d[0].ProducerEpoch != 1 || len(d[0].Partitions) != 1 || !errors.Is(d[1].Err, meta.ErrTransactionalIDNotFound) {
		t.Fatalf("DescribeTransactions: %+v", d)
	}
	checkInvariants(t, s)
	s = reopen(t, s)
	if l, _ := s.ListTransactions(ctx); len(l) != 1 || l[0].TransactionalID != "t1" {
		t.Fatalf("ListTransactions: %+v", l)
	}
}

// TestTxnTimeoutAndLimits: the janitor's pass aborts a transaction past
// its timeout and bumps the epoch (the producer is fenced), and a
// timeout above the maximum is refused.
func TestTxnTimeoutAndLimits(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.MaxTransactionTimeoutMs = 1000 })
	ctx := ctxT(t)
	top := createTopic(t, s, "tx", 1)
	p0 := meta.TopicPartition{TopicID: top.ID, Partition: 0}
	if _, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "x", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 1001}); !errors.Is(err, meta.ErrInvalidTxnTimeout) {
		t.Fatalf("timeout above the maximum: %v, want ErrInvalidTxnTimeout", err)
	}
	res, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "x", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	prod := meta.TxnProducer{TransactionalID: "x", ProducerID: res.ProducerID}
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, txnSeg(top.ID, 0, 2, prod.ProducerID, 0, 0))
	// The timeout is 1 ms: poll the janitor's pass until it aborts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.AbortTimedOutTxns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transaction was never aborted by its timeout")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 3 || len(st.Aborted) != 1 {
		t.Fatalf("after the timeout: %+v", st)
	}
	if err := s.EndTxn(ctx, prod, true); !errors.Is(err, meta.ErrProducerFenced) {
		t.Fatalf("EndTxn after the timeout abort: %v, want ErrProducerFenced", err)
	}
	s = reopen(t, s)
	if n, _ := s.AbortTimedOutTxns(ctx); n != 0 {
		t.Fatalf("a second pass aborted %d more", n)
	}
	// DeleteRecords past the abort marker drops the aborted range from
	// the index, in memory and in the store (reopen compares both).
	if _, err := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: p0, Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	left := len(s.st.aborted[tpKey{topic: top.ID, part: 0}])
	s.mu.RUnlock()
	if left != 0 {
		t.Fatalf("%d aborted transactions kept below the log start", left)
	}
	reopen(t, s)
}

// TestTxnIDExpiry: an idle transactional id (no transaction open) is
// forgotten after Config.TransactionalIDExpiration, in memory and in the
// store; one with a transaction open is kept; the id can start over.
func TestTxnIDExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Now()}
	s := openT(t, t.TempDir(), func(c *Config) { c.TransactionalIDExpiration = time.Hour })
	s.now = clk.now
	ctx := ctxT(t)
	top := createTopic(t, s, "tx", 1)
	p0 := meta.TopicPartition{TopicID: top.ID, Partition: 0}
	init := func(id string) meta.TxnProducer {
		r, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: id, ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
		if err != nil {
			t.Fatal(err)
		}
		return meta.TxnProducer{TransactionalID: id, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch}
	}
	init("idle")
	open := init("open")
	if _, err := s.AddPartitionsToTxn(ctx, open, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	clk.add(30 * time.Minute)
	if n, err := s.ExpireTxnIDs(ctx); err != nil || n != 0 {
		t.Fatalf("expired %d (%v) after half the expiration", n, err)
	}
	clk.add(31 * time.Minute)
	if n, err := s.ExpireTxnIDs(ctx); err != nil || n != 1 {
		t.Fatalf("expired %d (%v), want the idle id only", n, err)
	}
	d, _ := s.DescribeTransactions(ctx, []string{"idle", "open"})
	if !errors.Is(d[0].Err, meta.ErrTransactionalIDNotFound) || d[1].Err != nil {
		t.Fatalf("after expiry: %+v", d)
	}
	s = reopen(t, s, func(c *Config) { c.TransactionalIDExpiration = time.Hour })
	s.now = clk.now
	if p := init("idle"); p.ProducerEpoch != 0 {
		t.Fatalf("the expired id starts over at epoch %d, want 0", p.ProducerEpoch)
	}
	reopen(t, s, func(c *Config) { c.TransactionalIDExpiration = time.Hour })
}

// TestCleanTransactions: a compacted partition with transactions is
// planned for key cleaning (issue 15): the sources stop below the last
// stable offset, include the markers before it, and come with the
// aborted ranges they overlap; the result swaps the markers out with the
// data entries, and the store holds exactly that after a reopen.
func TestCleanTransactions(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	top := createCompacted(t, s, "cl")
	p0 := meta.TopicPartition{TopicID: top.ID}
	ip, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "t1", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	prod := meta.TxnProducer{TransactionalID: "t1", ProducerID: ip.ProducerID}
	seq := int32(0)
	txn := func(n int32, end *bool) {
		t.Helper()
		if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
			t.Fatal(err)
		}
		if r := commit(t, s, txnSeg(top.ID, 0, n, prod.ProducerID, 0, seq)); r.Chunks[0].Status != meta.ChunkAppended {
			t.Fatalf("transactional write: %+v", r.Chunks[0])
		}
		seq += n
		if end != nil {
			if err := s.EndTxn(ctx, prod, *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	commitTxn, abortTxn := true, false
	txn(3, &commitTxn)                               // 0-2, marker 3
	txn(2, &abortTxn)                                // 4-5, marker 6
	commit(t, s, newSegment().add(top.ID, 0, 2, 50)) // 7-8
	txn(2, nil)                                      // 9-10, open: the LSO is 9
	time.Sleep(5 * time.Millisecond)                 // max.compaction.lag.ms

	job, ok, err := s.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobCleanKeys})
	if err != nil || !ok {
		t.Fatalf("AcquireJob: %v %v", ok, err)
	}
	srcs := job.Compact.Sources
	var got [][2]int64
	markers := 0
	for _, e := range srcs {
		got = append(got, [2]int64{e.BaseOffset, e.LastOffset})
		if e.IsMarker() {
			markers++
		}
	}
	if fmt.Sprint(got) != "[[0 2] [3 3] [4 5] [6 6] [7 8]]" || markers != 2 {
		t.Fatalf("sources %v (%d markers), want [0, 8] with the markers at 3 and 6", got, markers)
	}
	wantAborted := []meta.AbortedTxn{{ProducerID: prod.ProducerID, FirstOffset: 4, LastOffset: 6}}
	if !slices.Equal(job.Compact.Clean.Aborted, wantAborted) {
		t.Fatalf("aborted ranges %+v, want %+v", job.Compact.Clean.Aborted, wantAborted)
	}

	// The agent's result: one entry over [0, 8] in the new object.
	out := job.Compact.Output
	key := meta.ObjectKey(out)
	o, err := s.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: out, ObjectKey: key, Size: 300, CleanedUpTo: 8,
		Entries: []meta.IndexEntry{{TopicID: top.ID, BaseOffset: 0, LastOffset: 8, SegmentID: out, ObjectKey: key, ObjectSize: 300, Length: 300, MaxTimestamp: 1}}})
	if err != nil || o.Swapped != 1 {
		t.Fatalf("CompleteCompaction: %+v %v", o, err)
	}
	es := allEntries(t, s, top.ID, 0)
	if len(es) != 2 || es[0].BaseOffset != 0 || es[0].LastOffset != 8 || es[0].IsMarker() || es[1].BaseOffset != 9 {
		t.Fatalf("entries after the cleaning: %+v", es)
	}
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 9 || !slices.Equal(st.Aborted, wantAborted) {
		t.Fatalf("transaction state after the cleaning: %+v", st)
	}
	checkInvariants(t, s)
	s = reopen(t, s)

	// Nothing more is due below the LSO; once the transaction ends, the
	// next cleaning starts where this one stopped.
	if _, ok, _ := s.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobCleanKeys}); ok {
		t.Fatal("a cleaning was planned with nothing dirty below the LSO")
	}
	if err := s.EndTxn(ctx, prod, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	job, ok, err = s.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobCleanKeys})
	if err != nil || !ok || job.Compact.Clean.DirtyStart != 9 || job.Compact.Sources[len(job.Compact.Sources)-1].LastOffset != 11 {
		t.Fatalf("cleaning after the commit: %+v %v %v", job.Compact, ok, err)
	}
}

// TestCompactionTakesMarkers: a compaction's sources include the markers
// right after its entries (issue 15), its result swaps them out with the
// entries, and the store holds exactly that after a reopen.
func TestCompactionTakesMarkers(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) {
		c.Compaction = planner.Config{MinAge: time.Millisecond, MaxWait: 10 * time.Millisecond}
	})
	ctx := ctxT(t)
	top := createTopic(t, s, "tc", 1)
	p0 := meta.TopicPartition{TopicID: top.ID}
	ip, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "t1", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	prod := meta.TxnProducer{TransactionalID: "t1", ProducerID: ip.ProducerID}
	for i, end := range []bool{true, false} { // 0-1, commit marker 2; 3-4, abort marker 5
		if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
			t.Fatal(err)
		}
		commit(t, s, txnSeg(top.ID, 0, 2, prod.ProducerID, 0, int32(2*i)))
		if err := s.EndTxn(ctx, prod, end); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, newSegment().add(top.ID, 0, 2, 50)) // 6-7
	time.Sleep(50 * time.Millisecond)
	job, ok, err := s.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobCompact})
	if err != nil || !ok {
		t.Fatalf("AcquireJob: %v %v", ok, err)
	}
	var got []string
	for _, e := range job.Compact.Sources {
		got = append(got, fmt.Sprintf("%d-%d/%v", e.BaseOffset, e.LastOffset, e.IsMarker()))
	}
	if want := "[0-1/false 2-2/true 3-4/false 5-5/true 6-7/false]"; fmt.Sprint(got) != want {
		t.Fatalf("sources %v, want %s", got, want)
	}
	out := job.Compact.Output
	key := meta.ObjectKey(out)
	o, err := s.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: out, ObjectKey: key, Size: 400,
		Entries: []meta.IndexEntry{{TopicID: top.ID, BaseOffset: 0, LastOffset: 7, SegmentID: out, ObjectKey: key, ObjectSize: 400, Length: 400, MaxTimestamp: 1}}})
	if err != nil || o.Swapped != 1 {
		t.Fatalf("CompleteCompaction: %+v %v", o, err)
	}
	if es := allEntries(t, s, top.ID, 0); len(es) != 1 || es[0].LastOffset != 7 {
		t.Fatalf("entries after compaction: %+v", es)
	}
	want := []meta.AbortedTxn{{ProducerID: prod.ProducerID, FirstOffset: 3, LastOffset: 5}}
	if st := txnState1(t, s, p0, 0); st.LastStableOffset != 8 || !slices.Equal(st.Aborted, want) {
		t.Fatalf("transaction state after compaction: %+v", st)
	}
	checkInvariants(t, s)
	reopen(t, s)
}

// TestCleanPassWindows: a compacted partition whose clean part fills a
// cleaning's window is cleaned in a pass: windows in offset order from
// the log start, one at a time, each judged against the keys of the same
// dirty range (KeyEnd, KeySources), the last one holding the dirty range
// and moving the clean end. A refused window ends the pass; the next
// cleaning starts a new one from the log start.
func TestCleanPassWindows(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.CleanWindowBytes = 1000 })
	ctx := ctxT(t)
	top := createCompacted(t, s, "cl")
	for range 5 {
		commit(t, s, newSegment().add(top.ID, 0, 10, 300)) // [0, 49], 300 bytes an entry
	}
	acquire := func() (meta.Job, bool) {
		t.Helper()
		time.Sleep(3 * time.Millisecond) // max.compaction.lag.ms
		job, ok, err := s.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobCleanKeys})
		if err != nil {
			t.Fatal(err)
		}
		return job, ok
	}
	span := func(es []meta.IndexEntry) string {
		if len(es) == 0 {
			return "[]"
		}
		return fmt.Sprintf("[%d, %d]", es[0].BaseOffset, es[len(es)-1].LastOffset)
	}
	// complete answers a job with one entry over its sources, as long
	// as they were (nothing superseded).
	complete := func(job meta.Job, cleanedUpTo int64) meta.CompactOutcome {
		t.Helper()
		srcs := job.Compact.Sources
		var n int64
		for _, e := range srcs {
			n += e.Length
		}
		out := job.Compact.Output
		key := meta.ObjectKey(out)
		o, err := s.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: out, ObjectKey: key, Size: n, CleanedUpTo: cleanedUpTo,
			Entries: []meta.IndexEntry{{TopicID: top.ID, BaseOffset: srcs[0].BaseOffset, LastOffset: srcs[len(srcs)-1].LastOffset, SegmentID: out, ObjectKey: key, ObjectSize: n, Length: n, MaxTimestamp: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	// The first cleaning: a window from the start, the partial rule of
	// a single job (the map judged what the window holds).
	job, ok := acquire()
	if !ok || span(job.Compact.Sources) != "[0, 29]" || job.Compact.Clean.KeyEnd != 0 || !job.Compact.Clean.FromLogStart {
		t.Fatalf("first cleaning: %v %s %+v", ok, span(job.Compact.Sources), job.Compact.Clean)
	}
	complete(job, 29)
	// Now the clean part [0, 29] (900 bytes) and the next entry do not
	// fit a window: a pass over dirty range [30, 39] (half a window).
	job, ok = acquire()
	if !ok || span(job.Compact.Sources) != "[0, 29]" || job.Compact.Clean.KeyEnd != 39 || job.Compact.Clean.DirtyStart != 30 ||
		span(job.Compact.Clean.KeySources) != "[30, 39]" || !job.Compact.Clean.FromLogStart {
		t.Fatalf("the pass's first window: %v %s %+v", ok, span(job.Compact.Sources), job.Compact.Clean)
	}
	if other, ok := acquire(); ok {
		t.Fatalf("a second window of the pass leased while the first is out: %s", span(other.Compact.Sources))
	}
	// The window kept everything in place: it comes back unchanged,
	// without an object, and the pass goes on.
	if o, err := s.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: job.Compact.Output, Unchanged: true}); err != nil || o.Swapped != 0 {
		t.Fatalf("unchanged first window: %+v %v", o, err)
	}
	job, ok = acquire()
	if !ok || span(job.Compact.Sources) != "[30, 39]" || job.Compact.Clean.KeyEnd != 39 || len(job.Compact.Clean.KeySources) != 0 || job.Compact.Clean.FromLogStart {
		t.Fatalf("the pass's last window: %v %s %+v", ok, span(job.Compact.Sources), job.Compact.Clean)
	}
	// The last window moves the clean end: it cannot come back
	// unchanged.
	if _, err := s.CompleteCompaction(ctx, meta.CompactResult{JobID: job.ID, Output: job.Compact.Output, Unchanged: true}); !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("unchanged last window: %v, want ErrInvalidRequest", err)
	}
	complete(job, 39)
	s.mu.RLock()
	ps := s.st.topicsByID[top.ID].parts[0]
	cleanEnd := ps.cleanEnd
	s.mu.RUnlock()
	s.jobs.mu.Lock()
	passes := len(s.jobs.passes)
	s.jobs.mu.Unlock()
	if cleanEnd != 40 || passes != 0 {
		t.Fatalf("after the pass: clean end %d, %d passes, want 40 and none", cleanEnd, passes)
	}

	// A refused window (here its result misses the first entry's start)
	// ends the pass: the next cleaning starts over from the log start.
	job, ok = acquire()
	if !ok || span(job.Compact.Sources) != "[0, 29]" || job.Compact.Clean.DirtyStart != 40 {
		t.Fatalf("next pass: %v %s %+v", ok, span(job.Compact.Sources), job.Compact.Clean)
	}
	job.Compact.Sources[0].BaseOffset = 1
	if o := complete(job, 29); o.Swapped != 0 {
		t.Fatalf("a result that does not match the index was swapped: %+v", o)
	}
	s.jobs.mu.Lock()
	passes = len(s.jobs.passes)
	s.jobs.mu.Unlock()
	if passes != 0 {
		t.Fatal("the pass outlived its refused window")
	}
	if job, ok = acquire(); !ok || span(job.Compact.Sources) != "[0, 29]" {
		t.Fatalf("after the refusal: %v %s", ok, span(job.Compact.Sources))
	}
	checkInvariants(t, s)
}

// createCompacted creates a compacted topic of one partition whose dirty
// data is due for cleaning a millisecond after its commit.
func createCompacted(t *testing.T, s *Service, name string) meta.Topic {
	t.Helper()
	res, err := s.CreateTopics(ctxT(t), []meta.TopicSpec{{Name: name, Partitions: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "max.compaction.lag.ms": "1"}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("CreateTopics: %v %+v", err, res)
	}
	return res[0].Topic
}

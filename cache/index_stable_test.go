package cache

import (
	"context"
	"fmt"
	"testing"

	"sluice.dev/meta"
)

// stableMeta is indexMeta whose Lookup answers also carry a
// transaction state (meta.StableState).
type stableMeta struct {
	*indexMeta
	stable meta.StableState // guarded by indexMeta.mu
}

func (m *stableMeta) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, max int) (meta.LookupResult, error) {
	res, err := m.indexMeta.Lookup(ctx, tp, offset, max)
	m.mu.Lock()
	res.Stable = m.stable
	m.mu.Unlock()
	return res, err
}

func newStableEnv(t *testing.T, hwm int64, st meta.StableState) (*indexEnv, *stableMeta) {
	m := &stableMeta{indexMeta: newIndexMeta(), stable: st}
	m.set(hwm)
	e := &indexEnv{t: t, m: m.indexMeta, stream: make(chan []meta.CommitEvent), applied: make(chan struct{}, 16)}
	m.watches <- e.stream
	e.x = NewIndex(m, nil)
	t.Cleanup(e.x.Close)
	e.x.AddListener(func(evs []meta.CommitEvent) {
		if evs != nil {
			e.applied <- struct{}{}
		}
	})
	e.waitConnected()
	return e, m
}

// rc asks ReadCommitted from offset and renders its answer as
// "lso [pid:first-last ...]" or "meta" when the cache cannot answer,
// with whether meta was asked a Lookup.
func (e *indexEnv) rc(from int64) (string, bool) {
	e.t.Helper()
	before := e.m.asked()
	lso, ab, ok := e.x.ReadCommitted(context.Background(), testTP, from, nil)
	if !ok {
		return "meta", e.m.asked() != before
	}
	return fmt.Sprint(lso, " ", ab), e.m.asked() != before
}

func stEv(en meta.IndexEntry, hwm, lso, lastAbort int64) meta.CommitEvent {
	return meta.CommitEvent{Entry: en, HighWatermark: hwm, Stable: meta.StableState{Known: true, LastStableOffset: lso, LastAbortOffset: lastAbort}}
}

func abortEv(pid, first, at, lso int64) meta.CommitEvent {
	ev := stEv(meta.IndexEntry{TopicID: testTP.TopicID, Partition: testTP.Partition, BaseOffset: at, LastOffset: at,
		Control: meta.ControlAbort, ProducerID: pid}, at+1, lso, at)
	ev.AbortFirstOffset = first
	return ev
}

// TestIndexReadCommitted walks one partition through the states a
// read_committed fetch meets, checking each answer against what meta's
// TxnPartition would say (docs/transactions.md "Fetch").
func TestIndexReadCommitted(t *testing.T) {
	e, m := newStableEnv(t, 10, meta.StableState{Known: true, LastStableOffset: 10, LastAbortOffset: -1})
	step := func(what string, from int64, want string, wantAsked bool) {
		t.Helper()
		got, asked := e.rc(from)
		if got != want || asked != wantAsked {
			t.Fatalf("%s: ReadCommitted(%d) = %q (asked meta %v), want %q (%v)", what, from, got, asked, want, wantAsked)
		}
	}
	step("unknown partition: one Lookup learns it", 10, "10 []", true)
	step("known: no meta", 10, "10 []", false)
	// A transactional write at 10-14 (LSO stays 10), a plain one at 15.
	e.send(stEv(ent(10, 14, "t"), 15, 10, -1))
	e.send(stEv(ent(15, 15, "p"), 16, 10, -1))
	step("open transaction", 0, "10 []", false)
	// It aborts: marker at 16, the LSO moves to the high watermark.
	e.send(abortEv(7, 10, 16, 17))
	step("after the abort, from before it", 0, "17 [{7 10 16}]", false)
	step("from the marker", 16, "17 [{7 10 16}]", false)
	step("past the marker", 17, "17 []", false)
	// A second transaction opens at 17 and aborts at 19 while a third,
	// opened at 18, stays open: the LSO is 18 and the abort at 19 is
	// listed (its first offset is below the LSO).
	e.send(stEv(ent(17, 17, "u"), 18, 17, 16))
	e.send(stEv(ent(18, 18, "v"), 19, 17, 16))
	e.send(abortEv(8, 17, 19, 18))
	step("an abort past an open transaction", 17, "18 [{8 17 19}]", false)
	// An abort marker of a transaction that wrote nothing here (first
	// offset -1) lists nothing, and meta's latest abort stays 19.
	empty := abortEv(9, -1, 20, 18)
	empty.Stable.LastAbortOffset = 19
	e.send(empty)
	step("empty abort", 20, "18 []", false)
	// A Lookup answer while the stream keeps the state current is not
	// taken (it could run ahead of the events).
	m.mu.Lock()
	m.stable = meta.StableState{Known: true, LastStableOffset: 1000, LastAbortOffset: -1}
	m.mu.Unlock()
	e.x.Invalidate(testTP)
	e.lookup(18)
	step("newer Lookup ignored", 20, "18 []", false)
	// A lost stream freezes the state, and it is still served: a past
	// snapshot, exact (index_stable.go); meta is not asked.
	close(e.stream)
	waitFor(t, "the stream to be lost", func() bool { e.x.mu.Lock(); defer e.x.mu.Unlock(); return !e.x.connected })
	step("stream lost: the frozen state", 17, "18 [{8 17 19}]", false)
	// Back: events may have been missed, so the state is learnt again.
	e.stream = make(chan []meta.CommitEvent)
	e.m.watches <- e.stream
	e.waitConnected()
	step("stream back: learnt again", 20, "1000 []", true)
	// Meta tells of an abort at 21 whose marker's event never came: a
	// guard sends the fetch to meta rather than miss it.
	e.send(stEv(ent(21, 21, "w"), 22, 1000, 21))
	step("an abort not seen", 20, "meta", false)
}

// TestIndexReadCommittedBounded: the cached aborted list is bounded;
// reads before what it holds go to meta, reads after stay exact.
func TestIndexReadCommittedBounded(t *testing.T) {
	e, _ := newStableEnv(t, 0, meta.StableState{Known: true, LastStableOffset: 0, LastAbortOffset: -1})
	if got, _ := e.rc(0); got != "0 []" {
		t.Fatalf("empty partition: %q", got)
	}
	// maxCachedAborted+6 transactions, each one record then an abort.
	n := int64(maxCachedAborted + 6)
	for i := range n {
		e.send(stEv(ent(2*i, 2*i, "x"), 2*i+1, 2*i, 2*i-1))
		e.send(abortEv(100+i, 2*i, 2*i+1, 2*i+2))
	}
	if got, _ := e.rc(0); got != "meta" {
		t.Fatalf("from 0 after %d aborts: %q, want meta", n, got)
	}
	last := 2*n - 1
	if got, _ := e.rc(last); got != fmt.Sprintf("%d [{%d %d %d}]", 2*n, 100+n-1, last-1, last) {
		t.Fatalf("from the last abort marker: %q", got)
	}
	e.x.mu.Lock()
	kept := len(e.x.parts[testTP].stable.aborted)
	e.x.mu.Unlock()
	if kept > maxCachedAborted {
		t.Fatalf("%d aborted transactions cached, bound %d", kept, maxCachedAborted)
	}
}

// TestIndexReadCommittedOldMeta: a meta that sends no state (Known
// false) leaves every answer to TxnPartition, and is asked a Lookup for
// it once per stream, not per fetch.
func TestIndexReadCommittedOldMeta(t *testing.T) {
	e, _ := newStableEnv(t, 5, meta.StableState{})
	for i := range 3 {
		got, asked := e.rc(5)
		if got != "meta" || asked != (i == 0) {
			t.Fatalf("fetch %d: %q (asked %v), want meta, a Lookup only the first time", i, got, asked)
		}
	}
	e.send(meta.CommitEvent{Entry: ent(5, 5, "y"), HighWatermark: 6})
	if got, _ := e.rc(6); got != "meta" {
		t.Fatalf("after an event without state: %q", got)
	}
}

package controller

import (
	"testing"
	"time"

	"sluice.dev/meta"
)

// TestTxnStableState: Lookup answers and commit events carry the
// partition's transaction state (meta.StableState) and an abort
// marker's first offset, equal to what TxnPartition says, so that
// agents serve read_committed from their index caches (issue 15/13).
func TestTxnStableState(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	top := createTopic(t, s, "st", 1)
	p0 := meta.TopicPartition{TopicID: top.ID, Partition: 0}
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// last returns the last event of the next batch naming p0.
	last := func(what string) meta.CommitEvent {
		t.Helper()
		for {
			select {
			case evs := <-ch:
				for i := len(evs) - 1; i >= 0; i-- {
					if !evs[i].ACLs && evs[i].Entry.TopicID == top.ID {
						return evs[i]
					}
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: no commit event", what)
			}
		}
	}
	check := func(what string, ev meta.CommitEvent, lso, lastAbort int64) {
		t.Helper()
		want := meta.StableState{Known: true, LastStableOffset: lso, LastAbortOffset: lastAbort}
		if ev.Stable != want {
			t.Fatalf("%s: event state %+v, want %+v", what, ev.Stable, want)
		}
		lr, err := s.Lookup(ctx, p0, 0, 1)
		if err != nil || lr.Stable != want {
			t.Fatalf("%s: Lookup state %+v %v, want %+v", what, lr.Stable, err, want)
		}
		if st := txnState1(t, s, p0, 0); st.LastStableOffset != lso {
			t.Fatalf("%s: TxnPartition's LSO %d, want %d", what, st.LastStableOffset, lso)
		}
	}

	commit(t, s, newSegment().add(top.ID, 0, 2, 50)) // 0, 1
	check("plain data", last("plain data"), 2, -1)
	res, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: "st", ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60000})
	if err != nil {
		t.Fatal(err)
	}
	prod := meta.TxnProducer{TransactionalID: "st", ProducerID: res.ProducerID, ProducerEpoch: res.ProducerEpoch}
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	commit(t, s, txnSeg(top.ID, 0, 3, prod.ProducerID, prod.ProducerEpoch, 0)) // 2..4
	check("open transaction", last("open transaction"), 2, -1)
	commit(t, s, newSegment().add(top.ID, 0, 1, 50)) // 5
	check("data past the open transaction", last("data past it"), 2, -1)
	if err := s.EndTxn(ctx, prod, false); err != nil { // marker at 6
		t.Fatal(err)
	}
	ev := last("abort")
	if ev.Entry.Control != meta.ControlAbort || ev.Entry.BaseOffset != 6 || ev.AbortFirstOffset != 2 {
		t.Fatalf("abort marker event: %+v, want the marker at 6 with first offset 2", ev)
	}
	check("abort", ev, 7, 6)
	// A transaction that wrote nothing here: its marker has no aborted
	// range, and the latest abort offset stays 6.
	if _, err := s.AddPartitionsToTxn(ctx, prod, []meta.TopicPartition{p0}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndTxn(ctx, prod, false); err != nil { // marker at 7
		t.Fatal(err)
	}
	ev = last("empty abort")
	if ev.Entry.Control != meta.ControlAbort || ev.Entry.BaseOffset != 7 || ev.AbortFirstOffset != -1 {
		t.Fatalf("empty abort marker event: %+v, want the marker at 7 with first offset -1", ev)
	}
	check("empty abort", ev, 8, 6)
	s = reopen(t, s)
	if lr, err := s.Lookup(ctx, p0, 0, 1); err != nil || lr.Stable != (meta.StableState{Known: true, LastStableOffset: 8, LastAbortOffset: 6}) {
		t.Fatalf("after reopen: %+v %v", lr.Stable, err)
	}
}

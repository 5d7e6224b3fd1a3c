package loadtest

import (
	"slices"
	"strings"
	"testing"
)

// txnFixture is a clean transactions run on two partitions of topic t:
//
//	p0: 0 tx0 (committed)  1 commit  2 tx1  3 tx1 (aborted on purpose)  4 abort
//	p1: 0 tx0  1 commit  2 tx2  3 tx2 (unknown, committed)  4 commit  5 tx3 (failed)  6 abort
type txnFixture struct {
	o    *Oracle
	txns []*txnRec
	in   txnCheck
}

func newTxnFixture() *txnFixture {
	p0, p1 := TopicPartition{"t", 0}, TopicPartition{"t", 1}
	f := &txnFixture{o: &Oracle{}, in: txnCheck{topic: "t", partitions: 2,
		unc: map[TopicPartition][]Consumed{}, com: map[TopicPartition][]Consumed{},
		ends: map[int32]int64{0: 5, 1: 7}, lsos: map[int32]int64{0: 5, 1: 7}}}
	tx := func(producer int, n, first int64, count int, out txnOutcome) *txnRec {
		t := &txnRec{producer: producer, n: n, firstSeq: first, count: count, outcome: out}
		f.txns = append(f.txns, t)
		return t
	}
	rec := func(t *txnRec, seq int64, tp TopicPartition, off int64) {
		v := appendValue(nil, t.producer, seq)
		f.in.unc[tp] = append(f.in.unc[tp], Consumed{Offset: off, Value: v})
		f.o.Ack(tp, off, v)
		t.acked = append(t.acked, ackedRec{tp, off, seq})
		if t.outcome == txnCommitted || t.outcome == txnUnknown {
			f.in.com[tp] = append(f.in.com[tp], Consumed{Offset: off, Value: v})
		}
	}
	marker := func(tp TopicPartition, off int64) {
		m := Consumed{Offset: off, Value: []byte{0, 0, 0, 0, 0, 0}, Control: true}
		f.in.unc[tp] = append(f.in.unc[tp], m)
		f.in.com[tp] = append(f.in.com[tp], m)
	}
	tx0 := tx(0, 0, 0, 2, txnCommitted)
	tx1 := tx(0, 1, 2, 2, txnAborted)
	tx2 := tx(1, 0, 0, 2, txnUnknown)
	tx3 := tx(1, 1, 2, 2, txnFailed) // its second record was never acknowledged
	rec(tx0, 0, p0, 0)
	rec(tx0, 1, p1, 0)
	marker(p0, 1)
	marker(p1, 1)
	rec(tx1, 2, p0, 2)
	rec(tx1, 3, p0, 3)
	marker(p0, 4)
	rec(tx2, 0, p1, 2)
	rec(tx2, 1, p1, 3)
	marker(p1, 4)
	rec(tx3, 2, p1, 5)
	marker(p1, 6)
	return f
}

func (f *txnFixture) run() (TxnStats, *problems) {
	ps := &problems{limit: 50}
	st := verifyTxn(f.o, f.txns, f.in, ps)
	return st, ps
}

// drop removes offset off from a view of partition part.
func drop(view map[TopicPartition][]Consumed, part int32, off int64) {
	tp := TopicPartition{"t", part}
	view[tp] = slices.DeleteFunc(view[tp], func(c Consumed) bool { return c.Offset == off })
}

// insert puts c into a view of partition part, in offset order.
func insert(view map[TopicPartition][]Consumed, part int32, c Consumed) {
	tp := TopicPartition{"t", part}
	view[tp] = append(view[tp], c)
	slices.SortStableFunc(view[tp], func(a, b Consumed) int { return int(a.Offset - b.Offset) })
}

func TestVerifyTxnClean(t *testing.T) {
	st, ps := newTxnFixture().run()
	if ps.total != 0 {
		t.Fatalf("clean run: %d problems: %v", ps.total, ps.list)
	}
	want := TxnStats{Committed: 1, AbortedOnPurpose: 1, Failed: 1, Unknown: 1, UnknownCommitted: 1, RecordsVisible: 4, RecordsHidden: 3, Markers: 5}
	if st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}

	// An unknown-outcome transaction may as well have been aborted.
	f := newTxnFixture()
	drop(f.in.com, 1, 2)
	drop(f.in.com, 1, 3)
	st, ps = f.run()
	if ps.total != 0 || st.UnknownAborted != 1 || st.UnknownCommitted != 0 {
		t.Fatalf("unknown transaction hidden: %d problems %v, stats %+v", ps.total, ps.list, st)
	}
}

func TestVerifyTxnFinds(t *testing.T) {
	val := func(p int, seq int64) []byte { return appendValue(nil, p, seq) }
	cases := []struct {
		name string
		edit func(f *txnFixture)
		want string
	}{
		{"aborted record visible", func(f *txnFixture) {
			insert(f.in.com, 0, Consumed{Offset: 2, Value: val(0, 2)})
		}, "(aborted on purpose) is visible"},
		{"failed transaction's record visible", func(f *txnFixture) {
			insert(f.in.com, 1, Consumed{Offset: 5, Value: val(1, 2)})
		}, "(failed and aborted) is visible"},
		{"committed record missing", func(f *txnFixture) { drop(f.in.com, 1, 0) }, "1 of its 2 records visible"},
		{"committed record visible twice", func(f *txnFixture) {
			// The same value again at the aborted record's offset (both views).
			drop(f.in.unc, 0, 2)
			insert(f.in.unc, 0, Consumed{Offset: 2, Value: val(0, 0)})
			insert(f.in.com, 0, Consumed{Offset: 2, Value: val(0, 0)})
		}, "visible twice"},
		{"unknown transaction half visible", func(f *txnFixture) { drop(f.in.com, 1, 3) }, "half visible"},
		{"marker missing: offsets not dense", func(f *txnFixture) { drop(f.in.unc, 0, 1) }, "not dense"},
		{"acknowledged aborted record lost", func(f *txnFixture) {
			// The last record of p0 gone from both views: the read
			// also stops short of the high watermark.
			drop(f.in.unc, 0, 3)
		}, "acknowledged record \"p00-000000000003\" at offset 3 lost"},
		{"last stable offset held back", func(f *txnFixture) { f.in.lsos[1] = 4 }, "last stable offset 4 is not the high watermark 7"},
		{"read_committed stops short", func(f *txnFixture) { drop(f.in.com, 1, 6) }, "with read_committed from 0 stops at offset 5, but the high watermark is 7"},
		{"committed record at another offset", func(f *txnFixture) {
			f.txns[0].acked[0].offset = 2
		}, "committed record p00-000000000000 not visible there"},
		{"a record of no transaction", func(f *txnFixture) {
			insert(f.in.unc, 0, Consumed{Offset: 5, Value: val(7, 0)})
			insert(f.in.com, 0, Consumed{Offset: 5, Value: val(7, 0)})
			f.in.ends[0], f.in.lsos[0] = 6, 6
		}, "belongs to no transaction of this run"},
		{"read_committed differs from read_uncommitted", func(f *txnFixture) {
			f.in.com[TopicPartition{"t", 0}][0].Value = val(0, 1)
		}, "read_uncommitted \"p00-000000000000\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTxnFixture()
			c.edit(f)
			_, ps := f.run()
			if ps.total == 0 {
				t.Fatalf("no problem found, want one containing %q", c.want)
			}
			for _, p := range ps.list {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("problems %q; none contains %q", ps.list, c.want)
		})
	}
}

func TestTxnIndex(t *testing.T) {
	f := newTxnFixture()
	ix := newTxnIndex(f.txns)
	for _, c := range []struct {
		producer int
		seq      int64
		want     *txnRec
	}{{0, 0, f.txns[0]}, {0, 1, f.txns[0]}, {0, 2, f.txns[1]}, {0, 3, f.txns[1]}, {0, 4, nil}, {1, 3, f.txns[3]}, {2, 0, nil}} {
		if got := ix.find(c.producer, c.seq); got != c.want {
			t.Errorf("find(%d, %d) = %+v, want %+v", c.producer, c.seq, got, c.want)
		}
	}
}

// TestCheckTxnGroups: a read_committed group must receive every record
// the read_committed read shows, and no other offset (an aborted
// record's or a marker's).
func TestCheckTxnGroups(t *testing.T) {
	receiveAll := func(f *txnFixture) *group {
		g := newGroup("g")
		for tp, recs := range f.in.com {
			for _, c := range recs {
				if !c.Control {
					g.mark(tp.Partition, c.Offset, c.Value)
				}
			}
		}
		return g
	}
	f := newTxnFixture()
	g := receiveAll(f)
	g.mark(1, 2, f.in.com[TopicPartition{"t", 1}][2].Value) // a redelivery
	ps := &problems{limit: 10}
	checkTxnGroups([]*group{g}, "t", 2, f.in.com, ps)
	if ps.total != 0 {
		t.Fatalf("group that received everything once or twice: %v", ps.list)
	}
	for _, c := range []struct {
		name string
		edit func(g *group)
		want string
	}{
		{"aborted record received", func(g *group) { g.mark(0, 2, appendValue(nil, 0, 2)) }, "received offset 2 of t/0, which is no committed record"},
		{"marker offset received", func(g *group) { g.mark(1, 6, []byte("x")) }, "received offset 6 of t/1"},
		{"committed record missed", func(g *group) { g.seen[1] = &bitset{}; g.vals[1] = nil }, "never received committed record \"p00-000000000001\""},
		{"another value", func(g *group) { g.vals[0][0] = valueHash([]byte("other")) }, "received another value than \"p00-000000000000\""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newTxnFixture()
			g := receiveAll(f)
			c.edit(g)
			ps := &problems{limit: 10}
			checkTxnGroups([]*group{g}, "t", 2, f.in.com, ps)
			for _, p := range ps.list {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Fatalf("problems %q; none contains %q", ps.list, c.want)
		})
	}
}

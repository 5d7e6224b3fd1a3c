package controller

import (
	"errors"
	"math"
	"testing"

	"sluice.dev/meta"
)

func TestSeqAdd(t *testing.T) {
	for _, c := range []struct{ s, n, want int32 }{
		{0, 0, 0},
		{0, 5, 5},
		{math.MaxInt32 - 1, 1, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32, 3, 2},
		{math.MaxInt32 - 2, 5, 2},
	} {
		if got := seqAdd(c.s, c.n); got != c.want {
			t.Errorf("seqAdd(%d, %d) = %d, want %d", c.s, c.n, got, c.want)
		}
	}
}

// step is one batch of a producer sequence script: what is sent and
// what meta must answer (base is checked for appended and duplicate
// batches).
type step struct {
	part  int32
	epoch int16
	seq   int32
	n     int32
	want  meta.ChunkStatus
	base  int64
}

// Each script runs against a fresh service with topic "t" of 2
// partitions and producer id 7 (unknown to InitProducerID, so only the
// per-partition state applies). Each batch is its own commit unless the
// case has sameCommit.
func TestProducerSequences(t *testing.T) {
	const max32 = math.MaxInt32
	cases := []struct {
		name       string
		sameCommit bool // all batches in one SegmentCommit
		batches    []step
	}{
		{name: "in order", batches: []step{
			{seq: 0, n: 5, want: meta.ChunkAppended, base: 0},
			{seq: 5, n: 5, want: meta.ChunkAppended, base: 5},
			{seq: 10, n: 1, want: meta.ChunkAppended, base: 10},
		}},
		{name: "no state accepts any sequence", batches: []step{
			{seq: 42, n: 3, want: meta.ChunkAppended, base: 0},
			{seq: 45, n: 1, want: meta.ChunkAppended, base: 3},
			// The other partition has no state either.
			{part: 1, seq: 1000, n: 2, want: meta.ChunkAppended, base: 0},
		}},
		{name: "duplicate returns the original offset", batches: []step{
			{seq: 0, n: 5, want: meta.ChunkAppended, base: 0},
			{seq: 5, n: 5, want: meta.ChunkAppended, base: 5},
			{seq: 0, n: 5, want: meta.ChunkDuplicate, base: 0},
			{seq: 5, n: 5, want: meta.ChunkDuplicate, base: 5},
			{seq: 10, n: 1, want: meta.ChunkAppended, base: 10},
		}},
		{name: "duplicate must match the whole batch", batches: []step{
			{seq: 0, n: 5, want: meta.ChunkAppended, base: 0},
			{seq: 0, n: 4, want: meta.ChunkOutOfOrder},
			{seq: 1, n: 4, want: meta.ChunkOutOfOrder},
		}},
		{name: "window holds five batches", batches: []step{
			{seq: 0, n: 1, want: meta.ChunkAppended, base: 0},
			{seq: 1, n: 1, want: meta.ChunkAppended, base: 1},
			{seq: 2, n: 1, want: meta.ChunkAppended, base: 2},
			{seq: 3, n: 1, want: meta.ChunkAppended, base: 3},
			{seq: 4, n: 1, want: meta.ChunkAppended, base: 4},
			{seq: 0, n: 1, want: meta.ChunkDuplicate, base: 0},
			{seq: 5, n: 1, want: meta.ChunkAppended, base: 5},
			{seq: 0, n: 1, want: meta.ChunkOutOfOrder}, // fell out of the window
			{seq: 1, n: 1, want: meta.ChunkDuplicate, base: 1},
		}},
		{name: "out of order", batches: []step{
			{seq: 0, n: 5, want: meta.ChunkAppended, base: 0},
			{seq: 6, n: 1, want: meta.ChunkOutOfOrder}, // gap
			{seq: 4, n: 2, want: meta.ChunkOutOfOrder}, // overlaps, not a retry
			{seq: 5, n: 1, want: meta.ChunkAppended, base: 5},
			{seq: 7, n: 1, want: meta.ChunkOutOfOrder},
			{seq: 6, n: 1, want: meta.ChunkAppended, base: 6},
		}},
		{name: "older epoch is fenced", batches: []step{
			{epoch: 1, seq: 0, n: 1, want: meta.ChunkAppended, base: 0},
			{epoch: 0, seq: 1, n: 1, want: meta.ChunkFenced},
			{epoch: 0, seq: 0, n: 1, want: meta.ChunkFenced}, // even a "duplicate"
			{epoch: 1, seq: 1, n: 1, want: meta.ChunkAppended, base: 1},
		}},
		{name: "new epoch must start at zero", batches: []step{
			{epoch: 0, seq: 0, n: 3, want: meta.ChunkAppended, base: 0},
			{epoch: 1, seq: 3, n: 1, want: meta.ChunkOutOfOrder},
			{epoch: 0, seq: 3, n: 1, want: meta.ChunkAppended, base: 3}, // the old epoch is still current
			{epoch: 1, seq: 0, n: 1, want: meta.ChunkAppended, base: 4},
			{epoch: 1, seq: 0, n: 1, want: meta.ChunkDuplicate, base: 4},
			{epoch: 0, seq: 4, n: 1, want: meta.ChunkFenced},
			{epoch: 1, seq: 1, n: 1, want: meta.ChunkAppended, base: 5},
		}},
		{name: "new epoch resets the window", batches: []step{
			{epoch: 0, seq: 0, n: 1, want: meta.ChunkAppended, base: 0},
			{epoch: 1, seq: 0, n: 2, want: meta.ChunkAppended, base: 1},
			{epoch: 1, seq: 0, n: 1, want: meta.ChunkOutOfOrder}, // epoch 0's batch is not a duplicate any more
		}},
		{name: "wrap around", batches: []step{
			{seq: max32 - 1, n: 2, want: meta.ChunkAppended, base: 0},
			{seq: 0, n: 1, want: meta.ChunkAppended, base: 2},
			{seq: max32 - 1, n: 2, want: meta.ChunkDuplicate, base: 0},
			{seq: 1, n: 1, want: meta.ChunkAppended, base: 3},
		}},
		{name: "batch that wraps itself", batches: []step{
			{seq: max32 - 1, n: 1, want: meta.ChunkAppended, base: 0},
			{seq: max32, n: 3, want: meta.ChunkAppended, base: 1}, // sequences max32, 0, 1
			{seq: max32, n: 3, want: meta.ChunkDuplicate, base: 1},
			{seq: 2, n: 1, want: meta.ChunkAppended, base: 4},
			{seq: 0, n: 1, want: meta.ChunkOutOfOrder},
		}},
		{name: "duplicate within one commit", sameCommit: true, batches: []step{
			{seq: 0, n: 5, want: meta.ChunkAppended, base: 0},
			{seq: 0, n: 5, want: meta.ChunkDuplicate, base: 0},
			{seq: 5, n: 1, want: meta.ChunkAppended, base: 5},
			{seq: 5, n: 1, want: meta.ChunkDuplicate, base: 5},
			{seq: 0, n: 5, want: meta.ChunkDuplicate, base: 0},
		}},
		{name: "out of order within one commit", sameCommit: true, batches: []step{
			{seq: 0, n: 1, want: meta.ChunkAppended, base: 0},
			{seq: 2, n: 1, want: meta.ChunkOutOfOrder},
			{seq: 1, n: 1, want: meta.ChunkAppended, base: 1},
			{seq: 2, n: 1, want: meta.ChunkAppended, base: 2},
		}},
		{name: "partitions are independent", batches: []step{
			{part: 0, seq: 0, n: 2, want: meta.ChunkAppended, base: 0},
			{part: 1, seq: 0, n: 3, want: meta.ChunkAppended, base: 0},
			{part: 0, seq: 2, n: 1, want: meta.ChunkAppended, base: 2},
			{part: 1, seq: 2, n: 1, want: meta.ChunkOutOfOrder},
			{part: 1, epoch: 1, seq: 0, n: 1, want: meta.ChunkAppended, base: 3},
			{part: 0, epoch: 0, seq: 3, n: 1, want: meta.ChunkAppended, base: 3}, // partition 0 still at epoch 0
		}},
		{name: "malformed producer fields", batches: []step{
			{seq: -1, n: 1, want: meta.ChunkInvalid},
			{epoch: -1, seq: 0, n: 1, want: meta.ChunkInvalid},
			{seq: 0, n: 1, want: meta.ChunkAppended, base: 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			top := createTopic(t, s, "t", 2)
			var sg *segment
			var want []step
			flush := func() {
				if sg == nil {
					return
				}
				r := commit(t, s, sg)
				for i, w := range want {
					got := r.Chunks[i]
					if got.Status != w.want || (w.want == meta.ChunkAppended || w.want == meta.ChunkDuplicate) && got.BaseOffset != w.base {
						t.Fatalf("batch %+v: got status %d base %d, want status %d base %d", w, got.Status, got.BaseOffset, w.want, w.base)
					}
				}
				sg, want = nil, nil
			}
			for _, bt := range c.batches {
				if !c.sameCommit {
					flush()
				}
				if sg == nil {
					sg = newSegment()
				}
				sg.addP(top.ID, bt.part, bt.n, 10*bt.n, 7, bt.epoch, bt.seq)
				want = append(want, bt)
			}
			flush()
			checkInvariants(t, s)
		})
	}
}

// TestProducerFencedByInitProducerID: once InitProducerID bumped the
// epoch, batches of the old epoch are fenced on every partition, also
// where the partition's own state still has the old epoch.
func TestProducerFencedByInitProducerID(t *testing.T) {
	s := openT(t, t.TempDir())
	top := createTopic(t, s, "t", 2)
	ctx := ctxT(t)
	p, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := commit(t, s, newSegment().
		addP(top.ID, 0, 1, 10, p.ProducerID, p.ProducerEpoch, 0).
		addP(top.ID, 1, 1, 10, p.ProducerID, p.ProducerEpoch, 0))
	for _, c := range r.Chunks {
		if c.Status != meta.ChunkAppended {
			t.Fatalf("%+v", r)
		}
	}
	p2, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch})
	if err != nil || p2.ProducerID != p.ProducerID || p2.ProducerEpoch != p.ProducerEpoch+1 {
		t.Fatalf("bump: %+v %v", p2, err)
	}
	rs := commit(t, s, newSegment().
		addP(top.ID, 0, 1, 10, p.ProducerID, p.ProducerEpoch, 1).    // old epoch: fenced
		addP(top.ID, 1, 1, 10, p2.ProducerID, p2.ProducerEpoch, 0)). // new epoch from 0
		Chunks
	if rs[0].Status != meta.ChunkFenced || rs[1].Status != meta.ChunkAppended || rs[1].BaseOffset != 1 {
		t.Fatalf("after bump: %+v", rs)
	}
}

func TestInitProducerID(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	var last int64 = -1
	for i := 0; i < 3; i++ {
		p, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
		if err != nil || p.ProducerID <= last || p.ProducerEpoch != 0 {
			t.Fatalf("allocate: %+v %v (last %d)", p, err, last)
		}
		last = p.ProducerID
	}
	for _, c := range []struct {
		req  meta.ProducerIDRequest
		want error
	}{
		{meta.ProducerIDRequest{ProducerID: last, ProducerEpoch: 1}, meta.ErrInvalidProducerEpoch},
		{meta.ProducerIDRequest{ProducerID: last + 100, ProducerEpoch: 0}, meta.ErrInvalidProducerEpoch},
		{meta.ProducerIDRequest{ProducerID: last, ProducerEpoch: -1}, meta.ErrInvalidProducerEpoch},
		{meta.ProducerIDRequest{ProducerID: -5, ProducerEpoch: 0}, meta.ErrInvalidProducerEpoch},
		// Transactions (issue 15): a transactional id needs a timeout.
		{meta.ProducerIDRequest{TransactionalID: "tx", ProducerID: -1, ProducerEpoch: -1}, meta.ErrInvalidTxnTimeout},
	} {
		if _, err := s.InitProducerID(ctx, c.req); !errors.Is(err, c.want) {
			t.Errorf("%+v: err %v, want %v", c.req, err, c.want)
		}
	}
	for e := int16(0); e < 3; e++ {
		p, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: last, ProducerEpoch: e})
		if err != nil || p.ProducerID != last || p.ProducerEpoch != e+1 {
			t.Fatalf("bump from %d: %+v %v", e, p, err)
		}
	}
}

// TestInitProducerIDEpochExhausted: at MaxInt16 a bump moves to a new
// producer id, as Kafka does.
func TestInitProducerIDEpochExhausted(t *testing.T) {
	st := newState()
	st.nextPID = 4
	st.epochs[3] = math.MaxInt16
	g := newGroup(st)
	g.reset()
	p, err := applyInitProducerID(g, meta.ProducerIDRequest{ProducerID: 3, ProducerEpoch: math.MaxInt16})
	if err != nil || p != (meta.ProducerIDResult{ProducerID: 4, ProducerEpoch: 0}) {
		t.Fatalf("exhausted: %+v %v", p, err)
	}
	if !g.pidChanged || g.nextPID != 5 {
		t.Fatalf("next producer id not advanced: %+v", g)
	}
}

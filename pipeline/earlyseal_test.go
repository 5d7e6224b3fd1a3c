package pipeline_test

import (
	"context"
	"testing"
	"time"

	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// appendSeq appends one batch and returns its ack and its segment's seq.
func appendSeq(t *testing.T, p *pipeline.Pipeline, b pipeline.Batch) (*ack, uint64) {
	t.Helper()
	a := &ack{}
	seq, err := p.AppendReleaseSeq(context.Background(), []pipeline.Batch{b}, a.done, nil)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return a, seq
}

// waitAcked waits (bounded) until a is answered.
func waitAcked(t *testing.T, a *ack, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !a.called(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not answered within 20 s (the flush interval is a minute)", what)
		}
		time.Sleep(time.Millisecond)
	}
}

const minEarly = 2 << 20 // as the server asks: small segments use the budget

// A client stalled on a segment that is sealed already waits on its
// upload and commit; an early seal for it must not seal the next segment,
// which holds none of its batches, out of the budget.
func TestSealEarlyStaleSegment(t *testing.T) {
	e := newEnv(t, 1)
	p := e.start(pipeline.Config{FlushInterval: time.Minute, EarlySealsPerSecond: 100}, objstore.NewMemory(), nil)
	a, seqA := appendSeq(t, p, e.batch(0, 1, 10))
	p.SealIfAtLeast(0)
	waitAcked(t, a, "first segment")
	b, seqB := appendSeq(t, p, e.batch(0, 1, 10))
	if seqB == seqA {
		t.Fatalf("two segments share seq %d", seqA)
	}
	if p.SealEarly(seqA, minEarly, pipeline.StallFull) {
		t.Fatal("SealEarly for a sealed segment sealed the open one")
	}
	if b.called() {
		t.Fatal("second segment answered without a seal")
	}
	if !p.SealEarly(seqB, minEarly, pipeline.StallFull) {
		t.Fatal("SealEarly for the open segment did not seal it within the budget")
	}
	waitAcked(t, b, "second segment")
}

// Past the budget an early seal is not dropped in favour of the flush
// interval: it is made when the budget has a token again.
func TestSealEarlyPacedByBudget(t *testing.T) {
	e := newEnv(t, 1)
	p := e.start(pipeline.Config{FlushInterval: time.Minute, EarlySealsPerSecond: 2}, objstore.NewMemory(), nil)
	for i := range 2 { // the burst: one second's worth
		a, seq := appendSeq(t, p, e.batch(0, 1, 10))
		if !p.SealEarly(seq, minEarly, pipeline.StallFull) {
			t.Fatalf("early seal %d refused within the burst", i)
		}
		waitAcked(t, a, "within the burst")
	}
	a, seq := appendSeq(t, p, e.batch(0, 1, 10))
	if p.SealEarly(seq, minEarly, pipeline.StallFull) {
		t.Fatal("sealed at once past the budget")
	}
	waitAcked(t, a, "past the budget") // at the next token, about 0.5 s on
}

// While a small early seal is in flight, a quiet client's early seal waits
// for it to complete, so that the clients it answers join the next
// segment instead of getting PUTs of their own; a full client's does not
// wait (it has nothing more to send).
func TestSealEarlyQuietJoinsCohort(t *testing.T) {
	e := newEnv(t, 2)
	gs := newGateStore(objstore.NewMemory())
	// A rejoin delay far longer than the test needs to append once more.
	p := e.start(pipeline.Config{FlushInterval: time.Minute, EarlySealsPerSecond: 100, EarlySealRejoin: 2 * time.Second}, gs, nil)
	a, seqA := appendSeq(t, p, e.batch(0, 1, 10))
	if !p.SealEarly(seqA, minEarly, pipeline.StallQuiet) {
		t.Fatal("first early seal refused")
	}
	b, seqB := appendSeq(t, p, e.batch(1, 1, 10))
	if p.SealEarly(seqB, minEarly, pipeline.StallQuiet) {
		t.Fatal("quiet early seal made while another was in flight")
	}
	// A client answered by the first segment sends again: it joins.
	gs.open()
	waitAcked(t, a, "first segment")
	c, seqC := appendSeq(t, p, e.batch(0, 1, 10))
	if seqC != seqB {
		t.Fatalf("the answered client's next batch went to segment %d, not the waiting %d", seqC, seqB)
	}
	waitAcked(t, b, "put-off early seal")
	waitAcked(t, c, "joined batch")
	gs.mu.Lock()
	puts := len(gs.puts)
	gs.mu.Unlock()
	if puts != 2 {
		t.Fatalf("%d objects for two cohorts joined, want 2", puts)
	}

	// A full client is not put off.
	gs.shut()
	d, seqD := appendSeq(t, p, e.batch(0, 1, 10))
	if !p.SealEarly(seqD, minEarly, pipeline.StallQuiet) {
		t.Fatal("early seal refused")
	}
	f, seqF := appendSeq(t, p, e.batch(1, 1, 10))
	if !p.SealEarly(seqF, minEarly, pipeline.StallFull) {
		t.Fatal("a full client's early seal was put off")
	}
	gs.open()
	waitAcked(t, d, "in flight")
	waitAcked(t, f, "full client")
}

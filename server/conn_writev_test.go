package server

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// recordingTransport records each hand-off and completes none by itself.
type recordingTransport struct{ calls [][]outBuf }

func (r *recordingTransport) writev(_ *conn, bufs []outBuf, _ int64) error {
	r.calls = append(r.calls, bufs)
	return nil
}
func (r *recordingTransport) wake()  {}
func (r *recordingTransport) close() {}

// TestWritevAtMostIOVMax: responses that pile up behind an outstanding
// hand-off (a fetch is many pieces; small responses are one each) go to
// the transport in runs of at most writevMaxPieces, the most writev(2)
// takes, in order.
func TestWritevAtMostIOVMax(t *testing.T) {
	s := &Server{cfg: Config{MaxConnUnsentBytes: 64 << 20}, fetchBudget: newByteBudget(64 << 20)}
	tr := &recordingTransport{}
	c := newConn(s, tr, nil)
	const n = 3000
	c.nextSeq = n
	for seq := range uint64(n) {
		c.respond(seq, []outBuf{{b: []byte{byte(seq), byte(seq >> 8)}}})
	}
	next := 0
	for len(tr.calls) > 0 {
		call := tr.calls[0]
		tr.calls = tr.calls[1:]
		if len(call) > writevMaxPieces {
			t.Fatalf("a hand-off of %d pieces (writev takes at most %d)", len(call), writevMaxPieces)
		}
		for _, b := range call {
			if got := int(b.b[0]) | int(b.b[1])<<8; got != next {
				t.Fatalf("piece %d is response %d", next, got)
			}
			next++
		}
		c.written(call, outLen(call), 0)
	}
	if next != n {
		t.Fatalf("%d of %d responses handed over", next, n)
	}
}

// TestGoAsyncPanicClosesConnection: a bug in the part of a handler that
// answers later (fetch, join, sync) closes its connection and is logged;
// the process goes on.
func TestGoAsyncPanicClosesConnection(t *testing.T) {
	s := &Server{cfg: Config{MaxConnUnsentBytes: 64 << 20}, fetchBudget: newByteBudget(64 << 20),
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c := newConn(s, &recordingTransport{}, nil)
	rc := &reqCtx{c: c, key: 1, version: 12}
	done := make(chan struct{})
	rc.goAsync(func() {
		defer close(done)
		panic("a bug")
	})
	<-done
	deadline := time.Now().Add(10 * time.Second)
	for !c.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("the connection stayed open after its handler panicked")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWritevSplitsLargePieces: a piece over writevMax (a partition's
// record batches) goes to the transport in parts of at most writevMax
// bytes, in order with the pieces around it, and its buffer goes back to
// the pool once, whole, when its last part is written: not before, since
// the parts still to be written are slices of it.
func TestWritevSplitsLargePieces(t *testing.T) {
	s := &Server{cfg: Config{MaxConnUnsentBytes: 64 << 20}, fetchBudget: newByteBudget(64 << 20)}
	tr := &recordingTransport{}
	c := newConn(s, tr, nil)
	big := responses.Get(writevMax*3 + 1000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	want := append([]byte("head"), big...)
	want = append(want, "tail"...)
	c.nextSeq = 1
	c.respond(0, []outBuf{{b: []byte("head")}, {b: big, release: true}, {b: []byte("tail")}})
	var got []byte
	for len(tr.calls) > 0 {
		call := tr.calls[0]
		tr.calls = tr.calls[1:]
		if n := outLen(call); n > writevMax {
			t.Fatalf("a hand-off of %d bytes (at most %d)", n, writevMax)
		}
		for _, b := range call {
			got = append(got, b.b...)
		}
		if len(got) < len(want) {
			// Parts of big are still queued: its buffer must not be back.
			if b := responses.Get(cap(big)); &b[:1][0] == &big[:1][0] {
				t.Fatalf("the buffer went back to the pool with %d bytes of it unwritten", len(want)-len(got))
			} else {
				responses.Put(b)
			}
		}
		c.written(call, outLen(call), 0)
	}
	if string(got) != string(want) {
		t.Fatalf("wrote %d bytes, not the %d given in order", len(got), len(want))
	}
	if b := responses.Get(cap(big)); &b[:1][0] != &big[:1][0] {
		t.Fatal("the split buffer did not go back to the pool whole")
	}
}

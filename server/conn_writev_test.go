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

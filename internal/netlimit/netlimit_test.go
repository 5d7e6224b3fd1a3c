package netlimit

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// closedByPeer reports whether the server closed c (a read ends at once)
// rather than keeping it open (the read times out).
func closedByPeer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	if err == nil {
		t.Fatal("the server wrote to a connection")
	}
	return true
}

// TestListener: connections over the limit are closed on accept and
// reported; closing one makes room for the next; hooks count.
func TestListener(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opened, closed, refused atomic.Int64
	ln := Listener(tcp, 2, Hooks{
		Refused: func(net.Conn) { refused.Add(1) },
		Opened:  func() { opened.Add(1) },
		Closed:  func() { closed.Add(1) },
	})
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := dial(), dial()
	sa, sb := <-accepted, <-accepted
	over := dial()
	if !closedByPeer(t, over) || refused.Load() != 1 {
		t.Fatalf("a third connection over a limit of 2 was not closed at once (refused %d)", refused.Load())
	}
	if closedByPeer(t, a) || closedByPeer(t, b) || ln.Open() != 2 {
		t.Fatalf("the two connections within the limit were closed, or %d open", ln.Open())
	}
	// Closing twice counts once.
	_ = sa.Close()
	_ = sa.Close()
	if ln.Open() != 1 || closed.Load() != 1 {
		t.Fatalf("after a close: %d open, %d closed", ln.Open(), closed.Load())
	}
	c := dial()
	sc := <-accepted
	if closedByPeer(t, c) || ln.Open() != 2 || opened.Load() != 3 {
		t.Fatalf("after room was made: %d open, %d opened", ln.Open(), opened.Load())
	}
	_, _ = sb, sc
	if _, err := io.WriteString(sc, "x"); err != nil {
		t.Fatalf("the accepted connection does not work: %v", err)
	}
}

package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPConnectionLimit: the admin HTTP listener (--http-addr: metrics,
// health, console) keeps at most --http-max-connections open. Past it a
// new connection is closed on accept and counted, the ones open are
// untouched, and once one closes the next is served.
func TestHTTPConnectionLimit(t *testing.T) {
	if _, _, err := startHTTP("127.0.0.1:0", "--http-addr", 0, nil, false); err == nil || !strings.Contains(err.Error(), "--http-max-connections") {
		t.Fatalf("a limit of 0: %v, want an error naming --http-max-connections", err)
	}
	srv, ln, err := startHTTP("127.0.0.1:0", "--http-addr", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := ln.Addr().String()
	refused := mHTTPConnsRefused.Get()

	// Two connections that send nothing hold both places (for up to the
	// 5 s header timeout).
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for mHTTPConnsOpen.Get() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections open, want 2", mHTTPConnsOpen.Get())
		}
		time.Sleep(time.Millisecond)
	}
	third, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	_ = third.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := third.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("a third connection past a limit of 2: read %d bytes, %v; want it closed", n, err)
	}
	if got := mHTTPConnsRefused.Get() - refused; got != 1 {
		t.Fatalf("%d connections counted refused, want 1", got)
	}

	// One of the two goes: the next client is served.
	held[0].Close()
	for mHTTPConnsOpen.Get() > 1 {
		if time.Now().After(deadline) {
			t.Fatal("the closed connection is still counted open")
		}
		time.Sleep(time.Millisecond)
	}
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "sluice_http_connections_refused_total") {
		t.Fatalf("/metrics: %s, %d bytes without the refused counter", resp.Status, len(body))
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

package freeport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// TestAddrBelowEphemeralRange: the ports can be listened on, are never
// handed out twice, and lie below the kernel's ephemeral range, where no
// outgoing connection can take one while its process is down (a port
// from ":0" lies within it, and fails this test).
func TestAddrBelowEphemeralRange(t *testing.T) {
	lo := EphemeralLow()
	seen := map[string]bool{}
	for i := range 100 {
		var r *rand.Rand
		if i%2 == 0 {
			r = rand.New(rand.NewPCG(7, 7)) // the same seed each time: repeats must be skipped
		}
		addr, err := Addr(r)
		if err != nil {
			t.Fatal(err)
		}
		host, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if host != "127.0.0.1" || port >= lo || port < 1024 || seen[addr] {
			t.Fatalf("Addr gave %s (ephemeral range from %d; seen before: %v)", addr, lo, seen[addr])
		}
		seen[addr] = true
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot listen on %s: %v", addr, err)
		}
		ln.Close()
	}
}

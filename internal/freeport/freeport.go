// Package freeport picks loopback addresses for processes that the end to
// end tests and the load tester start, and restart, on an address fixed
// in advance.
//
// A port from ":0" comes from the kernel's ephemeral range, which is also
// where every outgoing connection's local port comes from: between the
// moment it is picked and the moment the process binds it, or while a
// restarted process is down, any connection this machine opens can be
// given it, and the bind then fails for as long as that connection lives.
// The ports here lie below that range, and none is handed out twice by
// one process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addr returns "127.0.0.1:PORT" for a port below the ephemeral range that
// nobody listens on right now and that this process has not handed out
// before. r picks among them (nil: the global source), so that a seeded
// caller stays reproducible.
func Addr(r *rand.Rand) (string, error) {
	lo := EphemeralLow()
	base := max(10000, lo-16000)
	pick := rand.IntN
	if r != nil {
		pick = r.IntN
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		port := base + pick(lo-base)
		if given[port] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		given[port] = true
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free port on 127.0.0.1 between %d and %d", base, lo)
}

// EphemeralLow is the first port of the ephemeral range: Linux says in
// /proc; elsewhere the low end of the common ranges (Linux's default
// 32768; BSDs and macOS start at 49152).
func EphemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > 11024 {
				return lo
			}
		}
	}
	return 32768
}

package server

// Failed SASL attempts per source address: a token bucket each. Every
// failure takes a token; an address with none left is refused at once,
// before any credential lookup or PBKDF2, with the same answer as a wrong
// password (sasl.go), and sluice_sasl_refused_total{reason="rate_limited"}
// counts it. A success takes nothing, so a client that logs in right
// never notices the limiter.
//
// Memory is bounded: at most maxAddrs addresses are tracked. A full
// table first drops addresses whose bucket has refilled (they behave as
// if never seen); if every address is still draining, the new one
// replaces an arbitrary entry, which at worst hands that address a
// fresh bucket. Someone who controls more than maxAddrs addresses is not
// stopped by a per-address limit anyway.

import (
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// saslLimiterMaxAddrs bounds the table: about 100 bytes an entry.
const saslLimiterMaxAddrs = 65536

var (
	mSASLSucceeded   = metrics.NewCounter(`sluice_sasl_authentications_total{result="ok"}`)
	mSASLFailed      = metrics.NewCounter(`sluice_sasl_authentications_total{result="failed"}`)
	mSASLRateLimited = metrics.NewCounter(`sluice_sasl_refused_total{reason="rate_limited"}`)
	mSASLUnauth      = metrics.NewCounter(`sluice_sasl_refused_total{reason="unauthenticated_request"}`)
	mSASLExpired     = metrics.NewCounter(`sluice_sasl_refused_total{reason="session_expired"}`)
)

type saslBucket struct {
	tokens float64
	at     time.Time
}

type saslLimiter struct {
	burst    float64
	rate     float64 // tokens a second
	maxAddrs int

	mu    sync.Mutex
	addrs map[string]*saslBucket // guarded by mu
}

func newSASLLimiter(burst int, rate float64, maxAddrs int) *saslLimiter {
	return &saslLimiter{burst: float64(burst), rate: rate, maxAddrs: maxAddrs, addrs: make(map[string]*saslBucket)}
}

// refillLocked brings b up to now.
func (l *saslLimiter) refillLocked(b *saslBucket, now time.Time) {
	if d := now.Sub(b.at).Seconds(); d > 0 {
		b.tokens = min(l.burst, b.tokens+d*l.rate)
	}
	b.at = now
}

// allow reports whether ip may try to authenticate now.
func (l *saslLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.addrs[ip]
	if !ok {
		return true
	}
	l.refillLocked(b, now)
	return b.tokens >= 1
}

// fail takes a token from ip's bucket.
func (l *saslLimiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.addrs[ip]
	if !ok {
		if len(l.addrs) >= l.maxAddrs {
			l.evictLocked(now)
		}
		b = &saslBucket{tokens: l.burst, at: now}
		l.addrs[ip] = b
	}
	l.refillLocked(b, now)
	b.tokens = max(b.tokens-1, 0)
}

// evictLocked makes room for one address (see the top of this file).
func (l *saslLimiter) evictLocked(now time.Time) {
	for ip, b := range l.addrs {
		l.refillLocked(b, now)
		if b.tokens >= l.burst {
			delete(l.addrs, ip)
		}
	}
	for ip := range l.addrs {
		if len(l.addrs) < l.maxAddrs {
			return
		}
		delete(l.addrs, ip)
	}
}

// size is the number of addresses tracked (tests).
func (l *saslLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs)
}

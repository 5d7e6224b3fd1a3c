// Package bufpool keeps large byte buffers for reuse, in size classes,
// bounded in the bytes it holds.
//
// Why: the produce path copied every request frame into a freshly
// allocated 1–16 MiB buffer. A fresh large allocation is memory the
// kernel has to fault in (or the runtime has to zero), and BENCHMARKS.md's
// profile showed those copies running at page-fault speed, about 0.7 GB/s,
// where a copy into warm memory runs at 20 GB/s and more. A buffer taken
// from a Pool is one some earlier request already touched.
//
// Why not sync.Pool: it empties on every other GC, and a busy agent
// collects several times a second, so the large buffers would be fresh
// again most of the time; and it cannot bound the bytes it holds.
//
// # Ownership (the invariant every user must keep)
//
// A buffer from Get belongs to the caller until the caller hands it to
// Put, exactly once, after which nobody may read or write it: the next
// Get may return it to someone else. Users that share a buffer between
// several holders count references and Put on the last release (see
// server's frameBuf). While Poison is on (tests) Put fills the buffer
// with PoisonByte, Get panics when a pooled buffer was written after its
// Put, and Put panics on a buffer that is already in the pool, so a
// release that comes too early shows up as garbage in the data read back
// or as a panic instead of as silent corruption.
package bufpool

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"sluice.dev/internal/hugepage"
)

// Size classes: four per doubling (1, 1.25, 1.5, 1.75 × a power of two),
// so a buffer wastes at most a fifth of its capacity, from just above
// MinSize to MaxSize. Smaller and larger requests are plain allocations
// that Put ignores: small ones are cheap for the runtime, and larger ones
// are rare (frames above 128 MiB exceed every default).
const (
	MinSize       = 4 << 10
	MaxSize       = 128 << 20
	minShift      = 12 // log2(MinSize)
	stepsPerPower = 4
	numClasses    = (27 - minShift) * stepsPerPower // doublings above MinSize up to MaxSize = 2^27
)

// PoisonByte fills buffers put back while poisoning is on.
const PoisonByte = 0xDB

var poisoners atomic.Int32

// Poison turns poisoning on for every Pool until the returned func is
// called (tests; see the package comment); calls nest, so parallel tests
// may each ask for it. It costs a pass over each buffer at Get and Put.
// A buffer is checked at Get only if it was poisoned at its Put.
func Poison() (undo func()) {
	poisoners.Add(1)
	var once sync.Once
	return func() { once.Do(func() { poisoners.Add(-1) }) }
}

// freeBuf is a buffer in the pool.
type freeBuf struct {
	b        []byte
	poisoned bool // filled with PoisonByte at Put: Get checks it
}

// Pool holds free buffers. The zero Pool holds nothing (every Put is
// dropped); use New.
type Pool struct {
	maxBytes int64

	mu     sync.Mutex
	free   [numClasses][]freeBuf // guarded by mu: LIFO per class, warmest last
	cached int64                 // guarded by mu: capacity held in free

	gets, hits atomic.Int64
}

// New returns a pool that keeps at most maxBytes of free buffers; Put
// beyond that leaves the buffer to the garbage collector.
func New(maxBytes int64) *Pool { return &Pool{maxBytes: maxBytes} }

// class returns the size class holding n bytes, or -1 when n is outside
// the pooled range.
func class(n int) int {
	if n <= MinSize || n > MaxSize {
		return -1
	}
	// n lies in (2^(k-1), 2^k]; the classes of that doubling are
	// 2^(k-1) × 5/4, 6/4, 7/4, 8/4.
	k := bits.Len(uint(n - 1))
	base := 1 << (k - 1)
	step := ((n-base)*stepsPerPower + base - 1) / base // 1..4
	return (k-1-minShift)*stepsPerPower + step - 1
}

// classSize is the capacity of the buffers of class c.
func classSize(c int) int {
	base := 1 << (c/stepsPerPower + minShift)
	return base + base*(c%stepsPerPower+1)/stepsPerPower
}

// Get returns a buffer of length n. Its contents are undefined: the
// caller overwrites all n bytes before reading any.
func (p *Pool) Get(n int) []byte {
	c := class(n)
	if c < 0 {
		return make([]byte, n)
	}
	p.gets.Add(1)
	p.mu.Lock()
	// The exact class first, then up to one doubling above it: produce
	// frames vary in size from request to request, and a warm buffer up
	// to twice the size needed beats fresh memory (see the package
	// comment). A larger buffer goes back to its own class at Put.
	for fc := c; fc < min(c+stepsPerPower+1, numClasses); fc++ {
		l := len(p.free[fc])
		if l == 0 {
			continue
		}
		f := p.free[fc][l-1]
		p.free[fc][l-1] = freeBuf{}
		p.free[fc] = p.free[fc][:l-1]
		p.cached -= int64(cap(f.b))
		p.mu.Unlock()
		p.hits.Add(1)
		if f.poisoned {
			checkPoison(f.b)
		}
		return f.b[:n]
	}
	p.mu.Unlock()
	b := make([]byte, n, classSize(c))
	// Fresh memory: let large buffers fault in huge pages.
	hugepage.Advise(b)
	return b
}

// Put gives b back for reuse; the caller must not touch it afterwards
// (see the package comment). Buffers Get did not pool, and those past
// the pool's bound, are left to the garbage collector.
func (p *Pool) Put(b []byte) {
	c := class(cap(b))
	if c < 0 || classSize(c) != cap(b) {
		return
	}
	b = b[:cap(b)]
	poisoned := poisoners.Load() > 0
	if poisoned {
		p.mu.Lock()
		for _, f := range p.free[c] {
			if &f.b[0] == &b[0] {
				p.mu.Unlock()
				panic("BUG: bufpool: buffer put twice")
			}
		}
		p.mu.Unlock()
		for i := range b {
			b[i] = PoisonByte
		}
	}
	p.mu.Lock()
	if p.cached+int64(cap(b)) > p.maxBytes {
		p.mu.Unlock()
		return
	}
	p.free[c] = append(p.free[c], freeBuf{b, poisoned})
	p.cached += int64(cap(b))
	p.mu.Unlock()
}

// checkPoison panics when a free buffer was written after its Put: some
// holder still used it after releasing it.
func checkPoison(b []byte) {
	b = b[:cap(b)]
	for i, x := range b {
		if x != PoisonByte {
			panic(fmt.Sprintf("BUG: bufpool: buffer written at byte %d after it was put back", i))
		}
	}
}

// Stats reports Gets of pooled sizes, how many of them reused a buffer,
// and the bytes held free now.
func (p *Pool) Stats() (gets, hits, cachedBytes int64) {
	p.mu.Lock()
	cachedBytes = p.cached
	p.mu.Unlock()
	return p.gets.Load(), p.hits.Load(), cachedBytes
}

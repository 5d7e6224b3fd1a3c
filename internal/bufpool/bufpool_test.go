package bufpool

import (
	"strings"
	"testing"
)

func TestClasses(t *testing.T) {
	prev := MinSize
	for c := 0; c < numClasses; c++ {
		sz := classSize(c)
		if sz <= prev {
			t.Fatalf("class %d size %d not above %d", c, sz, prev)
		}
		if got := class(sz); got != c {
			t.Fatalf("class(%d) = %d, want %d", sz, got, c)
		}
		if got := class(prev + 1); got != c {
			t.Fatalf("class(%d) = %d, want %d", prev+1, got, c)
		}
		// At most a fifth of a buffer is waste.
		if waste := sz - (prev + 1); waste*5 > sz {
			t.Fatalf("class %d: %d of %d bytes wasted", c, waste, sz)
		}
		prev = sz
	}
	if prev != MaxSize {
		t.Fatalf("last class %d, want MaxSize %d", prev, MaxSize)
	}
	for _, n := range []int{0, 1, MinSize, MaxSize + 1} {
		if c := class(n); c != -1 {
			t.Fatalf("class(%d) = %d, want -1", n, c)
		}
	}
}

func TestReuseAndBound(t *testing.T) {
	p := New(64 << 10)
	b := p.Get(10000)
	if len(b) != 10000 || cap(b) != classSize(class(10000)) {
		t.Fatalf("len %d cap %d", len(b), cap(b))
	}
	p.Put(b)
	c := p.Get(9000) // same class
	if &c[0] != &b[0] {
		t.Fatal("a free buffer of the class was not reused")
	}
	// Past the bound Put drops buffers.
	big := p.Get(60 << 10)
	p.Put(big)
	p.Put(c)
	if _, _, cached := p.Stats(); cached > 64<<10 {
		t.Fatalf("pool holds %d bytes over its bound", cached)
	}
	// Unpooled sizes and foreign buffers are ignored.
	p.Put(make([]byte, 100))
	p.Put(make([]byte, 5000, 5001))
	small := p.Get(100)
	if len(small) != 100 {
		t.Fatal("small Get")
	}
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), want) {
			t.Fatalf("panic %v, want one containing %q", r, want)
		}
	}()
	f()
}

func TestPoison(t *testing.T) {
	defer Poison()()
	p := New(1 << 20)
	b := p.Get(8000)
	for i := range b {
		b[i] = 1
	}
	p.Put(b)
	if b[:cap(b)][cap(b)-1] != PoisonByte || b[0] != PoisonByte {
		t.Fatal("Put did not poison the buffer")
	}
	mustPanic(t, "put twice", func() { p.Put(b) })
	b[17] = 2 // a holder writing after its release
	mustPanic(t, "written at byte 17", func() { p.Get(8000) })
}

// TestReuseLargerClass: with its own class empty, Get takes a free buffer
// up to one doubling larger, which Put then returns to its own class;
// one further up is not used (a fresh buffer is cheaper than wasting more
// than half of a warm one).
func TestReuseLargerClass(t *testing.T) {
	p := New(64 << 20)
	const n = 5 << 20
	c := class(n)
	within := p.Get(classSize(c + stepsPerPower)) // the largest class one doubling up
	beyond := p.Get(classSize(c + stepsPerPower + 1))
	p.Put(beyond)
	got := p.Get(n)
	if &got[0] == &beyond[0] {
		t.Fatal("Get took a buffer more than one doubling larger")
	}
	p.Put(within)
	reused := p.Get(n)
	if &reused[0] != &within[0] || len(reused) != n {
		t.Fatalf("Get(%d) did not reuse the free buffer one doubling up", n)
	}
	p.Put(reused)
	if _, _, cached := p.Stats(); cached != int64(cap(within)+cap(beyond)) {
		t.Fatalf("pool holds %d bytes, want %d", cached, cap(within)+cap(beyond))
	}
	// Back in its own class: a Get of exactly that class finds it.
	again := p.Get(classSize(c + stepsPerPower))
	if &again[0] != &within[0] {
		t.Fatal("the larger buffer did not go back to its own class")
	}
}

package uninit

import (
	"runtime"
	"testing"
	"unsafe"
)

func TestBytesShape(t *testing.T) {
	for _, n := range []int{1, 7, 4096, 8<<20 + 3} {
		b := Bytes(n)
		if len(b) != 0 || cap(b) != n {
			t.Fatalf("Bytes(%d): len %d cap %d, want 0 and %d", n, len(b), cap(b), n)
		}
		p := unsafe.SliceData(b)
		b = append(b, make([]byte, n)...) // fits: no reallocation
		if unsafe.SliceData(b) != p || len(b) != n {
			t.Fatalf("Bytes(%d) did not hold %d bytes without growing", n, n)
		}
	}
	if b := Bytes(0); b == nil || len(b) != 0 {
		t.Fatalf("Bytes(0) = %#v, want empty and not nil (as make)", b)
	}
}

// TestBytesNotCleared: the whole point. Freed buffers full of 0xAA are
// reused by a later Bytes of the same size, and their bytes are still
// there. If a Go release makes strings.Builder.Grow clear its memory,
// this fails and Bytes is no faster than make.
func TestBytesNotCleared(t *testing.T) {
	const n = 8 << 20
	paint := func(b []byte) {
		for i := range b {
			b[i] = 0xAA
		}
		runtime.KeepAlive(b)
	}
	for range 50 {
		paint(make([]byte, n))
		runtime.GC()
		c := Bytes(n)[:n]
		for _, v := range c[1:] {
			if v == 0xAA {
				return
			}
		}
		// The allocator chose memory that held something else (or came
		// cleared from the kernel): paint that too, so that every range
		// a later round may choose holds the pattern.
		paint(c)
		c = nil
		runtime.GC()
	}
	t.Fatal("50 buffers from Bytes were all cleared: strings.Builder.Grow clears memory in this Go release")
}

// BenchmarkBytes compares Bytes with make for an 8 MiB buffer that is
// then filled, as Finish does; the memory is reused each round.
func BenchmarkBytes(b *testing.B) {
	const n = 8 << 20
	src := make([]byte, n)
	b.Run("make", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			buf := make([]byte, 0, n)
			buf = append(buf, src...)
			runtime.KeepAlive(buf)
		}
	})
	b.Run("uninit", func(b *testing.B) {
		b.SetBytes(n)
		for b.Loop() {
			buf := Bytes(n)
			buf = append(buf, src...)
			runtime.KeepAlive(buf)
		}
	})
}

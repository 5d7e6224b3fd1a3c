package objstore

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchPut puts 8 MiB objects (the pipeline's default segment) and
// reports the putting process's CPU per GiB: what an agent pays per
// object it uploads, besides laying the object out.
func benchPut(b *testing.B, s Store) {
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	c0 := processCPU()
	for i := range b.N {
		if err := s.Put(ctx, fmt.Sprintf("bench/%d", i), data); err != nil {
			b.Fatal(err)
		}
	}
	cpu := processCPU() - c0
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(len(data))/(1<<30)), "cpu-s/GiB")
}

// BenchmarkPutLocal: one write and one fsync per object (local.go),
// buffered (through the page cache) and with O_DIRECT
// (local_direct_linux.go).
func BenchmarkPutLocal(b *testing.B) {
	for _, mode := range []string{"buffered", "direct"} {
		b.Run(mode, func(b *testing.B) {
			l, err := NewLocal(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			if mode == "buffered" {
				l.disableDirect()
			}
			benchPut(b, l)
		})
	}
}

// BenchmarkPutS3Versity: PutObject to versitygw (a separate process: its
// CPU is not counted), over plain HTTP and over HTTPS. The two differ in
// more than TLS: over HTTP the SDK signs the payload, hashing every byte
// with SHA-256; over HTTPS it sends it unsigned with a trailing CRC32
// (aws-chunked), as it does against S3 in production.
func BenchmarkPutS3Versity(b *testing.B) {
	for _, scheme := range []string{"http", "https"} {
		b.Run(scheme, func(b *testing.B) {
			benchPut(b, openVersityScheme(b, scheme, "bench/"))
		})
	}
}

// BenchmarkGetLocal: reading a whole 8 MiB object back (a block cache
// miss on a local bucket), from the page cache; the buffer it returns is
// dropped, so the next read reuses freed memory.
func BenchmarkGetLocal(b *testing.B) {
	l, err := NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ctx := context.Background()
	if err := l.Put(ctx, "bench/get", data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	c0 := processCPU()
	for b.Loop() {
		got, err := l.GetRange(ctx, "bench/get", 0, int64(len(data)))
		if err != nil || len(got) != len(data) {
			b.Fatalf("got %d bytes, %v", len(got), err)
		}
	}
	cpu := processCPU() - c0
	b.ReportMetric(cpu.Seconds()/(float64(b.N)*float64(len(data))/(1<<30)), "cpu-s/GiB")
}

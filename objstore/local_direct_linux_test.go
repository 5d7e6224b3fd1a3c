package objstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// directSupported reports whether dir's file system takes O_DIRECT writes
// (tmpfs does not).
func directSupported(t *testing.T, dir string) bool {
	f, err := os.CreateTemp(dir, "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := setDirect(f, true); err != nil {
		return false
	}
	buf := make([]byte, 2*directAlign)
	blk := buf[(directAlign-int(uintptrOf(buf)%directAlign))%directAlign:][:directAlign]
	_, err = f.WriteAt(blk, 0)
	return err == nil
}

// TestLocalDirectWrites puts objects around the alignment boundaries,
// from aligned and unaligned buffers, and reads each back whole and in
// ranges: the direct path (padding the tail, truncating) must store
// exactly the caller's bytes. On a file system that takes O_DIRECT it
// also checks that the large aligned objects went the direct way.
func TestLocalDirectWrites(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	supported := directSupported(t, dir)
	t.Logf("O_DIRECT supported in %s: %v", dir, supported)
	ctx := context.Background()
	sizes := []int{0, 1, directAlign - 1, directAlign, directMin - 1, directMin, directMin + 1,
		directMin + directAlign - 1, 8<<20 + 12345, 8 << 20}
	for _, unaligned := range []bool{false, true} {
		for _, size := range sizes {
			backing := make([]byte, size+1)
			for i := range backing {
				backing[i] = byte(i*31 + size)
			}
			data := backing[:size]
			if unaligned {
				data = backing[1 : size+1]
			}
			key := fmt.Sprintf("direct/%v/%d", unaligned, size)
			d0, b0 := mLocalDirectWrites.Get(), mLocalBufferedWrites.Get()
			if err := l.Put(ctx, key, data); err != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			wantDirect := supported && !unaligned && size >= directMin
			gotDirect := mLocalDirectWrites.Get() > d0
			if gotDirect != wantDirect || (!gotDirect && mLocalBufferedWrites.Get() == b0) {
				t.Errorf("put %s: direct %v, want %v", key, gotDirect, wantDirect)
			}
			fi, err := os.Stat(dir + "/" + key)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() != int64(size) {
				t.Fatalf("%s: file is %d bytes, want %d", key, fi.Size(), size)
			}
			got, err := l.GetRange(ctx, key, 0, int64(size))
			if err != nil {
				t.Fatalf("get %s: %v", key, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: read back differs from what was put", key)
			}
			if size > 2*directAlign {
				off := int64(size - directAlign - 7)
				got, err := l.GetRange(ctx, key, off, int64(size)-off)
				if err != nil || !bytes.Equal(got, data[off:]) {
					t.Fatalf("%s: tail range differs (err %v)", key, err)
				}
			}
		}
	}
}

// TestLocalDirectOffBuffered: with direct writes off (as a refusing file
// system leaves them) a large aligned object takes the buffered path.
func TestLocalDirectOffBuffered(t *testing.T) {
	l, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l.direct.off.Store(true)
	data := make([]byte, directMin+100)
	for i := range data {
		data[i] = byte(i)
	}
	d0 := mLocalDirectWrites.Get()
	if err := l.Put(context.Background(), "k", data); err != nil {
		t.Fatal(err)
	}
	if mLocalDirectWrites.Get() != d0 {
		t.Fatal("direct write taken with direct writes off")
	}
	got, err := l.GetRange(context.Background(), "k", 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back differs (err %v)", err)
	}
}

// TestLocalDirectRefused: a file system that refuses a direct write with
// EINVAL (after part of the object went out) makes the Put start over
// buffered, store exactly the caller's bytes, and turn direct writes off.
func TestLocalDirectRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	writeDirectFn = func(f *os.File, data []byte) error {
		calls++
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xee}, len(data)+directAlign), 0); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("write: %w", unix.EINVAL)
	}
	defer func() { writeDirectFn = writeDirect }()
	data := make([]byte, directMin+100)
	for i := range data {
		data[i] = byte(i >> 2)
	}
	for _, key := range []string{"a", "b"} {
		if err := l.Put(context.Background(), key, data); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(dir + "/" + key); err != nil || fi.Size() != int64(len(data)) {
			t.Fatalf("%s: stat %v, err %v; want %d bytes", key, fi, err, len(data))
		}
		got, err := l.GetRange(context.Background(), key, 0, int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%s: read back differs from what was put (err %v)", key, err)
		}
	}
	if calls != 1 || !l.direct.off.Load() {
		t.Fatalf("direct tried %d times, off %v; want once, then off", calls, l.direct.off.Load())
	}
}

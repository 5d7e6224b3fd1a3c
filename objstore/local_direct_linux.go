package objstore

import (
	"errors"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sys/unix"
)

// Direct writes (Linux). Put writes large objects with O_DIRECT: the
// kernel then moves the bytes from our buffer to the device without first
// copying them into the page cache, which for 8 MiB segments costs about a
// third of the CPU of a buffered write(2) plus fsync (BENCHMARKS.md,
// BenchmarkPutLocal). The object is still fsynced (the file's size and
// blocks, and the device's cache), so durability is that of the buffered
// path. Reads are unaffected (buffered pread); they simply do not find
// freshly put objects in the page cache, which is what the agent's block
// cache is for.
//
// O_DIRECT wants the buffer's address, the file offset and the length
// aligned to the device's logical block size; directAlign (4 KiB) is a
// multiple of every block size in use. The object's aligned prefix is
// written from the caller's buffer (large Go allocations start on a page,
// and codec.SegmentBuilder.Finish's object is one), the rest from a small
// aligned block padded with zeros, and the file is then truncated to the
// object's size. A buffer that is not aligned, an object under directMin,
// or a file system that refuses O_DIRECT (tmpfs; EINVAL) takes the
// buffered write, and the last turns direct writes off for this Local.
const (
	directAlign = 4096
	directMin   = 256 << 10
)

var (
	mLocalDirectWrites   = metrics.NewCounter(`sluice_objstore_local_writes_total{mode="direct"}`)
	mLocalBufferedWrites = metrics.NewCounter(`sluice_objstore_local_writes_total{mode="buffered"}`)
)

// localDirect is the Local's direct-write state: off once the file system
// refused O_DIRECT.
type localDirect struct {
	off atomic.Bool
}

// writeObject writes data at the start of the empty file f.
func (l *Local) writeObject(f *os.File, data []byte) error {
	if len(data) < directMin || l.direct.off.Load() || uintptrOf(data)%directAlign != 0 {
		mLocalBufferedWrites.Inc()
		_, err := f.Write(data)
		return err
	}
	err := writeDirectFn(f, data)
	if err == nil {
		mLocalDirectWrites.Inc()
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return err
	}
	// The file system (or the device's alignment) refuses direct I/O:
	// start over buffered, and do not try again.
	l.direct.off.Store(true)
	if err := setDirect(f, false); err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	mLocalBufferedWrites.Inc()
	_, err = f.WriteAt(data, 0)
	return err
}

// writeDirectFn is writeDirect; tests replace it to play a file system
// that refuses direct I/O.
var writeDirectFn = writeDirect

// writeDirect writes data with O_DIRECT (see above) and leaves f's size at
// len(data).
func writeDirect(f *os.File, data []byte) error {
	if err := setDirect(f, true); err != nil {
		return err
	}
	body := len(data) &^ (directAlign - 1)
	if _, err := f.WriteAt(data[:body], 0); err != nil {
		return err
	}
	if rest := len(data) - body; rest > 0 {
		// Two blocks' worth, so that one aligned block fits whatever
		// address the allocation gets.
		buf := make([]byte, 2*directAlign)
		skew := int(uintptrOf(buf) % directAlign)
		blk := buf[(directAlign-skew)%directAlign:][:directAlign]
		copy(blk, data[body:])
		if _, err := f.WriteAt(blk, int64(body)); err != nil {
			return err
		}
		if err := f.Truncate(int64(len(data))); err != nil {
			return err
		}
	}
	return nil
}

// setDirect turns O_DIRECT on or off for f's descriptor.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		flags, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil {
			ferr = err
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	}); err != nil {
		return err
	}
	return ferr
}

// uintptrOf is the address of b's first byte.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// disableDirect turns direct writes off (BenchmarkPutLocal's baseline).
func (l *Local) disableDirect() { l.direct.off.Store(true) }

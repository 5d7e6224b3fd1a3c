package hugepage

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Advise marks the whole huge pages inside b's capacity for transparent
// huge pages (madvise MADV_HUGEPAGE). Call it before the buffer is first
// written. It reports whether any range was advised; errors are ignored
// (the advice is only a hint).
func Advise(b []byte) bool {
	if cap(b) < MinBytes {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	start := (p + Size - 1) &^ (Size - 1)
	end := (p + uintptr(cap(b))) &^ (Size - 1)
	if end <= start {
		return false
	}
	full := b[:cap(b)]
	inner := full[start-p : end-p]
	return unix.Madvise(inner, unix.MADV_HUGEPAGE) == nil
}

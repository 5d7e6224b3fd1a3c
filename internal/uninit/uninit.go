// Package uninit allocates byte buffers without clearing them.
//
// Why: the agent lays every sealed segment out into a new buffer of
// several MiB and overwrites every byte of it. make clears the buffer
// first whenever the runtime reuses memory freed before (always, once the
// block cache is full and evicts), and at the peak produce load that
// clearing was 16 % of the agent's CPU samples (BENCHMARKS.md), as much
// as the layout copy itself. The runtime has a non-clearing allocation
// for exactly this (what bytes.Join and strings.Builder use); Go exposes
// it only through strings.Builder.Grow.
//
// !!! The bytes of a buffer from Bytes are whatever the memory last held:
// freed record data of this process. A caller must write every byte it
// exposes before anyone reads it (Finish checks its length against the
// planned size; every byte up to it is appended).
package uninit

import (
	"strings"
	"unsafe"
)

// Bytes returns a buffer of length 0 and capacity n whose
// memory is not cleared. Memory fresh from the kernel is untouched until
// the caller writes it, so huge-page advice given right after still
// applies (internal/hugepage).
func Bytes(n int) []byte {
	if n <= 0 {
		return []byte{} // as make([]byte, 0): empty, not nil
	}
	var sb strings.Builder
	sb.Grow(n) // a non-clearing allocation of at least n bytes
	// One byte gives the builder's string a data pointer; the buffer is
	// that allocation, which no string outlives: s and sb die here.
	sb.WriteByte(0)
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), n)[:0:n]
}

// Package hugepage asks the kernel to back large, long-lived buffers with
// transparent huge pages.
//
// Why: the agent lays every sealed segment out into a new 8 MiB buffer
// that its block cache then keeps, so until the cache is full every
// segment is written into memory the process has never touched, and each
// 4 KiB page costs a fault (on the 2-vCPU VM of BENCHMARKS.md, about 3.6
// CPU-s per GiB: more than everything else the agent does with a byte).
// Backed by 2 MiB pages, the same memory costs a fault per 512 pages.
//
// Only the buffer's 2 MiB-aligned interior is advised: the pages at its
// ends may be shared with other allocations. The advice changes nothing
// but how the kernel backs the range when it is first touched; with the
// system's THP setting at "never" it is ignored.
package hugepage

// Size is the huge page size the interior is aligned to (x86-64, arm64
// with 4 KiB base pages).
const Size = 2 << 20

// MinBytes: smaller buffers span at most one huge page's worth of
// interior; advising them is not worth a system call.
const MinBytes = 2 * Size

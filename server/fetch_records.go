package server

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/cache"
	"sluice.dev/codec"
)

// One partition's record batches in a fetch response, and the cached
// blocks a response lends them from.
//
// A catch-up read served from the cache spent a quarter of the agent's
// CPU copying cached batches into each response (issue 13, target 5:
// BENCHMARKS.md, "Fetch from the cache without a copy"). A batch of at
// least lendMin bytes in a block the block cache holds is now lent: the
// response refers to the block's bytes and copies only the batch's first
// 16 bytes, where the base offset and the partition leader epoch are
// patched (the CRC does not cover them). Smaller batches and control
// batches are still copied: a piece of their own would cost the writev
// more than the copy.
//
// Memory (invariant 7): cached blocks never change and the garbage
// collector keeps a referenced one alive, so lending is safe; but a block
// the cache evicts while a response still refers to it stays in memory
// beside the cache. So a response takes one lease per block it lends
// from (fetchLeases), held by its last piece until written, and each
// block with leases is counted whole, once, against a budget of its own
// as large as the fetch budget (--max-fetch-bytes-inflight): the agent's
// memory stays within --cache-bytes plus twice that. A budget of its own,
// so that lent blocks never hold up a reservation: running out of it only
// means copying. Each connection may hold leases on at most half of it,
// so that one client that never reads cannot make every other copy.
// With no room at once, in either, the batch is copied as before.

// lendMin is the smallest batch a response refers to in the cache rather
// than copies.
const lendMin = 4 << 10

// BlockRangeReader is a RangeReader that can say which cached block a
// range lies in, so that a response may refer to it (cache.BlockCache,
// cache.Zone).
type BlockRangeReader interface {
	RangeReader
	// ReadRangeBlock is ReadRange that also returns, when the range lies
	// inside one block the cache holds, that whole block (raw is a slice
	// of it); else nil (raw is then a copy of its own).
	ReadRangeBlock(ctx context.Context, key string, objectSize, off, length int64) (raw, block []byte, err error)
}

var (
	_ BlockRangeReader = (*cache.BlockCache)(nil)
	_ BlockRangeReader = (*cache.Zone)(nil)
)

var (
	mFetchLentBytes   = metrics.NewCounter(`sluice_fetch_lent_bytes_total`)
	mFetchCopiedBytes = metrics.NewCounter(`sluice_fetch_copied_bytes_total`)
	// A lease refused (the batches copied instead), by the bound that
	// had no room: the connection's allowance or the agent's budget.
	mFetchLendRefusedConn  = metrics.NewCounter(`sluice_fetch_lend_refused_total{bound="connection"}`)
	mFetchLendRefusedAgent = metrics.NewCounter(`sluice_fetch_lend_refused_total{bound="agent"}`)
)

// recordSet is one partition's record batches in a fetch response: the
// pieces it writes, in order (fetch_encode.go). Copies go into buf, a
// pooled buffer; a lent batch is a piece of buf (its patched header)
// followed by a piece of the cached block (the rest of it).
type recordSet struct {
	buf    []byte   // copied batches and lent batches' headers
	cut    int      // buf[cut:] is not yet in pieces
	pieces []outBuf // in order; buf[cut:] follows them
	n      int      // bytes in all
	lentN  int      // bytes of them in cached blocks, not in buf
	null   bool     // a null record set (tests; fills never make one)
}

// recordSetOf is a record set of bytes already laid out (tests, and the
// encoder's view of a response it did not fill).
func recordSetOf(b []byte) recordSet {
	return recordSet{buf: b, n: len(b), null: b == nil}
}

// copyBatch appends a copy of batch with its base offset patched in and
// its partition leader epoch cleared.
func (rs *recordSet) copyBatch(batch []byte, base int64) {
	at := len(rs.buf)
	rs.buf = append(rs.buf, batch...)
	codec.SetBaseOffset(rs.buf[at:], base)
	codec.SetPartitionLeaderEpoch(rs.buf[at:], 0)
	rs.n += len(batch)
	mFetchCopiedBytes.Add(len(batch))
}

// appendControl appends a rendered control batch (a marker entry).
func (rs *recordSet) appendControl(offset, producerID int64, epoch int16, commit bool, ts int64) {
	n := len(rs.buf)
	rs.buf = codec.AppendControlBatch(rs.buf, offset, producerID, epoch, commit, ts)
	rs.n += len(rs.buf) - n
}

// lendBatch appends batch, which lies in a block the response holds a
// lease on (fetchLeases), by reference: only its patched header is
// copied.
func (rs *recordSet) lendBatch(batch []byte, base int64) {
	at := len(rs.buf)
	rs.buf = append(rs.buf, batch[:codec.PatchedHeaderSize]...)
	codec.SetBaseOffset(rs.buf[at:], base)
	codec.SetPartitionLeaderEpoch(rs.buf[at:], 0)
	rs.pieces = append(rs.pieces, outBuf{b: rs.buf[rs.cut:len(rs.buf):len(rs.buf)]},
		outBuf{b: batch[codec.PatchedHeaderSize:len(batch):len(batch)]})
	rs.cut = len(rs.buf)
	rs.n += len(batch)
	rs.lentN += len(batch) - codec.PatchedHeaderSize
	mFetchLentBytes.Add(len(batch) - codec.PatchedHeaderSize)
}

// lent reports whether any piece refers to a cached block.
func (rs *recordSet) lent() bool { return len(rs.pieces) > 0 }

// flat returns the set's bytes in one buffer: buf itself when nothing is
// lent, else a fresh copy.
func (rs *recordSet) flat() []byte {
	if !rs.lent() {
		return rs.buf
	}
	out := make([]byte, 0, rs.n)
	for _, p := range rs.pieces {
		out = append(out, p.b...)
	}
	return append(out, rs.buf[rs.cut:]...)
}

// take returns the set's pieces for a response and hands it their
// ownership: the last piece cut from buf gives buf back to its pool once
// written (releaseResponses). The blocks lent are the response's
// (fetchLeases). The set is empty afterwards.
func (rs *recordSet) take() []outBuf {
	out := rs.pieces
	bufPiece := len(out) - 2 // the last lent batch's header, if any
	if rs.cut < len(rs.buf) {
		out = append(out, outBuf{b: rs.buf[rs.cut:len(rs.buf):len(rs.buf)]})
		bufPiece = len(out) - 1
	}
	if len(out) == 0 {
		*rs = recordSet{}
		return nil
	}
	if bufPiece >= 0 {
		// Pieces are written in order: once this one is, nothing
		// refers to buf any more.
		out[bufPiece].release, out[bufPiece].whole = true, rs.buf
	}
	*rs = recordSet{}
	return out
}

// release gives back the set's buffer without writing it: a fill
// replaced by the next one, or a set copied into the framing.
func (rs *recordSet) release() {
	releaseFetchData(rs.buf)
	*rs = recordSet{}
}

// fetchLeases are the cached blocks one fetch response lends batches
// from, each leased once however many partitions refer to it. Pieces go
// out in order, so the response's last piece holds them until it is
// written (respondFetch).
type fetchLeases struct {
	l      *lentBlocks
	c      *conn // charged, or nil (tests)
	leases []*blockLease
	blocks []*byte // blocks[i] is the block of leases[i], by its first byte
	// index finds a block among many: a fetch of thousands of partitions
	// in small objects (early seals make them a few hundred KiB) would
	// otherwise scan blocks once per batch.
	index map[*byte]struct{}
}

// leaseScanMax is how many leases hold finds by a scan; past it, by index.
const leaseScanMax = 16

// hold reports whether the response may refer to block: it holds a lease
// on it already, or got one now. False: copy (no room, or f is nil).
func (f *fetchLeases) hold(block []byte) bool {
	if f == nil || len(block) == 0 {
		return false
	}
	id := &block[0]
	if f.index != nil {
		if _, ok := f.index[id]; ok {
			return true
		}
	} else {
		for i := len(f.blocks) - 1; i >= 0; i-- {
			if f.blocks[i] == id {
				return true
			}
		}
	}
	lease := f.l.lend(block, f.c)
	if lease == nil {
		return false
	}
	f.leases = append(f.leases, lease)
	f.blocks = append(f.blocks, id)
	switch {
	case f.index != nil:
		f.index[id] = struct{}{}
	case len(f.blocks) > leaseScanMax:
		f.index = make(map[*byte]struct{}, 2*len(f.blocks))
		for _, b := range f.blocks {
			f.index[b] = struct{}{}
		}
	}
	return true
}

// take hands the leases to the response's last piece.
func (f *fetchLeases) take() []*blockLease {
	out := f.leases
	f.leases, f.blocks, f.index = nil, nil, nil
	return out
}

// release gives the leases back (a fill replaced by the next, a response
// encoded by kmsg, which copies).
func (f *fetchLeases) release() {
	for _, l := range f.leases {
		l.release()
	}
	clear(f.blocks)
	f.leases, f.blocks, f.index = f.leases[:0], f.blocks[:0], nil
}

// lentBlocks counts the cached blocks that responses refer to, each whole
// and once, against the lending budget (see the top of this file).
type lentBlocks struct {
	budget *byteBudget
	mu     sync.Mutex
	blocks map[*byte]*lentBlock // by the block's first byte
}

type lentBlock struct {
	refs int
	size int64
}

var mFetchLentBlockBytes = metrics.NewGauge(`sluice_fetch_lent_block_bytes`, nil)

func newLentBlocks(budget *byteBudget) *lentBlocks {
	return &lentBlocks{budget: budget, blocks: make(map[*byte]*lentBlock)}
}

// lend returns a lease on block for a response of connection c, or nil
// when there is no room for it now (the caller copies instead). Each
// block is counted once against the lending budget, and once against
// each connection holding leases on it (conn.tryLend, up to half the
// budget; nil c: no connection, in tests). A nil l lends nothing (a
// Server built without New, in tests).
func (l *lentBlocks) lend(block []byte, c *conn) *blockLease {
	if l == nil || len(block) == 0 {
		return nil
	}
	size := int64(len(block))
	id := &block[0]
	if c != nil && !c.tryLend(id, size, l.budget.limit/2) {
		mFetchLendRefusedConn.Inc()
		return nil
	}
	l.mu.Lock()
	b := l.blocks[id]
	if b == nil {
		if !l.budget.tryAcquire(size) {
			l.mu.Unlock()
			if c != nil {
				c.unlend(id)
			}
			mFetchLendRefusedAgent.Inc()
			return nil
		}
		b = &lentBlock{size: size}
		l.blocks[id] = b
		mFetchLentBlockBytes.Add(float64(size))
	}
	b.refs++
	l.mu.Unlock()
	st := &leaseState{l: l, id: id, c: c}
	lease := &blockLease{st: st}
	// A response dropped unwritten (its connection closed) never reaches
	// releaseResponses: the collector gives the lease back then.
	runtime.AddCleanup(lease, func(st *leaseState) { st.release() }, st)
	return lease
}

func (l *lentBlocks) unref(id *byte) {
	l.mu.Lock()
	b := l.blocks[id]
	if b == nil {
		l.mu.Unlock()
		panic("BUG: server: a lent block released more often than lent")
	}
	b.refs--
	if b.refs > 0 {
		l.mu.Unlock()
		return
	}
	delete(l.blocks, id)
	l.mu.Unlock()
	mFetchLentBlockBytes.Add(-float64(b.size))
	l.budget.release(b.size)
}

// blockLease keeps one lent block counted until released; release is
// idempotent, and the collector releases a lease dropped unreleased.
type blockLease struct{ st *leaseState }

type leaseState struct {
	l    *lentBlocks
	id   *byte
	c    *conn // counted on, or nil
	done atomic.Bool
}

func (b *blockLease) release() { b.st.release() }

func (s *leaseState) release() {
	if s.done.CompareAndSwap(false, true) {
		if s.c != nil {
			s.c.unlend(s.id)
		}
		s.l.unref(s.id)
	}
}

package server

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"sluice.dev/codec"
	"sluice.dev/internal/kafkatest"
)

// TestRecordSetLentEqualsCopied: a record set that lends its large batches
// from a block writes, piece after piece, exactly the bytes of one that
// copies every batch (base offsets and leader epochs patched alike); its
// copy buffer is released by the last piece cut from it, the leases by
// the last piece of all, and nothing else is marked.
func TestRecordSetLentEqualsCopied(t *testing.T) {
	var block []byte
	sizes := []int{1, 40, 2, 9, 1, 30} // records of 256 bytes: small and large batches
	var batches [][2]int
	for _, n := range sizes {
		at := len(block)
		block = kafkatest.AppendBatch(block, kafkatest.BatchOpts{Records: n, ValueSize: 256, ProducerID: -1})
		batches = append(batches, [2]int{at, len(block)})
	}
	budget := newByteBudget(1 << 30)
	leases := &fetchLeases{l: newLentBlocks(budget)}

	var copied, lending recordSet
	base := int64(1000)
	for i, b := range batches {
		batch := block[b[0]:b[1]:b[1]]
		copied.copyBatch(batch, base)
		if len(batch) >= lendMin {
			if !leases.hold(block) {
				t.Fatal("a block refused with the budget empty")
			}
			lending.lendBatch(batch, base)
		} else {
			lending.copyBatch(batch, base)
		}
		base += int64(sizes[i])
	}
	if len(leases.leases) != 1 {
		t.Fatalf("%d leases on one block, want 1", len(leases.leases))
	}
	lease := leases.leases[0]
	lending.appendControl(base, 7, 1, true, 0)
	copied.appendControl(base, 7, 1, true, 0)
	if !lending.lent() || lending.n != copied.n {
		t.Fatalf("lending set: lent %v, %d bytes; copied set %d bytes", lending.lent(), lending.n, copied.n)
	}
	if got, want := budget.inUse(), int64(len(block)); got != want {
		t.Fatalf("budget in use %d, want the block's %d, counted once", got, want)
	}
	want := append([]byte(nil), copied.buf...)
	// Every batch of the copy carries its offsets and a CRC that holds.
	next := int64(1000)
	if err := codec.SplitBatches(want, func(b []byte) error {
		h, err := codec.ValidateBatch(b)
		if err == nil && h.BaseOffset != next {
			t.Fatalf("a batch at offset %d, want %d", h.BaseOffset, next)
		}
		next = h.BaseOffset + int64(h.LastOffsetDelta) + 1
		return err
	}); err != nil {
		t.Fatal(err)
	}
	buf := lending.buf
	pieces := lending.take()
	pieces[len(pieces)-1].leases = leases.take()
	var got []byte
	releases := 0
	for i, p := range pieces {
		got = append(got, p.b...)
		if p.release {
			releases++
			if &p.whole[0] != &buf[0] {
				t.Fatalf("piece %d releases a buffer that is not the set's", i)
			}
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("lent pieces write %d bytes that differ from the %d copied", len(got), len(want))
	}
	if releases != 1 {
		t.Fatalf("%d pieces release the buffer, want 1", releases)
	}
	if lending.n != 0 || lending.lent() {
		t.Fatal("take left the set holding something")
	}
	releaseResponses(pieces)
	if got := budget.inUse(); got != 0 {
		t.Fatalf("budget in use %d after the pieces were written", got)
	}
	lease.release() // idempotent
	if got := budget.inUse(); got != 0 {
		t.Fatalf("budget in use %d after a second release", got)
	}
}

// TestLentBlocksBounded: lent blocks are counted whole against the
// lending budget; when it has no room, lend refuses (the caller copies), and a
// lease dropped without release (its connection closed) is given back
// by the collector.
func TestLentBlocksBounded(t *testing.T) {
	budget := newByteBudget(3 << 20)
	lent := newLentBlocks(budget)
	a, b := make([]byte, 2<<20), make([]byte, 2<<20)
	la := lent.lend(a, nil)
	if la == nil {
		t.Fatal("the first block refused")
	}
	if lent.lend(b, nil) != nil {
		t.Fatal("a second 2 MiB block lent past a 3 MiB budget")
	}
	la2 := lent.lend(a, nil) // the same block again costs nothing more
	if la2 == nil || budget.inUse() != 2<<20 {
		t.Fatalf("a second lease on one block: %v, budget in use %d", la2 != nil, budget.inUse())
	}
	la.release()
	la2.release()
	if budget.inUse() != 0 {
		t.Fatalf("budget in use %d after both leases were released", budget.inUse())
	}
	func() { _ = lent.lend(b, nil) }() // dropped, never released
	deadline := time.Now().Add(10 * time.Second)
	for budget.inUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a dropped lease still holds %d bytes of budget", budget.inUse())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestLentBlocksChargedToTheConnection: the blocks a connection's leases
// hold are counted whole, once each, against half the lending budget, so
// a client that never reads cannot take it all and make every other
// copy; and none of it is taken from the share its responses'
// reservations wait on.
func TestLentBlocksChargedToTheConnection(t *testing.T) {
	budget := newByteBudget(6 << 20) // a connection may hold 3 MiB
	lent := newLentBlocks(budget)
	c := &conn{}
	a, b := make([]byte, 2<<20), make([]byte, 2<<20)
	la := lent.lend(a, c)
	if la == nil {
		t.Fatal("a block within the share refused")
	}
	if lent.lend(b, c) != nil {
		t.Fatal("a lease past the connection's 3 MiB, half the budget")
	}
	la2 := lent.lend(a, c) // a block the connection holds costs nothing more
	if la2 == nil || c.lentBytes != 2<<20 {
		t.Fatalf("a second lease on a block the connection holds: %v, %d counted", la2 != nil, c.lentBytes)
	}
	la2.release()
	lb := lent.lend(b, nil) // another connection's
	if lb == nil {
		t.Fatal("the agent's budget refused a block")
	}
	la.release()
	lb.release()
	if c.lentBytes != 0 || c.shareUsed != 0 || budget.inUse() != 0 {
		t.Fatalf("after release: %d lent, share %d and budget %d in use", c.lentBytes, c.shareUsed, budget.inUse())
	}
}

// A response lending from many blocks (a fetch of many partitions in small
// objects) leases each block once, however many batches refer to it and
// whether hold finds it by scan or by index, and gives every lease back.
func TestFetchLeasesManyBlocks(t *testing.T) {
	budget := newByteBudget(1 << 30)
	leases := &fetchLeases{l: newLentBlocks(budget)}
	blocks := make([][]byte, 3*leaseScanMax)
	for i := range blocks {
		blocks[i] = make([]byte, 1024)
	}
	for round := range 3 {
		for i, b := range blocks {
			if !leases.hold(b) {
				t.Fatalf("round %d: block %d refused", round, i)
			}
		}
	}
	if n := len(leases.leases); n != len(blocks) {
		t.Fatalf("%d leases on %d blocks", n, len(blocks))
	}
	if got, want := budget.inUse(), int64(len(blocks)*1024); got != want {
		t.Fatalf("lending budget holds %d bytes, want %d", got, want)
	}
	leases.release()
	if got := budget.inUse(); got != 0 {
		t.Fatalf("lending budget holds %d bytes after release", got)
	}
	if !leases.hold(blocks[0]) || len(leases.leases) != 1 {
		t.Fatalf("after release: %d leases, want 1", len(leases.leases))
	}
	leases.release()
}

// BenchmarkFetchLeasesHold: one response lending batches from n blocks,
// four batches per block, as a fetch of many partitions in small objects.
func BenchmarkFetchLeasesHold(b *testing.B) {
	for _, n := range []int{8, 256, 2048} {
		b.Run(fmt.Sprintf("blocks=%d", n), func(b *testing.B) {
			budget := newByteBudget(1 << 40)
			lb := newLentBlocks(budget)
			blocks := make([][]byte, n)
			for i := range blocks {
				blocks[i] = make([]byte, 64)
			}
			b.ReportAllocs()
			for b.Loop() {
				leases := &fetchLeases{l: lb}
				for range 4 {
					for _, bl := range blocks {
						leases.hold(bl)
					}
				}
				leases.release()
			}
		})
	}
}

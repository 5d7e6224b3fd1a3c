package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"sluice.dev/objstore"
)

func newTestCache(t testing.TB, store objstore.Store, cfg BlockCacheConfig) *BlockCache {
	t.Helper()
	c, err := NewBlockCache(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// randBytes returns n bytes that depend only on seed and n.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// putObjects stores objects of the given sizes as "obj/<size>" and returns
// their contents by key.
func putObjects(t testing.TB, s objstore.Store, sizes ...int) map[string][]byte {
	t.Helper()
	objs := map[string][]byte{}
	for _, n := range sizes {
		key := fmt.Sprintf("obj/%d", n)
		objs[key] = randBytes(uint64(n), n)
		if err := s.Put(context.Background(), key, objs[key]); err != nil {
			t.Fatal(err)
		}
	}
	return objs
}

func mustRead(t testing.TB, c *BlockCache, key string, size, off, length int64) []byte {
	t.Helper()
	b, err := c.ReadRange(context.Background(), key, size, off, length)
	if err != nil {
		t.Fatalf("ReadRange(%q, size %d, [%d, +%d)): %v", key, size, off, length, err)
	}
	return b
}

// Random ranges, inside and across blocks, cold and warm, from loaded and
// from inserted objects, must equal the source bytes.
func TestReadRangeMatchesSource(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))

	mem := objstore.NewMemory()
	const bs = 1000
	c := newTestCache(t, mem, BlockCacheConfig{BlockSize: bs, MaxBytes: 1 << 20})
	objs := putObjects(t, mem, 1, 999, 1000, 1001, 2000, 5500, 12345)
	// Half of them also arrive through Insert, as after an upload.
	for _, n := range []int{1001, 5500} {
		key := fmt.Sprintf("obj/%d", n)
		c.Insert(key, bytes.Clone(objs[key]))
	}
	keys := []string{"obj/1", "obj/999", "obj/1000", "obj/1001", "obj/2000", "obj/5500", "obj/12345"}
	for i := range 2000 {
		key := keys[r.IntN(len(keys))]
		obj := objs[key]
		size := int64(len(obj))
		off := r.Int64N(size + 1)
		length := r.Int64N(size - off + 1)
		if i%5 == 0 && size-off > bs {
			length = r.Int64N(bs) + 1 // more ranges inside one block
		}
		got := mustRead(t, c, key, size, off, length)
		if !bytes.Equal(got, obj[off:off+length]) {
			t.Fatalf("seed %d: ReadRange(%q, [%d, +%d)) differs from the source", seed, key, off, length)
		}
		if cap(got) != len(got) {
			// An append by the caller would write into the cached block.
			t.Fatalf("ReadRange(%q, [%d, +%d)) has cap %d > len %d", key, off, length, cap(got), len(got))
		}
	}
	// The exact edges.
	for _, rg := range []struct{ off, length int64 }{{0, 12345}, {999, 2}, {1000, 1000}, {12344, 1}, {12345, 0}, {0, 0}} {
		got := mustRead(t, c, "obj/12345", 12345, rg.off, rg.length)
		if !bytes.Equal(got, objs["obj/12345"][rg.off:rg.off+rg.length]) {
			t.Fatalf("[%d, +%d) differs", rg.off, rg.length)
		}
	}
}

func TestReadRangeRejectsBadRanges(t *testing.T) {
	mem := objstore.NewMemory()
	c := newTestCache(t, mem, BlockCacheConfig{BlockSize: 100, MaxBytes: 1000})
	putObjects(t, mem, 500)
	for _, rg := range []struct{ size, off, length int64 }{
		{500, -1, 1}, {500, 0, -1}, {500, 501, 0}, {500, 400, 101}, {500, 1, 1 << 62}, {-1, 0, 0},
	} {
		if _, err := c.ReadRange(context.Background(), "obj/500", rg.size, rg.off, rg.length); err == nil {
			t.Errorf("ReadRange(size %d, [%d, +%d)) succeeded", rg.size, rg.off, rg.length)
		}
	}
}

// A counting store shows what reached the object store: a warm block costs
// no GET, and a span reads only the blocks it lacks.
func TestHitsDoNoGet(t *testing.T) {
	mem := objstore.NewMemory()
	objs := putObjects(t, mem, 3500)
	store := objstore.NewFaulty(mem, 1)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	hits0, misses0 := hitsTotal.Get(), missesTotal.Get()

	steps := []struct {
		off, length int64
		gets        int64 // total GETs after the read
	}{
		{10, 20, 1},   // block 0 cold
		{10, 20, 1},   // same range, warm
		{500, 500, 1}, // other part of block 0
		{900, 200, 2}, // span 0-1: only block 1 is read
		{0, 3500, 4},  // span 0-3: blocks 2 and 3 are read
		{0, 3500, 4},  // all warm
		{3499, 1, 4},  // the short last block is cached as well
	}
	for _, st := range steps {
		got := mustRead(t, c, "obj/3500", 3500, st.off, st.length)
		if !bytes.Equal(got, objs["obj/3500"][st.off:st.off+st.length]) {
			t.Fatalf("[%d, +%d) differs", st.off, st.length)
		}
		if n := store.Calls(objstore.OpGet); n != st.gets {
			t.Fatalf("after [%d, +%d): %d GETs, want %d", st.off, st.length, n, st.gets)
		}
	}
	// Block lookups: 1 miss, then hits, except the first look at blocks 1,
	// 2 and 3 in the spans.
	if h, m := hitsTotal.Get()-hits0, missesTotal.Get()-misses0; m != 4 || h != 10 {
		t.Errorf("hits %d, misses %d; want 10 and 4", h, m)
	}
}

// Fifty readers missing on one block at once make one GET between them.
func TestConcurrentMissesShareOneGet(t *testing.T) {
	mem := objstore.NewMemory()
	objs := putObjects(t, mem, 2500)
	store := objstore.NewFaulty(mem, 1)
	store.SetLatency(objstore.OpGet, 50*time.Millisecond)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})

	const readers = 50
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i := range readers {
		wg.Go(func() {
			<-start
			off := int64(1000 + i*10) // all inside block 1
			got, err := c.ReadRange(context.Background(), "obj/2500", 2500, off, 100)
			if err == nil && !bytes.Equal(got, objs["obj/2500"][off:off+100]) {
				err = fmt.Errorf("reader %d: wrong bytes", i)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := store.Calls(objstore.OpGet); n != 1 {
		t.Fatalf("%d readers made %d GETs, want 1", readers, n)
	}
}

// A failed read reaches the reader (and those waiting on it), is not
// cached, and the next read tries again.
func TestLoadFailureSurfacesAndRetries(t *testing.T) {
	mem := objstore.NewMemory()
	objs := putObjects(t, mem, 1500)
	store := objstore.NewFaulty(mem, 1)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	ctx := context.Background()

	store.FailNext(objstore.OpGet, 1)
	if _, err := c.ReadRange(ctx, "obj/1500", 1500, 0, 10); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("ReadRange: %v, want the injected error", err)
	}
	if got := mustRead(t, c, "obj/1500", 1500, 0, 10); !bytes.Equal(got, objs["obj/1500"][:10]) {
		t.Fatal("retry returned wrong bytes")
	}
	if n := store.Calls(objstore.OpGet); n != 2 {
		t.Fatalf("%d GETs, want 2 (failure, retry)", n)
	}

	// Readers that joined a failing load get its error; none get wrong
	// bytes; and the block is readable afterwards.
	store.SetRule(objstore.OpGet, objstore.Rule{FailNext: 1, Latency: 30 * time.Millisecond})
	var wg sync.WaitGroup
	var failed, succeeded atomic.Int64
	for range 20 {
		wg.Go(func() {
			got, err := c.ReadRange(ctx, "obj/1500", 1500, 1000, 500)
			switch {
			case errors.Is(err, objstore.ErrInjected):
				failed.Add(1)
			case err != nil:
				t.Errorf("unexpected error: %v", err)
			case !bytes.Equal(got, objs["obj/1500"][1000:]):
				t.Error("wrong bytes")
			default:
				succeeded.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() == 0 {
		t.Fatal("the injected failure reached no reader")
	}
	if got := mustRead(t, c, "obj/1500", 1500, 1000, 500); !bytes.Equal(got, objs["obj/1500"][1000:]) {
		t.Fatal("read after the failure returned wrong bytes")
	}
	t.Logf("%d readers shared the failure, %d read after it", failed.Load(), succeeded.Load())
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// When the loader gives up (its context ends), a waiter does not inherit
// the loader's context error: it loads the block itself.
func TestLoaderCancelledWaiterTakesOver(t *testing.T) {
	mem := objstore.NewMemory()
	objs := putObjects(t, mem, 1000)
	store := objstore.NewFaulty(mem, 1)
	store.SetLatency(objstore.OpGet, 200*time.Millisecond)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})

	loaderCtx, cancel := context.WithCancel(context.Background())
	loaderErr := make(chan error, 1)
	go func() {
		_, err := c.ReadRange(loaderCtx, "obj/1000", 1000, 0, 10)
		loaderErr <- err
	}()
	waitFor(t, "the loader's GET", func() bool { return store.Calls(objstore.OpGet) == 1 })
	waiterDone := make(chan []byte, 1)
	go func() {
		got, err := c.ReadRange(context.Background(), "obj/1000", 1000, 0, 1000)
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		waiterDone <- got
	}()
	// Give the waiter time to find the load in flight, then cancel it.
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-loaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("loader: %v, want context.Canceled", err)
	}
	if got := <-waiterDone; !bytes.Equal(got, objs["obj/1000"]) {
		t.Fatal("waiter got wrong bytes")
	}
	if n := store.Calls(objstore.OpGet); n != 2 {
		t.Fatalf("%d GETs, want 2 (abandoned, taken over)", n)
	}
}

// A waiter's own deadline ends its wait even though the load goes on.
func TestWaiterRespectsContext(t *testing.T) {
	mem := objstore.NewMemory()
	putObjects(t, mem, 1000)
	store := objstore.NewFaulty(mem, 1)
	store.SetLatency(objstore.OpGet, 300*time.Millisecond)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})

	loaderDone := make(chan error, 1)
	go func() {
		_, err := c.ReadRange(context.Background(), "obj/1000", 1000, 0, 10)
		loaderDone <- err
	}()
	waitFor(t, "the loader's GET", func() bool { return store.Calls(objstore.OpGet) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.ReadRange(ctx, "obj/1000", 1000, 0, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v, want DeadlineExceeded", err)
	}
	if err := <-loaderDone; err != nil {
		t.Fatalf("loader: %v", err)
	}
}

// Blocks of a cold span are read concurrently: this store answers only once
// all three GETs are in flight together.
func TestSpanReadsMissingBlocksConcurrently(t *testing.T) {
	mem := objstore.NewMemory()
	objs := putObjects(t, mem, 3000)
	store := &barrierStore{Store: mem, n: 3, all: make(chan struct{})}
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	if got := mustRead(t, c, "obj/3000", 3000, 500, 2000); !bytes.Equal(got, objs["obj/3000"][500:2500]) {
		t.Fatal("wrong bytes")
	}
}

type barrierStore struct {
	objstore.Store
	n       int64
	arrived atomic.Int64
	all     chan struct{}
}

func (b *barrierStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if b.arrived.Add(1) == b.n {
		close(b.all)
	}
	select {
	case <-b.all:
	case <-time.After(10 * time.Second):
		return nil, errors.New("GETs were not concurrent")
	}
	return b.Store.GetRange(ctx, key, off, length)
}

// An object inserted after upload is read without a GET.
func TestInsertThenReadNoGet(t *testing.T) {
	store := objstore.NewFaulty(objstore.NewMemory(), 1)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	obj := randBytes(1, 4321)
	c.Insert("fresh", obj) // not in the store at all: any GET would fail
	for _, rg := range []struct{ off, length int64 }{{0, 4321}, {4000, 321}, {10, 10}, {999, 2}} {
		if got := mustRead(t, c, "fresh", 4321, rg.off, rg.length); !bytes.Equal(got, obj[rg.off:rg.off+rg.length]) {
			t.Fatalf("[%d, +%d) differs", rg.off, rg.length)
		}
	}
	if n := store.Calls(objstore.OpGet); n != 0 {
		t.Fatalf("%d GETs after Insert, want 0", n)
	}
}

// Inserting ten times MaxBytes never leaves more than MaxBytes cached,
// whether counted by ristretto's policy or by the blocks its map holds.
func TestBytesBounded(t *testing.T) {
	const maxBytes = 1 << 20
	c := newTestCache(t, objstore.NewMemory(), BlockCacheConfig{BlockSize: 64 << 10, MaxBytes: maxBytes})
	inserted0 := insertedBytes.Get()
	var offered int
	for i := 0; offered < 10*maxBytes; i++ {
		obj := make([]byte, 100<<10+i*4099%(200<<10)) // 100-300 KiB: full and short blocks
		c.Insert(fmt.Sprintf("seg/%d", i), obj)
		offered += len(obj)
		if used := c.cachedBytes(); used > maxBytes {
			t.Fatalf("after %d bytes inserted the policy holds %d > %d", offered, used, maxBytes)
		}
	}
	c.cache.Wait()
	var held int64
	c.cache.IterValues(func(b *block) bool {
		held += int64(len(b.data))
		return false
	})
	if held > maxBytes || held == 0 {
		t.Fatalf("the cache holds %d bytes of blocks; want (0, %d]", held, maxBytes)
	}
	if got := c.ristrettoBytes(); got != held {
		t.Errorf("policy counts %d bytes, map holds %d", got, held)
	}
	if total := held + c.window.size(); total > maxBytes {
		t.Fatalf("window and ristretto hold %d > %d", total, maxBytes)
	}
	if d := insertedBytes.Get() - inserted0; d == 0 || d > uint64(offered) {
		t.Errorf("sluice_cache_inserted_bytes_total grew by %d of %d offered", d, offered)
	}
	t.Logf("offered %d, holding %d, %d sets dropped, %d rejected", offered, held,
		c.cache.Metrics.SetsDropped(), c.cache.Metrics.SetsRejected())
}

// A block found under another key's hash is a miss, never wrong bytes:
// here a collision is forged by storing key "a"'s block under "b"'s hash.
func TestHashCollisionIsAMiss(t *testing.T) {
	mem := objstore.NewMemory()
	if err := mem.Put(context.Background(), "b", []byte("bbbb")); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, mem, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	c.cache.Set(blockKey{xxhash.Sum64String("b"), 0}.hash(), &block{key: "a", idx: 0, data: []byte("aaaa")}, 4)
	c.cache.Wait()
	if got := mustRead(t, c, "b", 4, 0, 4); string(got) != "bbbb" {
		t.Fatalf("read %q, want bbbb", got)
	}
}

// Readers that disagree about an object's size get an error, not a panic
// or a short read.
func TestObjectSizeDisagreement(t *testing.T) {
	mem := objstore.NewMemory()
	putObjects(t, mem, 1500)
	c := newTestCache(t, mem, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	mustRead(t, c, "obj/1500", 1500, 1000, 500)
	if _, err := c.ReadRange(context.Background(), "obj/1500", 1400, 1000, 400); err == nil {
		t.Fatal("a read with a smaller objectSize succeeded")
	}
	if _, err := c.ReadRange(context.Background(), "obj/1500", 1600, 1000, 600); err == nil {
		t.Fatal("a read with a larger objectSize succeeded")
	}
}

func TestConfig(t *testing.T) {
	mem := objstore.NewMemory()
	c, err := NewBlockCache(mem, BlockCacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if c.blockSize != 16<<20 || c.cache.MaxCost()+c.window.max != 512<<20 {
		t.Errorf("defaults: block %d, max %d+%d", c.blockSize, c.cache.MaxCost(), c.window.max)
	}
	c.Close()
	c.Close() // idempotent
	if _, err := c.ReadRange(context.Background(), "k", 10, 0, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadRange after Close: %v, want ErrClosed", err)
	}
	c.Insert("k", []byte("x")) // a no-op, not a panic

	for _, cfg := range []BlockCacheConfig{
		{BlockSize: -1}, {MaxBytes: -1}, {BlockSize: 2 << 20, MaxBytes: 1 << 20},
	} {
		if _, err := NewBlockCache(mem, cfg); err == nil {
			t.Errorf("NewBlockCache(%+v) succeeded", cfg)
		}
	}
}

// BenchmarkBlockCacheHit reads 64 KiB ranges from a warm cache: inside one
// block (the zero-copy path) and straddling two (one copy).
func BenchmarkBlockCacheHit(b *testing.B) {
	const (
		objSize = 64 << 20
		rng     = 64 << 10
	)
	c := newTestCache(b, objstore.NewMemory(), BlockCacheConfig{})
	c.Insert("seg", make([]byte, objSize))
	blockSize := c.blockSize
	if got := c.cachedBytes(); got != objSize {
		b.Fatalf("warm-up cached %d of %d bytes", got, objSize)
	}
	ctx := context.Background()

	b.Run("single-block", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(rng)
		var off int64
		for b.Loop() {
			if _, err := c.ReadRange(ctx, "seg", objSize, off, rng); err != nil {
				b.Fatal(err)
			}
			off = (off + rng) % objSize
		}
	})
	b.Run("two-blocks", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(rng)
		var blk int64 = 1
		for b.Loop() {
			if _, err := c.ReadRange(ctx, "seg", objSize, blk*blockSize-rng/2, rng); err != nil {
				b.Fatal(err)
			}
			blk = blk%(objSize/blockSize-1) + 1
		}
	})
	b.Run("single-block-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(rng)
		b.RunParallel(func(pb *testing.PB) {
			var off int64
			for pb.Next() {
				if _, err := c.ReadRange(ctx, "seg", objSize, off, rng); err != nil {
					b.Error(err)
					return
				}
				off = (off + rng) % objSize
			}
		})
	})
}

// A catch-up read in a full cache: before the window, TinyLFU refused most
// new blocks (no history), so each partition reading the same segment paid
// its own GET. Now each new object costs one GET however many readers
// walk it in turn.
func TestNewBlocksSurviveFullCache(t *testing.T) {
	mem := objstore.NewMemory()
	store := objstore.NewFaulty(mem, 1)
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1 << 20, MaxBytes: 8 << 20})
	ctx := context.Background()
	const objSize = 900 << 10
	put := func(key string) {
		if err := mem.Put(ctx, key, make([]byte, objSize)); err != nil {
			t.Fatal(err)
		}
	}
	// Popular blocks fill the cache and build up frequency.
	for i := 0; i < 12; i++ {
		key := fmt.Sprintf("hot/%d", i)
		put(key)
		for j := 0; j < 5; j++ {
			mustRead(t, c, key, objSize, 0, 100)
		}
	}
	c.cache.Wait()
	before := store.Calls(objstore.OpGet)
	const objects, readers = 20, 16
	for i := 0; i < objects; i++ {
		key := fmt.Sprintf("cold/%d", i)
		put(key)
		for r := 0; r < readers; r++ { // each partition's range in turn
			off := int64(r) * (objSize / readers)
			mustRead(t, c, key, objSize, off, objSize/readers)
		}
	}
	if got := store.Calls(objstore.OpGet) - before; got != objects {
		t.Fatalf("%d GETs for %d new objects read by %d readers each, want one per object", got, objects, readers)
	}
}

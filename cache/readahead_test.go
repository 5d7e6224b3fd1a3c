package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cespare/xxhash/v2"

	"sluice.dev/objstore"
)

// genStore serves objects whose bytes are a function of (key, offset),
// so that a 128 MiB object costs no memory until read. It counts GETs
// and the bytes they returned.
type genStore struct {
	objstore.Store // nil: only GetRange is used
	sizes          map[string]int64
	gets, bytes    atomic.Int64
	fail           atomic.Bool // GETs fail while set
	mu             sync.Mutex
	ranges         []string // guarded by mu; "key@off+len" per GET
}

func newGenStore(sizes map[string]int64) *genStore { return &genStore{sizes: sizes} }

// genBytes returns bytes [off, off+length) of the object whose key
// hashes to kh: 8-byte words, each a hash of its index, so that it is
// fast to make even under -race.
func genBytes(kh uint64, off, length int64) []byte {
	start, end := off&^7, (off+length+7)&^7
	buf := make([]byte, end-start)
	for w := start; w < end; w += 8 {
		binary.LittleEndian.PutUint64(buf[w-start:], uint64(w/8+1)*0x9e3779b97f4a7c15^kh)
	}
	return buf[off-start : off-start+length]
}

func (s *genStore) GetRange(_ context.Context, key string, off, length int64) ([]byte, error) {
	if s.fail.Load() {
		return nil, fmt.Errorf("genStore: injected failure reading %q", key)
	}
	size, ok := s.sizes[key]
	if !ok {
		return nil, fmt.Errorf("%w: %q", objstore.ErrNotFound, key)
	}
	if off < 0 || length < 0 || off+length > size {
		return nil, fmt.Errorf("genStore: range [%d, +%d) outside %q of %d", off, length, key, size)
	}
	s.gets.Add(1)
	s.bytes.Add(length)
	s.mu.Lock()
	s.ranges = append(s.ranges, fmt.Sprintf("%s@%d+%d", key, off, length))
	s.mu.Unlock()
	return genBytes(xxhash.Sum64String(key), off, length), nil
}

func (s *genStore) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// checkGen fails unless data is bytes [off, off+len) of key.
func checkGen(t *testing.T, key string, off int64, data []byte) {
	t.Helper()
	if !bytes.Equal(data, genBytes(xxhash.Sum64String(key), off, int64(len(data)))) {
		t.Fatalf("%s: bytes [%d, +%d) differ from the object's", key, off, len(data))
	}
}

// readSequentially reads [from, size) of key in 1 MiB ranges, as a
// catch-up consumer walking a compacted object's entries does.
func readSequentially(t *testing.T, r interface {
	ReadRange(ctx context.Context, key string, objectSize, off, length int64) ([]byte, error)
}, key string, size, from int64) {
	t.Helper()
	readRange(t, r, key, size, from, size)
}

// readRange reads [from, to) of key in 1 MiB ranges.
func readRange(t *testing.T, r interface {
	ReadRange(ctx context.Context, key string, objectSize, off, length int64) ([]byte, error)
}, key string, size, from, to int64) {
	t.Helper()
	const step = 1 << 20
	for off := from; off < to; off += step {
		n := min(step, to-off)
		data, err := r.ReadRange(context.Background(), key, size, off, n)
		if err != nil {
			t.Fatalf("ReadRange(%d, %d): %v", off, n, err)
		}
		// Samples of each range: generating every expected byte
		// costs more than the test under -race.
		for _, at := range []int64{0, n / 2, n - 64} {
			checkGen(t, key, off+at, data[at:at+64])
		}
	}
}

// TestReadAheadColdCatchUp: a cold sequential read of a 128 MiB object
// (a large compaction output) through the cache costs one GET per 64 MiB
// extent, 2 in all, not one per 16 MiB block (8).
func TestReadAheadColdCatchUp(t *testing.T) {
	const size = 128 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{}) // defaults: 16 MiB blocks, 512 MiB
	readSequentially(t, c, "big", size, 0)
	if g := s.gets.Load(); g != 2 {
		t.Fatalf("%d GETs for a cold read of 128 MiB, want 2: %v", g, s.log())
	}
	if b := s.bytes.Load(); b != size {
		t.Fatalf("read %d bytes from the store for a %d-byte object", b, size)
	}
	st := c.Stats()
	if st.StoreReads != 2 || st.StoreReadBytes != size || st.ReadAheadBlocks != 6 {
		t.Fatalf("stats %+v, want 2 reads of 128 MiB and 6 blocks read ahead", st)
	}
	// Everything is cached now: a second pass costs nothing.
	readSequentially(t, c, "big", size, 0)
	if g := s.gets.Load(); g != 2 {
		t.Fatalf("%d GETs after a warm second pass, want still 2", g)
	}
}

// TestReadAheadStopsAtExtentsAndSmallObjects: a read starting inside a
// cold extent reads the whole extent (never across it: the next extent
// may have another owner), and objects below readAheadMinObject are read
// block by block.
func TestReadAheadStopsAtExtentsAndSmallObjects(t *testing.T) {
	const big, small = 100 << 20, 24 << 20 // 7 blocks (last one 4 MiB); 2 blocks
	s := newGenStore(map[string]int64{"big": big, "small": small})
	c := newTestCache(t, s, BlockCacheConfig{})
	readSequentially(t, c, "big", big, 40<<20) // from inside block 2
	want := []string{
		fmt.Sprintf("big@%d+%d", 0, 64<<20),      // blocks 0-3: extent 0, cold
		fmt.Sprintf("big@%d+%d", 64<<20, 36<<20), // blocks 4-6: extent 1, short last block
	}
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v, want %v", got, want)
	}
	readSequentially(t, c, "small", small, 0)
	want = append(want, "small@0+16777216", fmt.Sprintf("small@%d+%d", 16<<20, 8<<20))
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v, want %v (a small object is read block by block)", got, want)
	}
}

// TestExtentsRoundToObjectSize: an object a little over 64 MiB (what
// compaction makes) is one extent, not one and a sliver.
func TestExtentsRoundToObjectSize(t *testing.T) {
	const bs, mib = 16 << 20, 1 << 20
	for _, c := range []struct {
		size    int64
		extents []int64 // the first block of each extent, then the block count
	}{
		{32 * mib, []int64{0, 2}},
		{64 * mib, []int64{0, 4}},
		{64*mib + 300*1024, []int64{0, 5}},
		{95 * mib, []int64{0, 6}},
		{100 * mib, []int64{0, 4, 7}},
		{128 * mib, []int64{0, 4, 8}},
		{200 * mib, []int64{0, 5, 10, 13}},
	} {
		nblocks := (c.size + bs - 1) / bs
		var got []int64
		for idx := int64(0); idx < nblocks; {
			start, end := extentOf(idx, c.size, bs)
			if start != idx || end <= start || (end-start)*bs > maxExtentBytes {
				t.Fatalf("size %d: extent of block %d is [%d, %d)", c.size, idx, start, end)
			}
			got = append(got, start)
			idx = end
		}
		got = append(got, nblocks)
		if fmt.Sprint(got) != fmt.Sprint(c.extents) {
			t.Errorf("size %d MiB: extents at %v, want %v", c.size/mib, got, c.extents)
		}
	}
}

// TestReadAheadExtentWhole: a catch-up consumer's partitions lie side by
// side in a compacted object, so their first fetches miss on different
// blocks of one extent at once; the first miss reads the whole cold
// extent, and a miss in a partly cached extent reads from itself to the
// first block already there.
func TestReadAheadExtentWhole(t *testing.T) {
	const size = 64 << 20
	s := newGenStore(map[string]int64{"obj": size, "warm": size})
	c := newTestCache(t, s, BlockCacheConfig{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for _, idx := range []uint32{2, 0, 3, 1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := c.Block(ctx, "obj", idx, size)
			if err != nil {
				t.Error(err)
				return
			}
			checkGen(t, "obj", int64(idx)*(16<<20), data)
		}()
	}
	wg.Wait()
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint([]string{"obj@0+67108864"}) {
		t.Fatalf("GETs %v, want one of the whole extent", got)
	}
	// Block 3 of "warm" is being read by someone else.
	other := &load{done: make(chan struct{})}
	c.mu.Lock()
	c.loads[loadKey{"warm", 3}] = other
	c.mu.Unlock()
	data, err := c.Block(ctx, "warm", 1, size)
	if err != nil {
		t.Fatal(err)
	}
	checkGen(t, "warm", 16<<20, data)
	c.mu.Lock()
	delete(c.loads, loadKey{"warm", 3})
	c.mu.Unlock()
	other.err, other.loaderGaveUp = errors.New("test"), true
	close(other.done)
	want := []string{"obj@0+67108864", fmt.Sprintf("warm@%d+%d", 16<<20, 32<<20)}
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v, want %v", got, want)
	}
}

// TestReadAheadConcurrentReadersReadOnce: readers starting anywhere in a
// cold large object at once share the reads: every byte comes from the
// store exactly once (invariant 4 with read-ahead), whichever reader's
// GET covers it.
func TestReadAheadConcurrentReadersReadOnce(t *testing.T) {
	const size = 128 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{})
	var wg sync.WaitGroup
	for i := range 8 {
		// Reader i starts i MiB into block i and reads 20 MiB on.
		from := int64(i)*(16<<20) + int64(i)*(1<<20)
		wg.Go(func() { readRange(t, c, "big", size, from, min(size, from+20<<20)) })
	}
	wg.Wait()
	readSequentially(t, c, "big", size, 0) // and whatever was left
	if b := s.bytes.Load(); b != size {
		t.Fatalf("read %d bytes from the store for a %d-byte object: a block was read twice (%v)", b, size, s.log())
	}
	if g := s.gets.Load(); g > 8 {
		t.Fatalf("%d GETs, want at most one per block", g)
	}
}

// TestReadAheadBoundedByCacheSize: a cache too small for an extent reads
// ahead at most MaxBytes/5 per GET, so read-ahead blocks do not evict
// each other before they are read; with a block size above that, there
// is no read-ahead at all.
func TestReadAheadBoundedByCacheSize(t *testing.T) {
	const size = 64 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{BlockSize: 4 << 20, MaxBytes: 128 << 20}) // aheadMax 25.6 MiB: 6 blocks
	readSequentially(t, c, "big", size, 0)
	want := []string{fmt.Sprintf("big@0+%d", 24<<20), fmt.Sprintf("big@%d+%d", 24<<20, 24<<20), fmt.Sprintf("big@%d+%d", 48<<20, 16<<20)}
	if got := s.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v, want %v", got, want)
	}
	s2 := newGenStore(map[string]int64{"big": size})
	c2 := newTestCache(t, s2, BlockCacheConfig{BlockSize: 16 << 20, MaxBytes: 64 << 20}) // aheadMax 12.8 MiB < a block
	readSequentially(t, c2, "big", size, 0)
	if g := s2.gets.Load(); g != 4 {
		t.Fatalf("%d GETs, want 4, one per block: %v", g, s2.log())
	}
}

// TestReadAheadFailureLetsWaitersRetry: a failed read-ahead GET fails its
// own reader, while the loads of the blocks it only read ahead are marked
// so that their waiters read those blocks themselves (load retries a load
// whose loader gave up) instead of failing with another reader's error.
func TestReadAheadFailureLetsWaitersRetry(t *testing.T) {
	const size = 64 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{})
	kh := xxhash.Sum64String("big")
	c.mu.Lock()
	l := &load{done: make(chan struct{})}
	c.loads[loadKey{"big", 0}] = l
	ar := c.registerAheadLocked("big", blockKey{kh, 0}, size, l)
	c.mu.Unlock()
	if len(ar.loads) != 4 || ar.mine != 0 || ar.loads[0] != l {
		t.Fatalf("read-ahead of %d blocks with its own at %d, want 4 from its own", len(ar.loads), ar.mine)
	}
	run := ar.loads[1:]
	s.fail.Store(true)
	if _, err := c.runAheadLoad(context.Background(), "big", blockKey{kh, 0}, ar, size); err == nil {
		t.Fatal("runAheadLoad succeeded with a failing store")
	}
	s.fail.Store(false)
	if l.err == nil || l.loaderGaveUp {
		t.Fatalf("own load: err %v, gave up %v; want the error, not given up", l.err, l.loaderGaveUp)
	}
	for i, x := range run {
		if x.err == nil || !x.loaderGaveUp {
			t.Fatalf("block %d read ahead: err %v, gave up %v; want given up so waiters retry", i+1, x.err, x.loaderGaveUp)
		}
	}
	c.mu.Lock()
	left := len(c.loads)
	c.mu.Unlock()
	if left != 0 || c.aheadInFlight.Load() != 0 {
		t.Fatalf("%d loads registered, %d read-ahead bytes in flight after the failure", left, c.aheadInFlight.Load())
	}
	data, err := c.Block(context.Background(), "big", 2, size)
	if err != nil {
		t.Fatal(err)
	}
	checkGen(t, "big", 32<<20, data)
}

// TestReadAheadZoneOncePerZone: two agents of one zone read a cold
// 128 MiB object. Each extent has one owner (ownerUnit), the owner reads
// it in one GET, and the other agent gets its blocks from the owner: the
// zone reads each byte of the object once, in 2 GETs, each by the owner
// of its extent (peer fallbacks aside, see below).
func TestReadAheadZoneOncePerZone(t *testing.T) {
	const size = 128 << 20
	s := newGenStore(map[string]int64{"big": size})
	var peers atomic.Pointer[[]Peer]
	var zones []*Zone
	var caches []*BlockCache
	var all []Peer
	for _, id := range []string{"a", "b"} {
		c := newTestCache(t, s, BlockCacheConfig{})
		z, err := StartZone(ZoneConfig{
			SelfID: id, Zone: "z1", Secret: testSecret, Listen: "127.0.0.1:0",
			Peers:  func() []Peer { return *peers.Load() },
			Logger: testLogger(t),
		}, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { z.Close() })
		zones, caches = append(zones, z), append(caches, c)
		all = append(all, Peer{ID: id, Addr: z.Addr(), Zone: "z1"})
	}
	peers.Store(&all)

	// Which agent owns each extent, and so must read it.
	r := newRing(all, "a")
	kh := xxhash.Sum64String("big")
	wantReads := make([]int64, 2)
	for ext := range uint32(2) {
		o := r.owner(zones[0].unitHash(kh, ext*4, size))
		for idx := ext * 4; idx < ext*4+4; idx++ {
			if r.owner(zones[0].unitHash(kh, idx, size)) != o {
				t.Fatalf("block %d and block %d of one extent have different owners", idx, ext*4)
			}
		}
		wantReads[o]++
	}

	for _, z := range zones { // both agents read it all, one after the other
		readSequentially(t, z, "big", size, 0)
	}
	// A peer GET that times out (5 s: only under -race on a loaded
	// machine, while the owner reads 64 MiB) falls back to reading that
	// one block from the store, without read-ahead, and marks the peer
	// down for a moment, so later reads of that agent fall back too
	// (counted per read, while the block, once loaded, is read from the
	// agent's own cache). So: each extent is read once, in one GET, and
	// every other GET is one whole block that an agent read after a
	// fallback, at most once per agent.
	var fallbacks int64
	for _, z := range zones {
		fallbacks += z.Stats().Fallbacks
	}
	log := s.log()
	t.Logf("%d GETs of %d bytes, %d peer fallbacks: %v", s.gets.Load(), s.bytes.Load(), fallbacks, log)
	extents, blocks := 0, map[string]int{}
	for _, g := range log {
		var off, n int64
		if _, err := fmt.Sscanf(g, "big@%d+%d", &off, &n); err != nil {
			t.Fatalf("GET %q: %v", g, err)
		}
		switch {
		case n == 64<<20 && off%(64<<20) == 0:
			extents++
		case n == 16<<20 && off%(16<<20) == 0:
			blocks[g]++
		default:
			t.Fatalf("GET %s is neither an extent nor a block: %v", g, log)
		}
	}
	if extents != 2 || int64(len(log)-2) > fallbacks {
		t.Fatalf("%d extent GETs and %d block GETs with %d fallbacks, want 2 and at most %d: %v", extents, len(log)-2, fallbacks, fallbacks, log)
	}
	for g, n := range blocks {
		if n > len(zones) {
			t.Fatalf("block %s read %d times by %d agents", g, n, len(zones))
		}
	}
	for i, c := range caches {
		if st := c.Stats(); st.ReadAheadBlocks != 3*wantReads[i] {
			t.Fatalf("agent %d read %d blocks ahead, want %d (3 for each extent it owns, none of others')", i, st.ReadAheadBlocks, 3*wantReads[i])
		}
	}
}

// TestReadAheadSpanOneGetPerExtent: one ReadRange over several missing
// blocks of a large object loads them extent by extent, so the first
// block's read-ahead covers the others instead of each racing its own
// GET (readSpan groups by extent).
func TestReadAheadSpanOneGetPerExtent(t *testing.T) {
	const size = 128 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{})
	off, n := int64(1<<20), int64(72<<20) // blocks 0-4: extent 0 and block 4 of extent 1
	data, err := c.ReadRange(context.Background(), "big", size, off, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int64{0, 20 << 20, n - 64} {
		checkGen(t, "big", off+at, data[at:at+64])
	}
	want := []string{fmt.Sprintf("big@0+%d", 64<<20), fmt.Sprintf("big@%d+%d", 64<<20, 64<<20)}
	got := s.log()
	slices.Sort(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v, want %v", got, want)
	}
}

// TestReadAheadBudget: while the read-ahead bytes in flight are at the
// bound (MaxBytes/3), a miss reads its one block only.
func TestReadAheadBudget(t *testing.T) {
	const size = 128 << 20
	s := newGenStore(map[string]int64{"big": size})
	c := newTestCache(t, s, BlockCacheConfig{})
	c.aheadInFlight.Store(c.aheadBudget - 16<<20) // room for one block, not four
	readRange(t, c, "big", size, 0, 1<<20)
	if got, want := s.log(), []string{"big@0+16777216"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GETs %v over the read-ahead budget, want %v", got, want)
	}
	if n := c.aheadInFlight.Load(); n != c.aheadBudget-16<<20 {
		t.Fatalf("read-ahead bytes in flight %d, want unchanged %d", n, c.aheadBudget-16<<20)
	}
}

// Package cache is the agent's read path: where a fetch finds which
// segment holds an offset, and the segment's bytes.
//
// # Files
//
//	blocks.go  BlockCache: fixed-size blocks of immutable objects in a
//	           byte-bounded ristretto cache, with misses coalesced per block
//	window.go  window: an LRU of recent blocks in front of ristretto
//	zone.go    Zone: the zone-distributed cache; each block has one owner
//	           among the zone's agents (rendezvous hashing), others ask it;
//	           ring, push queue, counters
//	peer.go    the agent-to-agent protocol Zone speaks: signed HTTP GET and
//	           PUT of blocks, lz4 on the wire, bounded bodies
//	index.go   Index: the agent's copy of meta's offset index, kept current
//	           by Watch
//
// # BlockCache invariants
//
//  1. Objects are immutable: a key is never rewritten with other bytes, so
//     a cached block is never stale and nothing is ever invalidated.
//  2. Cached block bytes are bounded by BlockCacheConfig.MaxBytes (DESIGN
//     invariant 7), counted as the blocks' lengths. Slices a caller still
//     holds after their block was evicted are the caller's to bound.
//  3. A hit never returns another object's bytes: the cache is keyed by a
//     64-bit hash, and each block carries its object key, compared on every
//     hit, so a hash collision is a miss.
//  4. At most one object store read per block is in flight; concurrent
//     misses for it wait for that read (see BlockCache.load). A read-ahead
//     read (see "Read-ahead" on BlockCache) is that one read for every
//     block it covers.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/errgroup"

	"sluice.dev/objstore"
)

// ErrClosed is returned by ReadRange after Close.
var ErrClosed = errors.New("cache: closed")

// Package-level series: one agent has one block cache, and tests that
// build several only ever look at differences. Hits and misses count block
// lookups, not ReadRange calls; a reader that waited for another's load
// counts as a miss, so misses exceed GETs by the reads coalesced.
//
// Store reads count the GETs the block cache itself issues (the bucket-wide
// sluice_objstore_* series also count the jobs' reads and the pipeline's
// writes); the histogram gives the bytes per GET, which read-ahead raises
// for large objects.
var (
	hitsTotal        = metrics.NewCounter("sluice_cache_hits_total")
	missesTotal      = metrics.NewCounter("sluice_cache_misses_total")
	insertedBytes    = metrics.NewCounter("sluice_cache_inserted_bytes_total")
	storeReads       = metrics.NewCounter("sluice_cache_store_reads_total")
	storeReadBytes   = metrics.NewCounter("sluice_cache_store_read_bytes_total")
	storeReadSize    = metrics.NewHistogram("sluice_cache_store_read_size_bytes")
	readAheadBlocks  = metrics.NewCounter("sluice_cache_readahead_blocks_total")
	readAheadSkipped = metrics.NewCounter("sluice_cache_readahead_skipped_total")
	_                = metrics.NewGauge("sluice_cache_bytes", func() float64 { return float64(live.bytes()) })
	// Blocks leaving the window for the frequency-admitted part of the
	// cache (window.go): refused by its admission policy (TinyLFU judged
	// them less used than what they would evict), or dropped before it
	// looked (its set buffer was full). Either is a block the cache no
	// longer holds; a read of it is a GET.
	_ = metrics.NewGauge("sluice_cache_admission_rejected_total", func() float64 { return float64(live.sum(rejected)) })
	_ = metrics.NewGauge("sluice_cache_admission_dropped_total", func() float64 { return float64(live.sum(dropped)) })
)

func rejected(c *BlockCache) uint64 { return c.cache.Metrics.SetsRejected() }
func dropped(c *BlockCache) uint64  { return c.cache.Metrics.SetsDropped() }

// live holds the open caches, so that the package-level sluice_cache_bytes
// gauge can sum them.
var live = liveCaches{m: make(map[*BlockCache]struct{})}

type liveCaches struct {
	mu sync.Mutex
	m  map[*BlockCache]struct{} // guarded by mu
}

// sum adds f over the open caches. A closed cache's counts leave the
// sum (tests open and close many; an agent has one cache for its life).
func (l *liveCaches) sum(f func(*BlockCache) uint64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for c := range l.m {
		n += f(c)
	}
	return n
}

func (l *liveCaches) bytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for c := range l.m {
		n += c.cachedBytes()
	}
	return n
}

// BlockCacheConfig configures a BlockCache. Zero fields take defaults.
type BlockCacheConfig struct {
	// BlockSize is the unit of caching and of object store reads; default
	// 16 MiB. A GET costs about the same (money and time to first byte) for
	// a few KiB as for a few MiB, so reading whole blocks turns the many
	// small fetches of consumers walking a segment into few GETs. The
	// default is above the pipeline's default segment size (8 MiB), so a
	// segment is one block: one GET per segment, and Insert can keep the
	// uploaded buffer without copying it (a multi-block object is copied,
	// see Insert).
	BlockSize int64
	// MaxBytes bounds the bytes held in cached blocks; default 512 MiB, a
	// share of an agent's memory that holds minutes of tail traffic at
	// typical rates.
	MaxBytes int64
}

const (
	defaultBlockSize = 16 << 20
	defaultMaxBytes  = 512 << 20
)

// Read-ahead (see BlockCache). These are not configurable per agent: the
// zone's block owners follow extents (zone.go, ownerUnit), so every agent
// of a zone must agree on them, as on the block size.
const (
	// extentBytes is the size one read-ahead GET aims at: 64 MiB, the
	// issue's 16 GETs per GiB for a cold catch-up read. An object of
	// readAheadMinObject bytes or more is cut into round(size/extentBytes)
	// extents of whole blocks (extentOf), so that compaction's outputs,
	// which come out a little over their 64 MiB target, are one extent
	// and not one plus a sliver; an extent is at most maxExtentBytes.
	extentBytes    = 64 << 20
	maxExtentBytes = extentBytes * 3 / 2
	// readAheadMinObject: smaller objects are read block by block. They
	// are agents' segments (8 MiB by default: one block), read at the
	// tail from the pushed copy; compaction outputs (16-128 MiB, docs/
	// compaction.md) are what catch-up readers walk.
	readAheadMinObject = 32 << 20
)

// extentBlocks is how many blocks each extent of an object of objectSize
// bytes holds (the last may hold fewer): the object's blocks shared out
// over round(objectSize/extentBytes) extents, at least one. With 16 MiB
// blocks an object of 64.2 MiB is one extent of 5 blocks, one of
// 100 MiB two of 4 and 3.
func extentBlocks(objectSize, blockSize int64) int64 {
	nblocks := max(1, (objectSize+blockSize-1)/blockSize)
	k := max(1, (objectSize+extentBytes/2)/extentBytes)
	return max(1, (nblocks+k-1)/k)
}

// extentOf returns the extent holding block idx: blocks [start, end).
func extentOf(idx, objectSize, blockSize int64) (start, end int64) {
	per := extentBlocks(objectSize, blockSize)
	start = idx / per * per
	return start, min(start+per, (objectSize+blockSize-1)/blockSize)
}

// ownerUnit names the unit of ownership in the zone (zone.go) holding
// block idx of an object of objectSize bytes: the block itself, or, for
// an object that is read ahead, the extent holding it, so that one agent
// owns every block a read-ahead GET brings in.
func ownerUnit(idx uint32, objectSize, blockSize int64) uint32 {
	if objectSize < readAheadMinObject {
		return idx
	}
	return uint32(int64(idx) / extentBlocks(objectSize, blockSize))
}

// BlockCache caches fixed-size blocks of immutable objects read from an
// objstore.Store. Block i of an object of size n covers bytes
// [i*BlockSize, min((i+1)*BlockSize, n)).
//
// Admission is ristretto's TinyLFU: once the cache is full, a new block
// enters only if it looks more frequently used than the blocks it would
// evict. A block inserted right after upload has no history yet, so when
// the cache is full of hot blocks it may be turned away; its first read
// then costs one GET, which also gives it the history to be admitted.
//
// # Read-ahead
//
// A miss on block i of an object of at least readAheadMinObject bytes
// also reads, in the same GET, the other blocks of i's extent (about
// extentBytes, 64 MiB, see extentOf) and caches each of them: a catch-up
// reader walking a compacted object costs one GET per extent instead of
// one per block. When part of the extent is cached or being read, the
// run goes from i to the first such block. It is capped at MaxBytes/5 so
// that its blocks do not push each other out of the window. Extents never cross: in a zone, each extent
// has one owner (zone.go), so a read-ahead never reads a block another
// agent owns and each object is still read once per zone. Read-ahead
// bytes in flight are bounded by MaxBytes/3 (the GET's buffer and the
// block copies are both held while a read is split); a miss over that
// bound reads its block alone.
//
// Close must not run concurrently with ReadRange or Insert: stop readers
// first (ristretto panics on a Set racing its Close).
type BlockCache struct {
	store     objstore.Store
	blockSize int64
	// aheadMax bounds the bytes one read-ahead GET reads (MaxBytes/5,
	// at most maxExtentBytes); aheadBudget bounds those in flight
	// (MaxBytes/3), aheadInFlight counts them.
	aheadMax      int64
	aheadBudget   int64
	aheadInFlight atomic.Int64
	stats         blockCounters
	cache         *ristretto.Cache[uint64, *block]
	window        *window // recent blocks in front of ristretto (window.go)
	closed        atomic.Bool
	// closeMu keeps Close from running while ReadRange or Insert use the
	// ristretto cache (ristretto panics on use after Close): they hold it
	// for reading, Close for writing.
	closeMu sync.RWMutex

	mu    sync.Mutex
	loads map[loadKey]*load // guarded by mu; block reads in flight
}

// blockCounters are one BlockCache's object store reads.
type blockCounters struct {
	reads, readBytes, aheadBlocks atomic.Int64
}

// BlockStats are one BlockCache's object store reads: GETs, the bytes they
// returned, and the blocks read ahead (cached without being asked for).
type BlockStats struct {
	StoreReads, StoreReadBytes, ReadAheadBlocks int64
}

// Stats returns this cache's counters.
func (c *BlockCache) Stats() BlockStats {
	return BlockStats{StoreReads: c.stats.reads.Load(), StoreReadBytes: c.stats.readBytes.Load(), ReadAheadBlocks: c.stats.aheadBlocks.Load()}
}

// getRange reads from the store and counts the read.
func (c *BlockCache) getRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	data, err := c.store.GetRange(ctx, key, off, length)
	c.stats.reads.Add(1)
	c.stats.readBytes.Add(int64(len(data)))
	storeReads.Inc()
	storeReadBytes.Add(len(data))
	if err == nil {
		storeReadSize.Update(float64(len(data)))
	}
	return data, err
}

// block is one cached block. Its fields never change once it is built.
type block struct {
	key  string // the object's key, checked on every hit (invariant 3)
	idx  uint32
	data []byte
}

// blockKey names a block by a hash of its object key: lookups hash the
// key once and never format a string. It is reduced to the uint64
// ristretto takes by hash.
type blockKey struct {
	keyHash uint64 // xxhash of the object key
	block   uint32
}

// hash mixes both fields through the murmur3 finalizer: ristretto shards
// its map and indexes its frequency sketch with the low bits, so
// neighbouring blocks of one object must land far apart.
func (k blockKey) hash() uint64 {
	h := k.keyHash ^ (uint64(k.block)+1)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// loadKey names a block exactly, for the in-flight map, which sees misses
// only and can afford to hash the whole key.
type loadKey struct {
	key   string
	block uint32
}

// load is one object store read of a block, shared by every reader that
// misses on the block while it runs. data and err are written once, before
// done is closed.
type load struct {
	done chan struct{}
	data []byte
	err  error
	// loaderGaveUp says the read failed because the loader's own context
	// ended: the error belongs to that reader, so waiters try again (one
	// of them becoming the loader) instead of failing with it.
	loaderGaveUp bool
}

// NewBlockCache returns a cache reading misses from store.
func NewBlockCache(store objstore.Store, cfg BlockCacheConfig) (*BlockCache, error) {
	if cfg.BlockSize == 0 {
		cfg.BlockSize = defaultBlockSize
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = defaultMaxBytes
	}
	switch {
	case cfg.BlockSize < 0:
		return nil, fmt.Errorf("cache: BlockCacheConfig.BlockSize %d is negative", cfg.BlockSize)
	case cfg.MaxBytes < 0:
		return nil, fmt.Errorf("cache: BlockCacheConfig.MaxBytes %d is negative", cfg.MaxBytes)
	case cfg.BlockSize > cfg.MaxBytes:
		// ristretto refuses any item costing more than the whole cache.
		return nil, fmt.Errorf("cache: BlockCacheConfig.BlockSize %d exceeds MaxBytes %d: no block could be cached", cfg.BlockSize, cfg.MaxBytes)
	}
	// ristretto wants about ten frequency counters per item the full cache
	// holds. Most items are whole blocks, but every object's last block is
	// short and a small segment is one short block, so count items as if
	// they were 64 KiB. Counters cost about 3 bytes each; the cap keeps a
	// huge cache of tiny blocks from spending more than ~12 MiB on them.
	// The window takes half of MaxBytes, at least one block, and
	// ristretto the rest (window.go says why half).
	win := max(cfg.MaxBytes/2, cfg.BlockSize)
	rmax := max(cfg.MaxBytes-win, 1)
	items := cfg.MaxBytes / min(cfg.BlockSize, 64<<10)
	counters := min(max(10*items, 1000), 1<<22)
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *block]{
		NumCounters: counters,
		MaxCost:     rmax,
		BufferItems: 64, // ristretto's recommended value
		// Metrics gives CostAdded-CostEvicted, the only exact account of
		// admitted bytes (Set's verdict arrives asynchronously). It costs
		// an atomic add per Get.
		Metrics: true,
		// Cost is the block's length: MaxBytes is about data, and the
		// ~100 bytes of per-item overhead are small next to a block.
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	c := &BlockCache{
		store:       store,
		blockSize:   cfg.BlockSize,
		aheadMax:    min(maxExtentBytes, cfg.MaxBytes/5),
		aheadBudget: cfg.MaxBytes / 3,
		cache:       rc,
		window:      newWindow(win),
		loads:       make(map[loadKey]*load),
	}
	live.mu.Lock()
	live.m[c] = struct{}{}
	live.mu.Unlock()
	return c, nil
}

// ReadRange returns bytes [off, off+length) of the object key, whose total
// size is objectSize, assembled from cached blocks; missing blocks are read
// whole from the store with GetRange.
//
// !!! The result may alias cache memory: when the range lies inside one
// block it is a sub-slice of the cached block, shared with every other
// reader. NEVER modify it (its capacity ends with the range, so append
// copies). A range spanning blocks is a fresh copy.
//
// Every caller must pass the same objectSize for a key (it comes from the
// segment's metadata); a block whose length disagrees with objectSize is
// an error, not a short read.
func (c *BlockCache) ReadRange(ctx context.Context, key string, objectSize, off, length int64) ([]byte, error) {
	raw, _, err := c.ReadRangeBlock(ctx, key, objectSize, off, length)
	return raw, err
}

// ReadRangeBlock is ReadRange that also returns the cached block a range
// of one block lies in (raw is a slice of it), for a reader that refers
// to the bytes rather than copies them (a fetch response); block is nil
// when the range spans blocks (raw is then a copy of its own). Blocks
// never change once cached, so the bytes stay valid as long as they are
// referenced, evicted or not.
func (c *BlockCache) ReadRangeBlock(ctx context.Context, key string, objectSize, off, length int64) (raw, block []byte, err error) {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return nil, nil, ErrClosed
	}
	if objectSize < 0 || off < 0 || length < 0 || off > objectSize || length > objectSize-off {
		return nil, nil, fmt.Errorf("cache: range [%d, +%d) outside %q of size %d", off, length, key, objectSize)
	}
	if length == 0 {
		return []byte{}, nil, nil
	}
	first, last := off/c.blockSize, (off+length-1)/c.blockSize
	if last > math.MaxUint32 {
		return nil, nil, fmt.Errorf("cache: %q of size %d has more blocks than a uint32 counts", key, objectSize)
	}
	kh := xxhash.Sum64String(key)
	if first == last {
		data, err := c.block(ctx, key, blockKey{kh, uint32(first)}, objectSize, true)
		if err != nil {
			return nil, nil, err
		}
		lo := off - first*c.blockSize
		return data[lo : lo+length : lo+length], data, nil
	}
	raw, err = c.readSpan(ctx, key, kh, objectSize, off, length, first, last)
	return raw, nil, err
}

// readSpan serves a range over several blocks: hits are copied first, then
// the missing blocks are read concurrently, so a cold span costs one GET
// round trip rather than one per block.
func (c *BlockCache) readSpan(ctx context.Context, key string, kh uint64, objectSize, off, length, first, last int64) ([]byte, error) {
	out := make([]byte, length)
	var missing []int64
	for idx := first; idx <= last; idx++ {
		bk := blockKey{kh, uint32(idx)}
		data, ok, err := c.lookup(key, bk, objectSize)
		if err != nil {
			return nil, err
		}
		if ok {
			c.copyIn(out, off, idx, data)
		} else {
			missing = append(missing, idx)
		}
	}
	// Missing blocks are loaded in groups, the groups concurrently: one
	// group per block, or, for an object that is read ahead, one per
	// extent, loaded in order, so that the first miss of an extent reads
	// the rest in its GET instead of racing their own GETs.
	unit := func(idx int64) int64 { return idx }
	if objectSize >= readAheadMinObject {
		n := extentBlocks(objectSize, c.blockSize)
		unit = func(idx int64) int64 { return idx / n }
	}
	loadGroup := func(ctx context.Context, group []int64) error {
		for _, idx := range group {
			data, err := c.load(ctx, key, blockKey{kh, uint32(idx)}, objectSize, true)
			if err != nil {
				return err
			}
			c.copyIn(out, off, idx, data)
		}
		return nil
	}
	var groups [][]int64
	for i, idx := range missing {
		if i == 0 || unit(idx) != unit(missing[i-1]) {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], idx)
	}
	switch len(groups) {
	case 0:
		return out, nil
	case 1:
		if err := loadGroup(ctx, groups[0]); err != nil {
			return nil, err
		}
		return out, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, group := range groups {
		g.Go(func() error { return loadGroup(gctx, group) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// copyIn copies into out, which holds the range starting at off, the part
// of block idx the range covers. Blocks cover disjoint parts of out, so
// concurrent loads may call it for different blocks.
func (c *BlockCache) copyIn(out []byte, off, idx int64, data []byte) {
	start := idx * c.blockSize
	from, to := max(off, start), min(off+int64(len(out)), start+int64(len(data)))
	copy(out[from-off:to-off], data[from-start:to-start])
}

// blockLen is the length of block idx of an object of objectSize bytes.
func (c *BlockCache) blockLen(idx uint32, objectSize int64) int64 {
	return min(c.blockSize, objectSize-int64(idx)*c.blockSize)
}

// block returns the bytes of one block, from the cache or the store;
// ahead: a miss may read ahead (see BlockCache).
func (c *BlockCache) block(ctx context.Context, key string, bk blockKey, objectSize int64, ahead bool) ([]byte, error) {
	data, ok, err := c.lookup(key, bk, objectSize)
	if err != nil || ok {
		return data, err
	}
	return c.load(ctx, key, bk, objectSize, ahead)
}

// lookup returns a cached block and counts the hit or miss.
func (c *BlockCache) lookup(key string, bk blockKey, objectSize int64) ([]byte, bool, error) {
	b := c.cached(key, bk)
	if b == nil {
		missesTotal.Inc()
		return nil, false, nil
	}
	hitsTotal.Inc()
	if err := c.checkLen(key, bk.block, b.data, objectSize); err != nil {
		return nil, false, err
	}
	return b.data, true, nil
}

// cached returns block bk of key if the cache holds it, else nil. The key
// comparison is what makes a hash collision a miss (invariant 3).
func (c *BlockCache) cached(key string, bk blockKey) *block {
	h := bk.hash()
	b := c.window.get(h)
	if b == nil {
		var ok bool
		if b, ok = c.cache.Get(h); !ok {
			return nil
		}
	}
	if b.idx != bk.block || b.key != key {
		return nil
	}
	return b
}

// checkLen refuses a block whose length does not fit objectSize; callers
// slice by objectSize, so a mismatch must stop here as an error rather than
// become a panic or a short read.
func (c *BlockCache) checkLen(key string, idx uint32, data []byte, objectSize int64) error {
	if want := c.blockLen(idx, objectSize); int64(len(data)) != want {
		return fmt.Errorf("cache: block %d of %q holds %d bytes, objectSize %d says %d: callers disagree on the object's size",
			idx, key, len(data), objectSize, want)
	}
	return nil
}

// load reads a block that missed, coalescing concurrent misses: the first
// reader registers a load and reads; the others wait for it (or for their
// own context) and share its result, error included. A load that failed
// only because its reader gave up (loaderGaveUp) is retried by a waiter.
//
// States of a block, with c.mu guarding the transitions:
//
//	absent ──miss──▶ loading (in c.loads) ──ok──▶ loaded (in cache and c.loads) ──Wait──▶ cached
//	                         └──error──▶ absent (removed from c.loads, then done closed)
//
// A successful load stays in c.loads until ristretto has applied the Set
// (which is asynchronous), so a reader arriving in between finds the load
// and does not read the block a second time. A reader that finds neither
// checks the cache again under c.mu before registering a load.
//
// With ahead set, the loader of a block of a large object also registers
// loads for the other blocks of its extent (registerAheadLocked) and
// reads them all in one GET (runAheadLoad); readers of those blocks wait
// for that GET like any coalesced miss.
func (c *BlockCache) load(ctx context.Context, key string, bk blockKey, objectSize int64, ahead bool) ([]byte, error) {
	lk := loadKey{key, bk.block}
	for {
		c.mu.Lock()
		l, ok := c.loads[lk]
		if !ok {
			if b := c.cached(key, bk); b != nil {
				c.mu.Unlock()
				if err := c.checkLen(key, bk.block, b.data, objectSize); err != nil {
					return nil, err
				}
				return b.data, nil
			}
			l = &load{done: make(chan struct{})}
			c.loads[lk] = l
			var ar aheadRun
			if ahead {
				ar = c.registerAheadLocked(key, bk, objectSize, l)
			}
			c.mu.Unlock()
			if len(ar.loads) > 1 {
				return c.runAheadLoad(ctx, key, bk, ar, objectSize)
			}
			return c.runLoad(ctx, lk, bk, l, c.blockLen(bk.block, objectSize))
		}
		c.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err == nil {
			if err := c.checkLen(key, bk.block, l.data, objectSize); err != nil {
				return nil, err
			}
			return l.data, nil
		}
		if !l.loaderGaveUp {
			return nil, l.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// aheadRun is a read-ahead GET's loads: one per block from block first
// on, the reader's own at index mine.
type aheadRun struct {
	first uint32
	loads []*load
	mine  int
}

// registerAheadLocked registers the loads a read-ahead from bk reads and
// returns them in block order with l, bk's load, among them (a run of l
// alone when the object is small or the budget is spent). The caller
// holds c.mu and has registered l; the other loads of the run belong to
// it and must be finished by runAheadLoad.
//
// The run is bk's whole extent when no block of it is cached or being
// read: a catch-up consumer's partitions lie side by side in a compacted
// object, so their first fetches miss on different blocks of one extent
// at once, and reading from each miss onwards would split the extent into
// several GETs. Otherwise it is the blocks after bk up to the first one
// cached or being read, within the extent.
func (c *BlockCache) registerAheadLocked(key string, bk blockKey, objectSize int64, l *load) aheadRun {
	alone := aheadRun{first: bk.block, loads: []*load{l}}
	if objectSize < readAheadMinObject {
		return alone
	}
	idx := int64(bk.block)
	start, end := extentOf(idx, objectSize, c.blockSize)
	maxBlocks := max(1, c.aheadMax/c.blockSize)
	free := func(i int64) bool {
		if _, ok := c.loads[loadKey{key, uint32(i)}]; ok {
			return false
		}
		return c.cached(key, blockKey{bk.keyHash, uint32(i)}) == nil
	}
	first, last := idx, idx // the run: blocks [first, last]
	whole := end-start <= maxBlocks
	for i := start; whole && i < end; i++ {
		whole = i == idx || free(i)
	}
	if whole {
		first, last = start, end-1
	} else {
		for i := idx + 1; i < min(end, idx+maxBlocks) && free(i); i++ {
			last = i
		}
	}
	if first == last {
		return alone
	}
	var bytes int64
	for i := first; i <= last; i++ {
		bytes += c.blockLen(uint32(i), objectSize)
	}
	// The budget counts the whole GET; over it, read the block alone.
	if c.aheadInFlight.Add(bytes) > c.aheadBudget {
		c.aheadInFlight.Add(-bytes)
		readAheadSkipped.Inc()
		return alone
	}
	run := aheadRun{first: uint32(first), mine: int(idx - first)}
	for i := first; i <= last; i++ {
		x := l
		if i != idx {
			x = &load{done: make(chan struct{})}
			c.loads[loadKey{key, uint32(i)}] = x
		}
		run.loads = append(run.loads, x)
	}
	return run
}

// runAheadLoad is the loader's half of a read-ahead: one GET for the
// run's blocks, each published to its waiters and cached as its own
// copy, so that no block pins the GET's buffer. It returns the data of
// block bk, the reader's own.
func (c *BlockCache) runAheadLoad(ctx context.Context, key string, bk blockKey, ar aheadRun, objectSize int64) ([]byte, error) {
	first := int64(ar.first)
	last := first + int64(len(ar.loads)) - 1 // inclusive
	off := first * c.blockSize
	want := last*c.blockSize + c.blockLen(uint32(last), objectSize) - off
	defer c.aheadInFlight.Add(-want)
	all := ar.loads
	buf, err := c.getRange(ctx, key, off, want)
	if err == nil && int64(len(buf)) != want {
		err = fmt.Errorf("store returned %d bytes, want %d", len(buf), want)
	}
	if err != nil {
		err = fmt.Errorf("cache: read blocks %d-%d of %q: %w", first, last, key, err)
		c.mu.Lock()
		for i, x := range all {
			x.err = err
			// The blocks read ahead were nobody's request: their
			// waiters read them themselves rather than fail with an
			// error that belongs to this reader.
			x.loaderGaveUp = i != ar.mine || ctx.Err() != nil
			delete(c.loads, loadKey{key, uint32(first + int64(i))})
		}
		c.mu.Unlock()
		for _, x := range all {
			close(x.done)
		}
		return nil, err
	}
	blocks := make([]*block, len(all))
	for i, x := range all {
		idx := uint32(first + int64(i))
		start := int64(i) * c.blockSize
		x.data = append([]byte(nil), buf[start:start+c.blockLen(idx, objectSize)]...)
		close(x.done) // waiters need not wait for the cache
		blocks[i] = &block{key: key, idx: idx, data: x.data}
	}
	c.stats.aheadBlocks.Add(int64(len(all) - 1))
	readAheadBlocks.Add(len(all) - 1)
	for _, b := range blocks {
		c.add(blockKey{bk.keyHash, b.idx}.hash(), b)
	}
	c.cache.Wait()
	c.mu.Lock()
	for i := range all {
		delete(c.loads, loadKey{key, uint32(first + int64(i))})
	}
	c.mu.Unlock()
	return all[ar.mine].data, nil
}

// runLoad is the loader's half of load: read, publish to waiters, cache.
func (c *BlockCache) runLoad(ctx context.Context, lk loadKey, bk blockKey, l *load, want int64) ([]byte, error) {
	data, err := c.getRange(ctx, lk.key, int64(bk.block)*c.blockSize, want)
	if err == nil && int64(len(data)) != want {
		// The Store contract forbids this; never cache a short block.
		err = fmt.Errorf("store returned %d bytes, want %d", len(data), want)
	}
	if err != nil {
		l.err = fmt.Errorf("cache: read block %d of %q: %w", bk.block, lk.key, err)
		l.loaderGaveUp = ctx.Err() != nil
		// Removed before done is closed, so that a retrying waiter finds
		// no stale load.
		c.mu.Lock()
		delete(c.loads, lk)
		c.mu.Unlock()
		close(l.done)
		return nil, l.err
	}
	l.data = data
	close(l.done) // waiters need not wait for the cache
	c.add(bk.hash(), &block{key: lk.key, idx: bk.block, data: data})
	c.cache.Wait()
	c.mu.Lock()
	delete(c.loads, lk)
	c.mu.Unlock()
	return data, nil
}

// BlockSize returns the size of the blocks the cache reads and keeps.
func (c *BlockCache) BlockSize() int64 { return c.blockSize }

// Block returns block idx of the object key, whose total size is
// objectSize, from the cache or read whole from the store (misses are
// coalesced as in ReadRange).
//
// !!! The result is the cached block itself, shared with every other
// reader: NEVER modify it (its capacity ends with the block).
//
// A miss reads ahead (see BlockCache): Block is how an owner reads its
// blocks, for itself and for its peers.
func (c *BlockCache) Block(ctx context.Context, key string, idx uint32, objectSize int64) ([]byte, error) {
	return c.readBlock(ctx, key, idx, objectSize, true)
}

// blockAlone is Block without read-ahead: for a reader that does not own
// the block (a fallback after its owner failed), which must not read the
// owner's other blocks too.
func (c *BlockCache) blockAlone(ctx context.Context, key string, idx uint32, objectSize int64) ([]byte, error) {
	return c.readBlock(ctx, key, idx, objectSize, false)
}

func (c *BlockCache) readBlock(ctx context.Context, key string, idx uint32, objectSize int64, ahead bool) ([]byte, error) {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if objectSize <= 0 || int64(idx) > (objectSize-1)/c.blockSize {
		return nil, fmt.Errorf("cache: block %d outside %q of size %d", idx, key, objectSize)
	}
	return c.block(ctx, key, blockKey{xxhash.Sum64String(key), idx}, objectSize, ahead)
}

// InsertBlock caches block idx of the object key, of objectSize bytes,
// as a block pushed by another agent. It TAKES OWNERSHIP of data (see
// Insert) and refuses data whose length does not fit objectSize. It
// returns once ristretto has applied the Set.
func (c *BlockCache) InsertBlock(key string, idx uint32, objectSize int64, data []byte) error {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return ErrClosed
	}
	if objectSize <= 0 || int64(idx) > (objectSize-1)/c.blockSize {
		return fmt.Errorf("cache: block %d outside %q of size %d", idx, key, objectSize)
	}
	if err := c.checkLen(key, idx, data, objectSize); err != nil {
		return err
	}
	c.add(blockKey{xxhash.Sum64String(key), idx}.hash(), &block{key: key, idx: idx, data: data[:len(data):len(data)]})
	insertedBytes.Add(len(data))
	c.cache.Wait()
	return nil
}

// Insert caches a freshly uploaded object, split into blocks, so that tail
// reads need no GET.
//
// !!! Insert TAKES OWNERSHIP of object: the cached blocks are sub-slices of
// it, not copies. The caller must never modify or reuse object afterwards
// (no pooled upload buffers). The memory is then held until every block
// of the object has left the cache, which can be more than the cost the
// cache accounts for it when only some blocks were evicted or admitted.
//
// It returns once ristretto has applied the Sets, so the next ReadRange
// finds every block that was admitted.
func (c *BlockCache) Insert(key string, object []byte) {
	c.insert(key, object, nil)
}

// insert is Insert of the blocks keep accepts (all when keep is nil):
// Zone.Uploaded keeps the blocks this agent owns.
func (c *BlockCache) insert(key string, object []byte, keep func(idx uint32) bool) {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	n := int64(len(object))
	if c.closed.Load() || n == 0 || (n-1)/c.blockSize > math.MaxUint32 {
		return
	}
	kh := xxhash.Sum64String(key)
	// A one-block object is kept as it is. A larger one is copied block
	// by block: a sub-slice would pin the whole object in memory for as
	// long as any one of its blocks survives, while the cache counts only
	// that block, and the byte bound (invariant 7) would not hold.
	multi := n > c.blockSize
	for idx := int64(0); idx*c.blockSize < n; idx++ {
		if keep != nil && !keep(uint32(idx)) {
			continue
		}
		start := idx * c.blockSize
		end := min(start+c.blockSize, n)
		// The capacity ends with the block: a reader's append must not
		// write into the next block.
		data := object[start:end:end]
		if multi {
			data = append([]byte(nil), data...)
		}
		b := &block{key: key, idx: uint32(idx), data: data}
		c.add(blockKey{kh, uint32(idx)}.hash(), b)
		insertedBytes.Add(int(end - start))
	}
	c.cache.Wait()
}

// add puts a block into the window; what the window pushes out is offered
// to ristretto.
func (c *BlockCache) add(h uint64, b *block) {
	out, keys := c.window.put(h, b)
	for i, ob := range out {
		c.cache.Set(keys[i], ob, int64(len(ob.data)))
	}
}

// cachedBytes is the bytes held: the window's plus the cost ristretto's
// policy holds (admitted minus evicted).
func (c *BlockCache) cachedBytes() int64 {
	return c.window.size() + c.ristrettoBytes()
}

func (c *BlockCache) ristrettoBytes() int64 {
	m := c.cache.Metrics
	return int64(m.CostAdded() - m.CostEvicted())
}

// Close releases the cache's memory and goroutines. Later ReadRange calls
// fail with ErrClosed and Insert does nothing. It must not run concurrently
// with ReadRange or Insert.
func (c *BlockCache) Close() {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed.Swap(true) {
		return
	}
	live.mu.Lock()
	delete(live.m, c)
	live.mu.Unlock()
	c.cache.Close()
}

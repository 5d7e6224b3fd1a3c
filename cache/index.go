package cache

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/meta"
)

// maxCachedEntries bounds the index entries kept per partition: enough for
// tail readers (entries arrive one per segment per partition), small enough
// that thousands of partitions stay cheap. Older ranges are asked of meta.
const maxCachedEntries = 512

// lookupEntries bounds the entries one Lookup returns, from the cache or
// from meta: a fetch reads at most its byte budget, and an entry holds one
// partition's share of a segment, so a fetch seldom needs more than a few.
// Copying the whole cached run on every fetch of an old offset would not
// be.
const lookupEntries = 64

var (
	mIndexHits   = metrics.NewCounter(`sluice_index_cache_hits_total`)
	mIndexMisses = metrics.NewCounter(`sluice_index_cache_misses_total`)
	mIndexResets = metrics.NewCounter(`sluice_index_watch_resets_total`)
	// mIndexStaleHits counts answers served from the cache while meta
	// could not be reached.
	mIndexStaleHits = metrics.NewCounter(`sluice_index_cache_stale_hits_total`)
	// mIndexInvalidations counts partitions whose entries a reader
	// dropped because an entry's object was gone.
	mIndexInvalidations = metrics.NewCounter(`sluice_index_cache_invalidations_total`)
)

// Index is the agent's cache of meta's offset index. Meta keeps it current
// by streaming commit events over the agent's own connection (Watch); a
// miss asks meta. It also fans commit events out to listeners (the fetch
// long-poll waiters).
type Index struct {
	meta meta.Client
	log  *slog.Logger

	mu        sync.Mutex
	parts     map[meta.TopicPartition]*partIndex // guarded by mu
	listeners []func([]meta.CommitEvent)         // guarded by mu
	// connected is true while a watch stream is live; gen counts
	// resets. A meta answer obtained while connected, with gen unchanged
	// since, is kept current by the events that follow it.
	connected bool   // guarded by mu
	gen       uint64 // guarded by mu
	// swaps counts swap events applied. A meta answer obtained while a
	// swap arrived may hold the entries the swap replaced, so Lookup does
	// not cache it (the next Lookup asks again).
	swaps uint64 // guarded by mu

	cancel context.CancelFunc
	done   chan struct{}
}

// partIndex holds a contiguous run of a partition's most recent entries.
type partIndex struct {
	entries  []meta.IndexEntry // sorted, contiguous: each BaseOffset = previous LastOffset+1
	hwm      int64
	logStart int64
	// hwmKnown is true while the watch stream is connected and this
	// partition's hwm came from meta; a lost stream clears it.
	hwmKnown      bool
	logStartKnown bool
	// stable: what read_committed fetches need, kept current by the
	// watch stream like hwm (issue 15/13, index_stable.go).
	stable stableState
	// stableAsked is gen+1 of the stream during which ReadCommitted
	// asked meta for stable; 0 when never.
	stableAsked uint64
}

// NewIndex starts watching meta for commits.
func NewIndex(mc meta.Client, log *slog.Logger) *Index {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Index{
		meta:   mc,
		log:    log.With("component", "index"),
		parts:  make(map[meta.TopicPartition]*partIndex),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	ready := make(chan struct{})
	go x.watch(ctx, ready)
	<-ready
	return x
}

// Close stops watching.
func (x *Index) Close() {
	x.cancel()
	<-x.done
}

// AddListener registers fn to receive every batch of commit events after
// the index has applied it, and nil when the stream was lost and again
// when it is back (everything may have changed in between). fn runs on the watch goroutine and must not block.
func (x *Index) AddListener(fn func([]meta.CommitEvent)) {
	x.mu.Lock()
	x.listeners = append(x.listeners, fn)
	x.mu.Unlock()
}

func (x *Index) watch(ctx context.Context, ready chan struct{}) {
	defer close(x.done)
	backoff := 50 * time.Millisecond
	first := true
	lost := false // a stream was lost (reset) since the last one began
	for {
		ch, err := x.meta.Watch(ctx)
		if first {
			close(ready)
			first = false
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			x.log.Warn("watch meta commits", "err", err)
		} else {
			backoff = 50 * time.Millisecond
			x.reconnected()
			if lost {
				lost = false
				// Whatever changed between the lost stream and this
				// one reached no listener: tell them again, now that
				// every later change will (the ACLs, issue 14, are
				// re-read on it; parked fetches re-check).
				x.notifyLost()
			}
			for evs := range ch {
				x.apply(evs)
			}
		}
		if ctx.Err() != nil {
			return
		}
		mIndexResets.Inc()
		x.reset()
		lost = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (x *Index) apply(evs []meta.CommitEvent) {
	x.mu.Lock()
	for i := range evs {
		if evs[i].ACLs {
			continue // names no partition; the authorizer listens for it
		}
		e := evs[i].Entry
		tp := meta.TopicPartition{TopicID: e.TopicID, Partition: e.Partition}
		p := x.partLocked(tp)
		if evs[i].LogStartOffset > p.logStart {
			// DeleteRecords moved the log start: forget entries below it.
			p.logStart = evs[i].LogStartOffset
			k := 0
			for k < len(p.entries) && p.entries[k].LastOffset < p.logStart {
				k++
			}
			p.entries = append(p.entries[:0], p.entries[k:]...)
		}
		switch {
		case evs[i].Swap:
			// A compaction rewrote data the partition already had: never
			// new data, and its high watermark never moves ours back
			// (the max below).
			p.swapLocked(e)
			x.swaps++
		case !evs[i].Trim:
			p.appendLocked(e)
		}
		if evs[i].HighWatermark > p.hwm {
			p.hwm = evs[i].HighWatermark
		}
		p.hwmKnown = true
		p.stableEventLocked(&evs[i]) // read_committed (issue 15/13)
	}
	ls := x.listeners
	x.mu.Unlock()
	for _, fn := range ls {
		fn(evs)
	}
}

// reset forgets what may be stale after the stream was lost: high
// watermarks. Entries stay, so that staleLookup can serve readers while
// meta is unreachable, though they are no longer immutable facts: a
// compaction may swap them out (and the garbage collector delete their
// objects after --gc-grace) while no event reaches us. Serving them is
// still safe: a swapped entry's old object holds the same batches until
// it is deleted, and a read of a deleted object fails with
// objstore.ErrNotFound, on which the fetch drops the partition's entries
// (Invalidate) and asks meta again. reconnected drops them all once meta
// answers again.
func (x *Index) reset() {
	x.mu.Lock()
	x.connected = false
	x.gen++
	for _, p := range x.parts {
		p.hwmKnown = false
		// read_committed state (issue 15/13) stays, frozen: a past
		// snapshot, still exact to serve (index_stable.go).
	}
	x.mu.Unlock()
	x.notifyLost()
}

// notifyLost calls every listener with nil: events may have been missed.
func (x *Index) notifyLost() {
	x.mu.Lock()
	ls := x.listeners
	x.mu.Unlock()
	for _, fn := range ls {
		fn(nil)
	}
}

// reconnected marks the watch stream live again and drops every cached
// entry: swaps and trims made while the stream was down were never seen,
// so an entry kept through the outage may point at an object that is
// gone. Meta answers again, so the next Lookup of each partition asks
// it; log starts and high watermarks are refreshed the same way.
func (x *Index) reconnected() {
	x.mu.Lock()
	x.connected = true
	for _, p := range x.parts {
		clear(p.entries)
		p.entries = p.entries[:0]
		// Events were missed (an abort among them, maybe): learn the
		// read_committed state afresh (issue 15/13).
		p.stable.forget()
	}
	x.mu.Unlock()
}

// Invalidate drops the cached entries of tp, so that the next Lookup asks
// meta. A reader calls it when an entry's object is gone (compacted away
// and collected while this cache still held the entry).
func (x *Index) Invalidate(tp meta.TopicPartition) {
	x.mu.Lock()
	if p := x.parts[tp]; p != nil {
		clear(p.entries)
		p.entries = p.entries[:0]
	}
	x.mu.Unlock()
	mIndexInvalidations.Inc()
}

func (x *Index) partLocked(tp meta.TopicPartition) *partIndex {
	p := x.parts[tp]
	if p == nil {
		p = &partIndex{}
		x.parts[tp] = p
	}
	return p
}

func (p *partIndex) appendLocked(e meta.IndexEntry) {
	if n := len(p.entries); n > 0 {
		last := p.entries[n-1]
		switch {
		case e.BaseOffset <= last.LastOffset:
			return // already known
		case e.BaseOffset != last.LastOffset+1:
			p.entries = p.entries[:0] // a gap: keep only what is contiguous
		}
	}
	if len(p.entries) >= maxCachedEntries {
		n := copy(p.entries, p.entries[len(p.entries)-maxCachedEntries/2:])
		clear(p.entries[n:])
		p.entries = p.entries[:n]
	}
	p.entries = append(p.entries, e)
}

// swapLocked applies a compaction's swap event: in meta's index, e
// replaced the entries that covered its range. A swap of range [a, b]
// arrives as one event per new entry, in offset order, adjacent, in one
// event batch; each new entry starts and ends inside [a, b] but need not
// fall on the old entries' boundaries (only a and b do).
//
// The cached run is contiguous and most recent, so a swapped range lies
// before it (nothing to do), over its front, or inside it. When the cached
// entries meeting e fit it exactly (or the run starts inside e), e takes
// their place: the run stays contiguous and now points at the new object.
// Otherwise the run's front is trimmed through the last entry meeting e:
// what is left stays contiguous and correct, and offsets before it are
// asked of meta. A swap never extends the run past its end: it is not new
// data.
func (p *partIndex) swapLocked(e meta.IndexEntry) {
	n := len(p.entries)
	if n == 0 || e.LastOffset < p.entries[0].BaseOffset || e.BaseOffset > p.entries[n-1].LastOffset {
		return
	}
	// Entries [i, j) meet [e.BaseOffset, e.LastOffset]; i < j as they
	// overlap the run.
	i := sort.Search(n, func(k int) bool { return p.entries[k].LastOffset >= e.BaseOffset })
	j := sort.Search(n, func(k int) bool { return p.entries[k].BaseOffset > e.LastOffset })
	startFits := p.entries[i].BaseOffset == e.BaseOffset || (i == 0 && p.entries[0].BaseOffset > e.BaseOffset)
	if startFits && p.entries[j-1].LastOffset == e.LastOffset {
		p.entries = slices.Replace(p.entries, i, j, e)
		return
	}
	k := copy(p.entries, p.entries[j:])
	clear(p.entries[k:])
	p.entries = p.entries[:k]
}

// Lookup returns index entries starting with the one holding offset, like
// meta.Client.Lookup, answering from the cache when it can.
func (x *Index) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64) (meta.LookupResult, error) {
	x.mu.Lock()
	if p := x.parts[tp]; p != nil && p.hwmKnown && p.logStartKnown {
		if offset == p.hwm {
			res := meta.LookupResult{LogStartOffset: p.logStart, HighWatermark: p.hwm}
			x.mu.Unlock()
			mIndexHits.Inc()
			return res, nil
		}
		if n := len(p.entries); n > 0 && offset >= p.entries[0].BaseOffset && offset <= p.entries[n-1].LastOffset && offset >= p.logStart {
			i := sort.Search(n, func(i int) bool { return p.entries[i].LastOffset >= offset })
			res := meta.LookupResult{
				Entries:        append([]meta.IndexEntry(nil), p.entries[i:min(n, i+lookupEntries)]...),
				LogStartOffset: p.logStart,
				HighWatermark:  p.hwm,
			}
			x.mu.Unlock()
			mIndexHits.Inc()
			return res, nil
		}
	}
	live, gen, swaps := x.connected, x.gen, x.swaps
	x.mu.Unlock()
	mIndexMisses.Inc()

	res, err := x.meta.Lookup(ctx, tp, offset, lookupEntries)
	if err != nil && res.HighWatermark == 0 && res.LogStartOffset == 0 {
		if stale, ok := x.staleLookup(tp, offset); ok && errors.Is(err, meta.ErrUnavailable) {
			// Meta is unreachable, but what the cache holds was
			// committed: keep serving it (reset says why a swapped
			// entry is still safe to serve). The high
			// watermark is the last one seen, a lower bound.
			mIndexStaleHits.Inc()
			return stale, nil
		}
		return res, err
	}
	x.mu.Lock()
	p := x.partLocked(tp)
	p.logStart, p.logStartKnown = res.LogStartOffset, true
	if res.HighWatermark >= p.hwm {
		p.hwm = res.HighWatermark
	}
	if live && gen == x.gen {
		p.hwmKnown = true
		p.stableLookupLocked(res.Stable) // read_committed (issue 15/13)
	}
	// Cache what reaches the tail: that is what the next fetch wants and
	// what commit events extend. Not when a swap was applied meanwhile:
	// the answer may hold the entries it replaced.
	if n := len(res.Entries); n > 0 && res.Entries[n-1].LastOffset+1 == res.HighWatermark && swaps == x.swaps {
		if len(p.entries) == 0 || p.entries[len(p.entries)-1].LastOffset < res.Entries[n-1].LastOffset {
			p.entries = p.entries[:0]
			for _, e := range res.Entries[max(0, n-maxCachedEntries):] {
				p.appendLocked(e)
			}
		}
	}
	x.mu.Unlock()
	return res, err
}

// staleLookup answers from the cache while meta cannot be asked: entries
// holding offset, or an empty answer at the last known high watermark.
func (x *Index) staleLookup(tp meta.TopicPartition, offset int64) (meta.LookupResult, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// A partition known only from commit events has no log start from
	// meta; its last known value (0 until one arrives) is a lower bound.
	p := x.parts[tp]
	if p == nil || (!p.logStartKnown && len(p.entries) == 0) {
		return meta.LookupResult{}, false
	}
	res := meta.LookupResult{LogStartOffset: p.logStart, HighWatermark: p.hwm}
	if offset == p.hwm {
		return res, true
	}
	n := len(p.entries)
	if n == 0 || offset < p.entries[0].BaseOffset || offset > p.entries[n-1].LastOffset || offset < p.logStart {
		return meta.LookupResult{}, false
	}
	i := sort.Search(n, func(i int) bool { return p.entries[i].LastOffset >= offset })
	res.Entries = append([]meta.IndexEntry(nil), p.entries[i:min(n, i+lookupEntries)]...)
	return res, true
}

// State returns a partition's log start offset and high watermark.
func (x *Index) State(ctx context.Context, tp meta.TopicPartition) (logStart, hwm int64, err error) {
	x.mu.Lock()
	if p := x.parts[tp]; p != nil && p.hwmKnown && p.logStartKnown {
		logStart, hwm = p.logStart, p.hwm
		x.mu.Unlock()
		return logStart, hwm, nil
	}
	live, gen := x.connected, x.gen
	x.mu.Unlock()
	sts, err := x.meta.PartitionStates(ctx, []meta.TopicPartition{tp})
	if err != nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		if p := x.parts[tp]; p != nil && (p.logStartKnown || len(p.entries) > 0) && errors.Is(err, meta.ErrUnavailable) {
			mIndexStaleHits.Inc()
			return p.logStart, p.hwm, nil // last known; see staleLookup
		}
		return 0, 0, err
	}
	if len(sts) != 1 {
		return 0, 0, meta.ErrUnavailable
	}
	if sts[0].Err != nil {
		return 0, 0, sts[0].Err
	}
	x.mu.Lock()
	p := x.partLocked(tp)
	p.logStart, p.logStartKnown = sts[0].LogStartOffset, true
	if sts[0].HighWatermark > p.hwm {
		p.hwm = sts[0].HighWatermark
	}
	if live && gen == x.gen {
		p.hwmKnown = true
	}
	hwm = p.hwm
	x.mu.Unlock()
	return sts[0].LogStartOffset, hwm, nil
}

package cache

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"sluice.dev/meta"
)

// indexMeta is the part of meta.Client an Index uses: a partition's index
// (settable), the watch stream (driven by the test), and a count of the
// Lookups that reached it. Other methods are left nil: calling one panics.
type indexMeta struct {
	meta.Client

	mu      sync.Mutex
	entries []meta.IndexEntry // guarded by mu; one partition's index
	hwm     int64             // guarded by mu
	lookups int               // guarded by mu
	watches chan chan []meta.CommitEvent
}

func newIndexMeta() *indexMeta {
	return &indexMeta{watches: make(chan chan []meta.CommitEvent, 4)}
}

func (m *indexMeta) set(hwm int64, es ...meta.IndexEntry) {
	m.mu.Lock()
	m.entries, m.hwm = append([]meta.IndexEntry(nil), es...), hwm
	m.mu.Unlock()
}

func (m *indexMeta) asked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func (m *indexMeta) Lookup(_ context.Context, _ meta.TopicPartition, offset int64, max int) (meta.LookupResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	res := meta.LookupResult{HighWatermark: m.hwm}
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].LastOffset >= offset })
	res.Entries = append(res.Entries, m.entries[i:min(len(m.entries), i+max)]...)
	return res, nil
}

func (m *indexMeta) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	var ch chan []meta.CommitEvent
	select {
	case ch = <-m.watches:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// Relay, so that the stream ends with ctx as meta's does.
	out := make(chan []meta.CommitEvent)
	go func() {
		defer close(out)
		for {
			select {
			case evs, ok := <-ch:
				if !ok {
					return
				}
				select {
				case out <- evs:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

var testTP = meta.TopicPartition{TopicID: meta.TopicID{1}, Partition: 0}

func ent(base, last int64, key string) meta.IndexEntry {
	return meta.IndexEntry{TopicID: testTP.TopicID, Partition: testTP.Partition, BaseOffset: base, LastOffset: last,
		ObjectKey: key, ObjectSize: 1 << 20, Length: last - base + 1}
}

// indexEnv is an Index over indexMeta with a live watch stream; send
// applies an event batch and returns once the Index has applied it.
type indexEnv struct {
	t       *testing.T
	m       *indexMeta
	x       *Index
	stream  chan []meta.CommitEvent
	applied chan struct{}
}

func newIndexEnv(t *testing.T) *indexEnv {
	e := &indexEnv{t: t, m: newIndexMeta(), stream: make(chan []meta.CommitEvent), applied: make(chan struct{}, 16)}
	e.m.watches <- e.stream
	e.x = NewIndex(e.m, nil)
	t.Cleanup(e.x.Close)
	e.x.AddListener(func(evs []meta.CommitEvent) {
		if evs != nil {
			e.applied <- struct{}{}
		}
	})
	e.waitConnected()
	return e
}

func (e *indexEnv) waitConnected() {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.x.mu.Lock()
		ok := e.x.connected
		e.x.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("watch stream never connected")
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *indexEnv) send(evs ...meta.CommitEvent) {
	e.t.Helper()
	select {
	case e.stream <- evs:
	case <-time.After(10 * time.Second):
		e.t.Fatal("index did not take the events")
	}
	select {
	case <-e.applied:
	case <-time.After(10 * time.Second):
		e.t.Fatal("index did not apply the events")
	}
}

func swapEv(en meta.IndexEntry, hwm int64) meta.CommitEvent {
	return meta.CommitEvent{Entry: en, HighWatermark: hwm, Swap: true}
}

// cached returns the cached run of testTP as "base-last@key" strings.
func (e *indexEnv) cached() []string {
	e.x.mu.Lock()
	defer e.x.mu.Unlock()
	var out []string
	if p := e.x.parts[testTP]; p != nil {
		for _, en := range p.entries {
			out = append(out, fmt.Sprintf("%d-%d@%s", en.BaseOffset, en.LastOffset, en.ObjectKey))
		}
	}
	return out
}

// lookup looks offset up and reports whether meta was asked.
func (e *indexEnv) lookup(offset int64) (meta.LookupResult, bool) {
	e.t.Helper()
	before := e.m.asked()
	res, err := e.x.Lookup(context.Background(), testTP, offset)
	if err != nil {
		e.t.Fatalf("Lookup(%d): %v", offset, err)
	}
	return res, e.m.asked() != before
}

// warm caches the run [0-9][10-19][20-29][30-39] in old objects a..d,
// hwm 40, and checks that the next lookup is a hit.
func (e *indexEnv) warm() {
	e.t.Helper()
	e.m.set(40, ent(0, 9, "a"), ent(10, 19, "b"), ent(20, 29, "c"), ent(30, 39, "d"))
	e.lookup(0)
	if _, asked := e.lookup(15); asked {
		e.t.Fatalf("warm: lookup asked meta; cached %v", e.cached())
	}
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestIndexSwap(t *testing.T) {
	cases := []struct {
		name string
		evs  []meta.CommitEvent
		want []string
	}{
		{
			name: "exact range inside the run is replaced",
			evs:  []meta.CommitEvent{swapEv(ent(10, 29, "L1"), 40)},
			want: []string{"0-9@a", "10-29@L1", "30-39@d"},
		},
		{
			name: "range over the run's front is replaced",
			evs:  []meta.CommitEvent{swapEv(ent(0, 19, "L1"), 40)},
			want: []string{"0-19@L1", "20-29@c", "30-39@d"},
		},
		{
			// Old boundaries 9|10 and 19|20 do not match the new
			// entries' 14|15: the first event trims the run's front,
			// the second (starting before the run) takes the front.
			name: "split entries on other boundaries, one event each",
			evs:  []meta.CommitEvent{swapEv(ent(0, 14, "L1"), 40), swapEv(ent(15, 29, "L1"), 40)},
			want: []string{"15-29@L1", "30-39@d"},
		},
		{
			name: "split entries inside the run trim its front",
			evs:  []meta.CommitEvent{swapEv(ent(10, 24, "L1"), 40), swapEv(ent(25, 29, "L1"), 40)},
			want: []string{"30-39@d"},
		},
		{
			name: "range wholly before the run changes nothing",
			evs:  []meta.CommitEvent{swapEv(ent(-20, -1, "L1"), 40)},
			want: []string{"0-9@a", "10-19@b", "20-29@c", "30-39@d"},
		},
		{
			// The swap ends past the run: the run is behind meta, and a
			// swap must not extend it as if it were new data.
			name: "range past the run's end is dropped, not appended",
			evs:  []meta.CommitEvent{swapEv(ent(30, 49, "L1"), 50)},
			want: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newIndexEnv(t)
			e.warm()
			e.send(tc.evs...)
			if got := e.cached(); !equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
				t.Fatalf("cached run %v, want %v", got, tc.want)
			}
			// Every cached offset is served without asking meta, and
			// from the entry the cache holds.
			for _, s := range tc.want {
				var base, last int64
				var key string
				if _, err := fmt.Sscanf(s, "%d-%d@%s", &base, &last, &key); err != nil {
					t.Fatal(err)
				}
				res, asked := e.lookup(base)
				if asked || len(res.Entries) == 0 || res.Entries[0].ObjectKey != key || res.Entries[0].BaseOffset != base {
					t.Fatalf("Lookup(%d): asked meta %v, entries %v; want a hit on %s", base, asked, res.Entries, s)
				}
			}
		})
	}
}

// TestIndexSwapNeverMovesHWMBack: a swap event carries the partition's
// current high watermark; one from before a newer commit must not lower
// ours, and a swap alone never appends data.
func TestIndexSwapNeverMovesHWMBack(t *testing.T) {
	e := newIndexEnv(t)
	e.warm()
	e.send(meta.CommitEvent{Entry: ent(40, 49, "e"), HighWatermark: 50})
	e.send(swapEv(ent(0, 19, "L1"), 40))
	res, asked := e.lookup(50)
	if asked || res.HighWatermark != 50 {
		t.Fatalf("Lookup(hwm): asked meta %v, hwm %d; want a hit at 50", asked, res.HighWatermark)
	}
	if got, want := e.cached(), []string{"0-19@L1", "20-29@c", "30-39@d", "40-49@e"}; !equal(got, want) {
		t.Fatalf("cached run %v, want %v", got, want)
	}
}

// TestIndexSwapOfUncachedPartition: a swap for a partition with nothing
// cached must not become its cached run.
func TestIndexSwapOfUncachedPartition(t *testing.T) {
	e := newIndexEnv(t)
	e.send(swapEv(ent(0, 19, "L1"), 20))
	if got := e.cached(); len(got) != 0 {
		t.Fatalf("cached run %v after a swap alone, want none", got)
	}
}

// TestIndexLookupRacingSwapNotCached: a meta answer that may predate a
// swap applied while it was in flight is returned but not cached.
func TestIndexLookupRacingSwapNotCached(t *testing.T) {
	e := newIndexEnv(t)
	e.m.set(40, ent(0, 9, "a"), ent(10, 19, "b"), ent(20, 29, "c"), ent(30, 39, "d"))
	// Stand in for the race: the swap counter moves between Lookup
	// reading it and caching the answer.
	race := &racingMeta{indexMeta: e.m, during: func() {
		e.x.mu.Lock()
		e.x.swaps++
		e.x.mu.Unlock()
	}}
	e.x.meta = race
	if _, err := e.x.Lookup(context.Background(), testTP, 0); err != nil {
		t.Fatal(err)
	}
	if got := e.cached(); len(got) != 0 {
		t.Fatalf("cached %v from an answer that raced a swap", got)
	}
}

type racingMeta struct {
	*indexMeta
	during func()
}

func (r *racingMeta) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, max int) (meta.LookupResult, error) {
	r.during()
	return r.indexMeta.Lookup(ctx, tp, offset, max)
}

func TestIndexInvalidate(t *testing.T) {
	e := newIndexEnv(t)
	e.warm()
	e.x.Invalidate(testTP)
	e.m.set(40, ent(0, 39, "L1"))
	res, asked := e.lookup(15)
	if !asked || len(res.Entries) != 1 || res.Entries[0].ObjectKey != "L1" {
		t.Fatalf("Lookup after Invalidate: asked meta %v, entries %v; want meta's L1", asked, res.Entries)
	}
}

// TestIndexReconnectDropsEntries: swaps made while the stream was down
// are never seen, so a reconnect must not serve the entries kept through
// the outage.
func TestIndexReconnectDropsEntries(t *testing.T) {
	e := newIndexEnv(t)
	e.warm()
	second := make(chan []meta.CommitEvent)
	e.m.watches <- second
	close(e.stream) // the stream is lost; the index watches again
	e.stream = second
	e.waitConnected()
	deadline := time.Now().Add(10 * time.Second)
	for len(e.cached()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cached run %v after reconnecting, want none", e.cached())
		}
		time.Sleep(time.Millisecond)
	}
	e.m.set(40, ent(0, 39, "L1"))
	if res, asked := e.lookup(15); !asked || res.Entries[0].ObjectKey != "L1" {
		t.Fatalf("Lookup after reconnect: asked meta %v, entries %v", asked, res.Entries)
	}
}

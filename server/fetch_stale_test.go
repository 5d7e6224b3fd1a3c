package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"sluice.dev/cache"
	"sluice.dev/codec"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// staleMeta serves one partition's index (settable) and a watch stream
// that never sends: the agent hears of no swap, as when its stream was
// down while a compaction ran and the collector deleted the old object.
type staleMeta struct {
	meta.Client
	mu      sync.Mutex
	entries []meta.IndexEntry // guarded by mu
	hwm     int64             // guarded by mu
	lookups int               // guarded by mu
}

func (m *staleMeta) set(hwm int64, es ...meta.IndexEntry) {
	m.mu.Lock()
	m.entries, m.hwm = es, hwm
	m.mu.Unlock()
}

func (m *staleMeta) asked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lookups
}

func (m *staleMeta) Lookup(_ context.Context, _ meta.TopicPartition, offset int64, max int) (meta.LookupResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	i := sort.Search(len(m.entries), func(i int) bool { return m.entries[i].LastOffset >= offset })
	return meta.LookupResult{Entries: append([]meta.IndexEntry(nil), m.entries[i:min(len(m.entries), i+max)]...), HighWatermark: m.hwm}, nil
}

func (m *staleMeta) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	ch := make(chan []meta.CommitEvent)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}

// staleEnv: offsets [0, 10) of one partition, as two batches, in a level-0
// object "old" and again, after 100 bytes of other data, in a compacted
// object "new". The agent's index cache holds the entry into "old".
type staleEnv struct {
	s     *Server
	m     *staleMeta
	store *objstore.Memory
	tp    meta.TopicPartition
	want  []byte // the batches as a fetch returns them
	oldE  meta.IndexEntry
	newE  meta.IndexEntry
}

func newStaleEnv(t *testing.T) *staleEnv {
	t.Helper()
	b1 := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 4, ValueSize: 10, ProducerID: -1})
	batches := kafkatest.AppendBatch(append([]byte(nil), b1...), kafkatest.BatchOpts{Records: 6, ValueSize: 10, ProducerID: -1})
	newObj := append(bytes.Repeat([]byte{0xee}, 100), batches...)
	store := objstore.NewMemory()
	ctx := context.Background()
	if err := store.Put(ctx, "old", batches); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "new", newObj); err != nil {
		t.Fatal(err)
	}
	tp := meta.TopicPartition{TopicID: meta.TopicID{7}, Partition: 3}
	// What a fetch returns: base offsets and leader epochs patched.
	want := append([]byte(nil), batches...)
	codec.SetBaseOffset(want, 0)
	codec.SetPartitionLeaderEpoch(want, 0)
	codec.SetBaseOffset(want[len(b1):], 4)
	codec.SetPartitionLeaderEpoch(want[len(b1):], 0)
	e := &staleEnv{m: &staleMeta{}, store: store, tp: tp, want: want}
	e.oldE = meta.IndexEntry{TopicID: tp.TopicID, Partition: tp.Partition, BaseOffset: 0, LastOffset: 9,
		ObjectKey: "old", ObjectSize: int64(len(batches)), Start: 0, Length: int64(len(batches))}
	e.newE = e.oldE
	e.newE.ObjectKey, e.newE.ObjectSize, e.newE.Start = "new", int64(len(newObj)), 100

	blocks, err := cache.NewBlockCache(store, cache.BlockCacheConfig{BlockSize: 64 << 10, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(blocks.Close)
	idx := cache.NewIndex(e.m, slog.Default())
	t.Cleanup(idx.Close)
	e.s = &Server{deps: Deps{Index: idx, Blocks: blocks}, log: slog.Default()}

	// The cache learns the entry into "old" (it reaches the high
	// watermark, so Lookup keeps it), and serves it without meta after.
	e.m.set(10, e.oldE)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := idx.Lookup(ctx, tp, 0); err != nil {
			t.Fatal(err)
		}
		n := e.m.asked()
		if _, err := idx.Lookup(ctx, tp, 0); err != nil {
			t.Fatal(err)
		}
		if e.m.asked() == n {
			break // a hit: the stale entry is cached
		}
		if time.Now().After(deadline) {
			t.Fatal("the index cache never kept the entry")
		}
		time.Sleep(time.Millisecond) // the watch stream is still connecting
	}
	return e
}

func (e *staleEnv) read(t *testing.T) ([]byte, error) {
	t.Helper()
	rs, _, hwm, err := e.s.readPartition(context.Background(), nil, e.tp, 0, math.MaxInt64, 1<<20, true, func(int) bool { return true })
	if err == nil && hwm != 10 {
		t.Fatalf("high watermark %d, want 10", hwm)
	}
	data := append([]byte(nil), rs.flat()...)
	rs.release()
	return data, err
}

// TestFetchStaleEntryOfDeletedObject: the cached entry points at an object
// the garbage collector deleted; meta's index points at the compacted
// object holding the same batches. The fetch returns the records, and
// the partition's stale entries are gone from the cache.
func TestFetchStaleEntryOfDeletedObject(t *testing.T) {
	e := newStaleEnv(t)
	e.m.set(10, e.newE)
	if err := e.store.Delete(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	before := e.m.asked()
	data, err := e.read(t)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if !bytes.Equal(data, e.want) {
		t.Fatalf("fetch returned %d bytes that differ from the %d bytes of the batches", len(data), len(e.want))
	}
	if n := e.m.asked() - before; n != 1 {
		t.Fatalf("meta asked %d times, want once (the retry)", n)
	}
	// The new entry is what the next fetch uses.
	if _, err := e.read(t); err != nil {
		t.Fatalf("second fetch: %v", err)
	}
}

// TestFetchStaleEntryRetriesOnce: when meta itself still names the
// deleted object, the fetch looks up once more, then fails with the
// not-found error (it does not loop).
func TestFetchStaleEntryRetriesOnce(t *testing.T) {
	e := newStaleEnv(t)
	if err := e.store.Delete(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	before := e.m.asked()
	if _, err := e.read(t); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("fetch error %v, want objstore.ErrNotFound", err)
	}
	if n := e.m.asked() - before; n != 1 {
		t.Fatalf("meta asked %d times, want once", n)
	}
}

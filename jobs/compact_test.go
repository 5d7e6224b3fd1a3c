package jobs

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"sluice.dev/codec"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// fakeMeta is a JobsClient that hands out the jobs a test queued and
// records what the Runner reports. The real planner and swap are tested
// against the controller; this checks the agent's side alone.
type fakeMeta struct {
	mu        sync.Mutex
	jobs      []meta.Job
	compacted []meta.CompactResult
	deleted   []meta.DeleteResult
	orphans   []meta.OrphansResult
	offered   []string
	known     map[string]bool // CheckOrphans returns offered keys not in known
	abandoned []uint64
}

func (f *fakeMeta) AcquireJob(ctx context.Context, agentID string, kinds []meta.JobKind) (meta.Job, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, j := range f.jobs {
		for _, k := range kinds {
			if j.Kind == k {
				f.jobs = append(f.jobs[:i], f.jobs[i+1:]...)
				return j, true, nil
			}
		}
	}
	return meta.Job{}, false, nil
}

func (f *fakeMeta) CompleteCompaction(ctx context.Context, r meta.CompactResult) (meta.CompactOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.compacted = append(f.compacted, r)
	return meta.CompactOutcome{Swapped: len(r.Entries)}, nil
}

func (f *fakeMeta) CompleteDelete(ctx context.Context, r meta.DeleteResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, r)
	return nil
}

func (f *fakeMeta) CheckOrphans(ctx context.Context, jobID uint64, keys []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range keys {
		f.offered = append(f.offered, k)
		if !f.known[k] {
			out = append(out, k)
		}
	}
	return out, nil
}

func (f *fakeMeta) CompleteOrphans(ctx context.Context, r meta.OrphansResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orphans = append(f.orphans, r)
	return nil
}

func (f *fakeMeta) AbandonJob(ctx context.Context, jobID uint64, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandoned = append(f.abandoned, jobID)
	return nil
}

func newTestRunner(t *testing.T, fm *fakeMeta, store objstore.Store) *Runner {
	t.Helper()
	r, err := New(Config{AgentID: "a1", Meta: fm, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	topicA = meta.TopicID{1}
	topicB = meta.TopicID{2}
)

// testSegments writes n level-0 segments, each holding two batches of
// partition A/0 and one of B/3, and returns the index entries meta would
// hold for them (offsets continuing across segments) and every batch per
// partition in offset order.
func testSegments(t *testing.T, store objstore.Store, n int) ([]meta.IndexEntry, map[meta.TopicPartition][][]byte) {
	t.Helper()
	next := map[meta.TopicPartition]int64{}
	batches := map[meta.TopicPartition][][]byte{}
	var entries []meta.IndexEntry
	for s := range n {
		id := meta.NewSegmentID(time.Now(), [8]byte{byte(s)})
		b := codec.NewSegmentBuilder(id)
		type add struct {
			tp    meta.TopicPartition
			batch []byte
		}
		var adds []add
		for _, tp := range []meta.TopicPartition{{TopicID: topicA, Partition: 0}, {TopicID: topicA, Partition: 0}, {TopicID: topicB, Partition: 3}} {
			batch := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 2 + s, ValueSize: 100, FirstTS: int64(1000 * s), ProducerID: -1})
			h, err := codec.ValidateBatch(batch)
			if err != nil {
				t.Fatal(err)
			}
			b.Add(tp.TopicID, tp.Partition, batch, h)
			adds = append(adds, add{tp, batch})
			batches[tp] = append(batches[tp], batch)
		}
		obj, metas := b.Finish()
		key := meta.ObjectKey(id)
		if err := store.Put(context.Background(), key, obj); err != nil {
			t.Fatal(err)
		}
		// One entry per partition: its chunks are adjacent.
		byTP := map[meta.TopicPartition]*meta.IndexEntry{}
		var order []meta.TopicPartition
		for i, a := range adds {
			m := metas[i]
			e := byTP[a.tp]
			if e == nil {
				e = &meta.IndexEntry{TopicID: a.tp.TopicID, Partition: a.tp.Partition, BaseOffset: next[a.tp],
					SegmentID: id, ObjectKey: key, ObjectSize: int64(len(obj)), Start: m.Start}
				e.LastOffset = e.BaseOffset - 1
				byTP[a.tp] = e
				order = append(order, a.tp)
			}
			e.LastOffset += int64(m.RecordCount)
			e.Length = m.End() - e.Start
			e.MaxTimestamp = max(e.MaxTimestamp, m.MaxTimestamp)
			next[a.tp] = e.LastOffset + 1
		}
		for _, tp := range order {
			entries = append(entries, *byTP[tp])
		}
	}
	return entries, batches
}

func TestCompactLaysOutPartitionsContiguously(t *testing.T) {
	store := objstore.NewMemory()
	srcs, batches := testSegments(t, store, 3)
	// Sources grouped by partition, in offset order, as meta plans them.
	var grouped []meta.IndexEntry
	for _, tp := range []meta.TopicPartition{{TopicID: topicA}, {TopicID: topicB, Partition: 3}} {
		for _, e := range srcs {
			if e.TopicID == tp.TopicID && e.Partition == tp.Partition {
				grouped = append(grouped, e)
			}
		}
	}
	out := meta.NewSegmentID(time.Now(), [8]byte{9})
	const maxEntry = 900 // three of A's batches (~0.4-0.6 KiB each) cannot share an entry
	fm := &fakeMeta{jobs: []meta.Job{{ID: 7, Kind: meta.JobCompact, LeaseTTL: time.Minute,
		Compact: &meta.CompactJob{Level: 1, Output: out, MaxEntryBytes: maxEntry, Sources: grouped}}}}
	r := newTestRunner(t, fm, store)
	ran, err := r.RunOne(context.Background(), meta.JobCompact)
	if !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	if len(fm.compacted) != 1 {
		t.Fatalf("got %d results", len(fm.compacted))
	}
	res := fm.compacted[0]
	obj, err := store.GetRange(context.Background(), res.ObjectKey, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(obj)) || res.Output != out || res.ObjectKey != meta.ObjectKey(out) {
		t.Fatalf("result names %s size %d, object has %d bytes", res.ObjectKey, res.Size, len(obj))
	}
	if _, _, err := codec.OpenSegment(obj); err != nil {
		t.Fatalf("output is not a valid segment: %v", err)
	}
	// Per partition: the entries are adjacent in offsets and in bytes,
	// cover exactly the sources' offsets, hold the same batches in the
	// same order, and none is longer than maxEntry unless one batch is.
	for tp, want := range batches {
		var ents []meta.IndexEntry
		for _, e := range res.Entries {
			if e.TopicID == tp.TopicID && e.Partition == tp.Partition {
				ents = append(ents, e)
			}
		}
		if len(ents) < 2 && tp.TopicID == topicA {
			t.Fatalf("%v: %d entries; MaxEntryBytes %d should split A's 6 batches", tp, len(ents), maxEntry)
		}
		var got [][]byte
		next := int64(0)
		for i, e := range ents {
			if e.BaseOffset != next {
				t.Fatalf("%v entry %d starts at %d, want %d", tp, i, e.BaseOffset, next)
			}
			if i > 0 && e.Start != ents[i-1].Start+ents[i-1].Length {
				t.Fatalf("%v entry %d is not adjacent in bytes to the previous", tp, i)
			}
			raw := obj[e.Start : e.Start+e.Length]
			n := 0
			if err := codec.SplitBatches(raw, func(b []byte) error {
				got = append(got, b)
				h, err := codec.ValidateBatch(b)
				next += int64(h.LastOffsetDelta) + 1
				n++
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if e.Length > maxEntry && n > 1 {
				t.Fatalf("%v entry %d holds %d bytes in %d batches, over MaxEntryBytes %d", tp, i, e.Length, n, maxEntry)
			}
			if next != e.LastOffset+1 {
				t.Fatalf("%v entry %d: batches end at %d, entry at %d", tp, i, next-1, e.LastOffset)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%v: %d batches out, %d in", tp, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%v batch %d differs", tp, i)
			}
		}
	}
}

func TestCompactRefusesSourceThatBreaksItsPromise(t *testing.T) {
	store := objstore.NewMemory()
	srcs, _ := testSegments(t, store, 2)
	srcs[0].LastOffset++ // claims one offset more than its batches take
	out := meta.NewSegmentID(time.Now(), [8]byte{9})
	fm := &fakeMeta{jobs: []meta.Job{{ID: 8, Kind: meta.JobCompact, LeaseTTL: time.Minute,
		Compact: &meta.CompactJob{Level: 1, Output: out, Sources: srcs}}}}
	r := newTestRunner(t, fm, store)
	ran, err := r.RunOne(context.Background(), meta.JobCompact)
	if !ran || !errors.Is(err, codec.ErrCorrupt) {
		t.Fatalf("RunOne = %v, %v; want a corruption error", ran, err)
	}
	if _, err := store.Head(context.Background(), meta.ObjectKey(out)); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("output was written despite a bad source: %v", err)
	}
	if len(fm.compacted) != 0 || len(fm.abandoned) != 1 {
		t.Fatalf("compacted %d, abandoned %d; want 0 and 1", len(fm.compacted), len(fm.abandoned))
	}
}

func TestOrphansDeletesOnlyWhatMetaNames(t *testing.T) {
	store := objstore.NewMemory()
	ctx := context.Background()
	var keys []string
	for i := range 5 {
		k := meta.ObjectKey(meta.NewSegmentID(time.Now(), [8]byte{byte(i)}))
		keys = append(keys, k)
		if err := store.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Not an object key: never offered, never deleted.
	if err := store.Put(ctx, "segments/README", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	fm := &fakeMeta{known: map[string]bool{keys[0]: true, keys[3]: true},
		jobs: []meta.Job{{ID: 9, Kind: meta.JobOrphans, LeaseTTL: time.Minute, Orphans: &meta.OrphansJob{Prefix: meta.ObjectPrefix}}}}
	r := newTestRunner(t, fm, store)
	if ran, err := r.RunOne(ctx, meta.JobOrphans); !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	for i, k := range keys {
		_, err := store.Head(ctx, k)
		if gone := errors.Is(err, objstore.ErrNotFound); gone == fm.known[k] {
			t.Errorf("key %d known=%v gone=%v (err %v)", i, fm.known[k], gone, err)
		}
	}
	if _, err := store.Head(ctx, "segments/README"); err != nil {
		t.Errorf("a file that is not an object key was deleted: %v", err)
	}
	if len(fm.orphans) != 1 || fm.orphans[0].Deleted != 3 || fm.orphans[0].Listed != 6 {
		t.Fatalf("orphan result %+v; want 3 deleted of 6 listed", fm.orphans)
	}
}

func TestDeleteRefusesKeyThatIsNotTheObjects(t *testing.T) {
	store := objstore.NewMemory()
	ctx := context.Background()
	id := meta.NewSegmentID(time.Now(), [8]byte{1})
	other := "elsewhere/file"
	if err := store.Put(ctx, other, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fm := &fakeMeta{jobs: []meta.Job{{ID: 10, Kind: meta.JobDelete, LeaseTTL: time.Minute,
		Delete: &meta.DeleteJob{Objects: []meta.ObjectRef{{ID: id, Key: other}}}}}}
	r := newTestRunner(t, fm, store)
	if _, err := r.RunOne(ctx, meta.JobDelete); err == nil {
		t.Fatal("a delete job naming a foreign key succeeded")
	}
	if _, err := store.Head(ctx, other); err != nil {
		t.Fatalf("foreign key deleted: %v", err)
	}
}

// TestOrphansSkipsObjectsYoungByTheStoresClock: meta judges an orphan by
// its id on meta's clock; the agent also leaves alone what the store says
// was written within MinAge (defence in depth against a skewed id).
func TestOrphansSkipsObjectsYoungByTheStoresClock(t *testing.T) {
	store := objstore.NewMemory()
	ctx := context.Background()
	oldKey := meta.ObjectKey(meta.NewSegmentID(time.Now().Add(-time.Hour), [8]byte{1}))
	youngKey := meta.ObjectKey(meta.NewSegmentID(time.Now().Add(-time.Hour), [8]byte{2}))
	store.SetClock(func() time.Time { return time.Now().Add(-time.Hour) })
	if err := store.Put(ctx, oldKey, []byte("x")); err != nil {
		t.Fatal(err)
	}
	store.SetClock(time.Now)
	if err := store.Put(ctx, youngKey, []byte("x")); err != nil {
		t.Fatal(err)
	}
	fm := &fakeMeta{jobs: []meta.Job{{ID: 11, Kind: meta.JobOrphans, LeaseTTL: time.Minute,
		Orphans: &meta.OrphansJob{Prefix: meta.ObjectPrefix, MinAge: 5 * time.Minute}}}}
	r := newTestRunner(t, fm, store)
	if ran, err := r.RunOne(ctx, meta.JobOrphans); !ran || err != nil {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
	if len(fm.offered) != 1 || fm.offered[0] != oldKey {
		t.Fatalf("offered %v, want only the object old by the store's clock", fm.offered)
	}
	if _, err := store.Head(ctx, youngKey); err != nil {
		t.Fatalf("young object deleted: %v", err)
	}
}

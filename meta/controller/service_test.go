package controller

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sluice.dev/meta"
)

func TestCreateTopics(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.DefaultPartitions = 3; c.MaxPartitions = 1000 })
	ctx := ctxT(t)
	cfgs := map[string]string{"retention.ms": "1000"}
	specs := []meta.TopicSpec{
		{Name: "ok.name_-1", Partitions: 2, Configs: cfgs},
		{Name: "default", Partitions: -1},
		{Name: "", Partitions: 1},
		{Name: ".", Partitions: 1},
		{Name: "..", Partitions: 1},
		{Name: "a b", Partitions: 1},
		{Name: "ü", Partitions: 1},
		{Name: strings.Repeat("x", 250), Partitions: 1},
		{Name: strings.Repeat("x", 249), Partitions: 1},
		{Name: "zero", Partitions: 0},
		{Name: "minus2", Partitions: -2},
		{Name: "toomany", Partitions: 1001},
		{Name: "ok.name_-1", Partitions: 1}, // twice in one request
	}
	want := []error{nil, nil, meta.ErrInvalidTopic, meta.ErrInvalidTopic, meta.ErrInvalidTopic, meta.ErrInvalidTopic, meta.ErrInvalidTopic,
		meta.ErrInvalidTopic, nil, meta.ErrInvalidPartitions, meta.ErrInvalidPartitions, meta.ErrInvalidPartitions, meta.ErrTopicExists}
	res, err := s.CreateTopics(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[meta.TopicID]bool{}
	for i, r := range res {
		if r.Name != specs[i].Name || !errors.Is(r.Err, want[i]) || (want[i] == nil) != (r.Err == nil) {
			t.Errorf("%q: %v, want %v", specs[i].Name, r.Err, want[i])
		}
		if r.Err == nil {
			if r.Topic.ID == (meta.TopicID{}) || ids[r.Topic.ID] {
				t.Errorf("%q: bad id %s", r.Name, r.Topic.ID)
			}
			ids[r.Topic.ID] = true
		}
	}
	if res[1].Topic.Partitions != 3 {
		t.Errorf("default partitions: %d", res[1].Topic.Partitions)
	}
	// Configs are copies both ways.
	cfgs["retention.ms"] = "changed"
	res[0].Topic.Configs["x"] = "y"
	got, err := s.Topics(ctx, []string{"ok.name_-1"})
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Configs, map[string]string{"retention.ms": "1000"}) {
		t.Fatalf("Topics: %+v %v", got, err)
	}
	// A retry reports ErrTopicExists.
	res, _ = s.CreateTopics(ctx, []meta.TopicSpec{{Name: "default", Partitions: 3}})
	if !errors.Is(res[0].Err, meta.ErrTopicExists) {
		t.Fatalf("retry: %v", res[0].Err)
	}
}

func TestTopicsReads(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	c := createTopic(t, s, "c", 1)
	a := createTopic(t, s, "a", 2)
	b := createTopic(t, s, "b", 3)
	names := func(ts []meta.Topic) (out []string) {
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return out
	}
	all, _ := s.Topics(ctx, nil)
	if got := names(all); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("all: %v", got)
	}
	some, _ := s.Topics(ctx, []string{"c", "nope", "a", "c"})
	if got := names(some); !reflect.DeepEqual(got, []string{"a", "c"}) {
		t.Errorf("some: %v", got)
	}
	none, _ := s.Topics(ctx, []string{})
	if len(none) != 0 {
		t.Errorf("empty names: %v", none)
	}
	byID, _ := s.TopicsByID(ctx, []meta.TopicID{b.ID, {1}, c.ID, b.ID})
	if got := names(byID); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Errorf("by id: %v", got)
	}
	st, _ := s.PartitionStates(ctx, []meta.TopicPartition{{TopicID: a.ID, Partition: 1}, {TopicID: a.ID, Partition: 2}, {TopicID: meta.TopicID{9}, Partition: 0}, {TopicID: b.ID, Partition: -1}})
	if st[0].Err != nil || st[0].HighWatermark != 0 || st[0].TopicID != a.ID || st[0].Partition != 1 {
		t.Errorf("state: %+v", st[0])
	}
	for _, x := range st[1:] {
		if !errors.Is(x.Err, meta.ErrUnknownTopicOrPartition) {
			t.Errorf("unknown: %+v", x)
		}
	}
	id1, _ := s.ClusterID(ctx)
	if len(id1) != 22 {
		t.Errorf("cluster id %q", id1)
	}
}

// TestIndexEntries checks offset assignment and how chunks become index
// entries: byte-adjacent chunks of a partition in one segment merge into
// one entry; a gap, or a refused chunk of that partition, starts a new one.
func TestIndexEntries(t *testing.T) {
	s := openT(t, t.TempDir())
	a := createTopic(t, s, "a", 2)
	sg := newSegment()
	sg.Size = 1000
	ch := func(id meta.TopicID, part int32, start int64, length, n int32, pid int64, seq int32) {
		sg.Chunks = append(sg.Chunks, meta.Chunk{TopicID: id, Partition: part, Start: start, Length: length, RecordCount: n,
			MaxTimestamp: 1000 + int64(len(sg.Chunks)), ProducerID: pid, BaseSequence: seq})
	}
	ch(a.ID, 0, 0, 100, 10, -1, 0)            // 0: p0 [0,10)
	ch(a.ID, 0, 100, 50, 5, -1, 0)            // 1: p0 [10,15), adjacent: merges
	ch(a.ID, 0, 157, 10, 1, -1, 0)            // 2: p0 [15,16), gap: new entry
	ch(a.ID, 1, 200, 30, 3, -1, 0)            // 3: p1 [0,3)
	ch(meta.TopicID{7}, 0, 900, 30, 3, -1, 0) // 4: unknown topic (another partition: no effect on p1's run)
	ch(a.ID, 2, 930, 30, 3, -1, 0)            // 5: unknown partition
	ch(a.ID, 1, 230, 20, 2, 5, 0)             // 6: p1 [3,5), idempotent, adjacent: merges
	ch(a.ID, 1, 300, 20, 2, 5, 0)             // 7: duplicate of 6: breaks p1's run
	ch(a.ID, 1, 250, 10, 1, 5, 2)             // 8: p1 [5,6), adjacent to 6 in bytes but after the refused 7
	ch(a.ID, 0, 960, 0, 0, -1, 0)             // 9: invalid: no records, no bytes
	ch(a.ID, 1, 260, 40, 4, -1, 0)            // 10: p1 [6,10), merges with 8
	ch(a.ID, 0, 995, 10, 1, -1, 0)            // 11: invalid: past the object's end
	ch(a.ID, 1, 400, 10, 1, 5, 100)           // 12: out of order
	r := commit(t, s, sg)
	want := []meta.ChunkResult{
		{Status: meta.ChunkAppended, BaseOffset: 0, LogStartOffset: 0}, {Status: meta.ChunkAppended, BaseOffset: 10, LogStartOffset: 0}, {Status: meta.ChunkAppended, BaseOffset: 15, LogStartOffset: 0}, {Status: meta.ChunkAppended, BaseOffset: 0, LogStartOffset: 0},
		{Status: meta.ChunkUnknownPartition, BaseOffset: 0, LogStartOffset: 0}, {Status: meta.ChunkUnknownPartition, BaseOffset: 0, LogStartOffset: 0},
		{Status: meta.ChunkAppended, BaseOffset: 3, LogStartOffset: 0}, {Status: meta.ChunkDuplicate, BaseOffset: 3, LogStartOffset: 0}, {Status: meta.ChunkAppended, BaseOffset: 5, LogStartOffset: 0}, {Status: meta.ChunkInvalid, BaseOffset: 0, LogStartOffset: 0},
		{Status: meta.ChunkAppended, BaseOffset: 6, LogStartOffset: 0}, {Status: meta.ChunkInvalid, BaseOffset: 0, LogStartOffset: 0}, {Status: meta.ChunkOutOfOrder, BaseOffset: 0, LogStartOffset: 0},
	}
	if !reflect.DeepEqual(r.Chunks, want) {
		t.Fatalf("results:\n got %+v\nwant %+v", r.Chunks, want)
	}
	entry := func(part int32, base, last, start, length int64, maxTSChunk int) meta.IndexEntry {
		return meta.IndexEntry{TopicID: a.ID, Partition: part, BaseOffset: base, LastOffset: last, SegmentID: sg.SegmentID,
			ObjectKey: sg.ObjectKey, ObjectSize: sg.Size, Start: start, Length: length, MaxTimestamp: 1000 + int64(maxTSChunk)}
	}
	p0 := []meta.IndexEntry{entry(0, 0, 14, 0, 150, 1), entry(0, 15, 15, 157, 10, 2)}
	p1 := []meta.IndexEntry{entry(1, 0, 4, 200, 50, 6), entry(1, 5, 9, 250, 50, 10)}
	if got := allEntries(t, s, a.ID, 0); !reflect.DeepEqual(got, p0) {
		t.Errorf("p0:\n got %+v\nwant %+v", got, p0)
	}
	if got := allEntries(t, s, a.ID, 1); !reflect.DeepEqual(got, p1) {
		t.Errorf("p1:\n got %+v\nwant %+v", got, p1)
	}
	// Two segments never share an entry, even if adjacent in offsets.
	sg2 := newSegment().add(a.ID, 0, 1, 10)
	commit(t, s, sg2)
	if got := allEntries(t, s, a.ID, 0); len(got) != 3 || got[2].SegmentID != sg2.SegmentID || got[2].BaseOffset != 16 {
		t.Errorf("second segment: %+v", got)
	}
	checkInvariants(t, s)
}

func TestLookup(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	tp := meta.TopicPartition{TopicID: a.ID, Partition: 0}
	// Ten segments of 10 records: entries [0,9], [10,19], ... [90,99].
	for i := 0; i < 10; i++ {
		commit(t, s, newSegment().add(a.ID, 0, 10, 100))
	}
	for _, c := range []struct {
		offset    int64
		max       int
		wantFirst int64 // BaseOffset of the first entry, -1 for none
		wantN     int
		wantErr   error
	}{
		{0, 1, 0, 1, nil},
		{5, 3, 0, 3, nil},
		{9, 100, 0, 10, nil},
		{10, 2, 10, 2, nil},
		{95, 5, 90, 1, nil},
		{99, 0, 90, 1, nil}, // maxEntries < 1 counts as 1
		{100, 10, -1, 0, nil},
		{101, 10, -1, 0, meta.ErrOffsetOutOfRange},
		{-1, 10, -1, 0, meta.ErrOffsetOutOfRange},
	} {
		r, err := s.Lookup(ctx, tp, c.offset, c.max)
		if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
			t.Errorf("offset %d: err %v, want %v", c.offset, err, c.wantErr)
		}
		if r.HighWatermark != 100 || r.LogStartOffset != 0 {
			t.Errorf("offset %d: bounds %d %d", c.offset, r.LogStartOffset, r.HighWatermark)
		}
		if len(r.Entries) != c.wantN || c.wantN > 0 && r.Entries[0].BaseOffset != c.wantFirst {
			t.Errorf("offset %d max %d: %d entries from %+v", c.offset, c.max, len(r.Entries), r.Entries)
		}
	}
	// An empty partition: offset 0 is its high watermark.
	r, err := s.Lookup(ctx, meta.TopicPartition{TopicID: a.ID, Partition: 1}, 0, 10)
	if err != nil || len(r.Entries) != 0 || r.HighWatermark != 0 {
		t.Errorf("empty partition: %+v %v", r, err)
	}
	for _, bad := range []meta.TopicPartition{{TopicID: meta.TopicID{1}, Partition: 0}, {TopicID: a.ID, Partition: 2}, {TopicID: a.ID, Partition: -1}} {
		if _, err := s.Lookup(ctx, bad, 0, 1); !errors.Is(err, meta.ErrUnknownTopicOrPartition) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	// Returned entries are copies.
	r, _ = s.Lookup(ctx, tp, 0, 1)
	r.Entries[0].ObjectKey = "changed"
	r, _ = s.Lookup(ctx, tp, 0, 1)
	if r.Entries[0].ObjectKey == "changed" {
		t.Fatal("Lookup shares memory with the state")
	}
}

// TestLookupManyBlocks crosses entryList block boundaries.
func TestLookupManyBlocks(t *testing.T) {
	var l entryList
	const n = 3*entryBlock + 17
	for i := 0; i < n; i++ {
		l.append(meta.IndexEntry{BaseOffset: int64(2 * i), LastOffset: int64(2*i + 1)})
	}
	if l.len() != n || len(l.blocks) != 4 {
		t.Fatalf("len %d blocks %d", l.len(), len(l.blocks))
	}
	for off := int64(0); off < 2*n; off++ {
		i := l.find(off)
		if i != int(off/2) {
			t.Fatalf("find(%d) = %d", off, i)
		}
	}
	got := l.copyRange(nil, entryBlock-3, entryBlock+10)
	if len(got) != entryBlock+10 || got[0].BaseOffset != 2*(entryBlock-3) {
		t.Fatalf("copyRange: %d from %d", len(got), got[0].BaseOffset)
	}
	for i := 1; i < len(got); i++ {
		if got[i].BaseOffset != got[i-1].LastOffset+1 {
			t.Fatalf("copyRange not dense at %d", i)
		}
	}
	if got := l.copyRange(nil, n-2, 10); len(got) != 2 {
		t.Fatalf("copyRange at the end: %d", len(got))
	}
}

func TestIdempotentRecommit(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	a := createTopic(t, s, "a", 2)
	sg := newSegment().add(a.ID, 0, 10, 100).add(a.ID, 1, 5, 50).addP(a.ID, 0, 3, 30, 1, 0, 0)
	first := commit(t, s, sg)
	commit(t, s, newSegment().add(a.ID, 0, 1, 10)) // something after it
	h0, h1 := hwm(t, s, a.ID, 0), hwm(t, s, a.ID, 1)
	check := func(s *Service) {
		t.Helper()
		again := commit(t, s, sg)
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("re-commit:\n got %+v\nwant %+v", again, first)
		}
		if hwm(t, s, a.ID, 0) != h0 || hwm(t, s, a.ID, 1) != h1 {
			t.Fatal("re-commit moved a high watermark")
		}
	}
	check(s)
	// Different chunks under the same id still get the first answer.
	other := sg.SegmentCommit
	other.Chunks = other.Chunks[:1]
	if r, err := s.CommitSegment(ctxT(t), other); err != nil || !reflect.DeepEqual(r, first) {
		t.Fatalf("re-commit with other chunks: %+v %v", r, err)
	}
	s = reopen(t, s)
	check(s)
}

// TestRestart: a reopened store has exactly the committed state (the
// reopen helper compares all of it), and behaves the same.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := ctxT(t)
	if _, err := s.CreateTopics(ctx, []meta.TopicSpec{
		{Name: "a", Partitions: 3, Configs: map[string]string{"cleanup.policy": "delete"}},
		{Name: "b", Partitions: 1},
	}); err != nil {
		t.Fatal(err)
	}
	tops, _ := s.Topics(ctx, nil)
	a := tops[0]
	p, _ := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	p, _ = s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch})
	var lastSeg *segment
	for i := int32(0); i < 20; i++ {
		lastSeg = newSegment().
			addP(a.ID, i%3, 2, 20, p.ProducerID, p.ProducerEpoch, i/3*2).
			add(a.ID, (i+1)%3, 1, 10)
		commit(t, s, lastSeg)
	}
	cid, _ := s.ClusterID(ctx)
	type view struct {
		Topics []meta.Topic
		States []meta.PartitionState
		Looks  [][]meta.IndexEntry
	}
	look := func(s *Service) view {
		var v view
		v.Topics, _ = s.Topics(ctx, nil)
		var tps []meta.TopicPartition
		for _, tp := range v.Topics {
			for i := int32(0); i < tp.Partitions; i++ {
				tps = append(tps, meta.TopicPartition{TopicID: tp.ID, Partition: i})
				v.Looks = append(v.Looks, allEntries(t, s, tp.ID, i))
			}
		}
		v.States, _ = s.PartitionStates(ctx, tps)
		return v
	}
	before := look(s)

	s = reopen(t, s)
	if after := look(s); !reflect.DeepEqual(before, after) {
		t.Fatalf("reads differ after restart:\n%+v\n%+v", before, after)
	}
	if cid2, _ := s.ClusterID(ctx); cid2 != cid {
		t.Fatalf("cluster id %q became %q", cid, cid2)
	}
	// Producer ids go on increasing; the bumped epoch is remembered.
	p2, _ := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if p2.ProducerID <= p.ProducerID {
		t.Fatalf("producer id %d after %d", p2.ProducerID, p.ProducerID)
	}
	if _, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: p.ProducerID, ProducerEpoch: 0}); !errors.Is(err, meta.ErrInvalidProducerEpoch) {
		t.Fatalf("stale epoch after restart: %v", err)
	}
	// The producer's window survived: a retry of its last batch (as a
	// new segment) is a duplicate, the next sequence appends, an old
	// epoch is fenced.
	last := lastSeg.Chunks[0]
	retry := newSegment().addP(a.ID, last.Partition, last.RecordCount, 20, p.ProducerID, p.ProducerEpoch, last.BaseSequence)
	r := commit(t, s, retry)
	if r.Chunks[0].Status != meta.ChunkDuplicate {
		t.Fatalf("retry after restart: %+v", r)
	}
	next := newSegment().addP(a.ID, last.Partition, 1, 20, p.ProducerID, p.ProducerEpoch, last.BaseSequence+2)
	if r := commit(t, s, next); r.Chunks[0].Status != meta.ChunkAppended {
		t.Fatalf("next after restart: %+v", r)
	}
	old := newSegment().addP(a.ID, last.Partition, 1, 20, p.ProducerID, 0, 100)
	if r := commit(t, s, old); r.Chunks[0].Status != meta.ChunkFenced {
		t.Fatalf("old epoch after restart: %+v", r)
	}
	reopen(t, s)
}

// TestWriteFailure: a failed store transaction fails every op of its
// group and leaves the state as it was; the next group works.
func TestWriteFailure(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	commit(t, s, newSegment().addP(a.ID, 0, 5, 50, 1, 0, 0))
	before := snapshot(s)

	boom := errors.New("boom")
	setWriteHook(t, s, func() error { return boom })
	sg := newSegment().addP(a.ID, 0, 5, 50, 1, 0, 5)
	_, err := s.CommitSegment(ctx, sg.SegmentCommit)
	if !errors.Is(err, meta.ErrUnavailable) || !errors.Is(err, boom) {
		t.Fatalf("CommitSegment: %v", err)
	}
	if _, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: "b", Partitions: 1}}); !errors.Is(err, boom) {
		t.Fatalf("CreateTopics: %v", err)
	}
	if _, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1}); !errors.Is(err, boom) {
		t.Fatalf("InitProducerID: %v", err)
	}
	if after := snapshot(s); !reflect.DeepEqual(before, after) {
		t.Fatalf("state changed by failed writes:\n%+v\n%+v", before, after)
	}
	if h := hwm(t, s, a.ID, 0); h != 5 {
		t.Fatalf("high watermark %d", h)
	}

	// Once the store works again the same commit gets the offsets the
	// failed one would have had, and the sequence still continues.
	s.writeHook.Store(nil)
	r := commit(t, s, sg)
	if r.Chunks[0] != (meta.ChunkResult{Status: meta.ChunkAppended, BaseOffset: 5}) {
		t.Fatalf("after recovery: %+v", r)
	}
	p, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || p.ProducerID != before.NextPID {
		t.Fatalf("producer id after failure: %+v %v (want %d)", p, err, before.NextPID)
	}
}

// TestWriteFailureClosedDB closes the store under the service.
func TestWriteFailureClosedDB(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	commit(t, s, newSegment().add(a.ID, 0, 5, 50))
	before := snapshot(s)
	if err := s.kv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 5, 50).SegmentCommit); !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("CommitSegment on a closed db: %v", err)
	}
	if after := snapshot(s); !reflect.DeepEqual(before, after) {
		t.Fatal("state changed by a failed write")
	}
	// Reads still serve the committed state.
	if h := hwm(t, s, a.ID, 0); h != 5 {
		t.Fatalf("high watermark %d", h)
	}
	s.Close()
	s2 := openT(t, s.cfg.Dir)
	if h := hwm(t, s2, a.ID, 0); h != 5 {
		t.Fatalf("high watermark after reopen %d", h)
	}
}

// TestGroupFailureFailsAll: when a group's write fails, every op in it
// fails, including those whose answer did not itself need a write (a
// re-commit answered from the same group's changes).
func TestGroupFailureFailsAll(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	release, open := newGate(t)
	var calls atomic.Int32
	setWriteHook(t, s, func() error {
		if calls.Add(1) == 1 {
			<-release // hold the first group while the others queue
			return nil
		}
		return errors.New("boom")
	})
	firstErr := make(chan error, 1)
	go func() { // the first group
		_, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 1, 10).SegmentCommit)
		firstErr <- err
	}()
	waitFor(t, "first group", func() bool { return calls.Load() == 1 })
	sg := newSegment().add(a.ID, 0, 2, 20)
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := s.CommitSegment(ctx, sg.SegmentCommit)
			errs <- err
		}()
	}
	waitFor(t, "queued ops", func() bool { return len(s.ops) == 3 })
	open()
	for i := 0; i < 3; i++ {
		if err := <-errs; !errors.Is(err, meta.ErrUnavailable) {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	if err := <-firstErr; err != nil {
		t.Fatalf("first group: %v", err)
	}
	s.writeHook.Store(nil)
	if r := commit(t, s, sg); r.Chunks[0].BaseOffset != 1 {
		t.Fatalf("after: %+v", r)
	}
}

// TestContextBeforeTaken: an op whose context ended before the committer
// took it has no effect.
func TestContextBeforeTaken(t *testing.T) {
	s := openT(t, t.TempDir())
	a := createTopic(t, s, "a", 1)
	release, open := newGate(t)
	var calls atomic.Int32
	setWriteHook(t, s, func() error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := s.CommitSegment(context.Background(), newSegment().add(a.ID, 0, 1, 10).SegmentCommit)
		done <- err
	}()
	waitFor(t, "first group", func() bool { return calls.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 5, 50).SegmentCommit)
		errc <- err
	}()
	waitFor(t, "queued op", func() bool { return len(s.ops) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled op: %v", err)
	}
	open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Another op goes through after the cancelled one was dropped.
	commit(t, s, newSegment().add(a.ID, 0, 2, 20))
	if h := hwm(t, s, a.ID, 0); h != 3 {
		t.Fatalf("high watermark %d, want 3 (the cancelled op must not count)", h)
	}

	// A context already done never reaches the committer.
	if _, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 5, 50).SegmentCommit); !errors.Is(err, context.Canceled) {
		t.Fatalf("done context: %v", err)
	}
	if _, err := s.Topics(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("read with done context: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, ok := <-w; ok {
		t.Fatal("watcher open after Close")
	}
	if _, err := s.CommitSegment(ctx, newSegment().add(a.ID, 0, 1, 10).SegmentCommit); !errors.Is(err, meta.ErrClosed) {
		t.Fatalf("CommitSegment: %v", err)
	}
	if _, err := s.Lookup(ctx, meta.TopicPartition{TopicID: a.ID, Partition: 0}, 0, 1); !errors.Is(err, meta.ErrClosed) {
		t.Fatalf("Lookup: %v", err)
	}
	if _, err := s.Watch(ctx); !errors.Is(err, meta.ErrClosed) {
		t.Fatalf("Watch: %v", err)
	}
}

// TestSegmentAnswerPruning: answers beyond the limit or older than the
// TTL are dropped, from the oldest, in memory and on disk.
func TestSegmentAnswerPruning(t *testing.T) {
	dir := t.TempDir()
	var clock atomic.Int64
	clock.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	fake := func(s *Service) *Service {
		s.now = func() time.Time { return time.Unix(0, clock.Load()) }
		return s
	}
	limit := func(c *Config) { c.SegmentResultLimit = 10; c.SegmentResultTTL = time.Hour }
	s := fake(openT(t, dir, limit))
	a := createTopic(t, s, "a", 1)
	var segs []*segment
	for i := 0; i < 25; i++ {
		sg := newSegmentAt(time.Unix(0, clock.Load())).add(a.ID, 0, 1, 10)
		commit(t, s, sg)
		segs = append(segs, sg)
		clock.Add(int64(time.Second))
	}
	if n := snapshot(s).Segs; len(n) != 10 {
		t.Fatalf("%d answers kept, want 10", len(n))
	}
	// The newest ten are still idempotent.
	for i, sg := range segs[15:] {
		if r := commit(t, s, sg); r.Chunks[0].BaseOffset != int64(15+i) {
			t.Fatalf("segment %d: %+v", 15+i, r)
		}
	}
	s = fake(reopen(t, s, limit))
	if n := len(snapshot(s).Segs); n != 10 {
		t.Fatalf("%d answers after reopen", n)
	}
	// Two hours later one more commit drops all the old answers.
	clock.Add(int64(2 * time.Hour))
	commit(t, s, newSegmentAt(time.Unix(0, clock.Load())).add(a.ID, 0, 1, 10))
	if n := len(snapshot(s).Segs); n != 1 {
		t.Fatalf("%d answers after the TTL", n)
	}
	// A dropped answer cannot be found, but the segment is far older
	// than a commit may be: refused, not stored twice.
	if _, err := s.CommitSegment(ctxT(t), segs[0].SegmentCommit); !errors.Is(err, meta.ErrSegmentExpired) {
		t.Fatalf("re-commit of a pruned segment: %v, want ErrSegmentExpired", err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{},
		{Dir: t.TempDir(), DefaultPartitions: -3},
		{Dir: t.TempDir(), DefaultPartitions: 10, MaxPartitions: 5},
		{Dir: t.TempDir(), WatchBuffer: -1},
	} {
		if s, err := Open(c); err == nil {
			s.Close()
			t.Errorf("%+v: no error", c)
		}
	}
}

package controller

import (
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
)

// TestDeleteRecords: the log start moves, offsets below it are out of
// range, entries wholly below it leave the index and the store, the
// state survives a reopen (and passes invariant 3), watchers hear of it,
// and bad offsets or partitions are refused one by one.
func TestDeleteRecords(t *testing.T) {
	s := openT(t, t.TempDir())
	tp := createTopic(t, s, "dr", 2)
	p0 := meta.TopicPartition{TopicID: tp.ID, Partition: 0}
	for range 3 {
		commit(t, s, newSegment().add(tp.ID, 0, 10, 100)) // entries [0,9] [10,19] [20,29]
	}
	ctx := ctxT(t)
	events, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	res, err := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{
		{TopicPartition: p0, Offset: 15},
		{TopicPartition: meta.TopicPartition{TopicID: tp.ID, Partition: 1}, Offset: 1}, // hwm 0
		{TopicPartition: meta.TopicPartition{TopicID: tp.ID, Partition: 7}, Offset: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[0].LogStartOffset != 15 || res[0].HighWatermark != 30 {
		t.Fatalf("delete below 15: %+v", res[0])
	}
	if !errors.Is(res[1].Err, meta.ErrOffsetOutOfRange) || !errors.Is(res[2].Err, meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("bad specs answered %v and %v", res[1].Err, res[2].Err)
	}
	select {
	case evs := <-events:
		if len(evs) != 1 || !evs[0].Trim || evs[0].LogStartOffset != 15 || evs[0].Entry.TopicID != tp.ID {
			t.Fatalf("watch got %+v", evs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no trim event")
	}

	check := func(s *Service, logStart int64, firstBase int64, n int) {
		t.Helper()
		checkInvariants(t, s)
		if _, err := s.Lookup(ctx, p0, logStart-1, 10); !errors.Is(err, meta.ErrOffsetOutOfRange) {
			t.Fatalf("Lookup below the log start: %v", err)
		}
		r, err := s.Lookup(ctx, p0, logStart, 10)
		if err != nil || r.LogStartOffset != logStart {
			t.Fatalf("Lookup at the log start: %+v %v", r, err)
		}
		if len(r.Entries) != n || (n > 0 && r.Entries[0].BaseOffset != firstBase) {
			t.Fatalf("entries from the log start: %+v, want %d starting at %d", r.Entries, n, firstBase)
		}
	}
	check(s, 15, 10, 2)
	s = reopen(t, s)
	check(s, 15, 10, 2)

	// Deleting below the current start changes nothing; -1 deletes all.
	if res, _ := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: p0, Offset: 3}}); res[0].LogStartOffset != 15 {
		t.Fatalf("a lower offset moved the log start back: %+v", res[0])
	}
	if res, _ := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: p0, Offset: -1}}); res[0].LogStartOffset != 30 {
		t.Fatalf("delete all: %+v", res[0])
	}
	check(s, 30, 0, 0)
	s = reopen(t, s)
	check(s, 30, 0, 0)
	// Producing goes on after the deleted range.
	r := commit(t, s, newSegment().add(tp.ID, 0, 5, 50))
	if r.Chunks[0].BaseOffset != 30 || r.Chunks[0].LogStartOffset != 30 {
		t.Fatalf("after delete-all the next batch got %+v", r.Chunks[0])
	}
	check(s, 30, 30, 1)
	reopen(t, s)
}

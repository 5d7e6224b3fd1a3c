package controller

import (
	"sync"
	"testing"

	"sluice.dev/meta"
)

// FindTimestamp scans without Service.mu (issue 12 item 6: an index
// scan must not hold meta's global lock): run it against a partition
// that grows, is trimmed and has its configs changed meanwhile; the race
// detector checks the view, and every answer must be an entry that was
// in the index.
func TestFindTimestampWhileCommitting(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	tp := meta.TopicPartition{TopicID: a.ID, Partition: 0}
	for i := range 100 {
		retentionSeg(t, s, a.ID, 0, 2, 10, int64(1000+i))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 300 {
			retentionSeg(t, s, a.ID, 0, 2, 10, int64(2000+i))
			if i%50 == 0 {
				s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: tp, Offset: int64(i)}})
			}
		}
	}()
	for range 200 {
		r, err := s.FindTimestamp(ctx, tp, meta.FirstAtOrAfter, 1050)
		if err != nil || !r.Found || r.Entry.MaxTimestamp < 1050 || r.Entry.LastOffset < r.LogStartOffset {
			t.Fatalf("FirstAtOrAfter: %+v %v", r, err)
		}
		m, err := s.FindTimestamp(ctx, tp, meta.MaxTimestamp, 0)
		if err != nil || !m.Found || m.Entry.MaxTimestamp < 1099 {
			t.Fatalf("MaxTimestamp: %+v %v", m, err)
		}
	}
	wg.Wait()
	if m, _ := s.FindTimestamp(ctx, tp, meta.MaxTimestamp, 0); m.Entry.MaxTimestamp != 2299 {
		t.Fatalf("max timestamp at the end: %+v", m.Entry)
	}
	if r, _ := s.FindTimestamp(ctx, tp, meta.FirstAtOrAfter, 5000); r.Found {
		t.Fatalf("found a timestamp past every entry: %+v", r.Entry)
	}
}

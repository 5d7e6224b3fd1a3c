package controller

import (
	"sync"
	"testing"
	"time"

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

// TestCommitDuringTimestampScan: a ListOffsets by timestamp scan of a
// long partition must not hold Service.mu (issue 12 item 6). The scan
// is held at its start (timestampScanHook, after the view is taken);
// meanwhile commits to the same partition and a DeleteRecords trim must
// complete, and the held scan must then answer from its view. Were mu (even for reading) held across the scan, the
// committer could not take it to merge, and the commit would wait for
// the scan: the test gives it 20 s and fails.
func TestCommitDuringTimestampScan(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	tp := meta.TopicPartition{TopicID: a.ID, Partition: 0}
	const n = 2000
	for i := range n {
		retentionSeg(t, s, a.ID, 0, 1, 10, int64(1000+i))
	}
	held, release := newGate(t)
	scanning := make(chan struct{})
	timestampScanHook = func() {
		close(scanning)
		<-held
	}
	t.Cleanup(func() { timestampScanHook = nil })

	type answer struct {
		r   meta.TimestampResult
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, err := s.FindTimestamp(ctx, tp, meta.FirstAtOrAfter, 1000+n-1)
		done <- answer{r, err}
	}()
	select {
	case <-scanning:
	case <-time.After(20 * time.Second):
		t.Fatal("the scan did not start")
	}
	timestampScanHook = nil // later scans (the cleanup's) run freely

	committed := make(chan error, 1)
	go func() {
		var err error
		for i := range 3 {
			sg := newSegment().add(a.ID, 0, 1, 10)
			sg.Chunks[0].MaxTimestamp = int64(9000 + i)
			if _, err = s.CommitSegment(ctx, sg.SegmentCommit); err != nil {
				break
			}
		}
		if err == nil {
			_, err = s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: tp, Offset: 10}})
		}
		committed <- err
	}()
	select {
	case err := <-committed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		release()
		t.Fatal("a commit waited for a timestamp scan: the scan holds meta's lock")
	}
	if got := hwm(t, s, a.ID, 0); got != n+3 {
		t.Fatalf("high watermark %d after the commits, want %d", got, n+3)
	}
	release()
	ans := <-done
	// The scan answers from the state it viewed: before the commits and
	// the trim.
	if ans.err != nil || !ans.r.Found || ans.r.Entry.BaseOffset != n-1 || ans.r.HighWatermark != n || ans.r.LogStartOffset != 0 {
		t.Fatalf("held scan: %+v %v", ans.r, ans.err)
	}
	// A new scan sees the commits.
	if r, err := s.FindTimestamp(ctx, tp, meta.FirstAtOrAfter, 9001); err != nil || !r.Found || r.Entry.BaseOffset != n+1 || r.LogStartOffset != 10 {
		t.Fatalf("scan after the commits: %+v %v", r, err)
	}
}

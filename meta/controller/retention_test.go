package controller

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"sluice.dev/meta"
)

// retentionSeg commits one segment of one chunk of n records and size
// bytes on tp, whose largest timestamp is ts (unix ms).
func retentionSeg(t *testing.T, s *Service, id meta.TopicID, part int32, n, size int32, ts int64) {
	t.Helper()
	sg := newSegment().add(id, part, n, size)
	sg.Chunks[0].FirstTimestamp = min(ts, sg.Chunks[0].FirstTimestamp)
	sg.Chunks[0].MaxTimestamp = ts
	if r := commit(t, s, sg); r.Chunks[0].Status != meta.ChunkAppended {
		t.Fatalf("commit: %v", r.Chunks[0].Status)
	}
}

func logStart(t *testing.T, s *Service, id meta.TopicID, part int32) int64 {
	t.Helper()
	st, err := s.PartitionStates(ctxT(t), []meta.TopicPartition{{TopicID: id, Partition: part}})
	if err != nil || st[0].Err != nil {
		t.Fatalf("PartitionStates: %v %v", err, st[0].Err)
	}
	return st[0].LogStartOffset
}

// Issue 12 item 1: retention by time. Entries whose largest timestamp is
// older than retention.ms leave, oldest first, whole entries only; reads
// below the new start are out of range; agents are told by a Trim event;
// the state survives a reopen; the walk stops at the first entry that has
// not expired (here one without timestamps).
func TestRetentionByTime(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	clk := &fakeClock{t: time.Now()}
	s.now = clk.now
	ctx := ctxT(t)
	hour := time.Hour.Milliseconds()
	now := clk.now().UnixMilli()
	ms := strconv.FormatInt(hour, 10)
	res, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: "a", Partitions: 2, Configs: map[string]string{"retention.ms": ms}}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	a := res[0].Topic
	keep := createTopic(t, s, "forever", 1)
	if err := s.AlterTopicConfigs(ctx, "forever", []meta.ConfigChange{{Name: "retention.ms", Value: ptr("-1")}}, false); err != nil {
		t.Fatal(err)
	}
	retentionSeg(t, s, a.ID, 0, 5, 100, now-3*hour)    // [0, 4]
	retentionSeg(t, s, a.ID, 0, 5, 100, now-2*hour)    // [5, 9]
	retentionSeg(t, s, a.ID, 0, 5, 100, now-hour/2)    // [10, 14]
	retentionSeg(t, s, a.ID, 0, 5, 100, now)           // [15, 19]
	retentionSeg(t, s, a.ID, 1, 3, 100, -1)            // no timestamps
	retentionSeg(t, s, a.ID, 1, 3, 100, now-3*hour)    // expired, but behind the entry above
	retentionSeg(t, s, keep.ID, 0, 3, 100, now-3*hour) // retention.ms=-1

	w, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.EnforceRetention(ctx)
	if err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v; want 1 partition moved", n, err)
	}
	if got := logStart(t, s, a.ID, 0); got != 10 {
		t.Fatalf("log start %d, want 10", got)
	}
	if got := logStart(t, s, a.ID, 1); got != 0 {
		t.Fatalf("partition behind an entry without timestamps: log start %d, want 0", got)
	}
	if got := logStart(t, s, keep.ID, 0); got != 0 {
		t.Fatalf("retention.ms=-1: log start %d, want 0", got)
	}
	if _, err := s.Lookup(ctx, meta.TopicPartition{TopicID: a.ID, Partition: 0}, 9, 10); !errors.Is(err, meta.ErrOffsetOutOfRange) {
		t.Fatalf("Lookup below the start: %v", err)
	}
	if r, err := s.Lookup(ctx, meta.TopicPartition{TopicID: a.ID, Partition: 0}, 10, 10); err != nil || len(r.Entries) != 2 || r.Entries[0].BaseOffset != 10 {
		t.Fatalf("entries after retention: %+v, %v", r, err)
	}
	select {
	case evs := <-w:
		if len(evs) != 1 || !evs[0].Trim || evs[0].LogStartOffset != 10 || evs[0].Entry.TopicID != a.ID {
			t.Fatalf("events: %+v", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Trim event")
	}
	s = reopen(t, s)
	s.now = clk.now
	// An hour later the next entry has expired too; the newest not yet.
	clk.add(time.Hour)
	if n, _ := s.EnforceRetention(ctx); n != 1 || logStart(t, s, a.ID, 0) != 15 {
		t.Fatalf("an hour later: moved %d, log start %d; want 1, 15", n, logStart(t, s, a.ID, 0))
	}
	// Nothing more to do: the check is idempotent.
	if n, _ := s.EnforceRetention(ctx); n != 0 {
		t.Fatalf("second check moved %d partitions", n)
	}
}

// Retention by size: while a partition holds more than retention.bytes,
// its oldest entries leave; what stays is at most retention.bytes.
func TestRetentionByBytes(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.DefaultRetentionBytes = 250 })
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	now := time.Now().UnixMilli()
	for range 4 {
		retentionSeg(t, s, a.ID, 0, 2, 100, now) // 400 bytes in all
	}
	if n, err := s.EnforceRetention(ctx); err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}
	if got := logStart(t, s, a.ID, 0); got != 4 {
		t.Fatalf("log start %d, want 4 (two 100-byte entries left)", got)
	}
	if err := s.AlterTopicConfigs(ctx, "a", []meta.ConfigChange{{Name: "retention.bytes", Value: ptr("0")}}, false); err != nil {
		t.Fatal(err)
	}
	s.EnforceRetention(ctx)
	if got, hw := logStart(t, s, a.ID, 0), hwm(t, s, a.ID, 0); got != hw {
		t.Fatalf("retention.bytes=0: log start %d, high watermark %d", got, hw)
	}
	reopen(t, s)
}

// The cluster default applies to topics without retention.ms.
func TestRetentionDefault(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.DefaultRetentionMs = 1000 })
	a := createTopic(t, s, "a", 1)
	retentionSeg(t, s, a.ID, 0, 2, 100, time.Now().Add(-time.Minute).UnixMilli())
	retentionSeg(t, s, a.ID, 0, 2, 100, time.Now().Add(time.Hour).UnixMilli())
	if n, _ := s.EnforceRetention(ctxT(t)); n != 1 || logStart(t, s, a.ID, 0) != 2 {
		t.Fatalf("default retention: moved %d, log start %d", n, logStart(t, s, a.ID, 0))
	}
}

func ptr(s string) *string { return &s }

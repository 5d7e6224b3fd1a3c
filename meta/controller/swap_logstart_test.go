package controller

import (
	"testing"
	"time"

	"sluice.dev/meta"
)

// A compaction output that splits an entry the log start sits inside:
// the output's part wholly below the log start is not swapped in, so the
// index and the object's references after the swap are what a restart
// rebuilds (Open drops entries below the log start). Before, memory kept
// the part below the log start and a reference to the output for it;
// openT's reopen check found the difference (TestReopenProperty, seed
// 1796656914278957857).
func TestSwapDropsOutputBelowLogStart(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	commit(t, s, newSegment().add(a.ID, 0, 9, 90)) // one entry, offsets 0..8
	if _, err := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: meta.TopicPartition{TopicID: a.ID}, Offset: 7}}); err != nil {
		t.Fatal(err)
	}
	before := partEntries(s, a.ID, 0)
	if len(before) != 1 || before[0].BaseOffset != 0 || before[0].LastOffset != 8 {
		t.Fatalf("the entry straddling the log start: %+v", before)
	}
	id := newSegIDAt(time.Now())
	key := meta.ObjectKey(id)
	out := []meta.IndexEntry{
		{TopicID: a.ID, BaseOffset: 0, LastOffset: 6, SegmentID: id, ObjectKey: key, ObjectSize: 200, Start: 24, Length: 70, MaxTimestamp: 1000},
		{TopicID: a.ID, BaseOffset: 7, LastOffset: 8, SegmentID: id, ObjectKey: key, ObjectSize: 200, Start: 94, Length: 20, MaxTimestamp: 1000},
	}
	o := &op{kind: opSwap, swap: &swapReq{res: meta.CompactResult{Output: id, ObjectKey: key, Size: 200, Entries: out},
		sources: map[meta.SegmentID]bool{before[0].SegmentID: true}, level: 1}}
	if err := s.submit(ctx, o); err != nil || o.err != nil {
		t.Fatalf("swap: %v %v", err, o.err)
	}
	after := partEntries(s, a.ID, 0)
	if len(after) != 1 || after[0].BaseOffset != 7 || after[0].LastOffset != 8 || after[0].SegmentID != id {
		t.Fatalf("after the swap: %+v; want the output's [7, 8] alone", after)
	}
	s.mu.RLock()
	ob := s.st.objs.byID[id]
	s.mu.RUnlock()
	if ob == nil || ob.refs != 1 {
		t.Fatalf("the output object: %+v; want one reference", ob)
	}
	// openT's cleanup reopens the store and compares the whole state.
}

// partEntries is a partition's index as meta holds it, below the log
// start included (Lookup answers only from the log start).
func partEntries(s *Service, id meta.TopicID, part int32) []meta.IndexEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := s.st.topicsByID[id].parts[part]
	out := make([]meta.IndexEntry, 0, ps.entries.len())
	for k := range ps.entries.len() {
		out = append(out, *ps.entries.at(k))
	}
	return out
}

package controller

import (
	"errors"
	"strings"
	"testing"

	"sluice.dev/meta"
)

func TestTopicAdminDurable(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	createTopic(t, s, "b", 1)
	commitOne := func(id meta.TopicID, p int32) {
		t.Helper()
		c := newSegment().add(id, p, 1, 10).SegmentCommit
		res, err := s.CommitSegment(ctx, c)
		if err != nil || res.Chunks[0].Status != meta.ChunkAppended {
			t.Fatalf("commit to %d: %+v %v", p, res, err)
		}
	}
	commitOne(a.ID, 1)

	if errs, err := s.CreatePartitions(ctx, []meta.PartitionsSpec{{Name: "a", Count: 4}, {Name: "a", Count: 2}, {Name: "zz", Count: 3}}); err != nil ||
		errs[0] != nil || !errors.Is(errs[1], meta.ErrInvalidPartitions) || !errors.Is(errs[2], meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("create partitions: %v %v", errs, err)
	}
	commitOne(a.ID, 3) // a new partition takes data
	v := "1000"
	if err := s.AlterTopicConfigs(ctx, "a", []meta.ConfigChange{{Name: "retention.ms", Value: &v}}, false); err != nil {
		t.Fatal(err)
	}
	if errs, err := s.DeleteTopics(ctx, []string{"b", "nope"}); err != nil || errs[0] != nil || !errors.Is(errs[1], meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("delete: %v %v", errs, err)
	}
	s = reopen(t, s)
	ts, _ := s.Topics(ctx, nil)
	if len(ts) != 1 || ts[0].Name != "a" || ts[0].Partitions != 4 || ts[0].Configs["retention.ms"] != "1000" {
		t.Fatalf("after restart: %+v", ts)
	}
	if hwm(t, s, a.ID, 1) != 1 || hwm(t, s, a.ID, 3) != 1 {
		t.Fatal("offsets lost with the partition change")
	}
	// Re-create b: a new id, empty.
	b2 := createTopic(t, s, "b", 1)
	if hwm(t, s, b2.ID, 0) != 0 {
		t.Fatal("re-created topic is not empty")
	}
	if err := s.AlterTopicConfigs(ctx, "a", nil, true); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	ts, _ = s.Topics(ctx, []string{"a"})
	if len(ts[0].Configs) != 0 {
		t.Fatalf("replace with nothing left %v", ts[0].Configs)
	}
}

// Issue 11 finding 5: per-cluster limits on topics and partitions, each
// refused with ErrLimit (POLICY_VIOLATION) and a message naming the flag.
func TestClusterLimits(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.MaxTopics = 3; c.MaxClusterPartitions = 10 })
	ctx := ctxT(t)
	createTopic(t, s, "a", 4)
	createTopic(t, s, "b", 4)
	res, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: "c", Partitions: 3}, {Name: "d", Partitions: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Err, meta.ErrLimit) || !strings.Contains(res[0].Err.Error(), "--max-partitions") {
		t.Fatalf("11 partitions: %v", res[0].Err)
	}
	if res[1].Err != nil {
		t.Fatalf("10 partitions: %v", res[1].Err)
	}
	res, _ = s.CreateTopics(ctx, []meta.TopicSpec{{Name: "e", Partitions: 1}})
	if !errors.Is(res[0].Err, meta.ErrLimit) {
		t.Fatalf("fourth topic: %v", res[0].Err)
	}
	errs, _ := s.CreatePartitions(ctx, []meta.PartitionsSpec{{Name: "a", Count: 5}})
	if !errors.Is(errs[0], meta.ErrLimit) {
		t.Fatalf("CreatePartitions past the limit: %v", errs[0])
	}
	// A delete frees room, in the same group too.
	if errs, _ := s.DeleteTopics(ctx, []string{"b"}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	res, _ = s.CreateTopics(ctx, []meta.TopicSpec{{Name: "e", Partitions: 4}, {Name: "f", Partitions: 1}})
	if res[0].Err != nil || !errors.Is(res[1].Err, meta.ErrLimit) {
		t.Fatalf("after delete: %v, %v", res[0].Err, res[1].Err)
	}
}

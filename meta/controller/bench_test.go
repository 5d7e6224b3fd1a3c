package controller

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"

	"sluice.dev/meta"
)

// benchSegments commits segments of 16 partitions × 4 adjacent chunks
// (one index entry per partition per segment, as the agent lays them
// out), each caller reusing its chunk slice and changing only the
// segment id. It reports segments per store transaction.
func benchSegments(b *testing.B, parallel bool) {
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir, Store: testStore(b, dir), Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	res, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: "bench", Partitions: 16}})
	if err != nil || res[0].Err != nil {
		b.Fatal(err, res[0].Err)
	}
	topic := res[0].Topic.ID
	var ids atomic.Uint64
	newCommit := func() meta.SegmentCommit {
		c := meta.SegmentCommit{ObjectKey: "segments/bench", AgentID: "bench"}
		for p := int32(0); p < 16; p++ {
			for k := 0; k < 4; k++ {
				c.Chunks = append(c.Chunks, meta.Chunk{TopicID: topic, Partition: p, Start: c.Size, Length: 1000,
					RecordCount: 10, MaxTimestamp: 1, ProducerID: -1})
				c.Size += 1000
			}
		}
		return c
	}
	one := func(c *meta.SegmentCommit) {
		binary.BigEndian.PutUint64(c.SegmentID[8:], ids.Add(1))
		r, err := s.CommitSegment(ctx, *c)
		if err != nil || r.Chunks[63].Status != meta.ChunkAppended {
			b.Error(err)
		}
	}
	tx0 := s.txCount.Load()
	b.ReportAllocs()
	b.ResetTimer()
	if parallel {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			c := newCommit()
			for pb.Next() {
				one(&c)
			}
		})
	} else {
		c := newCommit()
		for i := 0; i < b.N; i++ {
			one(&c)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/float64(s.txCount.Load()-tx0), "segs/tx")
}

func BenchmarkCommitSegment(b *testing.B)           { benchSegments(b, true) }
func BenchmarkCommitSegmentSequential(b *testing.B) { benchSegments(b, false) }

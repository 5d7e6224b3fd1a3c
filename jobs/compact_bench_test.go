package jobs

import (
	"bytes"
	"context"
	"testing"
	"time"

	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// BenchmarkCompactLayoutPut measures what a compaction job costs the
// agent after its GETs: checking and laying out 64 level-0 segments of
// 16 partitions (about 64 MiB, 1,024 source entries of 64 batches of
// 1 KiB records each) and writing the object to a local bucket.
// "vector" is the job's path (FinishParts, objstore.Parts: each batch
// written from where it was read); "joined" lays the same parts out in
// one new buffer first, as the job did before, for the ratio.
func BenchmarkCompactLayoutPut(b *testing.B) {
	const segments, partitions, batchesPerEntry = 64, 16, 64
	cj := &meta.CompactJob{Output: meta.NewSegmentID(time.Now(), [8]byte{1}), MaxEntryBytes: 1 << 20}
	// Sources in partition order, then commit order, as meta plans them.
	var data [][]byte
	for p := range int32(partitions) {
		for s := range segments {
			var entry []byte
			for range batchesPerEntry {
				entry = kafkatest.AppendBatch(entry, kafkatest.BatchOpts{Records: 1, ValueSize: 1000, FirstTS: int64(s), ProducerID: -1})
			}
			base := int64(s) * batchesPerEntry
			cj.Sources = append(cj.Sources, meta.IndexEntry{TopicID: topicA, Partition: p,
				BaseOffset: base, LastOffset: base + batchesPerEntry - 1, Length: int64(len(entry))})
			data = append(data, entry)
		}
	}
	var total int64
	for _, d := range data {
		total += int64(len(d))
	}
	store, err := objstore.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	for _, mode := range []string{"vector", "joined"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				parts, size, _, err := layout(cj, data)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "vector" {
					b.ReportMetric(float64(len(parts)), "parts/op")
					err = store.PutReader(ctx, "c/out", objstore.NewParts(parts), size)
				} else {
					err = store.Put(ctx, "c/out", bytes.Join(parts, nil))
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package codec

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

var benchSizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"16KiB", 16 << 10},
	{"1MiB", 1 << 20},
}

// BenchmarkValidateBatch is dominated by the CRC-32C over the batch, which
// should run at hardware speed (SSE4.2 on amd64), with no allocations.
func BenchmarkValidateBatch(b *testing.B) {
	for _, s := range benchSizes {
		batch := batchOfSize(s.size)
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				if _, err := ValidateBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSplitBatches walks a Produce partition of 8 batches and validates
// each, as the pipeline does.
func BenchmarkSplitBatches(b *testing.B) {
	var records []byte
	for range 8 {
		records = append(records, batchOfSize(16<<10)...)
	}
	fn := func(batch []byte) error {
		_, err := ValidateBatch(batch)
		return err
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(records)))
	for b.Loop() {
		if err := SplitBatches(records, fn); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseBatchHeader(b *testing.B) {
	batch := batchOfSize(1 << 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBatchHeader(batch); err != nil {
			b.Fatal(err)
		}
	}
}

// segmentBenchInput is batches of the given size spread over partitions
// partitions of one topic, about 8 MiB in all, added round-robin so that
// Finish has to regroup every chunk.
func segmentBenchInput(partitions, batchSize int) (batch []byte, h BatchHeader, keys []ChunkMeta, n int) {
	batch = batchOfSize(batchSize)
	h, err := ValidateBatch(batch)
	if err != nil {
		panic(err)
	}
	for p := range partitions {
		keys = append(keys, ChunkMeta{TopicID: topic(1, 1), Partition: int32(p)})
	}
	return batch, h, keys, (8 << 20) / len(batch)
}

// BenchmarkSegmentBuild measures Reset + Add… + Finish of an ~8 MiB segment
// with a reused builder. Allocations are the object and the metas slice.
// Most of the time is clearing and copying 8 MiB; the rest grows with the
// number of chunks and, slowly, of partitions.
func BenchmarkSegmentBuild(b *testing.B) {
	for _, c := range []struct{ partitions, batchSize int }{
		{16, 1 << 10},
		{16, 16 << 10},
		{16, 256 << 10},
		{1024, 1 << 10},
		{8192, 1 << 10}, // one chunk per partition
	} {
		batch, h, keys, n := segmentBenchInput(c.partitions, c.batchSize)
		b.Run(fmt.Sprintf("partitions=%d/batch=%dKiB/chunks=%d", c.partitions, c.batchSize>>10, n), func(b *testing.B) {
			sb := NewSegmentBuilder(topic(2, 2))
			b.ReportAllocs()
			b.SetBytes(int64(n * len(batch)))
			for b.Loop() {
				sb.Reset(topic(2, 2))
				for i := range n {
					k := &keys[i%len(keys)]
					sb.Add(k.TopicID, k.Partition, batch, h)
				}
				sb.Finish()
			}
		})
	}
}

// BenchmarkOpenSegment measures checking a whole ~8 MiB segment in memory:
// O(chunks), not O(bytes), since batch CRCs are not recomputed.
func BenchmarkOpenSegment(b *testing.B) {
	batch, h, keys, n := segmentBenchInput(16, 16<<10)
	sb := NewSegmentBuilder(topic(2, 2))
	for i := range n {
		k := &keys[i%len(keys)]
		sb.Add(k.TopicID, k.Partition, batch, h)
	}
	obj, _ := sb.Finish()
	b.ReportAllocs()
	b.SetBytes(int64(len(obj)))
	for b.Loop() {
		if _, _, err := OpenSegment(obj); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateRecords measures walking a batch's records, by codec,
// as the produce path does after ValidateBatch. Bytes are the uncompressed
// records, so MB/s compares codecs on the same data: ~100-byte records
// whose values are a repeating byte pattern (about 3-8x compressible).
// Compressed batches are made by franz-go's producer compressor. The
// decoders come from a pool, so steady state allocates nothing.
func BenchmarkValidateRecords(b *testing.B) {
	for _, s := range benchSizes[1:] {
		plain := batchOfSize(s.size)
		codecs := append([]struct {
			name  string
			codec int8
			kgo   kgo.CompressionCodec
		}{{"none", CompressionNone, kgo.NoCompression()}}, realCodecs...)
		for _, c := range codecs {
			batch := plain
			if c.codec != CompressionNone {
				batch = compressWith(b, c.kgo, c.codec, plain)
			}
			h := mustValidate(b, batch)
			b.Run(c.name+"/"+s.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(plain) - BatchHeaderSize))
				for b.Loop() {
					if err := ValidateRecords(batch, h, 32<<20); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(plain))/float64(len(batch)), "ratio")
			})
		}
	}
}

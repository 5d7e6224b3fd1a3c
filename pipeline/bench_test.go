package pipeline_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sluice.dev/internal/kafkatest"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// BenchmarkPipelineAppend measures the produce path end to end: parallel
// Appends of one 16 KiB batch each, spread over 16 partitions, into a
// memory store and a real (bbolt) meta; an op counts once its done
// callback has run, so the figure includes sealing, upload and commit.
func BenchmarkPipelineAppend(b *testing.B) {
	const (
		partitions = 16
		batchSize  = 16 << 10
	)
	e := newEnv(b, partitions)
	mem := objstore.NewMemory()
	p := e.start(pipeline.Config{
		FlushInterval: 5 * time.Millisecond,
		AgentID:       "bench",
		// Drop each object once uploaded (nothing reads them here), so
		// that the store does not hold b.N × 16 KiB and the figures do
		// not measure the GC scanning it.
		OnUploaded: func(key string, _ []byte) { _ = mem.Delete(context.Background(), key) },
	}, mem, nil)

	// One exactly 16 KiB batch per partition, shared read-only by every
	// Append (Batch.Data is never modified by the pipeline).
	batches := make([]pipeline.Batch, partitions)
	for i := range batches {
		v := batchSize - 100
		for {
			batches[i] = e.batchOpts(int32(i), kafkatest.BatchOpts{Records: 1, ValueSize: v, ProducerID: -1})
			d := batchSize - len(batches[i].Data)
			if d == 0 {
				break
			}
			v += d
		}
	}

	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		next   atomic.Uint32
	)
	b.SetBytes(batchSize)
	b.ReportAllocs()
	b.SetParallelism(4) // connection workers per core
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		part := next.Add(1) // each worker starts on another partition
		for pb.Next() {
			bs := batches[part%partitions : part%partitions+1]
			part++
			wg.Add(1)
			err := p.Append(b.Context(), bs, func(res []pipeline.Result) {
				if res[0].Err != nil {
					failed.Add(1)
				}
				wg.Done()
			})
			if err != nil {
				wg.Done()
				failed.Add(1)
			}
		}
	})
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d Appends failed", n)
	}
}

package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/bench"
	"sluice.dev/internal/kafkatest"
)

// BenchmarkProduceLoopback drives the whole produce path in one process:
// franz-go (acks=all, idempotent, linger 5ms) → gnet listener → pipeline →
// local-directory bucket (fsync) → meta commit (fsync) → ack. 1 KiB
// records over 16 partitions. The client shares the two cores.
func BenchmarkProduceLoopback(b *testing.B) {
	for _, size := range []int{1024, 16 << 10} {
		b.Run(fmt.Sprintf("record=%d", size), func(b *testing.B) {
			c := startCluster(b, b.TempDir(), agent.Config{})
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("bench"),
				kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond),
				kgo.MaxBufferedBytes(256<<20), kgo.ProducerBatchMaxBytes(1<<20),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
				b.Fatal(err)
			}
			val := make([]byte, size)
			var wg sync.WaitGroup
			var failed error
			var mu sync.Mutex
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed = err
						mu.Unlock()
					}
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			if failed != nil {
				b.Fatal(failed)
			}
		})
	}
}

// BenchmarkProduceLatencyLight measures acks=all produce latency at light
// load: one 1 KiB record every `every`, each timed from Produce to its ack.
// The flush interval dominates: expect it plus the upload and commit. At
// 5 ms spacing an idempotent client's five in-flight requests per broker
// are all waiting on one segment, so records queue in the client for up to
// one more interval (see BENCHMARKS.md).
func BenchmarkProduceLatencyLight(b *testing.B) {
	cases := []struct {
		flush, every time.Duration
	}{
		{250 * time.Millisecond, 100 * time.Millisecond},
		{250 * time.Millisecond, 5 * time.Millisecond},
		{25 * time.Millisecond, 10 * time.Millisecond},
		{25 * time.Millisecond, 5 * time.Millisecond},
	}
	for _, tc := range cases {
		flush, every := tc.flush, tc.every
		b.Run("flush="+flush.String()+"/every="+every.String(), func(b *testing.B) {
			c := startCluster(b, b.TempDir(), agent.Config{FlushInterval: flush})
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("latency"),
				kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0),
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			// Warm up every partition: franz-go keeps one request in flight
			// per partition until that partition's first success, which
			// would otherwise show up as a doubled latency at the start.
			warm := make([]*kgo.Record, 32)
			for i := range warm {
				warm[i] = &kgo.Record{Value: []byte("warm")}
			}
			if err := cl.ProduceSync(ctx, warm...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			// A fixed count over about 20 s: run with -benchtime 1x.
			n := min(max(int(20*time.Second/every), 200), 4000)
			var lat bench.Latencies
			val := make([]byte, 1024)
			var wg sync.WaitGroup
			tick := time.NewTicker(every)
			defer tick.Stop()
			b.ResetTimer()
			for i := 0; i < n; i++ {
				<-tick.C
				wg.Add(1)
				start := time.Now()
				cl.Produce(ctx, &kgo.Record{Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
					lat.Record(time.Since(start))
					wg.Done()
				})
			}
			wg.Wait()
			b.StopTimer()
			sum := lat.Summary()
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			b.ReportMetric(ms(sum.P50), "p50-ms")
			b.ReportMetric(ms(sum.P99), "p99-ms")
			b.ReportMetric(ms(sum.Max), "max-ms")
		})
	}
}

// BenchmarkFetchLoopback drives the fetch path in one process: a raw
// Fetch v12 for 16 partitions from offset 0 (1 MiB per partition), served
// from the block cache (the data was just produced, so it is cached) and
// the index cache. One op is one fetch response; bytes are record batch
// bytes returned. allocs/op covers both sides (the raw client decodes the
// response into one slice per partition), so it shows whether the path
// allocates per record: a response holds thousands of records.
func BenchmarkFetchLoopback(b *testing.B) {
	c := startCluster(b, b.TempDir(), agent.Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("fetchbench"),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(256<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	val := make([]byte, 1024)
	var recs []*kgo.Record
	for i := range 16 * 1024 { // 16 MiB over 16 partitions
		recs = append(recs, &kgo.Record{Value: val, Partition: int32(i % 16)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		b.Fatal(err)
	}
	md, err := cl.Request(ctx, &kmsg.MetadataRequest{Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("fetchbench")}}})
	if err != nil {
		b.Fatal(err)
	}
	topicID := md.(*kmsg.MetadataResponse).Topics[0].TopicID
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, -1, 0, 1, 32<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fetchbench"
	ft.TopicID = topicID
	for p := range int32(16) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes, fp.LogStartOffset = p, 0, 1<<20, -1
		ft.Partitions = append(ft.Partitions, fp)
	}
	req.Topics = append(req.Topics, ft)
	fetch := func() int {
		resp, err := conn.RoundTrip(req, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, t := range resp.(*kmsg.FetchResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					b.Fatalf("partition %d: error %d", p.Partition, p.ErrorCode)
				}
				n += len(p.RecordBatches)
			}
		}
		return n
	}
	n := fetch() // warm
	if n < 8<<20 {
		b.Fatalf("a fetch returned %d bytes, want most of 16 MiB", n)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		fetch()
	}
	b.ReportMetric(float64(n)/1024, "records/op")
}

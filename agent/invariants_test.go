package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// recordingMeta captures everything an agent sends to meta, serialised,
// standing in for the network a later issue puts between them.
type recordingMeta struct {
	meta.Client
	mu      sync.Mutex
	sent    bytes.Buffer
	commits int
}

func (r *recordingMeta) record(v any) {
	b, _ := json.Marshal(v)
	r.mu.Lock()
	r.sent.Write(b)
	r.mu.Unlock()
}

func (r *recordingMeta) CreateTopics(ctx context.Context, specs []meta.TopicSpec) ([]meta.TopicResult, error) {
	r.record(specs)
	return r.Client.CreateTopics(ctx, specs)
}

func (r *recordingMeta) Topics(ctx context.Context, names []string) ([]meta.Topic, error) {
	r.record(names)
	return r.Client.Topics(ctx, names)
}

func (r *recordingMeta) CommitSegment(ctx context.Context, c meta.SegmentCommit) (meta.CommitResult, error) {
	r.record(c)
	r.mu.Lock()
	r.commits++
	r.mu.Unlock()
	return r.Client.CommitSegment(ctx, c)
}

func (r *recordingMeta) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, n int) (meta.LookupResult, error) {
	r.record([]any{tp, offset, n})
	return r.Client.Lookup(ctx, tp, offset, n)
}

func (r *recordingMeta) InitProducerID(ctx context.Context, req meta.ProducerIDRequest) (meta.ProducerIDResult, error) {
	r.record(req)
	return r.Client.InitProducerID(ctx, req)
}

// Invariant 5: no record byte reaches meta. Canary keys, values and
// headers go through produce and fetch; nothing the agent sends to meta
// contains any of them, raw or hex-encoded.
func TestNoRecordBytesReachMeta(t *testing.T) {
	rec := &recordingMeta{}
	c := startClusterWith(t, t.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond}, func(m meta.Client) meta.Client {
		rec.Client = m
		return rec
	})
	var canaries [][]byte
	for i := 0; i < 50; i++ {
		b := make([]byte, 24)
		_, _ = rand.Read(b)
		canaries = append(canaries, b)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("canary"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i, cn := range canaries {
		r := &kgo.Record{Key: cn, Value: append([]byte("v"), cn...),
			Headers: []kgo.RecordHeader{{Key: fmt.Sprint(i), Value: cn}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := pollN(t, consumeClient(t, c.addr(), "canary"), len(canaries))
	if len(got) != len(canaries) {
		t.Fatalf("consumed %d", len(got))
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.commits == 0 || rec.sent.Len() == 0 {
		t.Fatal("recorded nothing sent to meta: the test would prove nothing")
	}
	sent := rec.sent.Bytes()
	for _, cn := range canaries {
		for _, form := range [][]byte{cn, []byte(hex.EncodeToString(cn)), []byte(strings.Trim(mustJSON(cn), `"`))} {
			if bytes.Contains(sent, form) {
				t.Fatalf("canary %x reached meta", cn)
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// One object per flush interval per agent, not per partition or request:
// under a steady load over 16 partitions for D seconds, the bucket gains
// about D / flush-interval segment objects, plus at most the early-seal
// budget's (--max-early-seals-per-second) for a client stalled on the
// open segment (this one is: linger 0, five requests in flight).
func TestSegmentsPerFlushInterval(t *testing.T) {
	const flush = 100 * time.Millisecond
	const earlyRate = 4
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: flush, EarlySealsPerSecond: earlyRate})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("steady"),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Warm up: topic created, producer id assigned.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	before := countSegments(t, c)
	start := time.Now()
	var wg sync.WaitGroup
	n := 0
	for time.Since(start) < 3*time.Second {
		wg.Add(1)
		n++
		cl.Produce(ctx, &kgo.Record{Value: []byte("x")}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
		})
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	segs := countSegments(t, c) - before
	want := float64(elapsed) / float64(flush)
	t.Logf("%d records over %s in %d segments (%.1f flush intervals)", n, elapsed.Round(time.Millisecond), segs, want)
	early := earlyRate*elapsed.Seconds() + earlyRate // the budget, and its burst
	if float64(segs) < want*0.5 || float64(segs) > want*1.5+2+early {
		t.Fatalf("%d segments in %.1f flush intervals: want about one per interval, plus at most %.0f early", segs, want, early)
	}
	if segs*10 > n {
		t.Fatalf("%d segments for %d records: segments are not shared", segs, n)
	}
}

func countSegments(t *testing.T, c *testCluster) int {
	n := 0
	err := c.store.List(context.Background(), "segments/", func(objstore.ObjectInfo) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
)

// testCluster is a playground in the test process: embedded meta, a local
// bucket and one agent on a free port.
type testCluster struct {
	dir   string
	meta  *controller.Service
	store objstore.Store
	gate  *gateStore
	agent *agent.Agent
}

// gateStore holds Puts while its gate is closed, to stall the pipeline.
type gateStore struct {
	objstore.Store
	mu   sync.Mutex
	gate chan struct{}
}

func (g *gateStore) Put(ctx context.Context, key string, data []byte) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return g.Store.Put(ctx, key, data)
}

// stallStore makes uploads hang until the returned release is called.
func (c *testCluster) stallStore() (release func()) {
	ch := make(chan struct{})
	c.gate.mu.Lock()
	c.gate.gate = ch
	c.gate.mu.Unlock()
	return func() {
		c.gate.mu.Lock()
		c.gate.gate = nil
		c.gate.mu.Unlock()
		close(ch)
	}
}

func startCluster(t testing.TB, dir string, cfg agent.Config) *testCluster {
	t.Helper()
	return startClusterWith(t, dir, cfg, nil)
}

// startClusterWith lets a test put a wrapper between the agent and meta.
func startClusterWith(t testing.TB, dir string, cfg agent.Config, wrap func(meta.Client) meta.Client) *testCluster {
	t.Helper()
	return startClusterMeta(t, dir, cfg, wrap, nil)
}

// startClusterMeta also lets a test change meta's configuration.
func startClusterMeta(t testing.TB, dir string, cfg agent.Config, wrap func(meta.Client) meta.Client, mcfg func(*controller.Config)) *testCluster {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ccfg := controller.Config{Dir: filepath.Join(dir, "meta"), Logger: log}
	if mcfg != nil {
		mcfg(&ccfg)
	}
	m, err := controller.Open(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	local, err := objstore.NewLocal(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaAddr == "" {
		cfg.KafkaAddr = "127.0.0.1:0"
	}
	if cfg.DefaultPartitions == 0 {
		cfg.DefaultPartitions = 16
	}
	cfg.AutoCreateTopics = true
	cfg.Logger = log
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gate := &gateStore{Store: local}
	var mc meta.Client = m
	if wrap != nil {
		mc = wrap(m)
	}
	a, err := agent.Start(ctx, cfg, mc, gate)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCluster{dir: dir, meta: m, store: local, gate: gate, agent: a}
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *testCluster) stop(t testing.TB) {
	if c.agent == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.agent.Stop(ctx); err != nil {
		t.Errorf("stop agent: %v", err)
	}
	c.store.Close()
	c.meta.Close()
	c.agent = nil
}

func (c *testCluster) addr() string { return c.agent.AdvertisedAddr() }

// record i of a topic is fully determined by (topic, i), so the consumer
// can check every byte without keeping what was sent.
func makeRecord(topic string, i int) *kgo.Record {
	rng := rand.New(rand.NewPCG(uint64(i), uint64(len(topic))))
	var size int
	switch r := rng.IntN(100); {
	case r < 90:
		size = 10 + rng.IntN(1014) // 10 B – 1 KiB
	case r < 99:
		size = 1024 + rng.IntN(9*1024) // 1 – 10 KiB
	default:
		size = 10*1024 + rng.IntN(90*1024) // 10 – 100 KiB
	}
	v := make([]byte, size)
	for j := range v {
		v[j] = byte(rng.Uint32())
	}
	r := &kgo.Record{
		Topic: topic,
		Key:   []byte(fmt.Sprintf("%s-%07d", topic, i)),
		Value: v,
		Headers: []kgo.RecordHeader{
			{Key: "i", Value: []byte(fmt.Sprint(i))},
			{Key: "h", Value: v[:min(len(v), 7)]},
		},
	}
	return r
}

func sameRecord(a, b *kgo.Record) error {
	if string(a.Key) != string(b.Key) {
		return fmt.Errorf("key %q != %q", a.Key, b.Key)
	}
	if string(a.Value) != string(b.Value) {
		return fmt.Errorf("value of %q differs (len %d vs %d)", a.Key, len(a.Value), len(b.Value))
	}
	if len(a.Headers) != len(b.Headers) {
		return fmt.Errorf("headers of %q: %d != %d", a.Key, len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || string(a.Headers[i].Value) != string(b.Headers[i].Value) {
			return fmt.Errorf("header %d of %q differs", i, a.Key)
		}
	}
	return nil
}

// TestProduceConsumeExact writes records of mixed sizes with keys and
// headers through franz-go (acks=all, idempotent: the defaults) to three
// 16-partition topics, reads everything back and checks every key, value,
// header, and that each partition's offsets are dense and keep the
// producer's order.
func TestProduceConsumeExact(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	c := startCluster(t, t.TempDir(), agent.Config{})
	topics := []string{"alpha", "beta", "gamma"}
	perTopic := n / len(topics)

	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.AllowAutoTopicCreation(),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(20000))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, topic := range topics {
		for i := 0; i < perTopic; i++ {
			wg.Add(1)
			prod.Produce(ctx, makeRecord(topic, i), func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("produce %s: %w", r.Key, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	type tp struct {
		topic string
		part  int32
	}
	nextOffset := map[tp]int64{}
	lastIndex := map[tp]int{}
	seen := map[string]map[int]bool{}
	for _, topic := range topics {
		seen[topic] = map[int]bool{}
	}
	got := 0
	for got < perTopic*len(topics) {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out after consuming %d of %d", got, perTopic*len(topics))
		}
		fetches.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		var bad error
		fetches.EachRecord(func(r *kgo.Record) {
			if bad != nil {
				return
			}
			k := tp{r.Topic, r.Partition}
			if r.Offset != nextOffset[k] {
				bad = fmt.Errorf("%s/%d: offset %d, want %d (offsets must be dense)", r.Topic, r.Partition, r.Offset, nextOffset[k])
				return
			}
			nextOffset[k]++
			var i int
			fmt.Sscan(string(r.Headers[0].Value), &i)
			if prev, ok := lastIndex[k]; ok && i <= prev {
				bad = fmt.Errorf("%s/%d: record %d after %d: producer order broken", r.Topic, r.Partition, i, prev)
				return
			}
			lastIndex[k] = i
			if seen[r.Topic][i] {
				bad = fmt.Errorf("%s: record %d twice", r.Topic, i)
				return
			}
			seen[r.Topic][i] = true
			if err := sameRecord(makeRecord(r.Topic, i), r); err != nil {
				bad = err
			}
			got++
		})
		if bad != nil {
			t.Fatal(bad)
		}
	}
	for _, topic := range topics {
		if len(seen[topic]) != perTopic {
			t.Fatalf("%s: %d distinct records, want %d", topic, len(seen[topic]), perTopic)
		}
	}
	parts := map[string]int{}
	for k := range nextOffset {
		parts[k.topic]++
	}
	for _, topic := range topics {
		if parts[topic] != 16 {
			t.Errorf("%s: data in %d partitions, want 16", topic, parts[topic])
		}
	}
	// Nothing more arrives: no phantom records.
	extra, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if f := cons.PollFetches(extra); f.NumRecords() > 0 {
		t.Fatalf("%d records beyond those produced", f.NumRecords())
	}
}

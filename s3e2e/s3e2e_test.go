// Package s3e2e runs an agent whose bucket is an S3 endpoint, gofakes3 or
// versitygw on 127.0.0.1, reached by the real SDK through objstore.Open,
// with 503 SlowDown and 500 answers injected in front of it. A franz-go client
// produces and consumes through the agent; every acknowledged record must
// come back, once, at dense offsets.
package s3e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/internal/s3test"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
)

// flaky answers every failEvery-th request of a method with a 503
// SlowDown or a 500 (alternately) and counts requests by method.
type flaky struct {
	next      http.Handler
	failEvery int64
	mu        sync.Mutex
	counts    map[string]int64
	faults    atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counts[r.Method]++
	n := f.counts[r.Method]
	f.mu.Unlock()
	if f.failEvery > 0 && n%f.failEvery == 0 {
		_, _ = io.Copy(io.Discard, r.Body)
		code, status := "SlowDown", http.StatusServiceUnavailable
		if f.faults.Add(1)%2 == 0 {
			code, status = "InternalError", http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected</Message></Error>`, code)
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *flaky) count(method string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[method]
}

func TestProduceConsumeThroughS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("sluice-e2e"); err != nil {
		t.Fatal(err)
	}
	fl := &flaky{next: gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server(), failEvery: 3, counts: map[string]int64{}}
	srv := httptest.NewServer(fl)
	defer srv.Close()

	// Credentials from the AWS chain: static environment variables, and
	// nothing that would reach past loopback.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSLUICETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	produceConsume(t, "s3://sluice-e2e/cluster-a?region=us-east-1&path_style=true&timeout=2s&endpoint="+srv.URL, fl,
		func(t *testing.T) []string {
			objects, err := backend.ListBucket("sluice-e2e", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, o := range objects.Contents {
				keys = append(keys, o.Key)
			}
			return keys
		})
}

// TestProduceConsumeThroughVersitygw is the same run against versitygw, an
// S3 gateway used in production (internal/s3test), behind the same
// fault-injecting handler, here a reverse proxy: the agent's whole
// object-store path (PUTs of segments, ranged GETs of a cold read) on a
// real S3 implementation.
func TestProduceConsumeThroughVersitygw(t *testing.T) {
	gw := s3test.Start(t)
	gw.SetEnv(t)
	target, err := url.Parse(gw.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy keeps the client's Host header, which SigV4 signed.
	fl := &flaky{next: httputil.NewSingleHostReverseProxy(target), failEvery: 3, counts: map[string]int64{}}
	srv := httptest.NewServer(fl)
	defer srv.Close()
	produceConsume(t, "s3://"+gw.Bucket+"/cluster-a?region="+gw.Region+"&path_style=true&timeout=5s&endpoint="+srv.URL, fl,
		func(t *testing.T) []string { return gw.Objects(t, gw.Bucket) })
}

// produceConsume runs an agent on the bucket at bucketURL, whose requests
// pass through fl; listKeys lists the bucket behind the agent's back.
func produceConsume(t *testing.T, bucketURL string, fl *flaky, listKeys func(*testing.T) []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw, err := objstore.Open(ctx, bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	store := objstore.Instrument(raw)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := controller.Open(controller.Config{Dir: filepath.Join(t.TempDir(), "meta"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer store.Close()
	start := func(id string) *agent.Agent {
		a, err := agent.Start(ctx, agent.Config{
			ID: id, KafkaAddr: "127.0.0.1:0", AutoCreateTopics: true, DefaultPartitions: 4,
			FlushInterval: 20 * time.Millisecond, Logger: log,
		}, m, store)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	stop := func(a *agent.Agent) {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := a.Stop(sctx); err != nil {
			t.Errorf("stop agent: %v", err)
		}
	}

	// Produce in waves, each waiting for its acknowledgements, so that
	// there are many segments and so many PUTs, every third of which
	// the endpoint fails.
	const waves, perWave = 12, 250
	const n = waves * perWave
	a := start("producer")
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.AdvertisedAddr()), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	for w := range waves {
		var wg sync.WaitGroup
		for i := w * perWave; i < (w+1)*perWave; i++ {
			wg.Add(1)
			prod.Produce(ctx, &kgo.Record{Topic: "orders", Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, "record-%06d", i)},
				func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						failed.Add(1)
						t.Errorf("produce: %v", err)
					}
				})
		}
		wg.Wait()
	}
	prod.Close()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d produces failed", failed.Load(), n)
	}
	// Consume through a fresh agent: its cache is cold, so every byte
	// comes back from the S3 endpoint with ranged GETs.
	stop(a)
	a = start("consumer")
	defer stop(a)
	puts := fl.count(http.MethodPut)
	if puts == 0 {
		t.Fatal("no PUT reached the S3 endpoint")
	}
	// Every segment is under the URL's prefix and the hashed key layout.
	keys := listKeys(t)
	if len(keys) == 0 {
		t.Fatal("no object in the bucket")
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "cluster-a/segments/") || !strings.HasSuffix(k, ".seg") {
			t.Errorf("unexpected key %q", k)
		}
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(a.AdvertisedAddr()), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]bool{}
	next := map[int32]int64{}
	for len(seen) < n {
		fetches := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d before the deadline", len(seen), n)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			if seen[string(r.Value)] {
				t.Fatalf("%s consumed twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	t.Logf("%d records through S3: %d objects, requests at the endpoint PUT=%d GET=%d HEAD=%d, %d injected 503/500 (all retried)",
		n, len(keys), puts, fl.count(http.MethodGet), fl.count(http.MethodHead), fl.faults.Load())
}

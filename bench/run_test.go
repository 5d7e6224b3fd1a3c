package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/bench"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
)

// startAgent runs a playground in the test process (embedded meta, an
// instrumented local bucket, one agent on a free port; the pattern of
// startCluster in agent/agent_test.go) and serves its /metrics. It
// returns the Kafka address and the metrics URL.
func startAgent(t *testing.T) (addr, metricsURL string) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := controller.Open(controller.Config{Dir: filepath.Join(dir, "meta"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	local, err := objstore.NewLocal(filepath.Join(dir, "bucket"))
	if err != nil {
		t.Fatal(err)
	}
	store := objstore.Instrument(local)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, agent.Config{
		KafkaAddr:         "127.0.0.1:0",
		FlushInterval:     20 * time.Millisecond,
		AutoCreateTopics:  true,
		DefaultPartitions: 4,
		Logger:            log,
	}, m, store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		metrics.WritePrometheus(w, true)
	}))
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("stop agent: %v", err)
		}
		store.Close()
		m.Close()
	})
	return a.AdvertisedAddr(), srv.URL + "/metrics"
}

// checkSide asserts figures that hold whatever the machine's speed.
func checkSide(t *testing.T, name string, s *bench.Side) {
	t.Helper()
	if s == nil {
		t.Fatalf("%s: no figures", name)
	}
	if s.Records == 0 || s.Errors != 0 || s.FirstError != "" {
		t.Fatalf("%s: %d records, %d errors (%s)", name, s.Records, s.Errors, s.FirstError)
	}
	l := s.Latency
	if l.Count == 0 || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
		t.Fatalf("%s: percentiles not ordered: %+v", name, l)
	}
	if s.RecordsPS <= 0 || s.MiBPS <= 0 {
		t.Fatalf("%s: rates %f rec/s %f MiB/s", name, s.RecordsPS, s.MiBPS)
	}
}

func checkReports(t *testing.T, res *bench.Result) {
	t.Helper()
	var js bytes.Buffer
	if err := res.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(js.String(), "\n"); n != 1 {
		t.Fatalf("JSON is %d lines, want one", n)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if back["mode"] != string(res.Mode) {
		t.Fatalf("JSON mode %v", back["mode"])
	}
	var sum bytes.Buffer
	if err := res.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "p99.9") {
		t.Fatalf("summary:\n%s", sum.String())
	}
	t.Logf("summary:\n%s", sum.String())
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	page, _ := os.ReadFile(path)
	if n := strings.Count(string(page), "<svg"); n != 3 {
		t.Fatalf("HTML has %d charts, want 3", n)
	}
	for _, bad := range []string{"<script", "<link", "http://", "https://"} {
		// The one URL allowed is the SVG namespace and the metrics URL.
		s := strings.ReplaceAll(string(page), "http://www.w3.org/2000/svg", "")
		if res.Agent != nil {
			s = strings.ReplaceAll(s, res.Agent.URL, "")
		}
		if strings.Contains(s, bad) {
			t.Fatalf("HTML report is not self-contained: has %q", bad)
		}
	}
}

func TestRunProduceAndE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent for a few seconds")
	}
	addr, metricsURL := startAgent(t)
	ctx := context.Background()

	t.Run("produce", func(t *testing.T) {
		var progress bytes.Buffer
		cfg := bench.Config{
			Brokers: []string{addr}, Topic: "bench-produce", Partitions: 8, RecordSize: 512,
			Rate: 2000, Duration: 2 * time.Second, Producers: 2, Acks: "all", Compression: "lz4",
			Linger: 2 * time.Millisecond, AgentMetrics: metricsURL, Progress: &progress,
		}
		res, err := bench.RunProduce(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSide(t, "produce", res.Produce)
		p := res.Produce
		if p.Sent != p.Records+p.Errors+p.Aborted {
			t.Fatalf("sent %d != acked %d + errors %d + aborted %d", p.Sent, p.Records, p.Errors, p.Aborted)
		}
		if p.Latency.Count != uint64(p.Records) || p.Bytes != p.Records*512 {
			t.Fatalf("latency count %d, bytes %d for %d records", p.Latency.Count, p.Bytes, p.Records)
		}
		// 4000 records at 2000/s; pacing may lose a few to the deadline.
		if p.Records < 3000 || p.Records > 4100 {
			t.Fatalf("%d records, want about 4000", p.Records)
		}
		if res.Partitions != 8 || res.Consume != nil {
			t.Fatalf("partitions %d, consume %+v", res.Partitions, res.Consume)
		}
		var sum int64
		for _, iv := range res.Intervals {
			sum += iv.ProducedRecords
		}
		if sum != p.Records || len(res.Intervals) < 2 {
			t.Fatalf("%d intervals add up to %d records, want %d", len(res.Intervals), sum, p.Records)
		}
		if n := strings.Count(progress.String(), "\n"); n < 1 || !strings.Contains(progress.String(), "rec/s") {
			t.Fatalf("progress:\n%s", progress.String())
		}
		a := res.Agent
		if a == nil || len(a.Missing) != 0 || a.CPUSeconds <= 0 || a.ObjstoreRequests["put"] <= 0 || a.ObjstoreRequestsPerGiB <= 0 {
			t.Fatalf("agent figures: %+v", a)
		}
		checkReports(t, res)
	})

	// A warm-up leaves the first part of the run out of the latency and
	// agent figures, not out of throughput.
	t.Run("warmup", func(t *testing.T) {
		cfg := bench.Config{
			Brokers: []string{addr}, Topic: "bench-warmup", Partitions: 4, RecordSize: 512,
			Rate: 2000, Duration: 2 * time.Second, Warmup: time.Second, AgentMetrics: metricsURL,
		}
		res, err := bench.RunProduce(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSide(t, "produce", res.Produce)
		p, a := res.Produce, res.Agent
		// About half the records were sent in the warm-up.
		if c := int64(p.Latency.Count); c < p.Records/4 || c > p.Records*3/4 {
			t.Fatalf("latency counted %d of %d records, want about half", c, p.Records)
		}
		if a == nil || len(a.Missing) != 0 || a.CPUSeconds <= 0 {
			t.Fatalf("agent figures: %+v", a)
		}
		if got, want := a.GiB*(1<<30), float64(p.Latency.Count*512); got != want {
			t.Fatalf("agent figures divide by %.0f bytes, want the %.0f sent after the warm-up", got, want)
		}
		bad := cfg
		bad.Warmup = cfg.Duration
		if _, err := bench.RunProduce(ctx, bad); err == nil || !strings.Contains(err.Error(), "--warmup") {
			t.Fatalf("a warm-up as long as the run: %v, want an error naming --warmup", err)
		}
	})

	t.Run("keyed", func(t *testing.T) {
		cfg := bench.Config{
			Brokers: []string{addr}, Topic: "bench-keyed", Partitions: 2, RecordSize: 64,
			Rate: 500, Duration: time.Second, Keys: 7,
			TopicConfigs: map[string]string{"cleanup.policy": "compact", "segment.ms": "3600000"},
		}
		res, err := bench.RunProduce(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSide(t, "produce", res.Produce)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("bench-keyed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		keys := map[string]bool{}
		var n int64
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		for n < res.Produce.Records && fctx.Err() == nil {
			cl.PollFetches(fctx).EachRecord(func(r *kgo.Record) {
				keys[string(r.Key)] = true
				n++
			})
		}
		if n != res.Produce.Records || len(keys) != 7 || !keys["k0"] || !keys["k6"] {
			t.Fatalf("read %d of %d records with keys %v, want k0..k6", n, res.Produce.Records, keys)
		}
		dres, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, "bench-keyed")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := dres.On("bench-keyed", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		if got["cleanup.policy"] != "compact" || got["segment.ms"] != "3600000" {
			t.Fatalf("topic configs %v, want the run's", got)
		}
	})

	t.Run("e2e", func(t *testing.T) {
		cfg := bench.Config{
			Brokers: []string{addr}, Topic: "bench-e2e", Partitions: 4, RecordSize: 1024,
			Rate: 1000, Duration: 2 * time.Second, Consumers: 2,
		}
		res, err := bench.RunE2E(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSide(t, "produce", res.Produce)
		checkSide(t, "consume", res.Consume)
		if res.Consume.Records != res.Produce.Records || res.Consume.Bytes != res.Produce.Bytes {
			t.Fatalf("consumed %d records (%d B), acked %d (%d B)", res.Consume.Records, res.Consume.Bytes, res.Produce.Records, res.Produce.Bytes)
		}
		if res.Consume.Latency.Count != uint64(res.Consume.Records) {
			t.Fatalf("e2e latency for %d of %d records", res.Consume.Latency.Count, res.Consume.Records)
		}
		// A record cannot arrive before its write was acknowledged... by
		// much: the fetch can be answered before the ack is read.
		if res.Consume.Latency.P50 < res.Produce.Latency.P50/2 {
			t.Fatalf("e2e p50 %s below half of produce p50 %s", res.Consume.Latency.P50, res.Produce.Latency.P50)
		}
		checkReports(t, res)

		// Consume reads the topic back from the start.
		cres, err := bench.RunConsume(ctx, bench.Config{Brokers: []string{addr}, Topic: "bench-e2e", Duration: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if cres.Consume.Records != res.Produce.Records || cres.Produce != nil {
			t.Fatalf("consume read %d records, want %d", cres.Consume.Records, res.Produce.Records)
		}
	})

	t.Run("e2e group", func(t *testing.T) {
		cfg := bench.Config{
			Brokers: []string{addr}, Topic: "bench-group", Partitions: 4, RecordSize: 100,
			Rate: 1000, Duration: 2 * time.Second, Consumers: 2, Group: "bench-g",
		}
		res, err := bench.RunE2E(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSide(t, "produce", res.Produce)
		checkSide(t, "consume", res.Consume)
		if res.Consume.Records != res.Produce.Records {
			t.Fatalf("group consumed %d records, acked %d", res.Consume.Records, res.Produce.Records)
		}
	})

	t.Run("errors name flags", func(t *testing.T) {
		_, err := bench.RunConsume(ctx, bench.Config{Brokers: []string{addr}, Topic: "no-such-topic", Duration: time.Second})
		if err == nil || !strings.Contains(err.Error(), "--topic") {
			t.Fatalf("consume from a missing topic: %v", err)
		}
		_, err = bench.RunProduce(ctx, bench.Config{Brokers: []string{addr}, Topic: "x", Duration: time.Second, Acks: "2"})
		if err == nil || !strings.Contains(err.Error(), "--acks") {
			t.Fatalf("acks=2: %v", err)
		}
	})
}

// A cluster that stops acknowledging mid-run (its broker gone) ends the
// run with errors once the drain time has passed: a Produce blocked on
// the client's full buffer used to wait for ever (a playground killed by
// the kernel left `sluice bench produce --duration 15s` running for 600 s
// and counting).
func TestRunProduceClusterGone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker for a few seconds")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "gone"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := bench.Config{
		Brokers: c.ListenAddrs(), Topic: "gone", Partitions: 4, RecordSize: 512,
		Duration: 3 * time.Second, Acks: "all", Compression: "none", DrainTimeout: time.Second,
	}
	go func() {
		time.Sleep(time.Second)
		c.Close()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		res *bench.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := bench.RunProduce(ctx, cfg)
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err == nil && (r.res == nil || r.res.Produce.Errors == 0) {
			t.Fatalf("a run whose broker went away reported no error: %+v", r.res)
		}
		if r.err == nil && !strings.Contains(r.res.Produce.FirstError, "stopped acknowledging") {
			t.Errorf("the first produce error does not say what happened: %q", r.res.Produce.FirstError)
		}
		t.Logf("ended: err %v, first produce error %q", r.err, r.res.Produce.FirstError)
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatal("the run did not end within 60 s of a 3 s window after its broker went away")
	}
}

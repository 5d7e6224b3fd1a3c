package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// metricValue reads one series of the Prometheus text at addr/metrics
// (0 when absent).
func metricValue(t *testing.T, httpAddr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, l)
			}
			return n
		}
	}
	return 0
}

// TestKcatReadCommittedNoMetaCalls: librdkafka consumes with
// isolation.level=read_committed (its default, spelled out here); on a
// topic without transactions every read_committed answer comes from
// the agent's index cache and none from meta (issue 15/13,
// docs/transactions.md "Fetch").
func TestKcatReadCommittedNoMetaCalls(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	var in bytes.Buffer
	const n = 400
	for i := range n {
		fmt.Fprintf(&in, "k%d:v%d\n", i, i)
	}
	ctx := testCtx(t, time.Minute)
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "rc-kcat", "-K:", "-X", "acks=all")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	cons := exec.CommandContext(ctx, kcat, "-C", "-b", pg.bootstrap, "-t", "rc-kcat", "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%s\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, tail(pg.stderr.String(), 4096))
	}
	if got := strings.Count(string(out), "\n"); got != n {
		t.Fatalf("kcat read %d records, want %d", got, n)
	}
	cache := metricValue(t, pg.httpAddr, `sluice_index_cache_read_committed_total{answer="cache"}`)
	fromMeta := metricValue(t, pg.httpAddr, `sluice_index_cache_read_committed_total{answer="meta"}`)
	if cache < 4 || fromMeta != 0 {
		t.Fatalf("read_committed answers: %v from the cache, %v from meta; want at least one per partition from the cache and none from meta", cache, fromMeta)
	}
}

// TestReadCommittedMetaOffFetchPath runs `sluice meta` and `sluice agent`
// as processes and a franz-go consumer at the tail of 16 partitions,
// first read_uncommitted then read_committed, one record per partition
// per round. Every read_committed answer must come from the agent's
// index cache. It logs the CPU seconds the agent and meta spent in each
// phase (BENCHMARKS.md "read_committed tail fetches without meta").
func TestReadCommittedMetaOffFetchPath(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	key := createKey(t, m.lines["meta"], "rc")
	a := startAgent(t, "agent-rc", m.lines["meta"], key, "file://"+filepath.Join(dir, "bucket"), "--flush-interval", "10ms")
	ctx := testCtx(t, 2*time.Minute)
	const parts, rounds = 16, 150
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, parts, 1, nil, "rc-tail"); err != nil {
		t.Fatal(err)
	}
	cpu := func(p *proc) float64 { return metricValue(t, p.lines["http"], "process_cpu_seconds_total") }
	phase := func(name string, level kgo.IsolationLevel) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.ConsumeTopics("rc-tail"),
			kgo.FetchIsolationLevel(level), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// Wait until the consumer has its partitions' end offsets.
		cl.PollFetches(testCtx(t, 500*time.Millisecond))
		agent0, meta0 := cpu(a), cpu(m)
		start := time.Now()
		for r := range rounds {
			recs := make([]*kgo.Record, parts)
			for p := range recs {
				recs[p] = &kgo.Record{Topic: "rc-tail", Partition: int32(p), Value: fmt.Appendf(nil, "%s-%d-%d", name, r, p)}
			}
			if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for got := 0; got < parts; {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("%s round %d: %d of %d records", name, r, got, parts)
				}
				fs.EachError(func(_ string, _ int32, err error) { t.Errorf("%s: fetch: %v", name, err) })
				got += fs.NumRecords()
			}
		}
		t.Logf("%s: %d rounds of %d records in %v; agent CPU %.2f s, meta CPU %.2f s", name, rounds, parts,
			time.Since(start).Round(time.Millisecond), cpu(a)-agent0, cpu(m)-meta0)
	}
	phase("read_uncommitted", kgo.ReadUncommitted())
	phase("read_committed", kgo.ReadCommitted())
	cache := metricValue(t, a.lines["http"], `sluice_index_cache_read_committed_total{answer="cache"}`)
	fromMeta := metricValue(t, a.lines["http"], `sluice_index_cache_read_committed_total{answer="meta"}`)
	t.Logf("read_committed answers: %v from the agent's cache, %v from meta", cache, fromMeta)
	if cache < rounds || fromMeta != 0 {
		t.Fatalf("read_committed answers: %v from the cache, %v from meta; want at least %d from the cache and none from meta", cache, fromMeta, rounds)
	}
}

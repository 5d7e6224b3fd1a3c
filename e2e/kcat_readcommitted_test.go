package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/loadtest"
)

// TestLoadtest runs a short `sluice loadtest` (its own meta and two
// agents, every fault kind once) with the race-built binary: it must
// pass, and its report must list each fault it injected.
//
// The three load tests are parallel: each runs its own cluster in a
// child process at a few hundred records a second (about a third of a
// core) and mostly waits, the lifecycle one for two and a half minutes.
// They run together after the package's other tests (two at once:
// -parallel defaults to GOMAXPROCS), with the two meta outage tests,
// which mostly wait too, so the suite waits for the longest instead of
// their sum.
func TestLoadtest(t *testing.T) {
	if testing.Short() {
		t.Skip("a 25 s load test")
	}
	t.Parallel() // see above
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "loadtest", "--duration", "25s", "--fault-every", "6s", "--agents", "2", "--rate", "500")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("sluice loadtest took %v", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("sluice loadtest: %v\nreport:\n%s\nprogress (last 4 KiB):\n%s", err, stdout.String(), tail(stderr.String(), 4096))
	}
	report := stdout.String()
	if !strings.HasPrefix(report, "sluice loadtest: PASS") || !strings.Contains(report, "\nPASS: all ") {
		t.Fatalf("report does not say PASS:\n%s", report)
	}
	for _, kind := range loadtest.FaultKinds {
		// A row of the faults table: "    6.0s  kill-agent  agent-1  3.1s  ...".
		row := regexp.MustCompile(`(?m)^\s+[0-9.]+s\s+` + regexp.QuoteMeta(kind) + `\s+\S+\s+[0-9.]+s\s+\S`)
		if !row.MatchString(report) {
			t.Fatalf("report lists no %s fault:\n%s", kind, report)
		}
	}
	t.Logf("report:\n%s", report)
}

// TestLoadtestTransactions runs a short `sluice loadtest --transactions`
// (issue 15's fault test): transactional producers commit and abort
// while an agent is SIGKILLed, meta is SIGKILLed and restarted, and the
// jobs agent, which compacts every 4 s, is SIGKILLed; a
// 2 s transaction timeout, shorter than the faults, makes meta abort
// some transactions under the producers, who are fenced and start
// again. The exactly-once oracle must pass: every committed
// transaction's records visible to read_committed once, no aborted one,
// unknown outcomes all or nothing, read_uncommitted dense across data
// and markers with every acknowledged record in place, and the two
// read_committed groups given exactly the committed records.
func TestLoadtestTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s load test")
	}
	t.Parallel() // see TestLoadtest
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "loadtest", "--transactions", "--duration", "20s", "--fault-every", "6s",
		"--faults", "kill-agent,restart-meta,kill-jobs-agent", "--agents", "2", "--rate", "300", "--producers", "3", "--txn-timeout", "2s",
		"--compaction", "4s", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("sluice loadtest --transactions took %v", time.Since(start).Round(100*time.Millisecond))
	var rep loadtest.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("sluice loadtest: %v; report is not JSON (%v):\n%s\nprogress (last 4 KiB):\n%s", err, jerr, stdout.String(), tail(stderr.String(), 4096))
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	if err != nil || !rep.Pass {
		t.Fatalf("sluice loadtest: %v\nreport:\n%s\nprogress (last 4 KiB):\n%s", err, text.String(), tail(stderr.String(), 4096))
	}
	tx := rep.Txn
	if tx == nil || tx.Committed == 0 || tx.AbortedOnPurpose == 0 || tx.RecordsVisible == 0 || tx.RecordsHidden == 0 || tx.Markers == 0 {
		t.Fatalf("want committed and aborted transactions, visible and hidden records and markers:\n%s", text.String())
	}
	if want := tx.Committed*int64(tx.RecordsPerTxn) + tx.UnknownCommitted*int64(tx.RecordsPerTxn); tx.RecordsVisible != want {
		t.Fatalf("%d records visible to read_committed, want %d (committed and unknown-but-committed transactions):\n%s", tx.RecordsVisible, want, text.String())
	}
	for _, g := range rep.GroupStats {
		if !g.CaughtUp || g.Received != tx.RecordsVisible {
			t.Fatalf("read_committed group %s received %d distinct offsets, want the %d committed records:\n%s", g.Name, g.Received, tx.RecordsVisible, text.String())
		}
	}
	seen := map[string]bool{}
	for _, f := range rep.Faults {
		seen[f.Kind] = f.Err == ""
	}
	for _, kind := range []string{loadtest.FaultKillAgent, loadtest.FaultRestartMeta, loadtest.FaultKillJobsAgent} {
		if !seen[kind] {
			t.Fatalf("no successful %s fault:\n%s", kind, text.String())
		}
	}
	// Compaction takes the markers into its objects: meta's index ends
	// far smaller than the number of markers, which were entries of
	// their own before compaction.
	if lc := rep.Lifecycle; lc == nil || len(lc.Samples) == 0 || lc.JobsAtEnd.Compactions == 0 {
		t.Fatalf("no compaction in the run:\n%s", text.String())
	} else if last := lc.Samples[len(lc.Samples)-1].IndexEntries; last < 0 || last >= tx.Markers {
		t.Fatalf("meta's index holds %d entries at the end for %d markers: compaction did not take the markers:\n%s", last, tx.Markers, text.String())
	}
	t.Logf("report:\n%s", text.String())
}

// TestAgentFaultInjection: the fault API exists only on an agent started
// with --fault-injection, and there it makes the object store fail: no
// produce is acknowledged while every upload fails, and produces are
// once the faults are reset.
func TestAgentFaultInjection(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	// Two virtual clusters, so that the faulty agent alone serves its own.
	plain := startAgent(t, "agent-plain", m.lines["meta"], createKey(t, m.lines["meta"], "plain"), "file://"+filepath.Join(dir, "bucket-plain"))
	faulty := startAgent(t, "agent-faulty", m.lines["meta"], createKey(t, m.lines["meta"], "faults"), "file://"+filepath.Join(dir, "bucket"), "--fault-injection")

	post := func(httpAddr, path string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+httpAddr+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/debug/faults?op=all&error_rate=1", "/debug/faults/reset"} {
		if code, _ := post(plain.lines["http"], path); code != http.StatusNotFound {
			t.Fatalf("POST %s without --fault-injection: %d, want 404", path, code)
		}
	}

	ctx := testCtx(t, 2*time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(faulty.lines["bootstrap"]), kgo.DefaultProduceTopic("faults"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "faults"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if code, body := post(faulty.lines["http"], "/debug/faults?op=put&error_rate=1"); code != http.StatusOK || !strings.Contains(body, `"put"`) {
		t.Fatalf("POST /debug/faults: %d %s", code, body)
	}
	// A record produced now is not acknowledged while uploads fail (the
	// agent retries the upload; after the reset it may well succeed).
	acked := make(chan error, 1)
	cl.Produce(ctx, &kgo.Record{Value: []byte("during")}, func(_ *kgo.Record, err error) { acked <- err })
	select {
	case err := <-acked:
		if err == nil {
			t.Fatal("a produce was acknowledged while every upload failed")
		}
	case <-time.After(3 * time.Second):
	}
	code, body := post(faulty.lines["http"], "/debug/faults/reset")
	if code != http.StatusOK {
		t.Fatalf("POST /debug/faults/reset: %d %s", code, body)
	}
	var counts loadtest.FaultCounts
	if err := json.Unmarshal([]byte(body), &counts); err != nil || counts["put"].Injected == 0 {
		t.Fatalf("counters %s: %v; want injected put failures", body, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after the reset: %v", err)
	}
}

// TestLoadtestLifecycle runs `sluice loadtest` in lifecycle mode for 2
// minutes with every fault, the jobs agent's kill included: retention
// 20s and jobs every 4s (grace 12s), scaled down from the 10-minute
// `make loadtest-lifecycle` (60s, 10s) so that objects live through
// retention, death and grace several times within the run. The verdict
// must be PASS: nothing acknowledged at or above the final log start
// lost or duplicated, the bucket's objects and bytes and meta's index
// entries on a plateau, no orphan left, and jobs running again after the
// jobs agent's restart. Wall time about 2.5 minutes.
func TestLoadtestLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("a 2-minute load test")
	}
	t.Parallel() // see TestLoadtest
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, "loadtest", "--duration", "2m", "--retention", "20s", "--compaction", "4s",
		"--fault-every", "20s", "--agents", "2", "--rate", "500", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("sluice loadtest took %v", time.Since(start).Round(100*time.Millisecond))
	var rep loadtest.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		t.Fatalf("sluice loadtest: %v; report is not JSON (%v):\n%s\nprogress (last 8 KiB):\n%s", err, jerr, stdout.String(), tail(stderr.String(), 8192))
	}
	var text strings.Builder
	_ = rep.WriteText(&text)
	if err != nil || !rep.Pass {
		t.Fatalf("sluice loadtest: %v\nreport:\n%s\nprogress (last 8 KiB):\n%s", err, text.String(), tail(stderr.String(), 8192))
	}
	lc := rep.Lifecycle
	if lc == nil || len(lc.Plateau) != 3 || lc.Orphans == nil || !lc.Orphans.OK {
		t.Fatalf("no lifecycle verdict in a passing report:\n%s", text.String())
	}
	for _, c := range lc.Plateau {
		if !c.OK {
			t.Fatalf("plateau of %s failed in a passing report:\n%s", c.What, text.String())
		}
	}
	if lc.JobsAtEnd.Compactions == 0 || lc.JobsAtEnd.Deletes == 0 || lc.JobsAtEnd.OrphanPasses == 0 {
		t.Fatalf("jobs at the end %+v: want compaction, delete and orphan passes\n%s", lc.JobsAtEnd, text.String())
	}
	if rep.Expired == 0 {
		t.Fatalf("nothing expired in 2 minutes with 20s retention:\n%s", text.String())
	}
	seen := map[string]bool{}
	for _, f := range rep.Faults {
		seen[f.Kind] = true
		if f.Kind == loadtest.FaultKillJobsAgent && !strings.Contains(f.Detail, "jobs resumed") {
			t.Fatalf("kill-jobs-agent does not show jobs resuming: %s\n%s", f.Detail, text.String())
		}
	}
	for _, kind := range loadtest.LifecycleFaultKinds {
		if !seen[kind] {
			t.Fatalf("no %s fault injected:\n%s", kind, text.String())
		}
	}
	t.Logf("report:\n%s", text.String())
}

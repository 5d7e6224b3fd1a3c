package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sluice.dev/objstore"
)

func TestFaultHandler(t *testing.T) {
	f := objstore.NewFaulty(objstore.NewMemory(), 1)
	srv := httptest.NewServer(FaultHandler(f))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	// Every put fails, gets do not.
	c, err := postFaults(ctx, addr, "/debug/faults", map[string][]string{"op": {"put"}, "error_rate": {"1"}, "latency": {"1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if calls, injected := c.Totals(); calls != 0 || injected != 0 {
		t.Fatalf("fresh counters %d %d", calls, injected)
	}
	if err := f.Put(ctx, "k", []byte("v")); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("put under error_rate=1: %v", err)
	}
	if _, err := f.GetRange(ctx, "k", 0, -1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("get (no rule): %v", err)
	}

	// all: every operation, with the put applied before it reports failure.
	if _, err := postFaults(ctx, addr, "/debug/faults", map[string][]string{"op": {"all"}, "error_rate": {"1"}, "after_effect": {"true"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Put(ctx, "k", []byte("v")); !errors.Is(err, objstore.ErrInjected) {
		t.Fatalf("put: %v", err)
	}
	c, err = postFaults(ctx, addr, "/debug/faults/reset", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c["put"].Calls != 2 || c["put"].Injected != 2 || c["get"].Calls != 1 || c["get"].Injected != 0 {
		t.Fatalf("counters after reset: %+v", c)
	}
	if b, err := f.GetRange(ctx, "k", 0, -1); err != nil || string(b) != "v" {
		t.Fatalf("after reset: %q %v (the after-effect put must have landed)", b, err)
	}

	resp, err := http.Get(srv.URL + "/debug/faults")
	if err != nil {
		t.Fatal(err)
	}
	var got FaultCounts
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got["get"].Calls != 2 {
		t.Fatalf("GET counters: %+v %v", got, err)
	}
	resp.Body.Close()

	for _, q := range []map[string][]string{
		{"op": {"nope"}},
		{"op": {"get"}, "error_rate": {"2"}},
		{"op": {"get"}, "latency": {"soon"}},
		{"op": {"get"}, "after_effect": {"maybe"}},
	} {
		if _, err := postFaults(ctx, addr, "/debug/faults", q); err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("%v: err %v, want 400", q, err)
		}
	}
	// A GET does not change rules; only POST does.
	resp, err = http.Get(srv.URL + "/debug/faults/reset")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET reset: %s", resp.Status)
	}
}

// TestFaultAPIAbsent: against a server without the handler (an agent
// without --fault-injection) the client says what to do.
func TestFaultAPIAbsent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := postFaults(context.Background(), strings.TrimPrefix(srv.URL, "http://"), "/debug/faults/reset", nil)
	if err == nil || !strings.Contains(err.Error(), "--fault-injection") {
		t.Fatalf("err %v", err)
	}
}

func TestParseFaults(t *testing.T) {
	if k, err := ParseFaults("all", false); err != nil || len(k) != 4 {
		t.Fatalf("all: %v %v", k, err)
	}
	if k, err := ParseFaults("none", false); err != nil || len(k) != 0 {
		t.Fatalf("none: %v %v", k, err)
	}
	if k, err := ParseFaults(" kill-agent, stall-client ", false); err != nil || len(k) != 2 || k[1] != FaultStallClient {
		t.Fatalf("list: %v %v", k, err)
	}
	if _, err := ParseFaults("kill-agent,unplug", false); err == nil || !strings.Contains(err.Error(), "--faults") {
		t.Fatalf("unknown: %v", err)
	}
	if k, err := ParseFaults("all", true); err != nil || len(k) != 5 || k[0] != FaultKillJobsAgent {
		t.Fatalf("all in lifecycle mode: %v %v", k, err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Defaults
	ok.Binary = "/bin/true"
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	txn := ok
	txn.Transactions = true
	if err := txn.Validate(); err != nil {
		t.Fatalf("transactions mode with the defaults: %v", err)
	}
	txn.Compaction = 4 * time.Second
	if err := txn.Validate(); err != nil {
		t.Fatalf("transactions mode with compaction: %v", err)
	}
	for _, c := range []struct {
		edit func(*Config)
		flag string
	}{
		{func(c *Config) { c.Agents = 0 }, "--agents"},
		{func(c *Config) { c.Rate = 1 }, "--rate"},
		{func(c *Config) { c.Partitions = 0 }, "--partitions"},
		{func(c *Config) { c.FaultEvery = 0 }, "--fault-every"},
		{func(c *Config) { c.Bucket = "mem://" }, "--bucket"},
		{func(c *Config) { c.Duration = 0 }, "--duration"},
		{func(c *Config) { c.Retention = time.Millisecond }, "--retention"},
		{func(c *Config) { c.Compaction = -time.Second }, "--compaction"},
		{func(c *Config) { c.Faults = []string{FaultKillJobsAgent} }, "--compaction"},
		{func(c *Config) { c.Transactions, c.TxnRecords = true, 0 }, "--txn-records"},
		{func(c *Config) { c.Transactions, c.AbortEvery = true, -1 }, "--abort-every"},
		{func(c *Config) { c.Transactions, c.TxnTimeout = true, time.Millisecond }, "--txn-timeout"},
		{func(c *Config) { c.Transactions, c.Retention = true, time.Minute }, "--transactions"},
		{func(c *Config) { c.Transactions, c.Rate = true, 5 }, "--rate"},
	} {
		cfg := ok
		c.edit(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Fatalf("want an error naming %s, got %v", c.flag, err)
		}
	}
}

// TestLifecycleTimings pins the scaling the README states: at
// --compaction 10s, min age 10s, max wait 20s, grace 30s, orphan scan
// 20s; the grace never goes below meta's floor of 4s.
func TestLifecycleTimings(t *testing.T) {
	got := timingsFor(Config{Compaction: 10 * time.Second, Retention: time.Minute})
	want := lifecycleTimings{interval: 10 * time.Second, minAge: 10 * time.Second, maxWait: 20 * time.Second,
		grace: 30 * time.Second, orphanScan: 20 * time.Second, retentionCheck: 10 * time.Second}
	if got != want {
		t.Fatalf("10s: %+v, want %+v", got, want)
	}
	if got.orphanWait() != 60*time.Second {
		t.Fatalf("orphan wait %s, want 60s", got.orphanWait())
	}
	if g := timingsFor(Config{Compaction: time.Second}); g.grace != 4*time.Second || g.retentionCheck != 0 {
		t.Fatalf("1s: %+v", g)
	}
}

func TestHolds(t *testing.T) {
	h := holdsFor(15 * time.Second)
	if h.agentDown != 3*time.Second || h.metaDown != 2*time.Second || h.hold != 10*time.Second {
		t.Fatalf("15s: %+v", h)
	}
	h = holdsFor(6 * time.Second)
	if h.hold != 4*time.Second || h.agentDown != 3*time.Second || h.metaDown != 2*time.Second {
		t.Fatalf("6s: %+v", h)
	}
}

func TestRunBucket(t *testing.T) {
	for _, c := range []struct{ given, want string }{
		{"", "file:///run/bucket"},
		{"s3://b?region=r", "s3://b/sluice-loadtest-x?region=r"},
		{"s3://b/pre/fix?region=r&endpoint=http://h:9000", "s3://b/pre/fix/sluice-loadtest-x?region=r&endpoint=http://h:9000"},
		{"file:///data/b", "file:///data/b/sluice-loadtest-x"},
		{"/data/b", "file:///data/b/sluice-loadtest-x"},
	} {
		got, err := runBucket(c.given, "/run", "x")
		if err != nil || got != c.want {
			t.Fatalf("runBucket(%q) = %q, %v; want %q", c.given, got, err, c.want)
		}
	}
}

func TestReport(t *testing.T) {
	r := &Report{Pass: true, Seed: 7, Acked: 10, Faults: []FaultEvent{{Kind: FaultKillAgent, Target: "agent-0", AtS: 6, TookS: 3, Detail: "SIGKILL"}},
		GroupStats: []GroupStats{{Name: "g0", Received: 10, CaughtUp: true}}}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sluice loadtest: PASS", "kill-agent", "agent-0", "PASS: all 10"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, b.String())
		}
	}
	r.Pass, r.Problems, r.ProblemCount = false, []string{"lost it"}, 3
	b.Reset()
	r.WriteText(&b)
	if !strings.Contains(b.String(), "FAIL: 3 problem(s), the first 1:\n  - lost it") || !strings.Contains(b.String(), "--seed 7") {
		t.Fatalf("failed report:\n%s", b.String())
	}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["pass"] != false || bytes.Count(b.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("json %s: %v", b.String(), err)
	}
}

package e2e

// The web console (issue 16) as an operator meets it: in a real headless
// Chromium driven by chromedp against a playground with two zones of
// agents, topics and a consumer group with lag, its numbers checked
// against kadm's; and behind the admin token on `sluice meta`.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// chromiumPath finds Debian's chromium. Without it the browser test is
// skipped, except under CI=true, where it fails: CI must never pass by
// skipping the tests it exists to run (.ci/run installs chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "chromium not found on PATH; install it: apt-get install --no-install-recommends chromium"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the console's browser test must run, not skip)")
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where screenshots go: $SLUICE_CONSOLE_SCREENSHOTS
// (kept, as test artifacts) or a temporary directory.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("SLUICE_CONSOLE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	p := startProc(t, "playground", nil, []string{"playground", "--data-dir", t.TempDir(), "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--agents", "2", "--zones", "a,b", "--flush-interval", "50ms",
		"--console-sample-interval", "500ms"}, "bootstrap", "http", "console", "agent 0", "agent 1")
	consoleURL := p.lines["console"]
	if want := "http://" + p.lines["http"] + "/console/"; consoleURL != want {
		t.Fatalf("playground printed console: %q, want %q", consoleURL, want)
	}
	base := strings.TrimSuffix(consoleURL, "/console/")
	addrs := strings.Split(strings.Fields(p.lines["bootstrap"])[0], ",")
	ctx := testCtx(t, 3*time.Minute)

	// Topics, records, and a group that consumed the first 30 records of
	// "orders" and committed, then fell 20 behind.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("console-e2e,sluice_az=a"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	produce := func(topic string, n int) {
		t.Helper()
		var rs []*kgo.Record
		for i := range n {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", topic, i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce("orders", 30)
	produce("events", 7)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("console-e2e,sluice_az=b"),
		kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	for got := 0; got < 30; {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 30 records: %v", got, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	produce("orders", 20)

	// kadm's answers, to check the pages against.
	ends, err := adm.ListEndOffsets(ctx, "orders", "events")
	if err != nil {
		t.Fatal(err)
	}
	lags, err := adm.Lag(ctx, "billing")
	if err != nil {
		t.Fatal(err)
	}
	gl := lags["billing"]
	if gl.Error() != nil {
		t.Fatal(gl.Error())
	}
	if total := gl.Lag.Total(); total != 20 {
		t.Fatalf("kadm says the group lags %d records, want 20", total)
	}

	// The charts need samples, and the agents' traffic counters arrive
	// with their heartbeats: wait (bounded) until the overview shows the
	// lag, and produce and fetch throughput above zero.
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, code := get(t, base+"/console/c/default/", "")
		if code == http.StatusOK && strings.Contains(body, `id="total-lag">20<`) && !strings.Contains(body, `data-max="0"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("in 30s the overview shows no lag of 20, or a chart without data (data-max=\"0\"):\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The browser.
	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	// Every console error, warning, exception and browser log error
	// (a failed load, a refused script) of every page, read as they come.
	var mu sync.Mutex
	var consoleErrors []string
	lctx, lcancel := context.WithCancel(bctx)
	defer lcancel()
	messages := chromedp.Console(lctx)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
				mu.Unlock()
			}
		}
	}()
	shots := screenshotDir(t)
	visit := func(name, url string, out any, js string) {
		t.Helper()
		if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("footer"))); err != nil {
			t.Fatalf("%s (%s): %v", name, url, err)
		}
		if js != "" {
			raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](js))
			if err != nil {
				t.Fatalf("%s: evaluate: %v", name, err)
			}
			if err := json.Unmarshal([]byte(raw), out); err != nil {
				t.Fatalf("%s: %v in %s", name, err, raw)
			}
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s: screenshot: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, "console-"+name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The root redirects to the playground's one cluster.
	var overview struct {
		Topics, Partitions, Groups, Agents, Lag string
		Charts                                  map[string]struct {
			Points int
			Max    float64
			Lines  int
		}
		NoBytes string
	}
	visit("overview", consoleURL, &overview, `JSON.stringify({
		Topics: document.getElementById("n-topics").textContent,
		Partitions: document.getElementById("n-partitions").textContent,
		Groups: document.getElementById("n-groups").textContent,
		Agents: document.getElementById("n-agents").textContent,
		Lag: document.getElementById("total-lag").textContent,
		Charts: Object.fromEntries(Array.from(document.querySelectorAll("svg.chart")).map(s =>
			[s.id, {Points: Number(s.dataset.points), Max: Number(s.dataset.max), Lines: s.querySelectorAll("polyline.series").length}])),
		NoBytes: document.getElementById("no-record-bytes").textContent,
	})`)
	if overview.Topics != "2" || overview.Partitions != "5" || overview.Groups != "1" || overview.Agents != "2" || overview.Lag != "20" {
		t.Fatalf("overview shows %+v, want 2 topics, 5 partitions, 1 group, 2 agents, lag 20", overview)
	}
	for _, id := range []string{"chart-produce", "chart-fetch", "chart-lag"} {
		if c := overview.Charts[id]; c.Points < 2 || c.Lines != 1 || c.Max <= 0 {
			t.Fatalf("chart %s: %d points in %d lines, peak %g; want a line of at least 2 points above zero (all charts: %+v)",
				id, c.Points, c.Lines, c.Max, overview.Charts)
		}
	}
	if !strings.Contains(overview.NoBytes, "never reads a record") {
		t.Fatalf("the page does not say it never reads record bytes: %q", overview.NoBytes)
	}

	// Topics: every partition's high watermark and log start as kadm
	// sees them.
	var topics []struct {
		Topic string
		Parts []struct{ P, LogStart, HWM int64 }
	}
	visit("topics", base+"/console/c/default/topics", &topics, `JSON.stringify(Array.from(document.querySelectorAll("table.partitions")).map(t => ({
		Topic: t.dataset.topic,
		Parts: Array.from(t.querySelectorAll("tbody tr")).map(r => ({P: Number(r.dataset.partition),
			LogStart: Number(r.querySelector(".logstart").textContent), HWM: Number(r.querySelector(".hwm").textContent)}))})))`)
	seen := 0
	for _, tv := range topics {
		for _, pv := range tv.Parts {
			o, ok := ends.Lookup(tv.Topic, int32(pv.P))
			if !ok {
				t.Fatalf("console shows %s/%d, kadm does not know it", tv.Topic, pv.P)
			}
			if o.Offset != pv.HWM || pv.LogStart != 0 {
				t.Fatalf("%s/%d: console shows high watermark %d and log start %d, kadm says %d and 0", tv.Topic, pv.P, pv.HWM, pv.LogStart, o.Offset)
			}
			seen++
		}
	}
	if seen != 5 {
		t.Fatalf("console shows %d partitions (%+v), want 5", seen, topics)
	}
	retention, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`tr.topic[data-topic="orders"] td:nth-child(7)`)))
	if err != nil {
		t.Fatal(err)
	}
	if retention != "1h0m0s" {
		t.Fatalf("orders' retention shows %q, want 1h0m0s (retention.ms=3600000)", retention)
	}

	// Groups: state, members, lag per partition and in total, as kadm.
	var groups struct {
		State   string
		Members int
		Total   int64
		Rows    []struct {
			Topic string
			P     int32
			Lag   int64
		}
		ChartLines int
	}
	visit("groups", base+"/console/c/default/groups", &groups, `JSON.stringify({
		State: document.querySelector('tr.group[data-group="billing"] td:nth-child(2)').textContent,
		Members: Number(document.querySelector('tr.group[data-group="billing"] td:nth-child(4)').textContent),
		Total: Number(document.querySelector('table.lag[data-group="billing"] .total-lag').textContent),
		Rows: Array.from(document.querySelectorAll('table.lag[data-group="billing"] tr[data-partition]')).map(r =>
			({Topic: r.dataset.topic, P: Number(r.dataset.partition), Lag: Number(r.querySelector(".lag").textContent)})),
		ChartLines: document.querySelectorAll("#chart-group-lag .series").length,
	})`)
	if groups.State != "Stable" || groups.Members != 1 || groups.Total != gl.Lag.Total() || groups.ChartLines != 1 {
		t.Fatalf("groups page shows %+v, want Stable, 1 member, total lag %d, one chart line", groups, gl.Lag.Total())
	}
	if len(groups.Rows) != 3 {
		t.Fatalf("lag rows %+v, want the 3 partitions of orders", groups.Rows)
	}
	for _, r := range groups.Rows {
		ml, ok := gl.Lag.Lookup(r.Topic, r.P)
		if !ok || ml.Lag != r.Lag {
			t.Fatalf("%s/%d: console shows lag %d, kadm says %+v", r.Topic, r.P, r.Lag, ml)
		}
	}

	// Agents: both, in their zones, healthy.
	var agents []struct{ ID, Zone, Health string }
	visit("agents", base+"/console/c/default/agents", &agents, `JSON.stringify(Array.from(document.querySelectorAll("tr.agent")).map(r =>
		({ID: r.dataset.agent, Zone: r.dataset.zone, Health: r.querySelector(".health").textContent})))`)
	if len(agents) != 2 || agents[0].Zone != "a" || agents[1].Zone != "b" || agents[0].Health != "healthy" || agents[1].Health != "healthy" {
		t.Fatalf("agents page shows %+v, want two healthy agents in zones a and b", agents)
	}

	visit("jobs", base+"/console/c/default/jobs", nil, "")

	// Cost: the agents' PUTs so far, re-priced in the page as a price is
	// typed.
	var puts int64
	visit("cost", base+"/console/c/default/cost", &puts, `document.getElementById("puts").dataset.count`)
	if puts < 1 {
		t.Fatalf("cost page counts %d PUTs after produce; want at least one upload", puts)
	}
	if err := chromedp.Do(bctx, chromedp.SetValue(chromedp.CSS("#price-put"), "1000")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.getElementById("price-put").dispatchEvent(new Event("input", {bubbles: true}))`)); err != nil {
		t.Fatal(err)
	}
	repriced, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#cost-puts")))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("$%d.00", puts); repriced != want {
		t.Fatalf("at $1000 per 1000 PUTs the page shows %q for %d PUTs, want %s", repriced, puts, want)
	}

	// Messages arrive asynchronously: a last round trip flushes what the
	// pages wrote before the reader stops.
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatal(err)
	}
	lcancel()
	<-readDone
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Fatalf("the browser logged errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
	t.Logf("screenshots in %s", shots)
}

// get fetches url with an optional bearer token.
func get(t *testing.T, url, token string) (string, int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

// TestConsoleNeedsAdminToken: `sluice meta` serves the console only to
// requests carrying its admin token; with it, the open cluster and its
// agent show.
func TestConsoleNeedsAdminToken(t *testing.T) {
	m := startMeta(t, "meta", t.TempDir(), "127.0.0.1:0")
	consoleURL := m.lines["console"]
	if consoleURL != "http://"+m.lines["http"]+"/console/" {
		t.Fatalf("meta printed console: %q", consoleURL)
	}
	key := createKey(t, m.lines["meta"], "acme")
	startAgent(t, "agent-acme", m.lines["meta"], key, "file://"+t.TempDir(), "--zone", "z1")

	for _, tc := range []struct{ name, url, token string }{
		{"no token", consoleURL, ""},
		{"wrong token", consoleURL, "not-" + adminToken},
		{"no token, a cluster page", consoleURL + "c/acme/agents", ""},
	} {
		body, code := get(t, tc.url, tc.token)
		if code != http.StatusUnauthorized || !strings.Contains(body, "admin token") {
			t.Fatalf("%s: %d %q, want 401 naming the admin token", tc.name, code, body)
		}
	}
	// Basic authentication (what a browser prompts for) with the token
	// as the password.
	req, _ := http.NewRequest(http.MethodGet, consoleURL+"c/acme/agents", nil)
	req.SetBasicAuth("ops", adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `data-agent="agent-acme" data-zone="z1"`) {
		t.Fatalf("with the token as Basic password: %d\n%s", resp.StatusCode, b)
	}
	// A cluster that is not open is not found, and is not opened.
	if _, code := get(t, consoleURL+"c/nosuch/", adminToken); code != http.StatusNotFound {
		t.Fatalf("an unknown cluster answers %d, want 404", code)
	}
	body, code := get(t, consoleURL, adminToken)
	if code != http.StatusOK {
		t.Fatalf("index with token: %d %s", code, body)
	}
	// One cluster open: the index redirects to it (the client followed).
	if !strings.Contains(body, `id="cluster-name">acme<`) {
		t.Fatalf("index with token does not lead to cluster acme:\n%s", body)
	}
}

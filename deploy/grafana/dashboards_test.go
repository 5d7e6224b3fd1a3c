package grafana

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *json.RawMessage `json:"datasource"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// query is one PromQL expression of a dashboard and where it sits.
type query struct {
	where string
	expr  string
}

// loadDashboard reads a dashboard, checks what Grafana needs to import
// it, and returns its queries (panel targets and variable queries).
func loadDashboard(t *testing.T, file string) []query {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s is not valid JSON: %v", file, err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("%s: uid %q, title %q, schemaVersion %d: Grafana needs a uid and title; schemaVersion 36+ for datasource references by uid", file, d.UID, d.Title, d.SchemaVersion)
	}
	hasDS := false
	var qs []query
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" {
			hasDS = true
		}
		if v.Type != "query" {
			continue
		}
		// label_values(METRIC, LABEL) is Grafana's, not PromQL: check the
		// metric as the selector it is.
		m := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_]+)\)$`).FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(metric, label)", file, v.Name, v.Definition)
			continue
		}
		qs = append(qs, query{where: file + " variable " + v.Name, expr: m[1]})
	}
	if !hasDS {
		t.Errorf("%s: no datasource variable: the dashboard must not hard-code a data source", file)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d used twice", file, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || !strings.Contains(string(*p.Datasource), "${datasource}") {
				t.Errorf("%s: panel %q does not use the datasource variable", file, p.Title)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", file, p.Title)
			}
			for _, tg := range p.Targets {
				qs = append(qs, query{where: fmt.Sprintf("%s panel %q %s", file, p.Title, tg.RefID), expr: tg.Expr})
			}
		}
	}
	walk(d.Panels)
	return qs
}

// grafanaVars are Grafana's built-in range variables; PromQL sees a
// duration in their place.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// selector is one vector selector of a parsed expression.
type selector struct {
	name     string
	matchers []*labels.Matcher // without __name__ and without Grafana variables
}

// selectors parses expr as PromQL (Prometheus' own parser) and returns
// the series it selects.
func selectors(expr string) ([]selector, error) {
	// Default options: stable PromQL only, no experimental functions,
	// so every panel works on a stock Prometheus.
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return nil, err
	}
	var out []selector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		s := selector{name: vs.Name}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" || strings.Contains(m.Value, "$") {
				continue
			}
			s.matchers = append(s.matchers, m)
		}
		out = append(out, s)
		return nil
	})
	return out, nil
}

// sample is one line of Prometheus text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseExposition reads /metrics. A line it cannot read fails the test:
// Prometheus would refuse it too.
func parseExposition(t *testing.T, text string) map[string][]sample {
	t.Helper()
	out := map[string][]sample{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("/metrics line %q is not Prometheus text format", line)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: value: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, p := range labelPair.FindAllStringSubmatch(m[3], -1) {
			s.labels[p[1]] = p[2]
		}
		out[s.name] = append(out[s.name], s)
	}
	return out
}

// missing reports what of sel the exposition lacks: the metric, or any
// series matching its label matchers. Histograms are VictoriaMetrics'
// (NewHistogram): NAME_bucket{vmrange="..."}, NAME_sum and NAME_count,
// written once the histogram has an observation.
func missing(sel selector, exp map[string][]sample) string {
	ss, ok := exp[sel.name]
	if !ok {
		return "no metric " + sel.name
	}
	if strings.HasSuffix(sel.name, "_bucket") && !slices.ContainsFunc(ss, func(s sample) bool { return s.labels["vmrange"] != "" }) {
		return sel.name + " has no vmrange buckets"
	}
	for _, s := range ss {
		ok := true
		for _, m := range sel.matchers {
			if !m.Matches(s.labels[m.Name]) {
				ok = false
				break
			}
		}
		if ok {
			return ""
		}
	}
	var ms []string
	for _, m := range sel.matchers {
		ms = append(ms, m.String())
	}
	return fmt.Sprintf("no series of %s matches {%s}", sel.name, strings.Join(ms, ","))
}

// checkAgainst lists every problem of the queries against exp.
func checkAgainst(qs []query, exp map[string][]sample) []string {
	var problems []string
	for _, q := range qs {
		sels, err := selectors(q.expr)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q does not parse as PromQL: %v", q.where, q.expr, err))
			continue
		}
		if len(sels) == 0 {
			problems = append(problems, fmt.Sprintf("%s: %q selects no metric", q.where, q.expr))
		}
		for _, s := range sels {
			if p := missing(s, exp); p != "" {
				problems = append(problems, fmt.Sprintf("%s: %s", q.where, p))
			}
		}
	}
	return problems
}

// TestCheckerCatchesMistakes feeds the checker a wrong name, a wrong label
// value, a histogram without buckets and a broken expression: the
// dashboard test below is only as good as this.
func TestCheckerCatchesMistakes(t *testing.T) {
	exp := parseExposition(t, strings.Join([]string{
		`# TYPE sluice_produce_bytes_total counter`,
		`sluice_produce_bytes_total 10`,
		`sluice_segments_sealed_by_total{reason="interval"} 3`,
		`sluice_segment_bytes_bucket{vmrange="1.000e+03...1.136e+03"} 2`,
		`sluice_segment_bytes_sum 2100`,
		`sluice_segment_bytes_count 2`,
		`sluice_meta_commit_duration_seconds_sum 1`,
	}, "\n"))
	good := []query{
		{"ok rate", `sum by (instance) (rate(sluice_produce_bytes_total{instance=~"$instance"}[$__rate_interval]))`},
		{"ok label", `rate(sluice_segments_sealed_by_total{reason="interval"}[5m])`},
		{"ok histogram", `histogram_quantile(0.99, sum by (vmrange) (rate(sluice_segment_bytes_bucket[5m])))`},
	}
	if p := checkAgainst(good, exp); len(p) > 0 {
		t.Fatalf("good queries flagged: %v", p)
	}
	for _, bad := range []query{
		{"typo", `rate(sluice_produce_byte_total[5m])`},
		{"label value", `rate(sluice_segments_sealed_by_total{reason="intervall"}[5m])`},
		{"histogram without buckets", `histogram_quantile(0.99, sum by (vmrange) (rate(sluice_meta_commit_duration_seconds_bucket[5m])))`},
		{"syntax", `sum by (instance (rate(sluice_produce_bytes_total[5m]))`},
		{"no metric", `vector(1)`},
	} {
		if p := checkAgainst([]query{bad}, exp); len(p) == 0 {
			t.Errorf("%s: %q passed the checker", bad.where, bad.expr)
		}
	}
}

// proc is a sluice process started by the test.
type proc struct {
	cmd    *exec.Cmd
	lines  map[string]string
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs bin with args and waits (at most a minute) for the "key:
// value" lines it prints on stdout once listening.
func start(t *testing.T, bin string, env []string, args []string, want ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, lines: map[string]string{}, stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	deadline := time.After(time.Minute)
	for {
		ready := true
		for _, w := range want {
			if _, ok := p.lines[w]; !ok {
				ready = false
			}
		}
		if ready {
			go func() {
				for range lines {
				}
			}()
			return p
		}
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before printing %v\n%s", args[0], want, p.stderr.String())
			}
			if k, v, ok := strings.Cut(l, ": "); ok {
				p.lines[k] = v
			}
		case <-deadline:
			t.Fatalf("%s did not print %v within a minute\n%s", args[0], want, p.stderr.String())
		}
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// TestDashboardMetricsExist runs meta and an agent as separate processes
// (so each has its own /metrics), drives produce and fetch through the
// agent with franz-go, then checks every query of agent.json against the
// agent's /metrics and every query of meta.json against meta's.
func TestDashboardMetricsExist(t *testing.T) {
	agentQs := loadDashboard(t, "agent.json")
	metaQs := loadDashboard(t, "meta.json")
	if len(agentQs) < 20 || len(metaQs) < 10 {
		t.Fatalf("%d agent and %d meta queries: fewer than the dashboards hold", len(agentQs), len(metaQs))
	}
	if testing.Short() {
		t.Skip("starts meta and an agent")
	}

	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	const token = "grafana-test-admin-token"
	meta := start(t, bin, []string{"SLUICE_ADMIN_TOKEN=" + token},
		[]string{"meta", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "meta"), "--http-addr", "127.0.0.1:0"}, "meta", "http")
	keyCmd := exec.Command(bin, "meta", "keys", "create", "--meta-addr", meta.lines["meta"], "--cluster", "dashboards")
	keyCmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+token)
	keyOut, err := keyCmd.Output()
	if err != nil {
		t.Fatalf("sluice meta keys create: %v", err)
	}
	key := strings.TrimSpace(string(keyOut))
	// The zone comes from a file, as the Helm chart's init container
	// hands it over (--zone-file), trailing newline included.
	zoneFile := filepath.Join(dir, "zone")
	if err := os.WriteFile(zoneFile, []byte("zone-a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agent := start(t, bin, []string{"SLUICE_AGENT_KEY=" + key},
		[]string{"agent", "--meta-addr", meta.lines["meta"], "--bucket", "file://" + filepath.Join(dir, "bucket"),
			"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--flush-interval", "20ms", "--zone-file", zoneFile},
		"bootstrap", "http")

	// Traffic: a zone-aware client produces 200 records (acks=all) and
	// reads them back, so the produce, segment, commit, fetch and cache
	// histograms have observations.
	const topic, n = "dashboards", 200
	cl, err := kgo.NewClient(kgo.SeedBrokers(agent.lines["bootstrap"]), kgo.ClientID("sluice_az=zone-a"),
		kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "record %d", i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		got += fs.NumRecords()
	}

	// Counters and gauges are on /metrics from the start; histograms
	// once observed, and the index and jobs gauges refresh within a
	// second: poll until nothing is missing, for at most 30 s.
	var problems []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		problems = append(checkAgainst(agentQs, parseExposition(t, scrape(t, agent.lines["http"]))),
			checkAgainst(metaQs, parseExposition(t, scrape(t, meta.lines["http"])))...)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}

	// The values the control-plane dashboard's stat panels show, and the
	// zone the agent read from --zone-file with the client (still
	// connected, sluice_az=zone-a) counted as served in its zone.
	metaExp := parseExposition(t, scrape(t, meta.lines["http"]))
	for name, want := range map[string]float64{
		"sluice_meta_leader": 1, "sluice_meta_store_postgres": 0, "sluice_meta_clusters_open": 1, "sluice_meta_agents_registered": 1,
	} {
		if ss := metaExp[name]; len(ss) != 1 || ss[0].value != want {
			t.Errorf("meta %s = %v, want one sample of %v", name, ss, want)
		}
	}
	agentExp := parseExposition(t, scrape(t, agent.lines["http"]))
	if ss := agentExp["sluice_agent_zone_client_connections"]; !slices.ContainsFunc(ss, func(s sample) bool {
		return s.labels["zone"] == "zone-a" && s.labels["zone_match"] == "true" && s.value >= 1
	}) {
		t.Errorf("agent zone series %v: want zone=\"zone-a\" (from --zone-file) with the client counted as zone_match=\"true\"", ss)
	}
	t.Logf("checked %d agent and %d meta queries", len(agentQs), len(metaQs))
}

package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
)

// openService opens a real controller over a temporary directory: the
// console's pages against the state machine they will meet in meta.
func openService(t *testing.T) *controller.Service {
	t.Helper()
	s, err := controller.Open(controller.Config{Dir: filepath.Join(t.TempDir(), "meta"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func oneCluster(s *controller.Service) Source {
	return Services{
		Names: func() []string { return []string{"acme"} },
		Get: func(name string) *controller.Service {
			if name == "acme" {
				return s
			}
			return nil
		},
	}
}

func fetch(t *testing.T, h http.Handler, path string, set func(*http.Request)) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if set != nil {
		set(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestConsoleNeedsTheAdminToken(t *testing.T) {
	s := openService(t)
	h := New(Config{Source: oneCluster(s), Token: "sesame"}).Handler()
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"none", nil},
		{"wrong bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer sesam") }},
		{"wrong basic", func(r *http.Request) { r.SetBasicAuth("ops", "open") }},
		{"token as the basic user", func(r *http.Request) { r.SetBasicAuth("sesame", "") }},
	} {
		code, body := fetch(t, h, "/console/c/acme/topics", tc.set)
		if code != http.StatusUnauthorized || !strings.Contains(body, "admin token") {
			t.Fatalf("%s: %d %q, want 401 naming the admin token", tc.name, code, body)
		}
	}
	if code, _ := fetch(t, h, "/console/c/acme/topics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer sesame") }); code != http.StatusOK {
		t.Fatalf("with the token: %d, want 200", code)
	}
	if code, _ := fetch(t, h, "/console/static/console.js", func(r *http.Request) { r.SetBasicAuth("x", "sesame") }); code != http.StatusOK {
		t.Fatalf("the script with the token: %d, want 200", code)
	}
	// A meta without an admin token serves no console at all.
	h = New(Config{Source: oneCluster(s)}).Handler()
	code, body := fetch(t, h, "/console/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") })
	if code != http.StatusUnauthorized || !strings.Contains(body, "--admin-token") {
		t.Fatalf("no token configured: %d %q, want 401 naming --admin-token", code, body)
	}
}

func TestConsolePagesShowTopicsAndEscapeNames(t *testing.T) {
	s := openService(t)
	ctx := context.Background()
	res, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: "orders", Partitions: 2, Configs: map[string]string{"retention.ms": "-1"}},
		{Name: "plain", Partitions: 1}})
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatal(err, res)
	}
	if _, err := s.RegisterAgent(ctx, meta.AgentInfo{ID: "a<script>1", Zone: "z1", Addr: "127.0.0.1:1",
		Stats: meta.AgentStats{ObjectPuts: 2000, ObjectGets: 10_000}}); err != nil {
		t.Fatal(err)
	}
	c := New(Config{Source: oneCluster(s), Open: true})
	c.SampleNow(ctx)
	h := c.Handler()
	code, body := fetch(t, h, "/console/c/acme/topics", nil)
	// orders keeps its records forever; plain has the cluster's default
	// (seven days, no size limit).
	if code != http.StatusOK || !strings.Contains(body, `data-topic="orders"`) || !strings.Contains(body, "<td>forever</td>") ||
		!strings.Contains(body, "<td>168h0m0s (default)</td><td>no limit (default)</td>") {
		t.Fatalf("topics: %d\n%s", code, body)
	}
	code, body = fetch(t, h, "/console/c/acme/agents", nil)
	if code != http.StatusOK || strings.Contains(body, "a<script>1") || !strings.Contains(body, "a&lt;script&gt;1") {
		t.Fatalf("agents: %d, the agent id must show escaped:\n%s", code, body)
	}
	// 2000 PUTs at $0.005 per 1000 and 10000 GETs at $0.0004 per 1000;
	// prices from the query.
	code, body = fetch(t, h, "/console/c/acme/cost?put=1&get=0.5", nil)
	if code != http.StatusOK || !strings.Contains(body, `id="cost-puts">$2.00<`) || !strings.Contains(body, `id="cost-gets">$5.00<`) {
		t.Fatalf("cost: %d\n%s", code, body)
	}
	if code, _ := fetch(t, h, "/console/c/other/", nil); code != http.StatusNotFound {
		t.Fatalf("a cluster that is not open: %d, want 404", code)
	}
}

func TestRingKeepsTheNewestSamplesInOrder(t *testing.T) {
	h := &history{ring: make([]sample, 0, 5)}
	t0 := time.Unix(1000, 0)
	for i := range 12 {
		h.add(sample{At: t0.Add(time.Duration(i) * time.Second), Lag: int64(i)})
	}
	got := h.samples(time.Time{})
	if len(got) != 5 || cap(h.ring) != 5 {
		t.Fatalf("%d samples in a ring of %d, want 5", len(got), cap(h.ring))
	}
	for i, s := range got {
		if s.Lag != int64(7+i) {
			t.Fatalf("sample %d has lag %d, want %d (oldest first, newest kept)", i, s.Lag, 7+i)
		}
	}
	if got := h.samples(t0.Add(9 * time.Second)); len(got) != 2 {
		t.Fatalf("%d samples after 9s, want 2", len(got))
	}
}

func TestAccountingCountsRestartsAndDepartedAgents(t *testing.T) {
	h := &history{}
	st := func(id string, puts, produced int64) controller.AgentStatus {
		return controller.AgentStatus{Info: meta.AgentInfo{ID: id, Stats: meta.AgentStats{ObjectPuts: puts, ProducedBytes: produced}}}
	}
	now := time.Unix(2000, 0)
	// First sight: counted in full for the cost, not for the rate.
	if p, _ := h.accountLocked([]controller.AgentStatus{st("a", 10, 100)}, now); p != 0 {
		t.Fatalf("first report gave %d produced bytes to the rate, want 0", p)
	}
	if p, _ := h.accountLocked([]controller.AgentStatus{st("a", 15, 150), st("b", 3, 30)}, now); p != 50 {
		t.Fatalf("produced %d, want 50 (a grew by 50; b is new)", p)
	}
	// a restarted (its counters went down): it grew by what it reports.
	if p, _ := h.accountLocked([]controller.AgentStatus{st("a", 4, 40), st("b", 3, 30)}, now); p != 40 {
		t.Fatalf("produced %d after a restart, want 40", p)
	}
	// b left; what it did stays in the totals.
	h.accountLocked([]controller.AgentStatus{st("a", 6, 60)}, now)
	if h.totals.ObjectPuts != 15+4+2+3 {
		t.Fatalf("totals count %d PUTs, want %d", h.totals.ObjectPuts, 15+4+2+3)
	}
	// totalsWith folds in without changing h.
	if got := h.totalsWith([]controller.AgentStatus{st("a", 10, 60)}).ObjectPuts; got != 24+4 || h.totals.ObjectPuts != 24 {
		t.Fatalf("totalsWith %d (want 28), totals %d (want 24)", got, h.totals.ObjectPuts)
	}
}

func TestChartHasItsPointsAndEscapesNames(t *testing.T) {
	now := time.Unix(5000, 0)
	ss := []series{{Name: `<b>"x"`, Points: []point{{now.Add(-2 * time.Second), 1}, {now.Add(-time.Second), 3}, {now, 2}}}, {Name: "y"}}
	svg := string(chart("lag", "records", time.Hour, now, ss, fmtCount))
	if !strings.Contains(svg, `data-points="3"`) || strings.Count(svg, "<polyline") != 1 || strings.Contains(svg, `<b>`) {
		t.Fatalf("chart:\n%s", svg)
	}
	empty := string(chart("lag", "records", time.Hour, now, nil, fmtCount))
	if !strings.Contains(empty, `data-points="0"`) || !strings.Contains(empty, "collecting samples") {
		t.Fatalf("empty chart:\n%s", empty)
	}
}

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// AgentFigures are the agent's costs over the run, from two scrapes of its
// /metrics. On the same machine as the benchmark they cover only the
// agent process; in a test that runs the agent in process they include
// the client too.
type AgentFigures struct {
	URL        string  `json:"url"`
	Basis      string  `json:"basis"` // "produced" or "consumed": the GiB the figures divide by
	GiB        float64 `json:"gib"`
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPerGiB  float64 `json:"cpu_seconds_per_gib"`
	// Objstore requests by op ("put", "get", ...), and their sum, per GiB.
	ObjstoreRequests       map[string]float64 `json:"objstore_requests"`
	ObjstoreRequestsPerGiB float64            `json:"objstore_requests_per_gib"`
	// Missing lists series the endpoint did not expose (not a Sluice agent,
	// or no process metrics).
	Missing []string `json:"missing,omitempty"`
}

const (
	cpuSeries      = "process_cpu_seconds_total"
	objstoreSeries = "sluice_objstore_requests_total"
)

func agentFigures(before, after map[string]float64, url, basis string, bytes int64) *AgentFigures {
	f := &AgentFigures{URL: url, Basis: basis, GiB: float64(bytes) / (1 << 30), ObjstoreRequests: map[string]float64{}}
	if _, ok := after[cpuSeries]; ok {
		f.CPUSeconds = after[cpuSeries] - before[cpuSeries]
	} else {
		f.Missing = append(f.Missing, cpuSeries)
	}
	var total float64
	for k, v := range after {
		name, labels, _ := strings.Cut(k, "{")
		if name != objstoreSeries {
			continue
		}
		op := labelValue(labels, "op")
		d := v - before[k]
		f.ObjstoreRequests[op] += d
		total += d
	}
	if len(f.ObjstoreRequests) == 0 {
		f.Missing = append(f.Missing, objstoreSeries)
	}
	if f.GiB > 0 {
		f.CPUPerGiB = f.CPUSeconds / f.GiB
		f.ObjstoreRequestsPerGiB = total / f.GiB
	}
	return f
}

// labelValue reads one label from `a="x",b="y"}`.
func labelValue(labels, name string) string {
	for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == name {
			if s, err := strconv.Unquote(strings.TrimSpace(v)); err == nil {
				return s
			}
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// scrape reads a Prometheus text exposition into series → value. Only
// the series the figures need are kept.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--agent-metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("--agent-metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--agent-metrics %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if !strings.HasPrefix(line, cpuSeries) && !strings.HasPrefix(line, objstoreSeries) {
			continue
		}
		// name{labels} value [timestamp]; label values may hold spaces.
		end := strings.LastIndexByte(line, '}') + 1
		if end == 0 {
			end = strings.IndexByte(line, ' ')
		}
		if end <= 0 {
			continue
		}
		fields := strings.Fields(line[end:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[line[:end]] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--agent-metrics: %w", err)
	}
	return out, nil
}

// ops returns the op names in a stable order.
func (f *AgentFigures) ops() []string {
	ops := make([]string, 0, len(f.ObjstoreRequests))
	for op := range f.ObjstoreRequests {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

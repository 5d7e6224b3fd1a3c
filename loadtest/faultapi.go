package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sluice.dev/objstore"
)

// The runtime fault API of an agent started with --fault-injection, on
// its --http-addr:
//
//	POST /debug/faults?op=put|get|head|delete|list|all&error_rate=0.3&latency=100ms[&after_effect=true]
//	    sets the rule of the named operations (objstore.Rule: FailRate,
//	    Latency, AfterEffect); parameters left out are zero
//	POST /debug/faults/reset
//	    clears every rule
//	GET  /debug/faults
//	    reads the counters
//
// Each answers with the counters, calls and injected failures per
// operation since the agent started, as JSON. Without --fault-injection
// none of these paths exists (404).

// FaultCounts are an agent's Faulty counters by operation name.
type FaultCounts map[string]struct {
	Calls    int64 `json:"calls"`
	Injected int64 `json:"injected"`
}

var storeOps = []objstore.Op{objstore.OpPut, objstore.OpGet, objstore.OpHead, objstore.OpDelete, objstore.OpList}

// Totals sums calls and injected failures over every operation.
func (c FaultCounts) Totals() (calls, injected int64) {
	for _, v := range c {
		calls += v.Calls
		injected += v.Injected
	}
	return calls, injected
}

// FaultHandler serves the fault API over f. The agent mounts it on
// /debug/faults and /debug/faults/ when --fault-injection is set.
func FaultHandler(f *objstore.Faulty) http.Handler {
	mux := http.NewServeMux()
	counts := func(w http.ResponseWriter) {
		out := FaultCounts{}
		for _, op := range storeOps {
			v := out[op.String()]
			v.Calls, v.Injected = f.Calls(op), f.Injected(op)
			out[op.String()] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}
	mux.HandleFunc("GET /debug/faults", func(w http.ResponseWriter, _ *http.Request) { counts(w) })
	mux.HandleFunc("POST /debug/faults/reset", func(w http.ResponseWriter, _ *http.Request) {
		f.Reset()
		counts(w)
	})
	mux.HandleFunc("POST /debug/faults", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var ops []objstore.Op
		switch name := q.Get("op"); name {
		case "all":
			ops = storeOps
		default:
			for _, op := range storeOps {
				if op.String() == name {
					ops = []objstore.Op{op}
				}
			}
			if ops == nil {
				http.Error(w, fmt.Sprintf("op=%q: want put, get, head, delete, list or all", name), http.StatusBadRequest)
				return
			}
		}
		var rule objstore.Rule
		if v := q.Get("error_rate"); v != "" {
			rate, err := strconv.ParseFloat(v, 64)
			if err != nil || rate < 0 || rate > 1 {
				http.Error(w, fmt.Sprintf("error_rate=%q: want a number from 0 to 1", v), http.StatusBadRequest)
				return
			}
			rule.FailRate = rate
		}
		if v := q.Get("latency"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || d > time.Minute {
				http.Error(w, fmt.Sprintf("latency=%q: want a duration from 0 to 1m, like 100ms", v), http.StatusBadRequest)
				return
			}
			rule.Latency = d
		}
		if v := q.Get("after_effect"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				http.Error(w, fmt.Sprintf("after_effect=%q: want true or false", v), http.StatusBadRequest)
				return
			}
			rule.AfterEffect = b
		}
		for _, op := range ops {
			f.SetRule(op, rule)
		}
		counts(w)
	})
	return mux
}

// postFaults calls the fault API of the agent serving HTTP on httpAddr.
func postFaults(ctx context.Context, httpAddr, path string, q url.Values) (FaultCounts, error) {
	u := "http://" + httpAddr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = " (is the agent running with --fault-injection?)"
		}
		return nil, fmt.Errorf("POST %s: %s: %s%s", u, resp.Status, strings.TrimSpace(string(body)), hint)
	}
	var c FaultCounts
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("POST %s: %w", u, err)
	}
	return c, nil
}

package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"sluice.dev/meta/controller"
)

// healthy answers /healthz: true between startup and shutdown.
var healthy atomic.Bool

// healthFn, when set, must also answer true for /healthz to be 200 (a
// meta replica is healthy while it leads; a standby answers 503).
var healthFn atomic.Pointer[func() bool]

func isHealthy() bool {
	if !healthy.Load() {
		return false
	}
	if f := healthFn.Load(); f != nil {
		return (*f)()
	}
	return true
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }

// jobsFn, when set (meta and the playground), reports the objects and
// background jobs of every cluster this process serves: /jobs, and the
// detail of /healthz?detail=1.
var jobsFn atomic.Pointer[func() map[string]controller.JobsStats]

// ageFn, when set, reports per cluster how the bytes older than 10
// minutes lie (/jobs?age=1: compaction's target, BENCHMARKS.md).
var ageFn atomic.Pointer[func(time.Duration) map[string]controller.AgeReport]

// jobsView is the JSON shape of one cluster's jobs.
type jobsView struct {
	LiveObjects             int     `json:"live_objects"`
	LiveBytes               int64   `json:"live_bytes"`
	DeadObjects             int     `json:"dead_objects_awaiting_gc"`
	DeadBytes               int64   `json:"dead_bytes_awaiting_gc"`
	AwaitingCompaction      int     `json:"objects_awaiting_compaction"`
	AwaitingCompactionBytes int64   `json:"bytes_awaiting_compaction"`
	CompactionLagSeconds    float64 `json:"compaction_lag_seconds"`
	LeasedJobs              int     `json:"leased_jobs"`
	IndexEntries            int     `json:"index_entries"`
}

func jobsViews() map[string]jobsView {
	f := jobsFn.Load()
	if f == nil {
		return nil
	}
	out := map[string]jobsView{}
	for name, s := range (*f)() {
		out[name] = jobsView{
			LiveObjects: s.LiveObjects, LiveBytes: s.LiveBytes, DeadObjects: s.DeadObjects, DeadBytes: s.DeadBytes,
			AwaitingCompaction: s.AwaitingCompaction, AwaitingCompactionBytes: s.AwaitingCompactionBytes,
			CompactionLagSeconds: s.CompactionLag.Seconds(), LeasedJobs: s.Leased, IndexEntries: s.IndexEntries,
		}
	}
	return out
}

// serveJobs answers /jobs: the jobs' state per cluster, as JSON; with
// ?age=DURATION also how the bytes older than that lie (it walks the
// whole index).
func serveJobs(w http.ResponseWriter, r *http.Request) {
	v := jobsViews()
	if v == nil {
		http.Error(w, "no control plane in this process", http.StatusNotFound)
		return
	}
	out := map[string]any{"clusters": v}
	if a := r.URL.Query().Get("age"); a != "" {
		age, err := time.ParseDuration(a)
		if err != nil || age <= 0 {
			http.Error(w, "age: want a positive duration like 10m", http.StatusBadRequest)
			return
		}
		if f := ageFn.Load(); f != nil {
			ages := map[string]any{}
			for name, rep := range (*f)(age) {
				share := 1.0
				if rep.OlderBytes > 0 {
					share = float64(rep.OlderInLargeObjects) / float64(rep.OlderBytes)
				}
				ages[name] = map[string]any{"age": age.String(), "older_bytes": rep.OlderBytes,
					"older_bytes_in_large_objects": rep.OlderInLargeObjects, "share_in_large_objects": share}
			}
			out["older"] = ages
		}
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}

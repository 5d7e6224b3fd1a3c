package loadtest

// Lifecycle mode (--compaction, usually with --retention): the run keeps
// watching what the cluster stores while it runs, and at the end checks
// that it stopped growing and that nothing was left behind.
//
//   - Every sampleEvery the sampler lists the bucket (objects, bytes),
//     reads meta's /jobs (live objects, dead objects awaiting GC, index
//     entries, leased jobs) and every agent's sluice_jobs_* counters.
//   - plateau: over the last third of the load, bucket objects, bucket
//     bytes and index entries must stay below 1.25 × their maximum over
//     the middle third plus a slack: what the first third added, at its
//     average rate, in two intervals and in the longest stall of the
//     jobs a fault causes (faultStall). Why these numbers: with nothing
//     collected the quantities grow linearly from zero, and then
//     last/middle is exactly 1.5 whatever the run's length, so 1.25
//     tells growth from a plateau; a plateau swings by about what one
//     compaction or GC cycle adds, and by what piles up while a fault
//     (store errors on the jobs agent, its kill) holds the jobs back,
//     which may fall in the last third and not in the middle one.
//   - orphans: once producers stop, the bucket must come to hold exactly
//     the objects meta knows (live + dead awaiting GC) within
//     lifecycleTimings.orphanWait, while no job is leased.
//   - FaultKillJobsAgent: SIGKILL the one agent with the jobs role while
//     meta holds a job leased to it (its GETs are slowed first so that a
//     compaction lasts long enough to be caught), restart it, and wait
//     for it to finish a job again.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// Sample is one look at the bucket, meta and the agents' job counters.
// A part that could not be read (meta down during restart-meta) is -1.
type Sample struct {
	AtS           float64 `json:"at_s"` // since the load started
	BucketObjects int64   `json:"bucket_objects"`
	BucketBytes   int64   `json:"bucket_bytes"`
	LiveObjects   int64   `json:"live_objects"`
	DeadObjects   int64   `json:"dead_objects_awaiting_gc"`
	IndexEntries  int64   `json:"index_entries"`
	LeasedJobs    int64   `json:"leased_jobs"`
	JobCounts
}

// JobCounts are the agents' job counters summed over agents and over
// every restart of each (a restarted process counts from zero again).
type JobCounts struct {
	Compactions    int64 `json:"compaction_jobs"` // sluice_jobs_runs_total{kind="compact"}
	Deletes        int64 `json:"delete_jobs"`
	OrphanPasses   int64 `json:"orphan_passes"`
	Failures       int64 `json:"job_failures"` // every kind
	OrphansFound   int64 `json:"orphans_found"`
	ObjectsDeleted int64 `json:"objects_deleted"` // by delete jobs and orphan passes
}

// PlateauCheck is the verdict on one quantity.
type PlateauCheck struct {
	What      string `json:"what"`
	MiddleMax int64  `json:"middle_max"`
	Slack     int64  `json:"slack"`
	Bound     int64  `json:"bound"`
	LastMax   int64  `json:"last_max"`
	OK        bool   `json:"ok"`
	Note      string `json:"note,omitempty"`
}

// OrphanCheck is the verdict on orphans after producing stopped.
type OrphanCheck struct {
	OK            bool    `json:"ok"`
	AfterS        float64 `json:"after_s"` // since the last upload, when the bucket matched (or the deadline)
	BucketObjects int64   `json:"bucket_objects"`
	LiveObjects   int64   `json:"live_objects"`
	DeadObjects   int64   `json:"dead_objects_awaiting_gc"`
	Detail        string  `json:"detail"`
}

// Lifecycle is the lifecycle part of a report.
type Lifecycle struct {
	Retention  string         `json:"retention"`
	Interval   string         `json:"interval"`
	MinAge     string         `json:"compaction_min_age"`
	MaxWait    string         `json:"compaction_max_wait"`
	Grace      string         `json:"gc_grace"`
	OrphanScan string         `json:"orphan_scan_interval"`
	RetCheck   string         `json:"retention_check_interval,omitempty"`
	Samples    []Sample       `json:"samples"`
	Plateau    []PlateauCheck `json:"plateau"`
	Orphans    *OrphanCheck   `json:"orphans,omitempty"`
	JobsAtEnd  JobCounts      `json:"jobs_at_end"`
}

// sampleEvery is the sampler's period: about 10 s as the issue asks,
// down to 5 s for short intervals so a 2-minute run has enough samples
// per third.
func sampleEvery(interval time.Duration) time.Duration {
	return min(max(interval, 5*time.Second), 10*time.Second)
}

// observer reads the bucket, meta and the agents for lifecycle mode.
type observer struct {
	c    *cluster
	http *http.Client

	storeMu sync.Mutex
	store   objstore.Store // guarded by storeMu; opened on first use for buckets that are not directories

	mu       sync.Mutex
	counters map[string]*counterTrack // guarded by mu; by agent id and series
}

// counterTrack follows one counter of one agent across restarts.
type counterTrack struct{ base, last float64 }

func (t *counterTrack) observe(v float64) {
	if v < t.last { // the process restarted and counts from zero
		t.base += t.last
	}
	t.last = v
}

func (t *counterTrack) total() float64 { return t.base + t.last }

func newObserver(c *cluster) *observer {
	return &observer{c: c, http: &http.Client{Timeout: 5 * time.Second}, counters: map[string]*counterTrack{}}
}

func (o *observer) close() {
	o.storeMu.Lock()
	defer o.storeMu.Unlock()
	if o.store != nil {
		o.store.Close()
	}
}

// listBucket counts the objects under meta's object prefix and their
// bytes. A directory bucket is walked directly, read only: opening it
// as an objstore.Local would remove every agent's in-flight temporary
// files (objstore.Local removes them at open).
func (o *observer) listBucket(ctx context.Context) (objects, bytes int64, err error) {
	if dir, ok := strings.CutPrefix(o.c.bucket, "file://"); ok {
		root := filepath.Join(dir, filepath.FromSlash(meta.ObjectPrefix))
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil // deleted under us, or nothing written yet
				}
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			if _, ok := meta.ParseObjectKey(filepath.ToSlash(rel)); !ok {
				return nil // a temporary file of an upload in progress
			}
			info, err := d.Info()
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			objects++
			bytes += info.Size()
			return nil
		})
		return objects, bytes, err
	}
	o.storeMu.Lock()
	defer o.storeMu.Unlock()
	if o.store == nil {
		if o.store, err = objstore.Open(ctx, o.c.bucket); err != nil {
			return 0, 0, err
		}
	}
	err = o.store.List(ctx, meta.ObjectPrefix, func(info objstore.ObjectInfo) error {
		if _, ok := meta.ParseObjectKey(info.Key); ok {
			objects++
			bytes += info.Size
		}
		return nil
	})
	return objects, bytes, err
}

// metaJobs is this run's cluster in meta's /jobs.
type metaJobs struct {
	LiveObjects  int64 `json:"live_objects"`
	DeadObjects  int64 `json:"dead_objects_awaiting_gc"`
	LeasedJobs   int64 `json:"leased_jobs"`
	IndexEntries int64 `json:"index_entries"`
}

func (o *observer) metaJobs(ctx context.Context) (metaJobs, error) {
	var out struct {
		Clusters map[string]metaJobs `json:"clusters"`
	}
	if err := o.getJSON(ctx, "http://"+o.c.metaHTTP+"/jobs", &out); err != nil {
		return metaJobs{}, err
	}
	j, ok := out.Clusters[o.c.name]
	if !ok {
		return metaJobs{}, fmt.Errorf("meta's /jobs has no cluster %s", o.c.name)
	}
	return j, nil
}

func (o *observer) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// jobSeries are the counters the observer follows, by their name on
// /metrics.
var jobSeries = []string{
	`sluice_jobs_runs_total{kind="compact"}`, `sluice_jobs_runs_total{kind="delete"}`, `sluice_jobs_runs_total{kind="orphans"}`,
	`sluice_jobs_failures_total{kind="compact"}`, `sluice_jobs_failures_total{kind="delete"}`, `sluice_jobs_failures_total{kind="orphans"}`,
	`sluice_jobs_orphans_total{kind="orphans"}`,
	`sluice_jobs_objects_deleted_total{kind="delete"}`, `sluice_jobs_objects_deleted_total{kind="orphans"}`,
}

// scrapeAgent reads one agent's job counters into the tracks and
// returns what this process counted so far (not across restarts).
func (o *observer) scrapeAgent(ctx context.Context, a *agentProc) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := o.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	got := parseSeries(string(b), jobSeries)
	o.mu.Lock()
	for name, v := range got {
		k := a.id + " " + name
		t := o.counters[k]
		if t == nil {
			t = &counterTrack{}
			o.counters[k] = t
		}
		t.observe(v)
	}
	o.mu.Unlock()
	return got, nil
}

// parseSeries picks the named series out of a Prometheus text page.
func parseSeries(page string, names []string) map[string]float64 {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	for _, l := range strings.Split(page, "\n") {
		i := strings.LastIndexByte(l, ' ')
		if i < 0 || !want[l[:i]] {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

// jobCounts sums the tracks over agents and restarts.
func (o *observer) jobCounts() JobCounts {
	o.mu.Lock()
	defer o.mu.Unlock()
	sum := func(prefix string) int64 {
		var s float64
		for k, t := range o.counters {
			if _, name, _ := strings.Cut(k, " "); strings.HasPrefix(name, prefix) {
				s += t.total()
			}
		}
		return int64(s)
	}
	return JobCounts{
		Compactions:    sum(`sluice_jobs_runs_total{kind="compact"}`),
		Deletes:        sum(`sluice_jobs_runs_total{kind="delete"}`),
		OrphanPasses:   sum(`sluice_jobs_runs_total{kind="orphans"}`),
		Failures:       sum(`sluice_jobs_failures_total`),
		OrphansFound:   sum(`sluice_jobs_orphans_total`),
		ObjectsDeleted: sum(`sluice_jobs_objects_deleted_total`),
	}
}

// sample takes one Sample; parts that fail are -1.
func (o *observer) sample(ctx context.Context, at time.Duration) Sample {
	s := Sample{AtS: at.Seconds(), BucketObjects: -1, BucketBytes: -1, LiveObjects: -1, DeadObjects: -1, IndexEntries: -1, LeasedJobs: -1}
	if n, b, err := o.listBucket(ctx); err == nil {
		s.BucketObjects, s.BucketBytes = n, b
	}
	if j, err := o.metaJobs(ctx); err == nil {
		s.LiveObjects, s.DeadObjects, s.IndexEntries, s.LeasedJobs = j.LiveObjects, j.DeadObjects, j.IndexEntries, j.LeasedJobs
	}
	for _, a := range o.c.agents {
		_, _ = o.scrapeAgent(ctx, a) // an agent down for a fault is read next time
	}
	s.JobCounts = o.jobCounts()
	return s
}

func (s Sample) String() string {
	part := func(v int64) string {
		if v < 0 {
			return "?"
		}
		return strconv.FormatInt(v, 10)
	}
	mib := "?"
	if s.BucketBytes >= 0 {
		mib = fmt.Sprintf("%.2f MiB", float64(s.BucketBytes)/(1<<20))
	}
	return fmt.Sprintf("bucket %s objects %s; meta live %s dead %s entries %s leased %s; jobs compact %d delete %d orphan-passes %d (failed %d, orphans %d, deleted %d)",
		part(s.BucketObjects), mib, part(s.LiveObjects), part(s.DeadObjects), part(s.IndexEntries), part(s.LeasedJobs),
		s.Compactions, s.Deletes, s.OrphanPasses, s.Failures, s.OrphansFound, s.ObjectsDeleted)
}

// faultStall is the longest a fault holds the jobs back: store errors
// on the jobs agent for the fault's hold, or the jobs agent's kill: down,
// then the killed job's lease (grace/4) runs out, then the next interval.
// None without faults.
func faultStall(cfg Config, h holds) time.Duration {
	if len(cfg.Faults) == 0 {
		return 0
	}
	t := timingsFor(cfg)
	return max(h.hold, h.agentDown+t.grace/4+t.interval)
}

// plateauChecks judges bucket objects, bucket bytes and index entries
// over a load of the given length (see the top of this file for the
// bound). interval is the jobs' interval, stall faultStall. A quantity
// with no sample in the first, middle or last third fails: nothing shows
// it stayed flat.
func plateauChecks(samples []Sample, load, interval, stall time.Duration) []PlateauCheck {
	third := load.Seconds() / 3
	quantities := []struct {
		what string
		get  func(Sample) int64
	}{
		{"bucket objects", func(s Sample) int64 { return s.BucketObjects }},
		{"bucket bytes", func(s Sample) int64 { return s.BucketBytes }},
		{"index entries", func(s Sample) int64 { return s.IndexEntries }},
	}
	var out []PlateauCheck
	for _, q := range quantities {
		var first, middle, last int64 = -1, -1, -1
		for _, s := range samples {
			v := q.get(s)
			switch {
			case v < 0 || s.AtS > load.Seconds():
			case s.AtS < third:
				first = max(first, v)
			case s.AtS < 2*third:
				middle = max(middle, v)
			default:
				last = max(last, v)
			}
		}
		c := PlateauCheck{What: q.what, MiddleMax: middle, LastMax: last}
		if first < 0 || middle < 0 || last < 0 {
			c.Note = "no sample in some third of the load"
			out = append(out, c)
			continue
		}
		// What the first third added at its average rate in one cycle
		// of compaction and one of GC, and in the longest stall.
		c.Slack = int64(float64(first) / third * (2*interval + stall).Seconds())
		c.Bound = middle + middle/4 + c.Slack
		c.OK = last <= c.Bound
		out = append(out, c)
	}
	return out
}

// waitOrphans waits until the bucket holds exactly the objects meta
// knows, live or dead awaiting GC, at a moment when no job is leased
// and meta's counts did not change across the listing; it gives up at
// deadline. from is the last upload's end.
func (o *observer) waitOrphans(ctx context.Context, from time.Time, wait, deadline time.Duration, logf func(string, ...any)) *OrphanCheck {
	res := &OrphanCheck{BucketObjects: -1, LiveObjects: -1, DeadObjects: -1}
	logf("waiting %.0fs from the last upload (gc grace + an orphan scan + an interval) for every orphan to be collected", wait.Seconds())
	if err := sleepCtx(ctx, time.Until(from.Add(wait))); err != nil {
		res.Detail = err.Error()
		return res
	}
	lastLog := time.Time{}
	for {
		m1, err1 := o.metaJobs(ctx)
		n, _, errb := o.listBucket(ctx)
		m2, err2 := o.metaJobs(ctx)
		res.AfterS = time.Since(from).Seconds()
		if err1 == nil && err2 == nil && errb == nil {
			res.BucketObjects, res.LiveObjects, res.DeadObjects = n, m2.LiveObjects, m2.DeadObjects
			if m1 == m2 && m2.LeasedJobs == 0 && n == m2.LiveObjects+m2.DeadObjects {
				res.OK = true
				res.Detail = fmt.Sprintf("%.0fs after the last upload the bucket holds %d objects = meta's %d live + %d dead awaiting GC: no orphan left",
					res.AfterS, n, m2.LiveObjects, m2.DeadObjects)
				return res
			}
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("orphans: bucket %d objects, meta live %d dead %d leased %d (errors: %v %v %v)", n, m2.LiveObjects, m2.DeadObjects, m2.LeasedJobs, err1, errb, err2)
			lastLog = time.Now()
		}
		if time.Since(from) > deadline || ctx.Err() != nil {
			switch {
			case res.BucketObjects < 0:
				res.Detail = fmt.Sprintf("could not read the bucket and meta's /jobs within %.0fs: %v %v %v", deadline.Seconds(), err1, errb, err2)
			case res.BucketObjects > res.LiveObjects+res.DeadObjects:
				res.Detail = fmt.Sprintf("%.0fs after the last upload the bucket still holds %d objects meta does not know (bucket %d, meta live %d + dead %d): orphans not collected",
					res.AfterS, res.BucketObjects-res.LiveObjects-res.DeadObjects, res.BucketObjects, res.LiveObjects, res.DeadObjects)
			default:
				res.Detail = fmt.Sprintf("%.0fs after the last upload meta counts %d objects the bucket does not hold (bucket %d, meta live %d + dead %d), or jobs never went quiet",
					res.AfterS, res.LiveObjects+res.DeadObjects-res.BucketObjects, res.BucketObjects, res.LiveObjects, res.DeadObjects)
			}
			return res
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			res.Detail = err.Error()
			return res
		}
	}
}

// killJobsAgent: slow the jobs agent's GETs, wait until meta holds a job
// leased, SIGKILL the agent, restart it, and wait until it finishes a job
// again.
func (r *runner) killJobsAgent(ctx context.Context, ev *FaultEvent) error {
	a := r.c.agents[jobsAgent]
	ev.Target = a.id
	t := timingsFor(r.cfg)
	// A compaction reads every input object; 300 ms per GET makes it
	// last long enough for the 50 ms poll below to see its lease.
	if _, err := postFaults(ctx, a.httpAddr, "/debug/faults", url.Values{"op": {"get"}, "latency": {"300ms"}}); err != nil {
		return fmt.Errorf("slow the jobs agent's GETs: %w", err)
	}
	leaseWait := 3*t.interval + 5*time.Second
	var leased int64
	waitStart := time.Now()
	for time.Since(waitStart) < leaseWait && ctx.Err() == nil {
		if j, err := r.obs.metaJobs(ctx); err == nil && j.LeasedJobs > 0 {
			leased = j.LeasedJobs
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _ = r.obs.scrapeAgent(ctx, a) // its counters up to the kill
	before := r.obs.jobCounts()
	pid := a.pid()
	r.logf("fault kill-jobs-agent: SIGKILL %s (pid %d) with %d job(s) leased; restart in %s", a.id, pid, leased, r.holds.agentDown)
	a.kill()
	killed := time.Now()
	if leased > 0 {
		ev.Detail = fmt.Sprintf("SIGKILL pid %d while meta held %d job(s) leased (waited %.1fs for one)", pid, leased, killed.Sub(waitStart).Seconds())
	} else {
		ev.Detail = fmt.Sprintf("SIGKILL pid %d; no job was leased within %.0fs, killed anyway", pid, leaseWait.Seconds())
		r.warn("kill-jobs-agent: meta leased no job within %.0fs, so the jobs agent was killed between jobs", leaseWait.Seconds())
	}
	ev.Detail += fmt.Sprintf("; jobs so far: compact %d, delete %d, orphan passes %d", before.Compactions, before.Deletes, before.OrphanPasses)
	if err := sleepCtx(ctx, r.holds.agentDown); err != nil {
		return err
	}
	wait, err := r.c.restartAgent(ctx, a)
	if err != nil {
		ev.Detail += "; restart failed"
		return err
	}
	back := time.Now()
	ev.Detail += fmt.Sprintf("; restarted, ready %.1fs after the kill", back.Sub(killed).Seconds())
	if wait > 5*time.Second {
		r.warn("%s could not bind its Kafka address for %.0fs after the kill", a.id, wait.Seconds())
	}
	// Jobs resume: the new process runs a job within a few intervals
	// (the killed job's lease expires after grace/4, then it is leased
	// again; GC and orphan passes come every interval).
	resumeWait := 4*t.interval + 30*time.Second
	for time.Since(back) < resumeWait && ctx.Err() == nil {
		got, err := r.obs.scrapeAgent(ctx, a)
		if err == nil {
			var kinds []string
			for _, k := range []string{"compact", "delete", "orphans"} {
				if n := got[`sluice_jobs_runs_total{kind="`+k+`"}`]; n > 0 {
					kinds = append(kinds, fmt.Sprintf("%s %.0f", k, n))
				}
			}
			if len(kinds) > 0 {
				ev.Detail += fmt.Sprintf("; jobs resumed: %s done by the new process %.1fs after its start", strings.Join(kinds, ", "), time.Since(back).Seconds())
				return nil
			}
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("the restarted jobs agent finished no job within %.0fs", resumeWait.Seconds())
}

package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Results is one `make compare` run: what bench/results/DATE.json holds
// and what the BENCHMARKS.md table is rendered from.
type Results struct {
	Date      time.Time `json:"date"`
	Host      string    `json:"host"`
	Cores     int       `json:"cores"`
	Arch      string    `json:"arch"`
	GoVersion string    `json:"go_version"`
	Commit    string    `json:"commit,omitempty"`
	Settings  Settings  `json:"settings"`
	// LoopbackMiBPS is one TCP stream over loopback, both ends in
	// compare: the most any broker here can move.
	LoopbackMiBPS float64 `json:"loopback_mib_per_sec"`
	// KernelSendCPUPerGiB is kernelSendFloor: the CPU a process spends
	// per GiB it writes from memory to the tail fan-out's consumers over
	// loopback (zero: runs from before it was measured).
	KernelSendCPUPerGiB float64        `json:"kernel_send_cpu_seconds_per_gib,omitempty"`
	Idle                []Idle         `json:"idle"`
	Brokers             []BrokerResult `json:"brokers"`
	// Clients are the light-load runs of other clients against Sluice.
	Clients []ClientResult `json:"clients"`
	Targets []Target       `json:"targets"`
}

// Settings are the load's parameters.
type Settings struct {
	Quick         bool    `json:"quick,omitempty"`
	Rounds        int     `json:"rounds"`
	PhaseSeconds  float64 `json:"phase_seconds"`
	IdleSeconds   float64 `json:"idle_seconds"`
	RecordSize    int     `json:"record_size"`
	Partitions    int     `json:"partitions"`
	LightRate     int     `json:"light_rate"`
	FlushInterval string  `json:"flush_interval"`
	CacheBytes    int64   `json:"cache_bytes"`
	// WarmupSeconds is left out of each latency load; SteadyCacheBytes
	// and SteadyFillSeconds are the cache-full peak's (zero: runs from
	// before they were measured).
	WarmupSeconds     float64 `json:"warmup_seconds,omitempty"`
	SteadyCacheBytes  int64   `json:"steady_cache_bytes,omitempty"`
	SteadyFillSeconds float64 `json:"steady_fill_seconds,omitempty"`
	// The tail fan-out's producer rate, consumers and pairs of loads per
	// round (zero: runs from before it was measured).
	FanoutRate      int `json:"tail_fanout_rate,omitempty"`
	FanoutConsumers int `json:"tail_fanout_consumers,omitempty"`
	FanoutPairs     int `json:"tail_fanout_pairs,omitempty"`
}

// Idle is a broker left alone: no client connected, one topic.
type Idle struct {
	Key        string   `json:"key"`
	Seconds    float64  `json:"seconds"`
	CPUSeconds float64  `json:"cpu_seconds"`
	Cores      float64  `json:"cores"`
	Puts       *float64 `json:"puts,omitempty"` // Sluice: object store PUTs while idle
}

// BrokerResult is one broker's rounds and their medians.
type BrokerResult struct {
	Key    string    `json:"key"`
	Name   string    `json:"name"`
	Rounds []Figures `json:"rounds"`
	Median Figures   `json:"median"`
}

// Figures are one round against one broker. All loads are franz-go
// (`sluice bench`): acks=all, idempotent, linger 5 ms, no compression.
// CPU is the broker process's own process_cpu_seconds_total over the
// load, per GiB of record values moved.
type Figures struct {
	// Peak: `sluice bench produce --rate 0`.
	PeakMiBPS     float64 `json:"peak_mib_per_sec"`
	PeakRecordsPS float64 `json:"peak_records_per_sec"`
	PeakCPUPerGiB float64 `json:"peak_cpu_seconds_per_gib"`
	// PeakPutsPerGiB: Sluice's object store PUTs over the peak load.
	PeakPutsPerGiB *float64 `json:"peak_puts_per_gib,omitempty"`
	// Steady: Sluice's peak with its block cache full (steadyPeak), the
	// bytes acknowledged of the records sent after the fill.
	SteadyMiBPS     *float64 `json:"steady_peak_mib_per_sec,omitempty"`
	SteadyCPUPerGiB *float64 `json:"steady_peak_cpu_seconds_per_gib,omitempty"`
	// Light: produce at LightRate records/s.
	LightRate  float64 `json:"light_rate"`
	LightP50Ms float64 `json:"light_p50_ms"`
	LightP99Ms float64 `json:"light_p99_ms"`
	// Half: produce only at half of Sluice's peak of the same round
	// (the same rate for every broker of the round).
	HalfRate      float64 `json:"half_rate"`
	HalfMiBPS     float64 `json:"half_mib_per_sec"`
	HalfP50Ms     float64 `json:"half_p50_ms"`
	HalfP99Ms     float64 `json:"half_p99_ms"`
	HalfCPUPerGiB float64 `json:"half_cpu_seconds_per_gib"`
	// E2E: `sluice bench e2e` at HalfRate, a consumer at the head.
	E2EP99Ms        float64 `json:"e2e_p99_ms"`
	E2EProduceP99Ms float64 `json:"e2e_produce_p99_ms"`
	// Tail: that consumer. TailCPUPerGiB is the e2e load's CPU less the
	// half load's (scaled to the same bytes produced), per GiB consumed:
	// a difference of two runs whose noise is larger than the read, kept
	// in the JSON for the history but judged and shown no more; the
	// tail's CPU is the fan-out's.
	TailMiBPS     float64 `json:"tail_mib_per_sec"`
	TailCPUPerGiB float64 `json:"tail_cpu_seconds_per_gib"`
	// Fanout: the tail fan-out (tailFanout): CPU-s per GiB served to
	// consumers at the head, and the MiB/s they were served together.
	FanoutCPUPerGiB   *float64 `json:"tail_fanout_cpu_seconds_per_gib,omitempty"`
	FanoutServedMiBPS *float64 `json:"tail_fanout_served_mib_per_sec,omitempty"`
	// Catch-up: `sluice bench consume --from earliest` of the half
	// load's topic, just written (Sluice: within its cache).
	CatchupGiB       float64  `json:"catchup_gib"`
	CatchupMiBPS     float64  `json:"catchup_mib_per_sec"`
	CatchupCPUPerGiB float64  `json:"catchup_cpu_seconds_per_gib"`
	CatchupGets      *float64 `json:"catchup_gets,omitempty"` // Sluice: object store GETs of the catch-up read
}

// ClientResult is one client's light-load latency against Sluice.
type ClientResult struct {
	Client   string    `json:"client"`
	Settings string    `json:"settings"`
	Rounds   []latency `json:"rounds"`
	Median   latency   `json:"median"`
}

// Target is one of issue 13's targets checked against the medians.
type Target struct {
	ID       string `json:"id"`
	What     string `json:"what"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// medianOf returns, field by field, the median of the rounds: numbers
// and pointers to numbers (nil where no round has one).
func medianOf[T any](rounds []T) T {
	var out T
	ov := reflect.ValueOf(&out).Elem()
	for i := 0; i < ov.NumField(); i++ {
		var vs []float64
		for _, r := range rounds {
			f := reflect.ValueOf(r).Field(i)
			if f.Kind() == reflect.Pointer {
				if f.IsNil() {
					continue
				}
				f = f.Elem()
			}
			switch f.Kind() {
			case reflect.Float64:
				vs = append(vs, f.Float())
			case reflect.Int64, reflect.Int:
				vs = append(vs, float64(f.Int()))
			}
		}
		if len(vs) == 0 {
			continue
		}
		m := median(vs)
		f := ov.Field(i)
		if f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
			f = f.Elem()
		}
		switch f.Kind() {
		case reflect.Float64:
			f.SetFloat(m)
		case reflect.Int64, reflect.Int:
			f.SetInt(int64(math.Round(m)))
		}
	}
	return out
}

func median(vs []float64) float64 {
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func ptr(v float64) *float64 { return &v }

// broker returns the result for key, or nil.
func (r *Results) broker(key string) *BrokerResult {
	for i := range r.Brokers {
		if r.Brokers[i].Key == key {
			return &r.Brokers[i]
		}
	}
	return nil
}

func (r *Results) idle(key string) *Idle {
	for i := range r.Idle {
		if r.Idle[i].Key == key {
			return &r.Idle[i]
		}
	}
	return nil
}

// checkTargets fills r.Targets from the medians (issue 13's targets 1–6;
// 7, the 25 ms flush, is `make bench-latency`'s).
func (r *Results) checkTargets() {
	s, kd, km := r.broker("sluice"), r.broker("kfake_durable"), r.broker("kfake_memory")
	if s == nil || kd == nil || km == nil {
		return
	}
	flush, _ := time.ParseDuration(r.Settings.FlushInterval)
	flushMs := float64(flush.Milliseconds())
	S, D, M := s.Median, kd.Median, km.Median
	add := func(id, what, measured string, met bool) {
		r.Targets = append(r.Targets, Target{ID: id, What: what, Measured: measured, Met: met})
	}
	add("1", "agent CPU at peak produce ≤ 1.0 CPU-s/GiB (cache filling)", fmt.Sprintf("%.2f", S.PeakCPUPerGiB), S.PeakCPUPerGiB <= 1.0)
	if S.SteadyCPUPerGiB != nil {
		add("1", "agent CPU at peak produce ≤ 1.0 CPU-s/GiB (cache full)", fmt.Sprintf("%.2f", *S.SteadyCPUPerGiB), *S.SteadyCPUPerGiB <= 1.0)
	}
	add("2", "peak produce ≥ 2× kfake durable and ≥ 1.5× kfake in memory (cache filling)",
		fmt.Sprintf("%.2f× and %.2f×", S.PeakMiBPS/D.PeakMiBPS, S.PeakMiBPS/M.PeakMiBPS),
		S.PeakMiBPS >= 2*D.PeakMiBPS && S.PeakMiBPS >= 1.5*M.PeakMiBPS)
	if v := S.SteadyMiBPS; v != nil {
		add("2", "the same, Sluice's cache full",
			fmt.Sprintf("%.2f× and %.2f×", *v/D.PeakMiBPS, *v/M.PeakMiBPS),
			*v >= 2*D.PeakMiBPS && *v >= 1.5*M.PeakMiBPS)
	}
	p99 := flushMs + 50
	add("3", fmt.Sprintf("produce p99 ≤ flush + 50 ms (%.0f ms), franz-go at %.0f rec/s", p99, S.LightRate),
		fmtMs(S.LightP99Ms), S.LightP99Ms <= p99)
	for _, c := range r.Clients {
		add("3", fmt.Sprintf("produce p99 ≤ %.0f ms, %s at %d rec/s", p99, c.Client, r.Settings.LightRate),
			fmtMs(c.Median.P99Ms), c.Median.P99Ms <= p99)
	}
	add("3", fmt.Sprintf("produce p99 ≤ %.0f ms, franz-go at half of peak (%.0f rec/s)", p99, S.HalfRate),
		fmtMs(S.HalfP99Ms), S.HalfP99Ms <= p99)
	e2e := 2*flushMs + 50
	add("4", fmt.Sprintf("e2e p99 ≤ 2 × flush + 50 ms (%.0f ms) at half of peak", e2e), fmtMs(S.E2EP99Ms), S.E2EP99Ms <= e2e)
	add("5", "tail read MiB/s ≥ both kfakes'", fmt.Sprintf("%.1f vs %.1f, %.1f", S.TailMiBPS, D.TailMiBPS, M.TailMiBPS),
		S.TailMiBPS >= D.TailMiBPS && S.TailMiBPS >= M.TailMiBPS)
	add("5", "catch-up read MiB/s ≥ both kfakes'", fmt.Sprintf("%.1f vs %.1f, %.1f", S.CatchupMiBPS, D.CatchupMiBPS, M.CatchupMiBPS),
		S.CatchupMiBPS >= D.CatchupMiBPS && S.CatchupMiBPS >= M.CatchupMiBPS)
	// The tail's CPU is the fan-out's (the e2e load less the half load
	// was noise, below zero as often as not): runs from before it have
	// none, which meets nothing.
	readCPU, tailMet := "tail not measured", false
	if v := S.FanoutCPUPerGiB; v != nil {
		readCPU, tailMet = fmt.Sprintf("%.2f", *v), *v >= 0 && *v <= 0.5
		if r.KernelSendCPUPerGiB > 0 {
			readCPU += fmt.Sprintf(" (the kernel's send alone: %.2f)", r.KernelSendCPUPerGiB)
		}
	}
	add("5", "read CPU ≤ 0.5 CPU-s/GiB served (tail fan-out, catch-up)", fmt.Sprintf("%s, %.2f", readCPU, S.CatchupCPUPerGiB),
		tailMet && S.CatchupCPUPerGiB <= 0.5)
	if i := r.idle("sluice"); i != nil && i.Puts != nil {
		add("6", "idle agent ≤ 0.01 cores and no PUT", fmt.Sprintf("%.4f cores, %.0f PUT in %.0f s", i.Cores, *i.Puts, i.Seconds),
			i.Cores <= 0.01 && *i.Puts == 0)
	}
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// render writes the markdown block BENCHMARKS.md keeps between the
// compare markers.
func (r *Results) render(resultsFile, note string) string {
	var b strings.Builder
	set := r.Settings
	commit := ""
	if r.Commit != "" {
		commit = ", commit " + r.Commit[:min(len(r.Commit), 10)]
	}
	quick := ""
	if set.Quick {
		quick = " **Quick mode (COMPARE_QUICK): durations too short to mean anything.**"
	}
	warm := ""
	if set.WarmupSeconds > 0 {
		warm = fmt.Sprintf(" Latencies leave out each load's first %.2g s (the clients' start-up).", set.WarmupSeconds)
	}
	fmt.Fprintf(&b, "Run %s on %s (%d cores, %s, %s%s): `make compare`, %d rounds alternating Sluice → kfake durable → kfake in memory, "+
		"a fresh broker each round; each load %.0f s; franz-go (`sluice bench`, acks=all, idempotent) unless named, "+
		"%d B records, %d partitions, linger 5 ms, no compression; the playground at `--flush-interval %s --cache-bytes %d`, "+
		"local-directory bucket. Medians of the rounds; every round is in `%s`. The clients share the cores.%s "+
		"Loopback ceiling (one TCP stream): **%.0f MiB/s**.%s\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.Host, r.Cores, r.Arch, r.GoVersion, commit, set.Rounds, set.PhaseSeconds,
		set.RecordSize, set.Partitions, set.FlushInterval, set.CacheBytes, resultsFile, warm, r.LoopbackMiBPS, quick)
	if r.KernelSendCPUPerGiB > 0 {
		fmt.Fprintf(&b, "\nThe kernel's floor for the tail fan-out: this harness writing 1 MiB buffers from memory to %d loopback connections at %.1f MiB/s each, "+
			"each read by a process of its own, spends **%.2f CPU-s per GiB** written (on loopback the send includes the receiving side's TCP work).\n",
			set.FanoutConsumers, float64(set.FanoutRate*set.RecordSize)/(1<<20), r.KernelSendCPUPerGiB)
	}
	if note != "" {
		fmt.Fprintf(&b, "\n%s\n", note)
	}
	s, kd, km := r.broker("sluice"), r.broker("kfake_durable"), r.broker("kfake_memory")
	if s == nil || kd == nil || km == nil {
		return b.String()
	}
	fmt.Fprintf(&b, "\n| figure | %s | %s | %s | Sluice ÷ durable | Sluice ÷ in memory |\n", s.Name, kd.Name, km.Name)
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|")
	row := func(what string, get func(Figures) float64, format func(float64) string) {
		a, d, m := get(s.Median), get(kd.Median), get(km.Median)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", what, format(a), format(d), format(m), ratio(a, d), ratio(a, m))
	}
	mib := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	cpu := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	row("peak produce MiB/s", func(f Figures) float64 { return f.PeakMiBPS }, mib)
	row("broker CPU-s per GiB at peak", func(f Figures) float64 { return f.PeakCPUPerGiB }, cpu)
	if v, c := s.Median.SteadyMiBPS, s.Median.SteadyCPUPerGiB; v != nil && c != nil {
		fmt.Fprintf(&b, "| Sluice only: peak produce MiB/s; CPU-s per GiB, cache full (`--cache-bytes %d`, the first %.0f s not counted) | %.1f; %.2f | – | – | %s | %s |\n",
			set.SteadyCacheBytes, set.SteadyFillSeconds, *v, *c, ratio(*v, kd.Median.PeakMiBPS), ratio(*v, km.Median.PeakMiBPS))
	}
	row(fmt.Sprintf("produce p50 at %d rec/s", set.LightRate), func(f Figures) float64 { return f.LightP50Ms }, fmtMs)
	row(fmt.Sprintf("produce p99 at %d rec/s", set.LightRate), func(f Figures) float64 { return f.LightP99Ms }, fmtMs)
	half := fmt.Sprintf("half of Sluice's peak (%.0f rec/s)", s.Median.HalfRate)
	row("produce p50 at "+half, func(f Figures) float64 { return f.HalfP50Ms }, fmtMs)
	row("produce p99 at "+half, func(f Figures) float64 { return f.HalfP99Ms }, fmtMs)
	row("broker CPU-s per GiB at half of peak", func(f Figures) float64 { return f.HalfCPUPerGiB }, cpu)
	row("e2e p99 at half of peak (consumer at the head)", func(f Figures) float64 { return f.E2EP99Ms }, fmtMs)
	row("tail read MiB/s (that consumer)", func(f Figures) float64 { return f.TailMiBPS }, mib)
	if s.Median.FanoutCPUPerGiB != nil && kd.Median.FanoutCPUPerGiB != nil && km.Median.FanoutCPUPerGiB != nil {
		fan := fmt.Sprintf("%d rec/s to %d consumers at the head", set.FanoutRate, set.FanoutConsumers)
		row("tail read CPU-s per GiB served, "+fan+" (less the same load without them)", func(f Figures) float64 { return *f.FanoutCPUPerGiB }, cpu)
		row("tail read MiB/s served, "+fan, func(f Figures) float64 { return *f.FanoutServedMiBPS }, mib)
	}
	row(fmt.Sprintf("catch-up read MiB/s (from earliest, %.2f GiB)", s.Median.CatchupGiB), func(f Figures) float64 { return f.CatchupMiBPS }, mib)
	row("catch-up read CPU-s per GiB", func(f Figures) float64 { return f.CatchupCPUPerGiB }, cpu)
	if is, id, im := r.idle("sluice"), r.idle("kfake_durable"), r.idle("kfake_memory"); is != nil && id != nil && im != nil {
		fmt.Fprintf(&b, "| idle: cores used over %.0f s, one topic, no client | %.4f | %.4f | %.4f | | |\n",
			is.Seconds, is.Cores, id.Cores, im.Cores)
		if is.Puts != nil {
			fmt.Fprintf(&b, "| idle: object store PUTs | %.0f | – | – | | |\n", *is.Puts)
		}
	}
	if p, g := s.Median.PeakPutsPerGiB, s.Median.CatchupGets; p != nil && g != nil {
		fmt.Fprintf(&b, "| object store PUTs per GiB at peak; GETs of the catch-up read | %.0f; %.0f | – | – | | |\n", *p, *g)
	}

	fmt.Fprintf(&b, "\nProduce latency at %d records/s against Sluice, by client (%d B values, no keys, idempotent, linger 5 ms, "+
		"otherwise the client's defaults; medians of the rounds):\n\n", set.LightRate, set.RecordSize)
	fmt.Fprintln(&b, "| client | settings | p50 | p99 | max |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|")
	fmt.Fprintf(&b, "| franz-go (`sluice bench`) | idempotent: 5 requests in flight per broker | %s | %s | |\n",
		fmtMs(s.Median.LightP50Ms), fmtMs(s.Median.LightP99Ms))
	for _, c := range r.Clients {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.Client, c.Settings, fmtMs(c.Median.P50Ms), fmtMs(c.Median.P99Ms), fmtMs(c.Median.MaxMs))
	}

	if len(r.Targets) > 0 {
		fmt.Fprintln(&b, "\nIssue 13's targets, from the medians above (target 7, the 25 ms flush, is `make bench-latency`'s):")
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "| # | target | measured | met? |")
		fmt.Fprintln(&b, "|---|---|---|---|")
		for _, t := range r.Targets {
			met := "no"
			if t.Met {
				met = "yes"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.ID, t.What, t.Measured, met)
		}
	}
	return b.String()
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a/b) || math.IsInf(a/b, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// writeBetween replaces the text between the compare markers in file.
func writeBetween(file, block string) error {
	const begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s markers", file, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + block + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}

// resultsName is the file a run's JSON goes to: its start, to the
// second, in UTC, so that files sort by date.
func resultsName(dir string, t time.Time) string {
	return filepath.Join(dir, t.UTC().Format("2006-01-02T15-04-05Z")+".json")
}

func writeResults(file string, r *Results) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, append(raw, '\n'), 0o644)
}

func readResults(file string) (*Results, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &r, nil
}

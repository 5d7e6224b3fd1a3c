package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testWriter sends compare's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestQuick runs `make compare`'s quick mode end to end: real brokers
// (the sluice and kfake binaries, built here), real clients (sluice
// bench, confluent-kafka-python, sarama), then checks that the JSON it
// wrote holds every figure, each sane, and that the table went between
// the markers. The figures mean nothing at these durations; only their
// presence and signs are checked.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs brokers and clients for about 30 s")
	}
	dir := t.TempDir()
	build := func(out, pkg string) string {
		bin := filepath.Join(dir, out)
		// Without -race even under -race: the race detector slows the
		// brokers and clients five- to tenfold, so that a 1 s load moves
		// almost nothing and the run takes minutes; what -race checks
		// here is the harness, in this process. The brokers' races are
		// e2e's and the packages' own tests'.
		args := []string{"build", "-o", bin, pkg}
		cmd := exec.Command("go", args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, stderr.String())
		}
		return bin
	}
	start := time.Now()
	c := &config{
		sluice: build("sluice", "../../cmd/sluice"), kfake: build("kfake", "../kfake"),
		python: "/usr/bin/python3", confluentScript: "../scripts/confluent_latency.py",
		recordSize: 1024, partitions: 16, flush: 250 * time.Millisecond, cacheBytes: 256 << 20, steadyCache: 64 << 20,
		results: filepath.Join(dir, "results"), out: filepath.Join(dir, "BENCHMARKS.md"),
		progress: testWriter{t},
	}
	c.quickSettings()
	t.Logf("built the brokers in %v", time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(c.out, []byte("# x\n<!-- compare:begin -->\nold\n<!-- compare:end -->\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.run(ctx); err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(filepath.Join(c.results, "*.json"))
	if len(files) != 1 {
		t.Fatalf("want one results file, got %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	// Every field of a figure present in the JSON, not just zero-filled
	// by decoding: the keys are read back raw.
	var rawRes struct {
		Brokers []struct {
			Key    string
			Rounds []map[string]any
			Median map[string]any
		}
	}
	if err := json.Unmarshal(raw, &rawRes); err != nil {
		t.Fatal(err)
	}
	want := jsonKeys(reflect.TypeOf(Figures{}))
	for _, b := range rawRes.Brokers {
		for _, m := range append(b.Rounds, b.Median) {
			for k, sluiceOnly := range want {
				if _, ok := m[k]; !ok && (!sluiceOnly || b.Key == "sluice") {
					t.Errorf("%s: figure %s missing", b.Key, k)
				}
			}
		}
	}

	if !res.Settings.Quick || res.Settings.Rounds != 1 || res.LoopbackMiBPS <= 0 || !(res.KernelSendCPUPerGiB > 0) {
		t.Errorf("settings, loopback or kernel floor: %+v, %v, %v", res.Settings, res.LoopbackMiBPS, res.KernelSendCPUPerGiB)
	}
	keys := map[string]bool{}
	for _, b := range res.Brokers {
		keys[b.Key] = true
		if len(b.Rounds) != 1 {
			t.Fatalf("%s: %d rounds", b.Key, len(b.Rounds))
		}
		for _, f := range append(b.Rounds, b.Median) {
			checkFigures(t, b.Key, f, res.Settings.LightRate)
		}
		if !reflect.DeepEqual(b.Rounds[0], b.Median) {
			t.Errorf("%s: the median of one round is not that round:\n%+v\n%+v", b.Key, b.Rounds[0], b.Median)
		}
	}
	if len(keys) != 3 || !keys["sluice"] || !keys["kfake_durable"] || !keys["kfake_memory"] {
		t.Errorf("brokers: %v", keys)
	}
	s := res.broker("sluice")
	for _, b := range res.Brokers {
		if b.Median.HalfRate != s.Median.HalfRate {
			t.Errorf("%s ran half of peak at %v rec/s, Sluice at %v: every broker of a round gets the same rate", b.Key, b.Median.HalfRate, s.Median.HalfRate)
		}
	}
	if len(res.Clients) != 2 {
		t.Fatalf("clients: %+v", res.Clients)
	}
	for _, cl := range res.Clients {
		if len(cl.Rounds) != 1 {
			t.Fatalf("%s: %d rounds", cl.Client, len(cl.Rounds))
		}
		l := cl.Median
		// 500 records/s for a second, less the warm-up: the count is the
		// rate's, give or take the pacing's last tick.
		counted := float64(res.Settings.LightRate) * (res.Settings.PhaseSeconds - res.Settings.WarmupSeconds)
		if res.Settings.WarmupSeconds <= 0 || float64(l.Records) < counted*0.8 || float64(l.Records) > counted*1.2 || l.Errors != 0 || !(l.P50Ms > 0 && l.P50Ms <= l.P99Ms && l.P99Ms <= l.MaxMs) {
			t.Errorf("%s: %+v", cl.Client, l)
		}
	}
	if len(res.Idle) != 3 {
		t.Fatalf("idle: %+v", res.Idle)
	}
	for _, i := range res.Idle {
		if i.Seconds < 1 || i.CPUSeconds < 0 || i.Cores < 0 || i.Cores > 2 {
			t.Errorf("idle %s: %+v", i.Key, i)
		}
		if (i.Key == "sluice") != (i.Puts != nil) {
			t.Errorf("idle %s: puts %v", i.Key, i.Puts)
		}
		if i.Puts != nil && *i.Puts != 0 {
			t.Errorf("idle Sluice sent %v PUTs (issue 13, target 6: none)", *i.Puts)
		}
	}
	if len(res.Targets) < 9 {
		t.Errorf("targets: %+v", res.Targets)
	}

	md, err := os.ReadFile(c.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<!-- compare:begin -->\nRun ", "| peak produce MiB/s |", "| tail read CPU-s per GiB served, 2000 rec/s to 2 consumers", "The kernel's floor for the tail fan-out", "| sarama |", "confluent-kafka-python", "| 6 | idle agent", "<!-- compare:end -->\ntail\n", "Quick mode"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "\nold\n") {
		t.Error("the old block was not replaced")
	}
}

// jsonKeys maps the JSON names of t's fields to whether they are
// Sluice's only (pointers, omitted for kfake).
func jsonKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		out[name] = t.Field(i).Type.Kind() == reflect.Pointer
	}
	return out
}

func checkFigures(t *testing.T, key string, f Figures, lightRate int) {
	t.Helper()
	pos := map[string]float64{
		"peak MiB/s": f.PeakMiBPS, "peak rec/s": f.PeakRecordsPS, "peak CPU/GiB": f.PeakCPUPerGiB,
		"light p50": f.LightP50Ms, "light p99": f.LightP99Ms,
		"half rate": f.HalfRate, "half MiB/s": f.HalfMiBPS, "half p50": f.HalfP50Ms, "half p99": f.HalfP99Ms, "half CPU/GiB": f.HalfCPUPerGiB,
		"e2e p99": f.E2EP99Ms, "e2e produce p99": f.E2EProduceP99Ms, "tail MiB/s": f.TailMiBPS,
		"catch-up GiB": f.CatchupGiB, "catch-up MiB/s": f.CatchupMiBPS, "catch-up CPU/GiB": f.CatchupCPUPerGiB,
	}
	for name, v := range pos {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s: %s = %v, want a positive number", key, name, v)
		}
	}
	// The tail read's CPU is a difference of two runs: any finite number
	// (a short noisy run may even make it negative).
	if math.IsNaN(f.TailCPUPerGiB) || math.IsInf(f.TailCPUPerGiB, 0) {
		t.Errorf("%s: tail CPU/GiB = %v", key, f.TailCPUPerGiB)
	}
	// The fan-out's CPU is a difference too, of short loads here.
	if f.FanoutCPUPerGiB == nil || f.FanoutServedMiBPS == nil {
		t.Errorf("%s: no tail fan-out figures", key)
	} else if c := *f.FanoutCPUPerGiB; math.IsNaN(c) || math.IsInf(c, 0) || !(*f.FanoutServedMiBPS > 0) {
		t.Errorf("%s: tail fan-out %v CPU-s/GiB, %v MiB/s served", key, c, *f.FanoutServedMiBPS)
	}
	if f.LightRate != float64(lightRate) || f.LightP50Ms > f.LightP99Ms || f.HalfP50Ms > f.HalfP99Ms {
		t.Errorf("%s: light/half figures out of order: %+v", key, f)
	}
	if key == "sluice" && f.HalfRate != math.Round(f.PeakRecordsPS/2) {
		t.Errorf("%s: half rate %v, peak %v records/s", key, f.HalfRate, f.PeakRecordsPS)
	}
	if sluice := key == "sluice"; sluice != (f.PeakPutsPerGiB != nil) || sluice != (f.CatchupGets != nil) {
		t.Errorf("%s: object store figures %v %v", key, f.PeakPutsPerGiB, f.CatchupGets)
	} else if sluice && !(*f.PeakPutsPerGiB > 0 && *f.CatchupGets >= 0) {
		t.Errorf("%s: %v PUTs per GiB at peak, %v GETs in catch-up", key, *f.PeakPutsPerGiB, *f.CatchupGets)
	}
	if sluice := key == "sluice"; sluice != (f.SteadyMiBPS != nil) || sluice != (f.SteadyCPUPerGiB != nil) {
		t.Errorf("%s: cache-full peak figures %v %v", key, f.SteadyMiBPS, f.SteadyCPUPerGiB)
	} else if sluice && !(*f.SteadyMiBPS > 0 && *f.SteadyCPUPerGiB > 0) {
		t.Errorf("%s: cache-full peak %v MiB/s at %v CPU-s/GiB", key, *f.SteadyMiBPS, *f.SteadyCPUPerGiB)
	}
}

// Command compare runs `make compare`: the same loads against Sluice's
// playground and against franz-go's kfake broker, durable (fsync per
// batch) and in memory, alternating Sluice, kfake durable, kfake in
// memory, round after round, in one run on one machine (issue 13). It
// writes every figure of every round as JSON under bench/results/ (one
// file per run, named by its date, committed: the history of each figure
// is in git) and the medians as a table between the markers
// <!-- compare:begin --> and <!-- compare:end --> of BENCHMARKS.md.
//
// Each round starts a fresh broker and runs, with franz-go (`sluice
// bench`, acks=all, idempotent, linger 5 ms, 1 KiB records, 16
// partitions), in this order:
//
//  1. light: produce at 5,000 records/s: p50, p99 (against Sluice also
//     confluent-kafka-python and sarama, idempotent, linger 5 ms);
//  2. peak: produce as fast as the client goes: MiB/s, broker CPU-s/GiB;
//  3. half: produce only at half of Sluice's peak of the round: p50,
//     p99, CPU-s/GiB;
//  4. catch-up: consume the half load's topic from the earliest offset:
//     MiB/s, CPU-s/GiB;
//  5. e2e: produce at the same rate with a consumer at the head: e2e
//     p99, and the tail read's MiB/s;
//  6. tail fan-out: pairs of loads at --tail-rate, with no consumer and
//     with --tail-consumers consumers at the head each reading every
//     partition: the tail read's CPU-s per GiB served (tailFanout).
//     Sluice's runs in the playground of its cache-full peak load (a
//     cache full, as an agent's is for its life), each kfake's in a
//     fresh broker after a few seconds of the same produce load.
//
// Before the rounds all three brokers sit idle together (one topic, no
// client) to measure idle CPU and, for Sluice, object store PUTs.
//
// CPU is each broker's own process_cpu_seconds_total (Sluice's /metrics;
// bench/kfake serves the same series), scraped before and after a load.
//
// COMPARE_QUICK=1 (or --quick) runs everything with tiny durations, to
// check the harness end to end (TestQuick runs it in CI).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"sluice.dev/bench"
)

type config struct {
	sluice, kfake   string
	python          string
	confluentScript string
	duration        time.Duration // of each load
	// catchupFor is the catch-up read's --duration. Its MiB/s counts up
	// to the last record received, so a longer window does not lower it,
	// but the window's idle tail adds the broker's idle CPU to its
	// CPU-s/GiB: the duration of the load it reads back, where reading
	// is faster than writing, is enough; quick mode gives the consumer's
	// start-up (metadata, first fetch: a second or more on a busy
	// machine) room of its own.
	catchupFor time.Duration
	idle       time.Duration
	rounds     int
	lightRate  int
	recordSize int
	partitions int
	flush      time.Duration
	cacheBytes int64
	// warmup is left out of each latency load's figures (`sluice bench
	// --warmup`, and the same for the confluent and sarama loads): a
	// client's first records wait for its connections, metadata and
	// producer id, once, on every broker.
	warmup time.Duration
	// steadyCache is the playground's --cache-bytes for the peak load
	// with the cache full, and steadyFill the part of that load left
	// out of its figures while the cache fills.
	steadyCache int64
	steadyFill  time.Duration
	// The tail fan-out (tailFanout): pairs of loads at fanoutRate
	// records/s, without and with fanoutConsumers consumers at the head;
	// the consumers start fanoutLead before the producer and read
	// fanoutLinger past its end.
	fanoutRate      int
	fanoutConsumers int
	fanoutPairs     int
	fanoutLead      time.Duration
	fanoutLinger    time.Duration
	quick           bool
	verbose         bool
	out             string // BENCHMARKS.md, or empty
	results         string // directory for the JSON, or empty
	note            string // a sentence under the table's header

	progress io.Writer
	began    time.Time
}

func main() {
	c := &config{progress: os.Stdout}
	flag.StringVar(&c.sluice, "sluice", "bin/sluice", "the sluice binary (playground and bench)")
	flag.StringVar(&c.kfake, "kfake", "bin/kfake", "the kfake program (go build ./bench/kfake)")
	flag.StringVar(&c.python, "python", "/usr/bin/python3", "the Python with confluent_kafka (Debian: python3-confluent-kafka)")
	flag.StringVar(&c.confluentScript, "confluent-script", "bench/scripts/confluent_latency.py", "the confluent-kafka-python load")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of each load")
	flag.DurationVar(&c.idle, "idle", time.Minute, "how long the brokers sit idle for the idle figures")
	flag.IntVar(&c.rounds, "rounds", 2, "rounds; each runs every broker once, in turn")
	flag.IntVar(&c.lightRate, "light-rate", 5000, "records/s of the light load")
	flag.DurationVar(&c.flush, "flush-interval", 250*time.Millisecond, "the playground's --flush-interval")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "the start of each latency load left out of its figures (client start-up)")
	flag.Int64Var(&c.steadyCache, "steady-cache-bytes", 256<<20, "Sluice's --cache-bytes for the peak load with the cache full")
	flag.DurationVar(&c.steadyFill, "steady-fill", 5*time.Second, "the start of that load, left out while the cache fills")
	flag.IntVar(&c.fanoutRate, "tail-rate", 50000, "records/s of the tail fan-out's producer")
	flag.IntVar(&c.fanoutConsumers, "tail-consumers", 4, "consumers at the head in the tail fan-out, each reading every partition")
	flag.IntVar(&c.fanoutPairs, "tail-pairs", 2, "pairs of tail fan-out loads (no consumer, then --tail-consumers) per round")
	flag.Int64Var(&c.cacheBytes, "cache-bytes", 4<<30, "the playground's --cache-bytes: large enough that its window (half of it) holds the half load's topic, so that the catch-up read is served from the cache")
	flag.BoolVar(&c.quick, "quick", os.Getenv("COMPARE_QUICK") != "", "tiny durations, one round: checks the harness, measures nothing (default from COMPARE_QUICK)")
	flag.BoolVar(&c.verbose, "v", false, "also print each load's per-second lines")
	flag.StringVar(&c.out, "out", "BENCHMARKS.md", "file whose compare markers get the table; empty prints it only")
	flag.StringVar(&c.results, "results", "bench/results", "directory for the run's JSON; empty writes none")
	flag.StringVar(&c.note, "note", "", "a sentence printed under the table's header (for example the machine's state)")
	fromJSON := flag.String("from-json", "", "render the table of an earlier run's JSON into --out instead of measuring")
	flag.Parse()
	c.recordSize, c.partitions = 1024, 16
	c.fanoutLead, c.fanoutLinger = 1500*time.Millisecond, 2*time.Second
	if c.quick {
		c.quickSettings()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *fromJSON != "" {
		err = c.rerender(*fromJSON)
	} else {
		_, err = c.run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// quickSettings shrinks the run to check the harness in well under a
// minute: every load and figure, no meaning.
func (c *config) quickSettings() {
	c.quick = true
	c.duration = time.Second
	c.idle = 2 * time.Second
	c.rounds = 1
	c.lightRate = 500
	c.catchupFor = 4 * time.Second
	c.warmup = 250 * time.Millisecond
	c.steadyFill = 500 * time.Millisecond
	c.fanoutRate, c.fanoutConsumers, c.fanoutPairs = 2000, 2, 1
	c.fanoutLead, c.fanoutLinger = time.Second, time.Second
}

func (c *config) logf(format string, args ...any) {
	el := time.Since(c.began).Round(time.Second)
	fmt.Fprintf(c.progress, "[%2d:%02d] %s\n", int(el.Minutes()), int(el.Seconds())%60, fmt.Sprintf(format, args...))
}

// preflight fails fast, before minutes of loads, on what a later load
// would fail on.
func (c *config) preflight() error {
	for _, bin := range []string{c.sluice, c.kfake, c.python} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("preflight: %w", err)
		}
	}
	if _, err := os.Stat(c.confluentScript); err != nil {
		return fmt.Errorf("preflight: --confluent-script: %w", err)
	}
	if err := exec.Command(c.python, "-c", "import confluent_kafka").Run(); err != nil {
		return fmt.Errorf("preflight: %s cannot import confluent_kafka (apt-get install python3-confluent-kafka): %w", c.python, err)
	}
	return nil
}

func (c *config) run(ctx context.Context) (*Results, error) {
	c.began = time.Now()
	if c.catchupFor == 0 {
		c.catchupFor = c.duration
	}
	if err := c.preflight(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	res := &Results{
		Date: c.began.UTC().Truncate(time.Second), Host: host, Cores: runtime.NumCPU(), Arch: runtime.GOARCH,
		GoVersion: runtime.Version(), Commit: gitCommit(),
		Settings: Settings{Quick: c.quick, Rounds: c.rounds, PhaseSeconds: c.duration.Seconds(), IdleSeconds: c.idle.Seconds(),
			RecordSize: c.recordSize, Partitions: c.partitions, LightRate: c.lightRate,
			FlushInterval: c.flush.String(), CacheBytes: c.cacheBytes,
			WarmupSeconds: c.warmup.Seconds(), SteadyCacheBytes: c.steadyCache, SteadyFillSeconds: c.steadyFill.Seconds(),
			FanoutRate: c.fanoutRate, FanoutConsumers: c.fanoutConsumers, FanoutPairs: c.fanoutPairs},
	}
	kinds := brokerKinds()
	// Per round: Sluice 8 loads (one with its cache filling first), each
	// kfake 5, plus start-up and drains; then each broker's tail fan-out.
	fanout := time.Duration(3*2*c.fanoutPairs) * (c.duration + c.fanoutLead + c.fanoutLinger/2)
	est := time.Duration(c.rounds)*(18*c.duration+c.steadyFill+35*time.Second+fanout) + c.idle + 10*time.Second
	c.logf("compare: %d rounds × 3 brokers, %v loads; about %v in all", c.rounds, c.duration, est.Round(time.Minute/2))

	loop := time.Second
	if c.quick {
		loop = 200 * time.Millisecond
	}
	res.LoopbackMiBPS = loopbackMiBPS(loop)
	c.logf("loopback ceiling: %.0f MiB/s", res.LoopbackMiBPS)
	perConsumer := float64(c.fanoutRate * c.recordSize)
	floor, err := c.kernelSendFloor(ctx, c.fanoutConsumers, perConsumer, c.duration)
	if err != nil {
		return nil, err
	}
	res.KernelSendCPUPerGiB = floor
	c.logf("kernel's floor for the tail fan-out (1 MiB writes from memory to %d loopback readers at %.1f MiB/s each): %.2f CPU-s/GiB",
		c.fanoutConsumers, perConsumer/(1<<20), floor)

	idle, err := c.measureIdle(ctx, kinds)
	if err != nil {
		return nil, err
	}
	res.Idle = idle

	brokers := make([]BrokerResult, len(kinds))
	for i, k := range kinds {
		brokers[i] = BrokerResult{Key: k.key, Name: k.name}
	}
	confluent := ClientResult{Client: "confluent-kafka-python (librdkafka)", Settings: "enable.idempotence=true, linger.ms=5"}
	sarama := ClientResult{Client: "sarama", Settings: "Idempotent (so MaxOpenRequests 1: one request in flight per broker), Flush.Frequency 5 ms"}
	for r := 1; r <= c.rounds; r++ {
		var halfRate float64
		for i, k := range kinds {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			tag := fmt.Sprintf("round %d/%d %s", r, c.rounds, k.name)
			f, cl, err := c.round(ctx, tag, k, &halfRate)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", tag, err)
			}
			brokers[i].Rounds = append(brokers[i].Rounds, f)
			if cl != nil {
				confluent.Rounds = append(confluent.Rounds, cl[0])
				sarama.Rounds = append(sarama.Rounds, cl[1])
			}
		}
	}
	for i := range brokers {
		brokers[i].Median = medianOf(brokers[i].Rounds)
	}
	confluent.Median, sarama.Median = medianOf(confluent.Rounds), medianOf(sarama.Rounds)
	res.Brokers, res.Clients = brokers, []ClientResult{confluent, sarama}
	res.checkTargets()

	file := ""
	if c.results != "" {
		file = resultsName(c.results, res.Date)
		if err := writeResults(file, res); err != nil {
			return res, err
		}
	}
	block := res.render(file, c.note)
	fmt.Fprintln(c.progress)
	fmt.Fprintln(c.progress, block)
	if c.out != "" {
		if err := writeBetween(c.out, block); err != nil {
			return res, err
		}
		c.logf("table written to %s", c.out)
	}
	if file != "" {
		c.logf("figures written to %s", file)
	}
	return res, nil
}

// rerender writes the table of an earlier run into c.out.
func (c *config) rerender(file string) error {
	res, err := readResults(file)
	if err != nil {
		return err
	}
	// The targets are judged again from the medians: by today's rules.
	res.Targets = nil
	res.checkTargets()
	block := res.render(file, c.note)
	fmt.Fprintln(c.progress, block)
	if c.out == "" {
		return nil
	}
	return writeBetween(c.out, block)
}

// measureIdle starts every broker at once, makes one topic on each, and
// leaves them alone: their CPU and Sluice's PUTs over c.idle. Idle
// brokers barely touch the cores, so running them together does not
// disturb the figure.
func (c *config) measureIdle(ctx context.Context, kinds []brokerKind) ([]Idle, error) {
	c.logf("idle: all three brokers, one topic each, no client, %v", c.idle)
	var bs []*broker
	defer func() {
		for _, b := range bs {
			b.stop()
		}
	}()
	for _, k := range kinds {
		b, err := startBroker(c, k)
		if err != nil {
			return nil, err
		}
		bs = append(bs, b)
		if err := createTopics(ctx, b.bootstrap, int32(c.partitions), "idle"); err != nil {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
	}
	// Let start-up work (registration, first heartbeats) pass.
	settle := 3 * time.Second
	if c.quick {
		settle = 500 * time.Millisecond
	}
	if !sleepCtx(ctx, settle) {
		return nil, ctx.Err()
	}
	before := make([]counters, len(bs))
	for i, b := range bs {
		var err error
		if before[i], err = b.scrape(ctx); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if !sleepCtx(ctx, c.idle) {
		return nil, ctx.Err()
	}
	var out []Idle
	for i, b := range bs {
		after, err := b.scrape(ctx)
		if err != nil {
			return nil, err
		}
		secs := time.Since(start).Seconds()
		id := Idle{Key: b.kind.key, Seconds: secs, CPUSeconds: after.cpu - before[i].cpu}
		id.Cores = id.CPUSeconds / secs
		if b.kind.sluice {
			id.Puts = ptr(after.reqs["put"] - before[i].reqs["put"])
			c.logf("idle %-24s %.4f cores, %.0f PUT", b.kind.name, id.Cores, *id.Puts)
		} else {
			c.logf("idle %-24s %.4f cores", b.kind.name, id.Cores)
		}
		out = append(out, id)
	}
	return out, nil
}

// round runs every load against one fresh broker. *halfRate is set by
// Sluice's round (the first of each round) from its peak and used by the
// kfake rounds, so that every broker of a round gets the same rate.
func (c *config) round(ctx context.Context, tag string, k brokerKind, halfRate *float64) (Figures, []latency, error) {
	var f Figures
	b, err := startBroker(c, k)
	if err != nil {
		return f, nil, err
	}
	defer b.stop()
	fail := func(err error) (Figures, []latency, error) {
		return f, nil, fmt.Errorf("%w\nbroker's last output:\n%s", err, b.stderr.String())
	}
	topics := []string{"light", "peak", "half", "tail"}
	if k.sluice {
		topics = append(topics, "confluent", "sarama")
	}
	if err := createTopics(ctx, b.bootstrap, int32(c.partitions), topics...); err != nil {
		return fail(err)
	}
	gib := func(bytes int64) float64 { return float64(bytes) / (1 << 30) }

	// 1. Light load.
	c.logf("%s: produce at %d rec/s (franz-go)", tag, c.lightRate)
	light, err := c.benchRun(ctx, "produce", b.bootstrap, "light", "--rate", fmt.Sprint(c.lightRate), "--warmup", c.warmup.String())
	if err != nil {
		return fail(err)
	}
	f.LightRate = float64(c.lightRate)
	f.LightP50Ms, f.LightP99Ms = ms(light.Produce.Latency.P50), ms(light.Produce.Latency.P99)
	c.logf("%s:   p50 %s, p99 %s", tag, fmtMs(f.LightP50Ms), fmtMs(f.LightP99Ms))
	var clients []latency
	if k.sluice {
		c.logf("%s: produce at %d rec/s (confluent-kafka-python)", tag, c.lightRate)
		cl, err := c.confluentRun(ctx, b.bootstrap, "confluent", c.lightRate)
		if err != nil {
			return fail(err)
		}
		c.logf("%s:   p50 %s, p99 %s", tag, fmtMs(cl.P50Ms), fmtMs(cl.P99Ms))
		c.logf("%s: produce at %d rec/s (sarama)", tag, c.lightRate)
		sa, err := c.saramaRun(ctx, b.bootstrap, "sarama", c.lightRate)
		if err != nil {
			return fail(err)
		}
		c.logf("%s:   p50 %s, p99 %s", tag, fmtMs(sa.P50Ms), fmtMs(sa.P99Ms))
		clients = []latency{cl, sa}
	}

	// 2. Peak.
	c.logf("%s: produce at full speed", tag)
	var peak *bench.Result
	d, err := b.measure(ctx, func() (err error) {
		peak, err = c.benchRun(ctx, "produce", b.bootstrap, "peak", "--rate", "0")
		return err
	})
	if err != nil {
		return fail(err)
	}
	f.PeakMiBPS, f.PeakRecordsPS = peak.Produce.MiBPS, peak.Produce.RecordsPS
	f.PeakCPUPerGiB = d.cpu / gib(peak.Produce.Bytes)
	if k.sluice {
		f.PeakPutsPerGiB = ptr(d.reqs["put"] / gib(peak.Produce.Bytes))
		*halfRate = math.Round(f.PeakRecordsPS / 2)
	}
	c.logf("%s:   %.1f MiB/s, %.2f CPU-s/GiB", tag, f.PeakMiBPS, f.PeakCPUPerGiB)
	if k.sluice {
		if err := c.steadyPeak(ctx, tag, k, &f); err != nil {
			return fail(err)
		}
	}
	if *halfRate < 1 {
		return fail(fmt.Errorf("no half-of-peak rate: Sluice's peak was %.0f records/s", f.PeakRecordsPS))
	}

	// 3. Half of Sluice's peak, produce only.
	f.HalfRate = *halfRate
	rate := fmt.Sprint(int(f.HalfRate))
	c.logf("%s: produce at %s rec/s (half of Sluice's peak)", tag, rate)
	var half *bench.Result
	dHalf, err := b.measure(ctx, func() (err error) {
		half, err = c.benchRun(ctx, "produce", b.bootstrap, "half", "--rate", rate, "--warmup", c.warmup.String())
		return err
	})
	if err != nil {
		return fail(err)
	}
	f.HalfMiBPS = half.Produce.MiBPS
	f.HalfP50Ms, f.HalfP99Ms = ms(half.Produce.Latency.P50), ms(half.Produce.Latency.P99)
	f.HalfCPUPerGiB = dHalf.cpu / gib(half.Produce.Bytes)
	c.logf("%s:   %.1f MiB/s, p50 %s, p99 %s, %.2f CPU-s/GiB", tag, f.HalfMiBPS, fmtMs(f.HalfP50Ms), fmtMs(f.HalfP99Ms), f.HalfCPUPerGiB)

	// 4. Catch-up: read the half load's topic back from the start.
	c.logf("%s: consume %.2f GiB from the earliest offset", tag, gib(half.Produce.Bytes))
	var catchup *bench.Result
	d, err = b.measure(ctx, func() (err error) {
		catchup, err = c.benchRunFor(ctx, c.catchupFor, "consume", b.bootstrap, "half", "--from", "earliest")
		return err
	})
	if err != nil {
		return fail(err)
	}
	f.CatchupGiB = gib(catchup.Consume.Bytes)
	f.CatchupMiBPS = catchup.Consume.MiBPS
	f.CatchupCPUPerGiB = d.cpu / f.CatchupGiB
	if k.sluice {
		f.CatchupGets = ptr(d.reqs["get"])
	}
	c.logf("%s:   %.2f GiB at %.1f MiB/s, %.2f CPU-s/GiB", tag, f.CatchupGiB, f.CatchupMiBPS, f.CatchupCPUPerGiB)

	// 5. The same rate with a consumer at the head.
	c.logf("%s: produce at %s rec/s with a consumer at the head", tag, rate)
	var e2e *bench.Result
	d, err = b.measure(ctx, func() (err error) {
		e2e, err = c.benchRun(ctx, "e2e", b.bootstrap, "tail", "--rate", rate, "--warmup", c.warmup.String())
		return err
	})
	if err != nil {
		return fail(err)
	}
	f.E2EP99Ms, f.E2EProduceP99Ms = ms(e2e.Consume.Latency.P99), ms(e2e.Produce.Latency.P99)
	f.TailMiBPS = e2e.Consume.MiBPS
	produceShare := dHalf.cpu * float64(e2e.Produce.Bytes) / float64(half.Produce.Bytes)
	f.TailCPUPerGiB = (d.cpu - produceShare) / gib(e2e.Consume.Bytes)
	c.logf("%s:   e2e p99 %s, tail read %.1f MiB/s (%.2f CPU-s/GiB by difference)", tag, fmtMs(f.E2EP99Ms), f.TailMiBPS, f.TailCPUPerGiB)

	// 6. Tail fan-out. Sluice's ran in steadyPeak's playground; a
	// kfake's runs in a fresh broker too, this one stopped first: by now
	// it holds the round's records (kfake in memory: gigabytes of heap),
	// and collecting them made its pairs' difference noise (−0.10 and
	// 0.30 CPU-s/GiB for kfake in memory at 4da8c01).
	if !k.sluice {
		b.stop()
		if err := c.freshFanout(ctx, tag, k, &f); err != nil {
			return f, nil, err
		}
	}
	return f, clients, nil
}

// freshFanout runs the tail fan-out against a fresh broker of kind k,
// after c.steadyFill of produce at the fan-out's rate (not counted), as
// Sluice's runs after its cache-full peak.
func (c *config) freshFanout(ctx context.Context, tag string, k brokerKind, f *Figures) error {
	b, err := startBroker(c, k)
	if err != nil {
		return err
	}
	defer b.stop()
	err = createTopics(ctx, b.bootstrap, int32(c.partitions), "fanout")
	if err == nil {
		_, err = c.benchRunFor(ctx, c.steadyFill, "produce", b.bootstrap, "fanout", "--rate", fmt.Sprint(c.fanoutRate))
	}
	if err == nil {
		err = c.tailFanout(ctx, tag, b, "fanout", f)
	}
	if err != nil {
		return fmt.Errorf("%w\nbroker's last output:\n%s", err, b.stderr.String())
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// loopbackMiBPS measures one TCP stream over loopback, both ends in this
// process: the most any broker here can move.
func loopbackMiBPS(d time.Duration) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			break
		}
	}
	c.Close()
	n := <-got
	return float64(n) / (1 << 20) / time.Since(start).Seconds()
}

// steadyPeak measures Sluice's peak with its block cache full: a
// playground of its own with --cache-bytes c.steadyCache, produced to at
// full speed for c.steadyFill (not counted: the cache fills, from memory
// the process touches for the first time) and c.duration more. The peak
// load above fills the playground's cache (--cache-bytes) from cold
// memory throughout, which on this VM costs more than the rest of the
// produce path (BENCHMARKS.md); an agent spends its life with its cache
// full.
func (c *config) steadyPeak(ctx context.Context, tag string, k brokerKind, f *Figures) error {
	cc := *c
	cc.cacheBytes = c.steadyCache
	b, err := startBroker(&cc, k)
	if err != nil {
		return err
	}
	defer b.stop()
	if err := createTopics(ctx, b.bootstrap, int32(c.partitions), "steady", "fanout"); err != nil {
		return err
	}
	c.logf("%s: produce at full speed, cache full (--cache-bytes %d, first %v not counted)", tag, c.steadyCache, c.steadyFill)
	res, err := c.benchRunFor(ctx, c.steadyFill+c.duration, "produce", b.bootstrap, "steady", "--rate", "0",
		"--warmup", c.steadyFill.String(), "--agent-metrics", b.metrics)
	if err != nil {
		return fmt.Errorf("%w\nbroker's last output:\n%s", err, b.stderr.String())
	}
	a := res.Agent
	if a == nil || a.GiB == 0 || len(a.Missing) > 0 {
		return fmt.Errorf("the cache-full peak load has no agent figures: %+v", a)
	}
	f.SteadyMiBPS = ptr(a.GiB * 1024 / c.duration.Seconds())
	f.SteadyCPUPerGiB = ptr(a.CPUPerGiB)
	c.logf("%s:   %.1f MiB/s, %.2f CPU-s/GiB", tag, *f.SteadyMiBPS, *f.SteadyCPUPerGiB)
	if err := c.tailFanout(ctx, tag, b, "fanout", f); err != nil {
		return fmt.Errorf("%w\nbroker's last output:\n%s", err, b.stderr.String())
	}
	return nil
}

package loadtest

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrFailed is wrapped by the error Run returns when the verification
// found a problem (or nothing was acknowledged); the report says which.
var ErrFailed = errors.New("loadtest failed")

// maxProblems bounds the problems a report lists.
const maxProblems = 20

// runner is one run's state.
type runner struct {
	cfg   Config
	holds holds
	rng   *rand.Rand // the cluster's start, then the fault schedule's goroutine only
	c     *cluster
	w     *workload
	topic string
	start time.Time // of the load

	current atomic.Pointer[string] // the fault in progress, for progress lines

	mu       sync.Mutex
	events   []FaultEvent // guarded by mu
	warnings []string     // guarded by mu
	faultPs  problems     // guarded by mu; problems found while injecting
}

func (r *runner) logf(format string, args ...any) {
	if r.cfg.Progress == nil {
		return
	}
	at := ""
	if !r.start.IsZero() {
		at = fmt.Sprintf("%6.1fs ", time.Since(r.start).Seconds())
	}
	fmt.Fprintf(r.cfg.Progress, "loadtest: %s%s\n", at, fmt.Sprintf(format, args...))
}

func (r *runner) warn(format string, args ...any) {
	r.mu.Lock()
	r.warnings = append(r.warnings, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *runner) problem(format string, args ...any) {
	r.mu.Lock()
	r.faultPs.addf(format, args...)
	r.mu.Unlock()
}

// Run starts a cluster of its own, runs the load with faults on a
// schedule, verifies and reports. It returns the report and, when the
// verification failed, an error wrapping ErrFailed; any other error means
// the harness itself could not run (no report then). Every child process
// is stopped before Run returns, and the run's directory is removed
// unless cfg.Keep.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		var b [8]byte
		crand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:]) >> 1
	}
	began := time.Now()
	r := &runner{
		cfg:   cfg,
		holds: holdsFor(cfg.FaultEvery),
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
	}
	r.faultPs.limit = maxProblems
	runID := fmt.Sprintf("%06x", r.rng.Uint32()&0xffffff)
	r.topic = "loadtest-" + runID

	dir, err := os.MkdirTemp("", "sluice-loadtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cfg.Keep {
			r.logf("kept %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	r.logf("starting meta and %d agents (seed %d, directory %s)", cfg.Agents, cfg.Seed, dir)
	c, err := startCluster(ctx, cfg, dir, runID, r.rng, r.logf, func(name, why string) {
		r.logf("%s exited by itself: %s", name, why)
		r.problem("%s exited by itself (no fault did that): %s", name, why)
	})
	defer c.close() // before the directory goes: deferred later, runs earlier
	if err != nil {
		return nil, fmt.Errorf("start the cluster: %w", err)
	}
	r.c = c
	seeds := c.bootstrap()
	r.logf("cluster up: meta %s, agents %s", c.metaAddr, strings.Join(seeds, ","))

	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	if err := createTopic(ctx, adm, r.topic, cfg.Partitions); err != nil {
		return nil, err
	}

	w := &workload{cfg: cfg, topic: r.topic, seeds: seeds, oracle: &Oracle{}}
	r.w = w
	defer w.close()
	if err := w.start(); err != nil {
		return nil, err
	}
	started := time.Now()

	// Consumers run until the groups have caught up; producers until the
	// load ends.
	cctx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	var cwg sync.WaitGroup
	for _, g := range w.groups {
		for _, cl := range g.clients {
			cwg.Add(1)
			go func() { defer cwg.Done(); w.consume(cctx, g, cl) }()
		}
	}
	r.start = time.Now()
	stopProducing := make(chan struct{})
	var loops, acks sync.WaitGroup
	for i, cl := range w.producers {
		rate := float64(cfg.Rate) / float64(cfg.Producers)
		loops.Add(1)
		go func() { defer loops.Done(); w.produce(ctx, stopProducing, i, cl, rate, &acks) }()
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() { defer close(progressDone); r.progress(stopProgress) }()
	defer func() {
		select {
		case <-stopProgress:
		default:
			close(stopProgress)
		}
		<-progressDone
	}()

	// The load: --duration, and whatever fault started before its end.
	end := r.start.Add(cfg.Duration)
	faultsDone := make(chan struct{})
	go func() { defer close(faultsDone); r.runFaults(ctx, end) }()
	select {
	case <-ctx.Done():
	case <-time.After(cfg.Duration):
	}
	select {
	case <-ctx.Done():
	case <-faultsDone:
	}
	if ctx.Err() != nil {
		close(stopProducing)
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}
	close(stopProducing)
	loops.Wait()
	load := time.Since(r.start)
	r.logf("load done after %.1fs: stopping producers, waiting for in-flight produces", load.Seconds())

	// In-flight produces finish (or fail); what is still unsent when the
	// flush times out is cut off by Close.
	flushStart := time.Now()
	fctx, cancelFlush := context.WithTimeout(ctx, min(cfg.DrainTimeout, 30*time.Second))
	for _, p := range w.producers {
		if err := p.Flush(fctx); err != nil {
			r.warn("producers' flush at the end: %v", err)
			break
		}
	}
	cancelFlush()
	for _, p := range w.producers {
		p.Close()
	}
	acks.Wait()
	flushTook := time.Since(flushStart)
	close(stopProgress)
	<-progressDone

	// End offsets now that nothing produces, then every group catches up.
	catchStart := time.Now()
	ends, err := listOffsets(ctx, adm, r.topic, false)
	if err != nil {
		return nil, err
	}
	caughtUp := r.waitGroups(ctx, ends)
	stopConsumers()
	cwg.Wait()
	for _, g := range w.groups {
		for _, cl := range g.clients {
			cl.Close()
		}
	}
	catchTook := time.Since(catchStart)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted: %w", ctx.Err())
	}

	// Read the whole log back with a fresh consumer and check it.
	verifyStart := time.Now()
	r.logf("reading the log back from offset 0 and verifying")
	starts, err := listOffsets(ctx, adm, r.topic, true)
	if err != nil {
		return nil, err
	}
	log, err := readLog(ctx, seeds, r.topic, ends)
	if err != nil {
		return nil, err
	}
	ps := &problems{limit: maxProblems}
	r.mu.Lock()
	ps.list, ps.total = append(ps.list, r.faultPs.list...), r.faultPs.total
	r.mu.Unlock()
	if w.acked.Load() == 0 {
		ps.addf("nothing was acknowledged: the cluster took no writes at all")
	}
	verify(w.oracle, logCheck{topic: r.topic, partitions: cfg.Partitions, log: log, starts: starts, ends: ends, groups: w.groups}, ps)
	verifyTook := time.Since(verifyStart)

	rep := &Report{
		Pass: ps.total == 0, Seed: cfg.Seed,
		Topic: r.topic, Partitions: cfg.Partitions, Agents: cfg.Agents, Store: redactStore(cfg.Store), Bucket: c.bucket,
		Producers: cfg.Producers, Rate: cfg.Rate, Groups: cfg.Groups, Members: cfg.Members,
		Load: load, LoadS: load.Seconds(),
		Acked: w.acked.Load(), Failed: w.failed.Load(), CutOff: w.cutOff.Load(),
		AckedPerS:     float64(w.acked.Load()) / load.Seconds(),
		ProduceErrors: w.firstErrs,
		Problems:      ps.list, ProblemCount: ps.total,
		Timings: Timings{
			StartS: started.Sub(began).Seconds(), LoadS: load.Seconds(), FlushS: flushTook.Seconds(),
			CatchUpS: catchTook.Seconds(), VerifyS: verifyTook.Seconds(), TotalS: time.Since(began).Seconds(),
		},
	}
	for _, recs := range log {
		rep.LogRecords += int64(len(recs))
	}
	r.mu.Lock()
	rep.Faults = append([]FaultEvent{}, r.events...)
	rep.Warnings = r.warnings
	r.mu.Unlock()
	for i, g := range w.groups {
		rep.GroupStats = append(rep.GroupStats, GroupStats{
			Name: g.name, Received: g.distinct.Load(), Redelivered: g.delivered.Load() - g.distinct.Load(),
			FetchErrors: g.fetchErrs.Load(), CaughtUp: caughtUp[i],
		})
	}
	if cfg.Keep {
		rep.Dir = dir
	}
	if !rep.Pass {
		return rep, fmt.Errorf("%w: %d problem(s); first: %s", ErrFailed, ps.total, ps.list[0])
	}
	return rep, nil
}

// progress prints a line every 5 s until stop is closed.
func (r *runner) progress(stop <-chan struct{}) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var b strings.Builder
		fmt.Fprintf(&b, "acked %d, failed %d, consumed", r.w.acked.Load(), r.w.failed.Load())
		for _, g := range r.w.groups {
			fmt.Fprintf(&b, " %s=%d", g.name[strings.LastIndexByte(g.name, '-')+1:], g.distinct.Load())
		}
		if f := r.current.Load(); f != nil {
			fmt.Fprintf(&b, ", fault: %s", *f)
		}
		r.logf("%s", b.String())
	}
}

// waitGroups waits, up to the drain timeout, until every group received
// every offset below the end offsets; it reports which did.
func (r *runner) waitGroups(ctx context.Context, ends map[int32]int64) []bool {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	done := make([]bool, len(r.w.groups))
	lastLog := time.Now()
	for {
		all := true
		var missing int64
		for i, g := range r.w.groups {
			if !done[i] {
				var m int64
				done[i], m = g.caughtUp(ends)
				missing += m
			}
			all = all && done[i]
		}
		if all || ctx.Err() != nil {
			return done
		}
		if time.Now().After(deadline) {
			r.logf("groups still miss %d records after %s: giving up waiting", missing, r.cfg.DrainTimeout)
			return done
		}
		if time.Since(lastLog) > 5*time.Second {
			r.logf("waiting for the groups to catch up: %d records to go", missing)
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createTopic creates the run's topic, retrying while the cluster settles.
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, partitions, 1, nil, topic)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// listOffsets lists the topic's start or end offsets, retrying a while.
func listOffsets(ctx context.Context, adm *kadm.Client, topic string, start bool) (map[int32]int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var lo kadm.ListedOffsets
		var err error
		if start {
			lo, err = adm.ListStartOffsets(cctx, topic)
		} else {
			lo, err = adm.ListEndOffsets(cctx, topic)
		}
		cancel()
		if err == nil {
			err = lo.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			return out, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, fmt.Errorf("list offsets of %s: %w", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readLog reads every partition from offset 0 up to its end offset with a
// consumer of its own (no group). A partition that stops short is read
// until nothing has arrived for idleLimit: what is missing then is for
// verify to report.
func readLog(ctx context.Context, seeds []string, topic string, ends map[int32]int64) (map[TopicPartition][]Consumed, error) {
	const idleLimit = 15 * time.Second
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p, end := range ends {
		if end > 0 {
			offsets[p] = kgo.NewOffset().At(0)
			want++
		}
	}
	out := map[TopicPartition][]Consumed{}
	if want == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID("loadtest-verify"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	next := map[int32]int64{}
	complete := 0
	lastProgress := time.Now()
	for complete < want && time.Since(lastProgress) < idleLimit {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		f := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		f.EachRecord(func(r *kgo.Record) {
			lastProgress = time.Now()
			tp := TopicPartition{Topic: r.Topic, Partition: r.Partition}
			out[tp] = append(out[tp], Consumed{Offset: r.Offset, Value: r.Value})
			before := next[r.Partition] >= ends[r.Partition]
			next[r.Partition] = r.Offset + 1
			if !before && next[r.Partition] >= ends[r.Partition] {
				complete++
			}
		})
	}
	return out, nil
}

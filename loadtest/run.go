package loadtest

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
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
	obs     *observer              // lifecycle mode only

	mu       sync.Mutex
	events   []FaultEvent // guarded by mu
	warnings []string     // guarded by mu
	faultPs  problems     // guarded by mu; problems found while injecting
	samples  []Sample     // guarded by mu; lifecycle mode's samples
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
	var topicConfigs map[string]*string
	if cfg.Retention > 0 {
		ms := strconv.FormatInt(cfg.Retention.Milliseconds(), 10)
		topicConfigs = map[string]*string{"retention.ms": &ms}
	}
	if err := createTopic(ctx, adm, r.topic, cfg.Partitions, topicConfigs); err != nil {
		return nil, err
	}
	if cfg.Lifecycle() {
		r.obs = newObserver(c)
		defer r.obs.close()
		t := timingsFor(cfg)
		r.logf("lifecycle mode: retention %s, jobs every %s on %s only, compaction min age %s, max wait %s, gc grace %s, orphan scan every %s",
			cfg.Retention, t.interval, c.agents[jobsAgent].id, t.minAge, t.maxWait, t.grace, t.orphanScan)
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
	if w.txn != nil {
		rate := float64(cfg.Rate) / float64(cfg.Producers)
		for i := range cfg.Producers {
			loops.Add(1)
			go func() { defer loops.Done(); w.txn.run(ctx, stopProducing, i, cfg.Seed, rate) }()
		}
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() { defer close(progressDone); r.progress(stopProgress) }()
	// The lifecycle sampler runs until Run returns: through the orphan
	// wait after the load.
	samplerDone := make(chan struct{})
	stopSampler := make(chan struct{})
	if r.obs != nil {
		go func() { defer close(samplerDone); r.sampleLoop(ctx, stopSampler) }()
	} else {
		close(samplerDone)
	}
	defer func() { close(stopSampler); <-samplerDone }()
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
	if w.txn != nil {
		// A transaction a given-up client left open would hold the last
		// stable offset back until meta's timeout: fence them all now.
		r.logf("fencing every transactional id (InitProducerId), so that no transaction stays open")
		if err := w.txn.fence(ctx, cfg.DrainTimeout); err != nil {
			r.problem("%v", err)
		}
	}
	flushTook := time.Since(flushStart)
	lastUpload := time.Now() // nothing produces any more: no upload but compaction's after this
	close(stopProgress)
	<-progressDone

	// End offsets now that nothing produces, then every group catches up.
	catchStart := time.Now()
	ends, err := listOffsets(ctx, adm, r.topic, false)
	if err != nil {
		return nil, err
	}
	// In transactions mode the groups read with read_committed: they
	// must get what a fresh read_committed read gets, so that read comes
	// first (with the read_uncommitted one), and the groups wait for its
	// records.
	var views *txnViews
	var want map[int32][]int64
	if w.txn != nil {
		r.logf("reading the log back with read_uncommitted and read_committed")
		if views, err = r.readTxnViews(ctx, adm, seeds, ends); err != nil {
			return nil, err
		}
		want = views.committedOffsets()
	}
	caughtUp := r.waitGroups(ctx, adm, ends, want)
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
	readFrom, err := listOffsets(ctx, adm, r.topic, true)
	if err != nil {
		return nil, err
	}
	ps := &problems{limit: maxProblems}
	r.mu.Lock()
	ps.list, ps.total = append(ps.list, r.faultPs.list...), r.faultPs.total
	r.mu.Unlock()
	var log map[TopicPartition][]Consumed
	var txnStats *TxnStats
	if w.txn != nil {
		r.logf("verifying transactions")
		txnStats, log = r.verifyTxn(views, ps), views.unc
	} else {
		r.logf("reading the log back from the log start offsets and verifying")
		log, err = readLog(ctx, seeds, r.topic, readFrom, ends)
		if err != nil {
			return nil, err
		}
	}
	// The log start after the read is the one that counts: with
	// retention it may have moved while the read went on, and what lies
	// below it may be missing from the read.
	starts, err := listOffsets(ctx, adm, r.topic, true)
	if err != nil {
		return nil, err
	}
	if w.acked.Load() == 0 {
		ps.addf("nothing was acknowledged: the cluster took no writes at all")
	}
	if w.txn == nil {
		verify(w.oracle, logCheck{topic: r.topic, partitions: cfg.Partitions, log: log, starts: starts, ends: ends, groups: w.groups, retention: cfg.Retention > 0}, ps)
	}
	verifyTook := time.Since(verifyStart)

	var lc *Lifecycle
	if r.obs != nil {
		lc = r.lifecycleVerdict(ctx, load, lastUpload, ps)
	}

	rep := &Report{
		Pass: ps.total == 0, Seed: cfg.Seed,
		Topic: r.topic, Partitions: cfg.Partitions, Agents: cfg.Agents, Store: redactStore(cfg.Store), Bucket: c.bucket,
		Producers: cfg.Producers, Rate: cfg.Rate, Groups: cfg.Groups, Members: cfg.Members,
		Load: load, LoadS: load.Seconds(),
		Acked: w.acked.Load(), Failed: w.failed.Load(), CutOff: w.cutOff.Load(),
		AckedPerS:     float64(w.acked.Load()) / load.Seconds(),
		ProduceErrors: w.firstErrs,
		Problems:      ps.list, ProblemCount: ps.total,
		Lifecycle: lc,
		Txn:       txnStats,
		Retention: cfg.Retention.String(), Expired: expiredBelow(w.oracle, r.topic, starts),
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
			FetchErrors: g.fetchErrs.Load(), CaughtUp: caughtUp[i], Expired: g.expired,
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
		if r.w.txn != nil {
			fmt.Fprintf(&b, "; %s", r.w.txn.progress())
		}
		if f := r.current.Load(); f != nil {
			fmt.Fprintf(&b, ", fault: %s", *f)
		}
		r.logf("%s", b.String())
	}
}

// waitGroups waits, up to the drain timeout, until every group received
// every offset below the end offsets (and, with retention, at or above
// the log start, listed again every few seconds); it reports which did.
//
// want, when set (transactions mode), replaces the offsets to wait for:
// per partition, the offsets of the records read_committed shows.
func (r *runner) waitGroups(ctx context.Context, adm *kadm.Client, ends map[int32]int64, want map[int32][]int64) []bool {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	done := make([]bool, len(r.w.groups))
	lastLog := time.Now()
	var starts map[int32]int64
	var listed time.Time
	for {
		if r.cfg.Retention > 0 && time.Since(listed) > 2*time.Second {
			if s, err := listOffsets(ctx, adm, r.topic, true); err == nil {
				starts, listed = s, time.Now()
			}
		}
		all := true
		var missing int64
		for i, g := range r.w.groups {
			if !done[i] {
				var m int64
				if want != nil {
					done[i], m = g.hasAll(want)
				} else {
					done[i], m = g.caughtUp(starts, ends)
				}
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
func createTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		resp, err := adm.CreateTopic(cctx, partitions, 1, configs, topic)
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
	list := adm.ListEndOffsets
	if start {
		list = adm.ListStartOffsets
	}
	return listOffsetsBy(ctx, topic, list)
}

// listStableOffsets lists the topic's last stable offsets (ListOffsets
// latest with read_committed), retrying a while.
func listStableOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	return listOffsetsBy(ctx, topic, adm.ListCommittedOffsets)
}

func listOffsetsBy(ctx context.Context, topic string, list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		lo, err := list(cctx, topic)
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

// readLog reads every partition from its start offset up to its end
// offset with a consumer of its own (no group). Should retention move
// the log start past the read, the consumer resets to the new start
// (OFFSET_OUT_OF_RANGE, then the earliest offset). A partition that stops
// short is read until nothing has arrived for idleLimit: what is missing
// then is for verify to report.
//
// opts are added to the reader's options: transactions mode reads with
// read_committed and keeps control records, so that a partition whose
// last offset is a marker is read to its end.
func readLog(ctx context.Context, seeds []string, topic string, starts, ends map[int32]int64, opts ...kgo.Opt) (map[TopicPartition][]Consumed, error) {
	const idleLimit = 15 * time.Second
	offsets := map[int32]kgo.Offset{}
	want := 0
	for p, end := range ends {
		if start := starts[p]; end > start {
			offsets[p] = kgo.NewOffset().At(start)
			want++
		}
	}
	out := map[TopicPartition][]Consumed{}
	if want == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("loadtest-verify"),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250 * time.Millisecond)}, opts...)...)
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
			out[tp] = append(out[tp], Consumed{Offset: r.Offset, Value: r.Value, Control: r.Attrs.IsControl()})
			before := next[r.Partition] >= ends[r.Partition]
			next[r.Partition] = r.Offset + 1
			if !before && next[r.Partition] >= ends[r.Partition] {
				complete++
			}
		})
	}
	return out, nil
}

// sampleLoop takes a lifecycle sample every sampleEvery until stop, and
// prints each.
func (r *runner) sampleLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(sampleEvery(timingsFor(r.cfg).interval))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := r.obs.sample(ctx, time.Since(r.start))
		r.mu.Lock()
		r.samples = append(r.samples, s)
		r.mu.Unlock()
		r.logf("lifecycle: %s", s)
	}
}

// lifecycleVerdict checks the plateau over the load and waits for the
// orphans; failures go to ps.
func (r *runner) lifecycleVerdict(ctx context.Context, load time.Duration, lastUpload time.Time, ps *problems) *Lifecycle {
	t := timingsFor(r.cfg)
	lc := &Lifecycle{
		Retention: r.cfg.Retention.String(), Interval: t.interval.String(), MinAge: t.minAge.String(), MaxWait: t.maxWait.String(),
		Grace: t.grace.String(), OrphanScan: t.orphanScan.String(),
	}
	if r.cfg.Retention > 0 {
		lc.RetCheck = t.retentionCheck.String()
	} else {
		lc.Retention = "off"
	}
	r.mu.Lock()
	samples := append([]Sample(nil), r.samples...)
	r.mu.Unlock()
	if r.cfg.Retention > 0 {
		// Without retention the bucket and the index grow with the load:
		// there is no plateau to show.
		lc.Plateau = plateauChecks(samples, load, t.interval, faultStall(r.cfg, r.holds))
	}
	for _, c := range lc.Plateau {
		if !c.OK {
			if c.Note != "" {
				ps.addf("plateau of %s not shown: %s", c.What, c.Note)
			} else {
				ps.addf("%s did not plateau: at most %d over the last third of the load, bound %d (1.25 x %d, the middle third's maximum, + slack %d)",
					c.What, c.LastMax, c.Bound, c.MiddleMax, c.Slack)
			}
		}
	}
	lc.Orphans = r.obs.waitOrphans(ctx, lastUpload, t.orphanWait(), t.orphanDeadline(), r.logf)
	if !lc.Orphans.OK && ctx.Err() == nil {
		ps.addf("orphans: %s", lc.Orphans.Detail)
	}
	r.mu.Lock()
	lc.Samples = append([]Sample(nil), r.samples...)
	r.mu.Unlock()
	for _, a := range r.c.agents {
		_, _ = r.obs.scrapeAgent(ctx, a)
	}
	lc.JobsAtEnd = r.obs.jobCounts()
	if lc.JobsAtEnd.Compactions == 0 {
		ps.addf("no compaction job ran in the whole run")
	}
	if lc.JobsAtEnd.Deletes == 0 {
		ps.addf("no garbage collection (delete) job ran in the whole run")
	}
	return lc
}

// expiredBelow counts acknowledged records below the final log start:
// expired by retention before the read back.
func expiredBelow(o *Oracle, topic string, starts map[int32]int64) int64 {
	var n int64
	for tp, acks := range o.Acked() {
		if tp.Topic != topic {
			continue
		}
		for _, a := range acks {
			if a.Offset < starts[tp.Partition] {
				n++
			}
		}
	}
	return n
}

package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Mode is what a run does.
type Mode string

const (
	ModeProduce Mode = "produce"
	ModeConsume Mode = "consume"
	ModeE2E     Mode = "e2e"
)

// RunProduce produces for cfg.Duration and reports throughput and produce
// latency (Produce call to acknowledgement).
func RunProduce(ctx context.Context, cfg Config) (*Result, error) {
	return run(ctx, cfg, ModeProduce)
}

// RunConsume consumes for cfg.Duration and reports throughput, and the
// end-to-end latency of records produced (by anyone running `sluice bench
// produce`) after the run started.
func RunConsume(ctx context.Context, cfg Config) (*Result, error) {
	return run(ctx, cfg, ModeConsume)
}

// RunE2E produces for cfg.Duration while consumers read from the end
// offsets taken just before the first record, then waits for the
// consumers to catch up; it reports both sides and the end-to-end latency
// from the timestamp in each record to its receipt.
func RunE2E(ctx context.Context, cfg Config) (*Result, error) {
	return run(ctx, cfg, ModeE2E)
}

// runner is one run's shared state. Counters are atomics bumped from
// franz-go callbacks and consumer loops; the sampler reads them once a
// second.
type runner struct {
	cfg   Config
	mode  Mode
	start time.Time

	sent      atomic.Int64 // records handed to Produce
	acked     atomic.Int64
	ackedB    atomic.Int64
	prodErrs  atomic.Int64
	aborted   atomic.Int64 // failed because the run was interrupted
	consumed  atomic.Int64
	consumedB atomic.Int64
	consErrs  atomic.Int64
	// countFrom (unix nanos) is the end of the warm-up: latencies of
	// records sent before it are not recorded, and the agent's figures
	// divide by winBytes, the bytes sent (produce) or received (consume)
	// from it on.
	countFrom int64
	winBytes  atomic.Int64

	prodLat *Recorder
	e2eLat  *Recorder

	errMu     sync.Mutex
	firstErrs map[string]string // guarded by errMu; side → first error text

	recPool sync.Pool // *kgo.Record with a RecordSize value, filler in place
	filler  []byte
}

func (r *runner) noteErr(side string, err error) {
	r.errMu.Lock()
	if _, ok := r.firstErrs[side]; !ok {
		r.firstErrs[side] = err.Error()
	}
	r.errMu.Unlock()
}

func run(ctx context.Context, cfg Config, mode Mode) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, mode: mode, prodLat: NewRecorder(), e2eLat: NewRecorder(), firstErrs: map[string]string{}}
	rng := rand.New(rand.NewPCG(1, 2))
	r.filler = make([]byte, cfg.RecordSize)
	for i := range r.filler {
		r.filler[i] = 'A' + byte(rng.IntN(26))
	}
	r.recPool.New = func() any {
		return &kgo.Record{Value: append([]byte(nil), r.filler...)}
	}

	admin, err := kgo.NewClient(cfg.seedOpts()...)
	if err != nil {
		return nil, fmt.Errorf("--brokers: %w", err)
	}
	defer admin.Close()
	setupCtx, cancelSetup := context.WithTimeout(ctx, 30*time.Second)
	defer cancelSetup()

	var partitions int32
	if mode == ModeConsume {
		partitions, err = topicPartitions(setupCtx, admin, cfg.Topic)
		if err == nil && partitions == 0 {
			err = fmt.Errorf("topic %q does not exist: produce to it first or check --topic", cfg.Topic)
		}
	} else {
		partitions, err = ensureTopic(setupCtx, admin, cfg.Topic, cfg.Partitions, cfg.TopicConfigs)
	}
	if err != nil {
		return nil, err
	}

	var groups bool
	if cfg.Group != "" && mode != ModeProduce {
		if groups, err = supportsGroups(setupCtx, admin); err != nil {
			return nil, err
		}
		if !groups {
			return nil, fmt.Errorf("the cluster at --brokers does not serve consumer groups (no JoinGroup/FindCoordinator in ApiVersions): leave --group empty to assign partitions to the consumers directly")
		}
	}

	var before map[string]float64
	if cfg.AgentMetrics != "" {
		if before, err = scrape(setupCtx, cfg.AgentMetrics); err != nil {
			return nil, err
		}
	}

	// Consumers first, so that an e2e run misses none of its records.
	var consumers []*kgo.Client
	defer func() {
		for _, c := range consumers {
			c.Close()
		}
	}()
	if mode != ModeProduce {
		consumers, err = r.newConsumers(setupCtx, admin, partitions, groups)
		if err != nil {
			return nil, err
		}
	}
	var producers []*kgo.Client
	defer func() {
		for _, p := range producers {
			p.Close()
		}
	}()
	if mode != ModeConsume {
		for i := 0; i < cfg.Producers; i++ {
			p, err := kgo.NewClient(cfg.producerOpts()...)
			if err != nil {
				return nil, fmt.Errorf("producer client: %w", err)
			}
			producers = append(producers, p)
		}
	}
	cancelSetup()

	res := &Result{Mode: mode, Config: cfg, Partitions: partitions}
	r.start = time.Now()
	res.Start = r.start
	deadline := r.start.Add(cfg.Duration)
	r.countFrom = r.start.Add(cfg.Warmup).UnixNano()
	// After a warm-up the agent's figures start from a scrape taken when
	// it ends (one failed is an error at the end, as the first would be).
	var warmScrape chan error
	if cfg.AgentMetrics != "" && cfg.Warmup > 0 {
		warmScrape = make(chan error, 1)
		go func() {
			t := time.NewTimer(cfg.Warmup)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				warmScrape <- ctx.Err()
				return
			}
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			m, err := scrape(sctx, cfg.AgentMetrics)
			if err == nil {
				before = m
			}
			warmScrape <- err
		}()
	}

	// The sampler: one interval a second, plus a last partial one.
	samplerStop := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		r.sample(res, samplerStop)
	}()

	// Consumers run until told to stop; cctx is theirs.
	cctx, cancelConsumers := context.WithCancel(ctx)
	defer cancelConsumers()
	var cwg sync.WaitGroup
	var lastConsumed atomic.Int64 // unix nanos of the latest receipt
	for _, c := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			r.consume(cctx, c, &lastConsumed)
		}()
	}

	// Producers run until the deadline, then wait for their acks.
	var prodEnd time.Time
	if len(producers) > 0 {
		// A Produce blocked on a full buffer (the cluster stopped
		// acknowledging: an agent killed, say) returns once the drain
		// time after the window has passed too, so that the run ends
		// with its error instead of waiting for ever.
		pctx, pcancel := context.WithDeadline(ctx, deadline.Add(cfg.DrainTimeout))
		defer pcancel()
		var pwg sync.WaitGroup
		for i, p := range producers {
			rate := 0.0
			if cfg.Rate > 0 {
				// Spread the total; the first Rate%Producers take one more.
				n := cfg.Rate / cfg.Producers
				if i < cfg.Rate%cfg.Producers {
					n++
				}
				rate = float64(n)
			}
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				r.produce(ctx, pctx, p, rate, deadline)
			}()
		}
		pwg.Wait()
		// Not derived from ctx: an interrupted run still collects the acks
		// of what it sent (records still buffered fail with ctx).
		dctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		for _, p := range producers {
			if err := p.Flush(dctx); err != nil && ctx.Err() == nil {
				r.noteErr("produce", fmt.Errorf("acks still outstanding after %s: %w", cfg.DrainTimeout, err))
			}
		}
		cancel()
		// Close fails whatever a cut-short Flush left, so every promise
		// has run once these return.
		for _, p := range producers {
			p.Close()
		}
		producers = nil
		prodEnd = time.Now()
	}

	switch mode {
	case ModeConsume:
		select {
		case <-time.After(time.Until(deadline)):
		case <-ctx.Done():
		}
	case ModeE2E:
		// Wait for the consumers to read everything acknowledged (with
		// acks=0 franz-go calls a record's promise once it is written).
		want := r.acked.Load()
		waitUntil(ctx, cfg.DrainTimeout, func() bool { return r.consumed.Load() >= want })
	}
	cancelConsumers()
	cwg.Wait()
	close(samplerStop)
	<-samplerDone
	end := time.Now()
	res.Elapsed = end.Sub(r.start)

	if mode != ModeConsume {
		el := prodEnd.Sub(r.start)
		res.Produce = &Side{
			Sent: r.sent.Load(), Records: r.acked.Load(), Bytes: r.ackedB.Load(),
			Errors: r.prodErrs.Load(), Aborted: r.aborted.Load(), Seconds: el.Seconds(),
			Latency: r.prodLat.Total().Percentiles(), FirstError: r.firstErrs["produce"],
		}
		res.Produce.rates()
		res.ProduceDist = r.prodLat.Total().Distribution()
	}
	if mode != ModeProduce {
		// Up to the last receipt: a consume run that drains a backlog
		// and then idles reports the rate it read at.
		el := res.Elapsed
		if t := lastConsumed.Load(); t > 0 {
			el = time.Unix(0, t).Sub(r.start)
		}
		res.Consume = &Side{
			Records: r.consumed.Load(), Bytes: r.consumedB.Load(), Errors: r.consErrs.Load(),
			Seconds: el.Seconds(), Latency: r.e2eLat.Total().Percentiles(), FirstError: r.firstErrs["consume"],
		}
		res.Consume.rates()
		res.E2EDist = r.e2eLat.Total().Distribution()
	}

	if cfg.AgentMetrics != "" {
		if warmScrape != nil {
			if err := <-warmScrape; err != nil {
				return res, fmt.Errorf("scraping --agent-metrics at the end of --warmup: %w", err)
			}
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		after, err := scrape(sctx, cfg.AgentMetrics)
		cancel()
		if err != nil {
			return res, err
		}
		basis, bytes := "produced", int64(0)
		if res.Produce != nil {
			bytes = res.Produce.Bytes
		} else {
			basis, bytes = "consumed", res.Consume.Bytes
		}
		if cfg.Warmup > 0 {
			bytes = r.winBytes.Load()
		}
		res.Agent = agentFigures(before, after, cfg.AgentMetrics, basis, bytes)
	}
	return res, ctx.Err()
}

// waitUntil polls cond every 10 ms until it holds, timeout passes or ctx
// ends.
func waitUntil(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-t.C:
			return cond()
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}

// produce sends records on one client until the deadline; pctx bounds a
// Produce that blocks for buffer space. With a rate it
// sends, at each wake-up, the records that have come due since the start
// and sleeps until the next one is due, but at least a millisecond: above
// 1000 records/s per producer records go out in small bursts rather than
// the goroutine spinning. Without a rate, Produce blocking on the client's
// full buffer is the pacing.
func (r *runner) produce(ctx, pctx context.Context, cl *kgo.Client, rate float64, deadline time.Time) {
	promise := func(rec *kgo.Record, err error) {
		switch {
		case err == nil:
			sentAt := int64(binary.BigEndian.Uint64(rec.Value))
			if sentAt >= r.countFrom {
				r.prodLat.Record(time.Duration(time.Now().UnixNano() - sentAt))
				r.winBytes.Add(int64(len(rec.Value)))
			}
			r.acked.Add(1)
			r.ackedB.Add(int64(len(rec.Value)))
		case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)):
			r.aborted.Add(1)
		case errors.Is(err, context.DeadlineExceeded) && pctx.Err() != nil:
			r.prodErrs.Add(1)
			r.noteErr("produce", fmt.Errorf("not acknowledged within the run and its drain time of %s: the cluster stopped acknowledging (%w)", r.cfg.DrainTimeout, err))
		default:
			r.prodErrs.Add(1)
			r.noteErr("produce", err)
		}
		v, k := rec.Value, rec.Key
		*rec = kgo.Record{Value: v, Key: k[:0]}
		r.recPool.Put(rec)
	}
	send := func(now time.Time) {
		rec := r.recPool.Get().(*kgo.Record)
		binary.BigEndian.PutUint64(rec.Value, uint64(now.UnixNano()))
		if r.cfg.Keys > 0 {
			k := (r.sent.Load()) % int64(r.cfg.Keys)
			rec.Key = strconv.AppendInt(append(rec.Key[:0], 'k'), k, 10)
		}
		r.sent.Add(1)
		cl.Produce(pctx, rec, promise)
	}

	start := time.Now()
	var n int64
	var timer *time.Timer
	for pctx.Err() == nil {
		now := time.Now()
		if !now.Before(deadline) {
			return
		}
		if rate == 0 {
			send(now)
			continue
		}
		due := int64(now.Sub(start).Seconds() * rate)
		for ; n < due; n++ {
			send(now)
			now = time.Now()
		}
		next := start.Add(time.Duration(float64(n+1) / rate * float64(time.Second)))
		wait := max(time.Until(next), time.Millisecond)
		wait = min(wait, time.Until(deadline))
		if timer == nil {
			timer = time.NewTimer(wait)
			defer timer.Stop()
		} else {
			timer.Reset(wait)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
}

// consume polls one client until ctx ends. One clock reading per fetch:
// every record in it arrived at that moment.
func (r *runner) consume(ctx context.Context, cl *kgo.Client, last *atomic.Int64) {
	countFrom := r.countFrom // the run's start without a warm-up
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		now := time.Now().UnixNano()
		fs.EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			r.consErrs.Add(1)
			r.noteErr("consume", err)
		})
		var n, b int64
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			b += int64(len(rec.Value))
			if len(rec.Value) < minRecordSize {
				return
			}
			// Only records produced during this run, after its warm-up:
			// older ones (a consume run from the earliest offset) would
			// read as hours.
			if ts := int64(binary.BigEndian.Uint64(rec.Value)); ts >= countFrom && ts <= now {
				r.e2eLat.Record(time.Duration(now - ts))
			}
		})
		if n > 0 {
			r.consumedB.Add(b)
			if r.mode == ModeConsume && now >= countFrom {
				r.winBytes.Add(b)
			}
			r.consumed.Add(n)
			last.Store(now)
		}
	}
}

// newConsumers builds cfg.Consumers clients. With a group they all join
// it; without one, partition p goes to consumer p % Consumers. An e2e run
// starts at the end offsets read now, before any record is produced, so
// the consumers read exactly the run's records (with a group: unless the
// group has commits from an earlier run, which it resumes from).
func (r *runner) newConsumers(ctx context.Context, admin *kgo.Client, partitions int32, groups bool) ([]*kgo.Client, error) {
	cfg := r.cfg
	base := append(cfg.seedOpts(), kgo.FetchMaxWait(500*time.Millisecond))
	var clients []*kgo.Client
	fail := func(err error) ([]*kgo.Client, error) {
		for _, c := range clients {
			c.Close()
		}
		return nil, err
	}
	var ends map[int32]int64
	if r.mode == ModeE2E {
		var err error
		if ends, err = endOffsets(ctx, admin, cfg.Topic, partitions); err != nil {
			return nil, err
		}
	}
	if groups {
		reset := kgo.NewOffset().AtStart()
		if cfg.From == "latest" {
			reset = kgo.NewOffset().AtEnd()
		}
		if ends != nil {
			// An e2e run starts a partition the group has no commit for at
			// the end offset read now, not at the end as of the moment it
			// is assigned, which could skip the run's first records.
			base = append(base, kgo.AdjustFetchOffsetsFn(func(_ context.Context, m map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
				for p, o := range m[cfg.Topic] {
					if o.EpochOffset().Offset < 0 {
						m[cfg.Topic][p] = kgo.NewOffset().At(ends[p])
					}
				}
				return m, nil
			}))
		}
		// Each member signals its first assignment once; producing starts
		// when as many members as can own a partition have one, so that
		// the records of the run are not produced into a rebalance.
		assigned := make(chan struct{}, cfg.Consumers)
		for i := 0; i < cfg.Consumers; i++ {
			var once sync.Once
			c, err := kgo.NewClient(append(base, kgo.ConsumerGroup(cfg.Group), kgo.ConsumeTopics(cfg.Topic),
				kgo.ConsumeResetOffset(reset),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
					if len(m[cfg.Topic]) > 0 {
						once.Do(func() { assigned <- struct{}{} })
					}
				}))...)
			if err != nil {
				return fail(fmt.Errorf("consumer client: %w", err))
			}
			// The client joins as soon as metadata shows the topic.
			clients = append(clients, c)
		}
		for n := min(cfg.Consumers, int(partitions)); n > 0; n-- {
			select {
			case <-assigned:
			case <-ctx.Done():
				return fail(fmt.Errorf("consumer group --group %s: not every consumer was assigned partitions: %w", cfg.Group, ctx.Err()))
			}
		}
		return clients, nil
	}

	offsets := make(map[int32]kgo.Offset, partitions)
	if ends != nil {
		for p, o := range ends {
			offsets[p] = kgo.NewOffset().At(o)
		}
	} else {
		for p := int32(0); p < partitions; p++ {
			if cfg.From == "latest" {
				offsets[p] = kgo.NewOffset().AtEnd()
			} else {
				offsets[p] = kgo.NewOffset().AtStart()
			}
		}
	}
	for i := 0; i < cfg.Consumers; i++ {
		mine := map[int32]kgo.Offset{}
		for p, o := range offsets {
			if int(p)%cfg.Consumers == i {
				mine[p] = o
			}
		}
		if len(mine) == 0 {
			break // more consumers than partitions
		}
		c, err := kgo.NewClient(append(base, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topic: mine}))...)
		if err != nil {
			return fail(fmt.Errorf("consumer client: %w", err))
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// ensureTopic creates topic with n partitions unless it exists, and
// returns its partition count.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, n int32, configs map[string]string) (int32, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = n
	t.ReplicationFactor = -1 // the broker's default
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("create topic %q at --brokers: %w", topic, err)
	}
	if len(resp.Topics) != 1 {
		return 0, fmt.Errorf("create topic %q: %d topics in the response", topic, len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		msg := ""
		if m := resp.Topics[0].ErrorMessage; m != nil {
			msg = ": " + *m
		}
		return 0, fmt.Errorf("create topic %q with --partitions %d: %w%s", topic, n, err, msg)
	}
	// Metadata may lag a fresh creation for a moment.
	var parts int32
	ok := waitUntil(ctx, 10*time.Second, func() bool {
		parts, err = topicPartitions(ctx, cl, topic)
		return err == nil && parts > 0
	})
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("topic %q created but not in metadata after 10s", topic)
	}
	return parts, nil
}

// topicPartitions returns topic's partition count, 0 if it does not exist.
func topicPartitions(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("metadata from --brokers: %w", err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			if errors.Is(err, kerr.UnknownTopicOrPartition) {
				return 0, nil
			}
			return 0, fmt.Errorf("metadata for topic %q: %w", topic, err)
		}
		return int32(len(rt.Partitions)), nil
	}
	return 0, nil
}

// endOffsets lists the latest offset of every partition.
func endOffsets(ctx context.Context, cl *kgo.Client, topic string, partitions int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = topic
	for p := int32(0); p < partitions; p++ {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rp.CurrentLeaderEpoch = -1
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	out := make(map[int32]int64, partitions)
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, rp.Partition, err)
			}
			out[rp.Partition] = rp.Offset
		}
	}
	if len(out) != int(partitions) {
		return nil, fmt.Errorf("end offsets of %q: got %d of %d partitions", topic, len(out), partitions)
	}
	return out, nil
}

// supportsGroups asks the cluster whether it serves the group APIs.
func supportsGroups(ctx context.Context, cl *kgo.Client) (bool, error) {
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("ApiVersions from --brokers: %w", err)
	}
	var join, find bool
	for _, k := range resp.ApiKeys {
		switch k.ApiKey {
		case int16(kmsg.JoinGroup):
			join = true
		case int16(kmsg.FindCoordinator):
			find = true
		}
	}
	return join && find, nil
}

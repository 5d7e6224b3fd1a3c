package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Values name their producer and its sequence number, "p03-000000001234",
// so the log itself shows duplicates and reordering, acknowledged or not.
func appendValue(dst []byte, producer int, seq int64) []byte {
	return fmt.Appendf(dst, "p%02d-%012d", producer, seq)
}

// parseValue reads a value appendValue wrote.
func parseValue(v []byte) (producer int, seq int64, ok bool) {
	if len(v) < 5 || v[0] != 'p' {
		return 0, 0, false
	}
	i := 1
	for i < len(v) && v[i] != '-' {
		i++
	}
	if i == len(v) {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(string(v[1:i]))
	s, err2 := strconv.ParseInt(string(v[i+1:]), 10, 64)
	if err1 != nil || err2 != nil || p < 0 || s < 0 {
		return 0, 0, false
	}
	return p, s, true
}

// workload is the run's clients: producers that tell the oracle about
// every acknowledgement, and consumer groups that remember every offset
// they were handed.
type workload struct {
	cfg    Config
	topic  string
	seeds  []string
	oracle *Oracle

	acked     atomic.Int64
	failed    atomic.Int64 // produce failed: not acknowledged (allowed)
	cutOff    atomic.Int64 // still unsent when the run was interrupted or the flush timed out
	lastAckNs atomic.Int64

	errMu     sync.Mutex
	firstErrs []string // guarded by errMu; the first few distinct produce errors

	producers []*kgo.Client // idempotent producers; none in transactions mode
	groups    []*group
	txn       *txnWorkload // transactions mode only
}

// group is one consumer group's view of the topic: every offset any of
// its members received, per partition, and a hash of the value each held.
type group struct {
	name    string
	clients []*kgo.Client

	mu        sync.Mutex
	seen      map[int32]*bitset  // guarded by mu
	vals      map[int32][]uint32 // guarded by mu; valueHash of the value at each offset received, 0 for none
	conflicts []string           // guarded by mu; offsets received twice with different values (first few)
	nConflict int                // guarded by mu

	distinct  atomic.Int64 // offsets received at least once
	delivered atomic.Int64 // records received, redeliveries included
	fetchErrs atomic.Int64
	// expired counts acknowledged records the group never received
	// because retention removed them first (below the final log start:
	// the members were reset past them after OFFSET_OUT_OF_RANGE); set
	// by checkGroups.
	expired int64
}

func newGroup(name string) *group {
	return &group{name: name, seen: map[int32]*bitset{}, vals: map[int32][]uint32{}}
}

// valueHash is a record value's FNV-1a hash, never 0 (0 means "not
// received"): 4 bytes per received offset lets verify check what a group
// got against the log without keeping the values.
func valueHash(v []byte) uint32 {
	h := uint32(2166136261)
	for _, c := range v {
		h ^= uint32(c)
		h *= 16777619
	}
	return h | 1
}

func (g *group) mark(partition int32, offset int64, value []byte) {
	g.delivered.Add(1)
	h := valueHash(value)
	g.mu.Lock()
	b := g.seen[partition]
	if b == nil {
		b = &bitset{}
		g.seen[partition] = b
	}
	fresh := b.set(offset)
	if offset >= 0 {
		vs := g.vals[partition]
		for int64(len(vs)) <= offset {
			vs = append(vs, 0)
		}
		if old := vs[offset]; old != 0 && old != h {
			g.nConflict++
			if len(g.conflicts) < 3 {
				g.conflicts = append(g.conflicts, fmt.Sprintf("partition %d offset %d received with two different values (the second %q)", partition, offset, value))
			}
		}
		vs[offset] = h
		g.vals[partition] = vs
	}
	g.mu.Unlock()
	if fresh {
		g.distinct.Add(1)
	}
}

// valueAt is the hash of the value the group received at offset, 0 when
// it received none.
func (g *group) valueAt(partition int32, offset int64) uint32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	vs := g.vals[partition]
	if offset < 0 || offset >= int64(len(vs)) {
		return 0
	}
	return vs[offset]
}

// caughtUp reports whether the group received every offset in
// [starts, ends) (starts nil: from 0), and how many are missing.
func (g *group) caughtUp(starts, ends map[int32]int64) (bool, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var missing int64
	for p, end := range ends {
		start := min(starts[p], end)
		var n int64
		if b := g.seen[p]; b != nil {
			n = b.countBelow(end) - b.countBelow(start)
		}
		missing += end - start - n
	}
	return missing == 0, missing
}

// hasAll reports whether the group received every offset of want, and
// how many it misses.
func (g *group) hasAll(want map[int32][]int64) (bool, int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var missing int64
	for p, offs := range want {
		b := g.seen[p]
		for _, o := range offs {
			if b == nil || !b.has(o) {
				missing++
			}
		}
	}
	return missing == 0, missing
}

// bitset is a growable set of non-negative offsets.
type bitset struct{ w []uint64 }

// set adds off and reports whether it was new.
func (b *bitset) set(off int64) bool {
	if off < 0 {
		return false
	}
	i := int(off >> 6)
	for i >= len(b.w) {
		b.w = append(b.w, 0)
	}
	m := uint64(1) << (off & 63)
	if b.w[i]&m != 0 {
		return false
	}
	b.w[i] |= m
	return true
}

func (b *bitset) has(off int64) bool {
	i := int(off >> 6)
	return off >= 0 && i < len(b.w) && b.w[i]&(uint64(1)<<(off&63)) != 0
}

// countBelow counts the offsets in [0, end).
func (b *bitset) countBelow(end int64) int64 {
	var n int64
	for i, w := range b.w {
		lo := int64(i) << 6
		if lo >= end {
			break
		}
		if end-lo < 64 {
			w &= (uint64(1) << (end - lo)) - 1
		}
		n += int64(bits.OnesCount64(w))
	}
	return n
}

func (w *workload) noteErr(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if len(w.firstErrs) >= 5 {
		return
	}
	for _, e := range w.firstErrs {
		if e == err.Error() {
			return
		}
	}
	w.firstErrs = append(w.firstErrs, err.Error())
}

// start creates the clients; consumers first, so that they are in their
// groups before the first record.
func (w *workload) start() error {
	for g := range w.cfg.Groups {
		gr := newGroup(fmt.Sprintf("%s-g%d", w.topic, g))
		for m := range w.cfg.Members {
			opts := []kgo.Opt{
				kgo.SeedBrokers(w.seeds...),
				kgo.ClientID(fmt.Sprintf("loadtest-g%d-m%d", g, m)),
				kgo.ConsumerGroup(gr.name),
				kgo.ConsumeTopics(w.topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(500 * time.Millisecond),
			}
			if w.cfg.Transactions {
				// Continuously, while transactions commit and abort
				// under faults: the groups must see exactly what the
				// read_committed read at the end sees (checkTxnGroups).
				opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return err
			}
			gr.clients = append(gr.clients, cl)
		}
		w.groups = append(w.groups, gr)
	}
	if w.cfg.Transactions {
		// Each transactional producer makes its client in its own loop
		// (txnWorkload.run), and makes it again after an error.
		w.txn = newTxnWorkload(w)
		return nil
	}
	for p := range w.cfg.Producers {
		// Idempotent (franz-go's default with acks=all), retrying without
		// a record limit: a record fails only when producing stops.
		cl, err := kgo.NewClient(
			kgo.SeedBrokers(w.seeds...),
			kgo.ClientID(fmt.Sprintf("loadtest-p%d", p)),
			kgo.DefaultProduceTopic(w.topic),
			kgo.ProducerLinger(5*time.Millisecond),
		)
		if err != nil {
			return err
		}
		w.producers = append(w.producers, cl)
	}
	return nil
}

// close closes every client that is still open.
func (w *workload) close() {
	for _, p := range w.producers {
		p.Close()
	}
	for _, g := range w.groups {
		for _, c := range g.clients {
			c.Close()
		}
	}
}

// consume runs one group member until ctx ends.
func (w *workload) consume(ctx context.Context, g *group, cl *kgo.Client) {
	for ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		f.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.Canceled) {
				g.fetchErrs.Add(1)
			}
		})
		f.EachRecord(func(r *kgo.Record) { g.mark(r.Partition, r.Offset, r.Value) })
	}
}

// produce runs producer id at rate records per second until stop is
// closed. Records are handed to franz-go on a 10 ms tick; when the client
// blocks (its buffer is full while an agent is down) the producer catches
// up at most twice as fast afterwards, rather than in one burst. ctx ends
// only with the whole run (Ctrl-C): records still buffered when producing
// stops are flushed by the caller, not cut off here.
func (w *workload) produce(ctx context.Context, stop <-chan struct{}, id int, cl *kgo.Client, rate float64, wg *sync.WaitGroup) {
	start := time.Now()
	var seq int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	burst := int64(rate/50) + 1
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * rate)
		for n := int64(0); seq < due && n < burst && ctx.Err() == nil; n++ {
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Value: appendValue(nil, id, seq)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				w.onAck(r, err)
			})
			seq++
		}
	}
}

func (w *workload) onAck(r *kgo.Record, err error) {
	switch {
	case err == nil:
		w.acked.Add(1)
		w.lastAckNs.Store(time.Now().UnixNano())
		w.oracle.Ack(TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.Value)
	case errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed):
		w.cutOff.Add(1)
	default:
		w.failed.Add(1)
		w.noteErr(err)
	}
}

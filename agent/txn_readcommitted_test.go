package agent_test

// read_committed fetches without a meta round trip (issues 15 and 13,
// docs/transactions.md "Fetch"): librdkafka, confluent-kafka-python and
// kcat consume with isolation.level=read_committed by default, so a
// meta call per partition per fetch fill would put meta on every such
// consumer's hot path. These tests count the TxnPartition calls that
// reach meta.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/meta/rpc"
)

// txnCountingMeta counts the TxnPartition calls an agent makes; with
// refuse set it answers them with ErrUnavailable, so a fetch that needs
// meta fails loudly.
type txnCountingMeta struct {
	meta.Client
	calls  atomic.Int64
	refuse atomic.Bool
}

func (m *txnCountingMeta) TxnPartition(ctx context.Context, tp meta.TopicPartition, from int64) (meta.TxnPartitionState, error) {
	m.calls.Add(1)
	if m.refuse.Load() {
		return meta.TxnPartitionState{}, meta.ErrUnavailable
	}
	return m.Client.TxnPartition(ctx, tp, from)
}

// rcClient is txnClient for benchmarks too.
func rcClient(tb testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

func fetchRequests() uint64 {
	return metrics.GetOrCreateCounter(`sluice_kafka_requests_total{api="Fetch"}`).Get()
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tailRound produces one record to each of parts partitions and polls
// cl until it has them all: the consumer sits at the tail, so each
// record reaches it through a long-polled fetch.
func tailRound(ctx context.Context, tb testing.TB, prod, cl *kgo.Client, topic string, parts, round int) {
	tb.Helper()
	recs := make([]*kgo.Record, parts)
	for p := range recs {
		recs[p] = &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "r%d-p%d", round, p)}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		tb.Fatalf("produce round %d: %v", round, err)
	}
	got := 0
	for got < parts {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("round %d: consumed %d of %d records before the deadline", round, got, parts)
		}
		fs.EachError(func(_ string, _ int32, err error) { tb.Errorf("fetch: %v", err) })
		got += fs.NumRecords()
	}
}

// BenchmarkTailFetchIsolation measures, per round of 16 records (one per
// partition) read at the tail by a franz-go consumer, the fetch requests,
// the TxnPartition calls that reach meta and this process's CPU. The
// agent talks to meta over gRPC on loopback, as a deployed agent does;
// agent, meta and both clients share the process, so compare the two
// isolation levels, not the absolute CPU figure.
func BenchmarkTailFetchIsolation(b *testing.B) {
	for _, level := range []struct {
		name string
		il   kgo.IsolationLevel
	}{{"read_uncommitted", kgo.ReadUncommitted()}, {"read_committed", kgo.ReadCommitted()}} {
		b.Run(level.name, func(b *testing.B) {
			c := startCluster(b, b.TempDir(), agent.Config{Zone: "za"})
			mc := &txnCountingMeta{}
			a := startAgentOverRPC(b, c, "agent-bench", "zb", 1, func(m meta.Client) meta.Client { mc.Client = m; return mc })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			const parts = 16
			prod := rcClient(b, a.AdvertisedAddr(), kgo.ClientID("bench,sluice_az=zb"),
				kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
			if _, err := kadm.NewClient(prod).CreateTopic(ctx, parts, -1, nil, "tail"); err != nil {
				b.Fatal(err)
			}
			cl := rcClient(b, a.AdvertisedAddr(), kgo.ClientID("bench,sluice_az=zb"), kgo.ConsumeTopics("tail"),
				kgo.FetchIsolationLevel(level.il), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			tailRound(ctx, b, prod, cl, "tail", parts, -1) // warm: metadata, connections, index cache
			calls0, fetch0, cpu0 := mc.calls.Load(), fetchRequests(), cpuTime()
			b.ResetTimer()
			for i := range b.N {
				tailRound(ctx, b, prod, cl, "tail", parts, i)
			}
			b.StopTimer()
			fetches := float64(fetchRequests() - fetch0)
			b.ReportMetric(float64(mc.calls.Load()-calls0)/float64(b.N), "txnpartition-calls/op")
			b.ReportMetric(fetches/float64(b.N), "fetches/op")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// TestReadCommittedTailNoMetaCalls: a read_committed consumer at the
// tail of a topic that never saw a transaction makes no TxnPartition
// call to meta (before this, it made one per partition per fetch fill:
// 32 per round of BenchmarkTailFetchIsolation).
func TestReadCommittedTailNoMetaCalls(t *testing.T) {
	mc := &txnCountingMeta{}
	c := startClusterWith(t, t.TempDir(), agent.Config{FlushInterval: 5 * time.Millisecond}, func(m meta.Client) meta.Client {
		mc.Client = m
		return mc
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const parts = 16
	prod := rcClient(t, c.addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, parts, -1, nil, "plain"); err != nil {
		t.Fatal(err)
	}
	cl := rcClient(t, c.addr(), kgo.ConsumeTopics("plain"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetch0 := fetchRequests()
	const rounds = 20
	for i := range rounds {
		tailRound(ctx, t, prod, cl, "plain", parts, i)
	}
	// A fetch may bring two rounds (franz-go fetches again as soon as
	// a response is in), so not one per round; but records came by
	// fetching.
	if n := fetchRequests() - fetch0; n < rounds/2 {
		t.Fatalf("%d fetch requests for %d rounds: the consumer did not fetch at the tail", n, rounds)
	}
	if n := mc.calls.Load(); n != 0 {
		t.Fatalf("%d TxnPartition calls reached meta; want 0 for a topic without transactions", n)
	}
}

// oneCluster serves one meta.Client to any agent key over meta/rpc.
type oneCluster struct{ m meta.Client }

func (b oneCluster) Agent(context.Context, string) (meta.Client, error) { return b.m, nil }
func (oneCluster) AdminAuth(string) error                               { return meta.ErrUnauthenticated }
func (oneCluster) CheckKey(string) error                                { return nil }
func (oneCluster) CreateKey(context.Context, string) (string, rpc.KeyInfo, error) {
	return "", rpc.KeyInfo{}, meta.ErrInvalidRequest
}
func (oneCluster) ListKeys(context.Context, string) ([]rpc.KeyInfo, error) {
	return nil, meta.ErrInvalidRequest
}
func (oneCluster) RevokeKey(context.Context, string, string) error { return meta.ErrInvalidRequest }

// startAgentOverRPC starts an agent in zone that reaches c's meta over a
// real gRPC connection (meta/rpc), through wrap.
func startAgentOverRPC(t testing.TB, c *testCluster, id, zone string, nodeID int32, wrap func(meta.Client) meta.Client) *agent.Agent {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(oneCluster{c.meta}, nil)
	g := grpc.NewServer(srv.Options(rpc.Limits{})...)
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	rc, err := rpc.Dial(rpc.ClientConfig{Addrs: []string{ln.Addr().String()}, Key: "rcfetch-agent-key"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, agent.Config{ID: id, NodeID: nodeID, Zone: zone, KafkaAddr: "127.0.0.1:0",
		FlushInterval: 20 * time.Millisecond, AutoCreateTopics: true, DefaultPartitions: 1}, wrap(rc), c.gate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	})
	return a
}

// fetched is one batch of a raw fetch answer.
type fetched struct {
	offset  int64 // base offset
	n       int   // records
	control bool
}

// rawFetch sends one Fetch (MaxWait 0) for partition 0 of topic to node
// and returns the partition's answer and its batches.
func rawFetch(ctx context.Context, t *testing.T, cl *kgo.Client, node int32, topic string, id [16]byte, offset int64, committed bool) (kmsg.FetchResponseTopicPartition, []fetched) {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis = -1, 1<<20, 0, 0
	if committed {
		req.IsolationLevel = 1
	}
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = 0, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kr, err := cl.Broker(int(node)).Request(ctx, req)
	if err != nil {
		t.Fatalf("fetch from node %d: %v", node, err)
	}
	resp := kr.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch from node %d: %+v", node, resp)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("fetch from node %d at %d (read_committed %v): %v", node, offset, committed, kerr.ErrorForCode(p.ErrorCode))
	}
	var out []fetched
	for b := p.RecordBatches; len(b) > 0; {
		var rb kmsg.RecordBatch
		if len(b) < 12 {
			t.Fatalf("truncated batch: %x", b)
		}
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if err := rb.ReadFrom(b[:size]); err != nil {
			t.Fatalf("batch: %v", err)
		}
		out = append(out, fetched{offset: rb.FirstOffset, n: int(rb.NumRecords), control: rb.Attributes&0x20 != 0})
		b = b[size:]
	}
	return p, out
}

// TestReadCommittedTwoAgentsCachePath: transactions are produced
// through agent A; agent B, in another zone and talking to meta over
// gRPC, serves read_committed consumers from what its index cache learnt
// from the commit stream. B's TxnPartition calls are refused, so any
// fetch that asked meta would fail; it must still never return a
// record of the open or the aborted transaction, must list the aborted
// one exactly as meta would, and must release the open one's records
// once it commits. An agent started afterwards (C) reads the old
// aborted range from meta (its cache never saw that abort) and the tail
// from its cache.
func TestReadCommittedTwoAgentsCachePath(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Zone: "za", FlushInterval: 20 * time.Millisecond})
	mb := &txnCountingMeta{}
	mb.refuse.Store(true)
	b := startAgentOverRPC(t, c, "agent-b", "zb", 1, func(m meta.Client) meta.Client { mb.Client = m; return mb })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const topic = "rc2"
	adm := kadm.NewClient(rcClient(t, c.addr(), kgo.ClientID("admin,sluice_az=za")))
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic id: %v %v", err, td[topic].Err)
	}
	id := td[topic].ID
	tp := meta.TopicPartition{TopicID: meta.TopicID(id), Partition: 0}
	onB := rcClient(t, b.AdvertisedAddr(), kgo.ClientID("reader,sluice_az=zb"))
	if _, err := kadm.NewClient(onB).BrokerMetadata(ctx); err != nil {
		t.Fatal(err)
	}
	// B learns the (empty) partition's state before any transaction.
	if p, _ := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, true); p.LastStableOffset != 0 || p.HighWatermark != 0 {
		t.Fatalf("empty partition on B: LSO %d HWM %d", p.LastStableOffset, p.HighWatermark)
	}

	plain := rcClient(t, c.addr(), kgo.ClientID("plain,sluice_az=za"), kgo.DefaultProduceTopic(topic))
	produce := func(cl *kgo.Client, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	produce(plain, "p0") // offset 0
	aborter := rcClient(t, c.addr(), kgo.ClientID("aborter,sluice_az=za"), kgo.TransactionalID("rc-abort"), kgo.DefaultProduceTopic(topic))
	if err := aborter.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		produce(aborter, fmt.Sprintf("ab-%d", i)) // offsets 1..3
	}
	if err := aborter.EndTransaction(ctx, kgo.TryAbort); err != nil { // marker at 4
		t.Fatal(err)
	}
	opener := rcClient(t, c.addr(), kgo.ClientID("opener,sluice_az=za"), kgo.TransactionalID("rc-open"), kgo.DefaultProduceTopic(topic))
	if err := opener.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(opener, "open-0") // 5
	produce(opener, "open-1") // 6
	produce(plain, "p1")      // 7: past the open transaction's first offset

	// B's cache has everything once a read_uncommitted fetch sees the
	// high watermark 8.
	for p, _ := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, false); p.HighWatermark != 8; p, _ = rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, false) {
		if ctx.Err() != nil {
			t.Fatalf("B's high watermark stays at %d, want 8", p.HighWatermark)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want, err := c.meta.TxnPartition(ctx, tp, 0)
	if err != nil || want.LastStableOffset != 5 || len(want.Aborted) != 1 || want.Aborted[0].FirstOffset != 1 || want.Aborted[0].LastOffset != 4 {
		t.Fatalf("meta's own answer: %+v %v; want LSO 5, aborted [1, 4]", want, err)
	}
	p, batches := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, true)
	if p.LastStableOffset != 5 || p.HighWatermark != 8 {
		t.Fatalf("B read_committed: LSO %d HWM %d, want 5 and 8", p.LastStableOffset, p.HighWatermark)
	}
	if len(p.AbortedTransactions) != 1 || p.AbortedTransactions[0].ProducerID != want.Aborted[0].ProducerID || p.AbortedTransactions[0].FirstOffset != 1 {
		t.Fatalf("B's aborted transactions %+v, want meta's %+v", p.AbortedTransactions, want.Aborted)
	}
	for _, f := range batches {
		if f.offset+int64(f.n) > 5 {
			t.Fatalf("B returned batch %+v at or past the LSO 5: %+v", f, batches)
		}
	}
	if len(batches) == 0 || batches[len(batches)-1] != (fetched{offset: 4, n: 1, control: true}) {
		t.Fatalf("B's batches %+v; want them to end with the abort marker at 4", batches)
	}
	// From the open transaction's first offset: nothing, and no aborted
	// transaction (its marker is before).
	if p, batches := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 5, true); len(batches) != 0 || p.LastStableOffset != 5 || len(p.AbortedTransactions) != 0 {
		t.Fatalf("B read_committed from 5: %+v %+v", p, batches)
	}

	// The open transaction commits (marker at 8): B's long-polling
	// read_committed consumer gets everything committed, nothing aborted.
	if err := opener.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := consumeValues(ctx, t, b.AdvertisedAddr(), topic, 4, kgo.ClientID("consumer,sluice_az=zb"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if fmt.Sprint(got) != "[p0 open-0 open-1 p1]" {
		t.Fatalf("read_committed through B: %v, want [p0 open-0 open-1 p1]", got)
	}
	if p, _ := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, true); p.LastStableOffset != 9 || p.HighWatermark != 9 || len(p.AbortedTransactions) != 1 {
		t.Fatalf("B after the commit: %+v", p)
	}
	if n := mb.calls.Load(); n != 0 {
		t.Fatalf("B made %d TxnPartition calls (refused); want 0: the cache answers", n)
	}

	// C starts after the abort: its cache cannot know the aborted range
	// below what meta told it, so a read from 0 asks meta, once; a read
	// at the tail does not.
	mcC := &txnCountingMeta{}
	cAgent := startAgentOverRPC(t, c, "agent-c", "zc", 2, func(m meta.Client) meta.Client { mcC.Client = m; return mcC })
	onC := rcClient(t, cAgent.AdvertisedAddr(), kgo.ClientID("reader,sluice_az=zc"))
	if _, err := kadm.NewClient(onC).BrokerMetadata(ctx); err != nil {
		t.Fatal(err)
	}
	pc, bc := rawFetch(ctx, t, onC, cAgent.NodeID(), topic, id, 0, true)
	pb, bb := rawFetch(ctx, t, onB, b.NodeID(), topic, id, 0, true)
	if fmt.Sprint(pc.AbortedTransactions, pc.LastStableOffset, bc) != fmt.Sprint(pb.AbortedTransactions, pb.LastStableOffset, bb) {
		t.Fatalf("C from 0: %+v %+v; B: %+v %+v", pc, bc, pb, bb)
	}
	if n := mcC.calls.Load(); n != 1 {
		t.Fatalf("C made %d TxnPartition calls for a read over an aborted range it never saw; want 1", n)
	}
	if p, _ := rawFetch(ctx, t, onC, cAgent.NodeID(), topic, id, 9, true); p.LastStableOffset != 9 || mcC.calls.Load() != 1 {
		t.Fatalf("C at the tail: LSO %d, TxnPartition calls %d; want 9 and still 1", p.LastStableOffset, mcC.calls.Load())
	}
}

// outageMeta lets a test take meta away from an agent: while down, the
// watch stream is cut and Lookup and TxnPartition answer ErrUnavailable
// (counted in refused).
type outageMeta struct {
	meta.Client
	down    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	cancels []context.CancelFunc // guarded by mu
}

func (m *outageMeta) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	if m.down.Load() {
		return nil, meta.ErrUnavailable
	}
	wctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.cancels = append(m.cancels, cancel)
	m.mu.Unlock()
	return m.Client.Watch(wctx)
}

func (m *outageMeta) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, max int) (meta.LookupResult, error) {
	if m.down.Load() {
		m.refused.Add(1)
		return meta.LookupResult{}, meta.ErrUnavailable
	}
	return m.Client.Lookup(ctx, tp, offset, max)
}

func (m *outageMeta) TxnPartition(ctx context.Context, tp meta.TopicPartition, from int64) (meta.TxnPartitionState, error) {
	if m.down.Load() {
		m.refused.Add(1)
		return meta.TxnPartitionState{}, meta.ErrUnavailable
	}
	return m.Client.TxnPartition(ctx, tp, from)
}

// goDown cuts the watch streams and refuses calls from now on.
func (m *outageMeta) goDown() {
	m.down.Store(true)
	m.mu.Lock()
	for _, c := range m.cancels {
		c()
	}
	m.cancels = nil
	m.mu.Unlock()
}

// TestReadCommittedThroughMetaOutage: while meta is unreachable, an
// agent serves read_committed fetches from the transaction state its
// index cache last had (a past state: the LSO may only be lower than
// the truth), as it serves read_uncommitted ones from cached entries,
// instead of failing them; once meta is back it learns the state again
// and a commit made since releases the open transaction's records.
func TestReadCommittedThroughMetaOutage(t *testing.T) {
	om := &outageMeta{}
	c := startClusterWith(t, t.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond}, func(m meta.Client) meta.Client {
		om.Client = m
		return om
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "rc-outage"
	cl := rcClient(t, c.addr(), kgo.DefaultProduceTopic(topic))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, topic); err != nil {
		t.Fatal(err)
	}
	td, err := adm.ListTopics(ctx, topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("topic id: %v %v", err, td[topic].Err)
	}
	id := td[topic].ID
	node := c.agent.NodeID()
	produce := func(cl *kgo.Client, v string) {
		t.Helper()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	produce(cl, "p0") // 0
	txn := rcClient(t, c.addr(), kgo.TransactionalID("rc-outage"), kgo.DefaultProduceTopic(topic))
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(txn, "ab-0")                                          // 1
	produce(txn, "ab-1")                                          // 2
	if err := txn.EndTransaction(ctx, kgo.TryAbort); err != nil { // 3
		t.Fatal(err)
	}
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(txn, "open-0") // 4
	produce(cl, "p1")      // 5
	for p, _ := rawFetch(ctx, t, cl, node, topic, id, 0, false); p.HighWatermark != 6; p, _ = rawFetch(ctx, t, cl, node, topic, id, 0, false) {
		if ctx.Err() != nil {
			t.Fatalf("high watermark stays at %d, want 6", p.HighWatermark)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before, bb := rawFetch(ctx, t, cl, node, topic, id, 0, true)
	if before.LastStableOffset != 4 || len(before.AbortedTransactions) != 1 || before.AbortedTransactions[0].FirstOffset != 1 {
		t.Fatalf("before the outage: LSO %d aborted %+v, want 4 and one from 1", before.LastStableOffset, before.AbortedTransactions)
	}

	resets := metrics.GetOrCreateCounter(`sluice_index_watch_resets_total`)
	resets0 := resets.Get()
	om.goDown()
	for resets.Get() == resets0 {
		if ctx.Err() != nil {
			t.Fatal("the agent never saw its watch stream end")
		}
		time.Sleep(5 * time.Millisecond)
	}
	refused0 := om.refused.Load()
	during, db := rawFetch(ctx, t, cl, node, topic, id, 0, true) // fails the test on a partition error
	if during.LastStableOffset != 4 || fmt.Sprint(during.AbortedTransactions) != fmt.Sprint(before.AbortedTransactions) || fmt.Sprint(db) != fmt.Sprint(bb) {
		t.Fatalf("during the outage: %+v %+v; before it: %+v %+v", during, db, before, bb)
	}
	if om.refused.Load() == refused0 {
		t.Fatal("the fetch during the outage never tried meta: the test did not cut it off")
	}

	// Meta is back; the open transaction commits (marker at 6).
	om.down.Store(false)
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	got := consumeValues(ctx, t, c.addr(), topic, 3, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if fmt.Sprint(got) != "[p0 open-0 p1]" {
		t.Fatalf("read_committed after the outage: %v, want [p0 open-0 p1]", got)
	}
}

package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
)

// TestBrokerIdentitiesRaiseInFlight: an idempotent franz-go producer
// keeps at most five produce requests in flight per broker. With one
// identity per agent that is five per agent; with eight (node ids at the
// one address, leadership spread over them) the same producer has more
// than five requests parked at the one agent at once. Uploads are held
// so that nothing is answered while the requests are counted; then every
// record must be acknowledged once, with dense offsets per partition, and
// read back byte for byte.
func TestBrokerIdentitiesRaiseInFlight(t *testing.T) {
	for _, tc := range []struct {
		n      int
		shared bool
	}{{1, false}, {8, false}, {8, true}} {
		t.Run(fmt.Sprintf("identities=%d,share-port=%v", tc.n, tc.shared), func(t *testing.T) {
			testIdentitiesInFlight(t, tc.n, tc.shared)
		})
	}
}

// parked reads sluice_produce_requests_parked: produce requests appended
// to the pipeline and not yet answered, over the process.
func parked() int64 {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "sluice_produce_requests_parked "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int64(n)
		}
	}
	return -1
}

func testIdentitiesInFlight(t *testing.T, n int, sharePort bool) {
	const topic, parts, records = "ids", 16, 1600
	// A one-minute interval and no small early seals: nothing is sealed
	// unless the test says so.
	c := startCluster(t, t.TempDir(), agent.Config{BrokerIdentities: n, IdentitiesSharePort: sharePort,
		FlushInterval: time.Minute, EarlySealsPerSecond: -1})
	createTopic(t, c.addr(), topic, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Metadata lists n brokers, at the agent's port and the n-1 after it
	// (or all at the agent's port), and every partition is led by one.
	host, portStr, err := net.SplitHostPort(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(portStr)
	addrs := map[string]bool{}
	for k := range n {
		if !sharePort {
			addrs[net.JoinHostPort(host, strconv.Itoa(port+k))] = true
		}
	}
	if sharePort {
		addrs[c.addr()] = true
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	md, err := kadm.NewClient(cl).Metadata(ctx, topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[int32]bool{}
	for _, b := range md.Brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
		if !addrs[addr] {
			t.Fatalf("broker %d at %s, want one of %v", b.NodeID, addr, addrs)
		}
		if !sharePort {
			delete(addrs, addr) // one identity per port
		}
		nodes[b.NodeID] = true
	}
	if len(md.Brokers) != n || len(nodes) != n || !nodes[c.agent.NodeID()] {
		t.Fatalf("metadata lists %d brokers (%d node ids), want %d including the agent's %d", len(md.Brokers), len(nodes), n, c.agent.NodeID())
	}
	leaders := map[int32]bool{}
	for _, p := range md.Topics[topic].Partitions {
		if !nodes[p.Leader] {
			t.Fatalf("partition %d led by %d, not a listed broker", p.Partition, p.Leader)
		}
		leaders[p.Leader] = true
	}
	if n > 1 && len(leaders) < 2 {
		t.Fatalf("%d partitions led by %d identity of %d", parts, len(leaders), n)
	}

	// franz-go's defaults: acks=all, idempotent, five requests in flight
	// per broker. Linger 0 sends a request for every record it can.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		offsets = map[int32][]int64{}
		errs    []error
	)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			r := makeRecord(topic, i)
			r.Partition = int32(i % parts)
			wg.Add(1)
			pcl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				offsets[r.Partition] = append(offsets[r.Partition], r.Offset)
			})
		}
	}
	// acked waits for every record produced so far, sealing segments in
	// place of the one-minute interval.
	acked := func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				t.Fatal("records not acknowledged")
			case <-time.After(20 * time.Millisecond):
				c.agent.Pipeline().SealIfAtLeast(0)
			}
		}
	}
	// franz-go keeps one request in flight per partition until the
	// partition's first success (docs/design.md): warm every partition.
	t.Logf("%v warm", time.Now().Format("15:04:05.000"))
	produce(0, parts)
	acked()

	release := c.stallStore()
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	// With uploads held nothing is answered: the produce requests parked
	// at the agent are the requests the client has in flight at once.
	want := int64(5)
	if n > 1 {
		want = 6
	}
	// One record per partition at a time, until the client has want
	// requests parked (or can send no more): produced all at once, the
	// records can all be buffered before the client sends its first
	// request, and then go in one request per broker (CI saw 1 parked
	// under load). A round waits for a new request to park, or 2 s when
	// the client is at its limit.
	produced := parts
	for produced+parts <= records && parked() < want {
		before := parked()
		produce(produced, produced+parts)
		produced += parts
		for wait := time.Now(); parked() <= before && time.Since(wait) < 2*time.Second; {
			time.Sleep(5 * time.Millisecond)
		}
	}
	produce(produced, records)
	for parked() < want {
		if ctx.Err() != nil {
			t.Fatalf("%d produce requests in flight at the agent, want at least %d", parked(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n == 1 {
		// The client's own limit: never more than five (waiting longer
		// can only let more arrive, so a slow machine cannot hide one).
		time.Sleep(300 * time.Millisecond)
		if got := parked(); got > 5 {
			t.Fatalf("%d produce requests in flight with one identity, the idempotent limit is 5", got)
		}
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("%d identities: %d produce requests in flight at one agent", n, parked())

	t.Logf("%v release", time.Now().Format("15:04:05.000"))
	release()
	released = true
	acked()
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
	// Acknowledged once each, with dense offsets: partition p's acks
	// are offsets 0..k-1, each once.
	for p := range int32(parts) {
		seen := map[int64]bool{}
		for _, o := range offsets[p] {
			if seen[o] || o < 0 || o >= int64(len(offsets[p])) {
				t.Fatalf("partition %d: offset %d acknowledged twice or out of 0..%d", p, o, len(offsets[p])-1)
			}
			seen[o] = true
		}
	}
	t.Logf("%v acked", time.Now().Format("15:04:05.000"))
	checkExactlyOnce(t, topic, parts, records, consumeN(t, c.addr(), topic, records))
	t.Logf("%v read", time.Now().Format("15:04:05.000"))
}

// TestBrokerIdentitiesTwoAgents: with two agents of three identities
// each, both agents answer Metadata with the same six node ids, each
// agent's identity k at its own port + k and the first at the node id
// meta assigned; each identity describes itself (DescribeConfigs) under
// its own broker.id; the group coordinator is named by that first id; and
// an idempotent producer writing through all six gets every record
// acknowledged once with dense offsets, read back byte for byte.
func TestBrokerIdentitiesTwoAgents(t *testing.T) {
	const n, topic, parts, records = 3, "ids2", 16, 1600
	c := startCluster(t, t.TempDir(), agent.Config{BrokerIdentities: n})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := agent.Start(ctx, agent.Config{ID: "second", KafkaAddr: "127.0.0.1:0", BrokerIdentities: n, Logger: quietLogger()}, c.meta, c.store)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	createTopic(t, c.addr(), topic, parts)

	// want: node id -> address, from each agent's own first identity.
	// Every agent reads the registry at most once a second.
	time.Sleep(1100 * time.Millisecond)
	var first map[int32]string
	for _, addr := range []string{c.addr(), b.AdvertisedAddr()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			cl.Close()
			t.Fatal(err)
		}
		got := map[int32]string{}
		for _, br := range md.Brokers {
			got[br.NodeID] = net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port)))
		}
		if len(got) != 2*n || got[c.agent.NodeID()] != c.addr() || got[b.NodeID()] != b.AdvertisedAddr() {
			cl.Close()
			t.Fatalf("agent %s lists %v, want %d brokers with each agent's own id at its address", addr, got, 2*n)
		}
		for _, a := range []string{c.addr(), b.AdvertisedAddr()} {
			host, portStr, _ := net.SplitHostPort(a)
			port, _ := strconv.Atoi(portStr)
			for k := range n {
				want := net.JoinHostPort(host, strconv.Itoa(port+k))
				found := false
				for _, g := range got {
					found = found || g == want
				}
				if !found {
					cl.Close()
					t.Fatalf("agent %s lists %v: no identity at %s", addr, got, want)
				}
			}
		}
		if first == nil {
			first = got
		} else if fmt.Sprint(first) != fmt.Sprint(got) {
			cl.Close()
			t.Fatalf("the agents disagree: %v and %v", first, got)
		}
		// A tool describing every listed broker asks each at its own
		// address; an identity answers with its own broker.id.
		for node := range got {
			rcs, err := adm.DescribeBrokerConfigs(ctx, node)
			if err != nil {
				cl.Close()
				t.Fatalf("describe broker %d: %v", node, err)
			}
			rc, err := rcs.On(strconv.Itoa(int(node)), nil)
			if err != nil || rc.Err != nil {
				cl.Close()
				t.Fatalf("describe broker %d: %v %v", node, err, rc.Err)
			}
			for _, cf := range rc.Configs {
				if cf.Key == "broker.id" && cf.MaybeValue() != strconv.Itoa(int(node)) {
					cl.Close()
					t.Fatalf("broker %d describes itself as broker.id %s", node, cf.MaybeValue())
				}
			}
		}
		co := adm.FindGroupCoordinators(ctx, "g")
		cl.Close()
		for _, r := range co {
			if r.Err != nil || (r.NodeID != c.agent.NodeID() && r.NodeID != b.NodeID()) {
				t.Fatalf("coordinator %+v, want one agent's first identity", r)
			}
		}
	}

	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	// Synchronously first: franz-go keeps one request in flight per
	// partition until the partition's first success.
	offsets := map[int32][]int64{}
	for i := range parts {
		r := makeRecord(topic, i)
		r.Partition = int32(i % parts)
		res := pcl.ProduceSync(ctx, r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		offsets[r.Partition] = append(offsets[r.Partition], res[0].Record.Offset)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := parts; i < records; i++ {
		r := makeRecord(topic, i)
		r.Partition = int32(i % parts)
		wg.Add(1)
		pcl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			offsets[r.Partition] = append(offsets[r.Partition], r.Offset)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d records failed, first: %v", len(errs), errs[0])
	}
	for p := range int32(parts) {
		seen := map[int64]bool{}
		for _, o := range offsets[p] {
			if seen[o] || o < 0 || o >= int64(len(offsets[p])) {
				t.Fatalf("partition %d: offset %d acknowledged twice or out of 0..%d", p, o, len(offsets[p])-1)
			}
			seen[o] = true
		}
	}
	checkExactlyOnce(t, topic, parts, records, consumeN(t, c.addr(), topic, records))
}

package e2e

// `sluice meta` and `sluice agent` as separate processes, as the README
// runs them: the zero-access canary over a real socket, isolation of
// virtual clusters, key revocation, a meta outage, and PostgreSQL
// leader failover.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"sluice.dev/internal/freeport"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/loadtest"
)

const adminToken = "e2e-admin-token"

// startMeta runs `sluice meta` on listen (127.0.0.1:0 for any port).
func startMeta(t *testing.T, name, store, listen string) *proc {
	t.Helper()
	return startProc(t, name, []string{"SLUICE_ADMIN_TOKEN=" + adminToken},
		[]string{"meta", "--listen", listen, "--store", store, "--http-addr", "127.0.0.1:0", "--agent-ttl", "3s"},
		"meta", "http")
}

// createKey runs `sluice meta keys create` and returns what it printed:
// the key alone.
func createKey(t *testing.T, metaAddr, cluster string) string {
	t.Helper()
	cmd := exec.Command(sluiceBin, "meta", "keys", "create", "--meta-addr", metaAddr, "--cluster", cluster)
	cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+adminToken)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice meta keys create: %v\n%s", err, stderr.String())
	}
	key := strings.TrimSuffix(string(out), "\n")
	if !strings.HasPrefix(key, "sk_") || strings.ContainsAny(key, " \n\t") {
		t.Fatalf("keys create printed %q, want the key alone", out)
	}
	return key
}

// metaUsers runs `sluice meta users ACTION --meta-addr ADDR ARGS...` with
// password on its standard input (SASL, issue 14).
func metaUsers(t *testing.T, metaAddr, password, action string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append([]string{"meta", "users", action, "--meta-addr", metaAddr}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+adminToken)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func metaKeys(t *testing.T, metaAddr string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(sluiceBin, append([]string{"meta", "keys"}, args...)...)
	cmd.Args = slices.Insert(cmd.Args, 4, "--meta-addr", metaAddr)
	cmd.Env = append(os.Environ(), "SLUICE_ADMIN_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startAgent runs `sluice agent` with key in the environment.
func startAgent(t *testing.T, name, metaAddrs, key, bucket string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"agent", "--meta-addr", metaAddrs, "--bucket", bucket, "--agent-id", name,
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--flush-interval", "50ms"}, extra...)
	return startProc(t, name, []string{"SLUICE_AGENT_KEY=" + key}, args, "bootstrap", "http")
}

// capture is a TCP proxy that records every byte in both directions.
type capture struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	up     bytes.Buffer // agent -> meta
	down   bytes.Buffer // meta -> agent
}

func newCapture(t *testing.T, target string) *capture {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go c.pipe(in, out, &c.up)
			go c.pipe(out, in, &c.down)
		}
	}()
	return c
}

func (c *capture) pipe(src, dst net.Conn, rec *bytes.Buffer) {
	defer src.Close()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c.mu.Lock()
			rec.Write(buf[:n])
			c.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *capture) bytes() (up, down []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.up.Bytes()), bytes.Clone(c.down.Bytes())
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestCanaryBytesNeverReachMeta is the zero-access boundary, end to end:
// an agent talks to a separately started meta through a proxy that
// records every byte on that socket; canary keys, values and header
// values are produced and consumed (with a consumer group, so group and
// offset traffic flows too), and none of their bytes appears in the
// capture, in either direction, nor in meta's store files.
func TestCanaryBytesNeverReachMeta(t *testing.T) {
	canaryNeverReachesMeta(t, false)
}

// TestCanaryBytesNeverReachMetaWithSASL is the canary test with SASL on
// (issue 14): the user is made with `sluice meta users set`, the clients
// log in with SCRAM-SHA-512 and PLAIN, and the password joins the
// canaries: PLAIN sends it to the agent, which must check it against the
// SCRAM credential it fetched and never pass it on.
func TestCanaryBytesNeverReachMetaWithSASL(t *testing.T) {
	canaryNeverReachesMeta(t, true)
}

func canaryNeverReachesMeta(t *testing.T, withSASL bool) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	key := createKey(t, m.lines["meta"], "canary")
	cp := newCapture(t, m.lines["meta"])
	var agentFlags []string
	var scramOpt, plainOpt []kgo.Opt
	password := "CANARYPW" + randHex(8)
	if withSASL {
		if out, err := metaUsers(t, m.lines["meta"], password, "set", "--cluster", "canary", "--user", "carol"); err != nil {
			t.Fatalf("sluice meta users set: %v\n%s", err, out)
		}
		agentFlags = []string{"--sasl-mechanisms", "SCRAM-SHA-512,PLAIN"}
		scramOpt = []kgo.Opt{kgo.SASL(scram.Auth{User: "carol", Pass: password}.AsSha512Mechanism())}
		plainOpt = []kgo.Opt{kgo.SASL(plain.Auth{User: "carol", Pass: password}.AsMechanism())}
	}
	a := startAgent(t, "agent-canary", cp.ln.Addr().String(), key, "file://"+filepath.Join(dir, "bucket"), agentFlags...)
	bootstrap := a.lines["bootstrap"]
	ctx := testCtx(t, 2*time.Minute)

	const topic = "canary-topic"
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, scramOpt...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	prefix := "CANARY" + randHex(4)
	var canaries []string
	if withSASL {
		canaries = append(canaries, password)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, plainOpt...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 2000
	var recs []*kgo.Record
	for i := range n {
		k, v, h := prefix+"-key-"+randHex(12), prefix+"-value-"+randHex(24), prefix+"-hdr-"+randHex(12)
		canaries = append(canaries, k, v, h)
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v),
			Headers: []kgo.RecordHeader{{Key: "h" + fmt.Sprint(i%7), Value: []byte(h)}}})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Consume everything back through a group that commits offsets.
	consOpts := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic), kgo.ConsumerGroup("canary-group"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}
	cons, err := kgo.NewClient(append(consOpts, scramOpt...)...)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n && ctx.Err() == nil {
		f := cons.PollFetches(ctx)
		f.EachRecord(func(r *kgo.Record) {
			if len(r.Headers) != 1 {
				t.Errorf("record %s has %d headers", r.Key, len(r.Headers))
			}
			seen[string(r.Value)] = true
		})
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(seen), n)
	}

	// Transactions (issue 15): a committed and an aborted transaction of
	// canary records, read back with read_committed, through the same
	// capture: markers and aborted ranges cross as offsets only.
	txnCanaries := transactionalCanaries(ctx, t, bootstrap, topic, prefix, append(plainOpt, scramOpt...))
	canaries = append(canaries, txnCanaries...)

	up, down := cp.bytes()
	// Positive control: the capture does see the metadata that must
	// cross (the topic and group names), so an empty or broken capture
	// cannot pass.
	if !bytes.Contains(up, []byte(topic)) || !bytes.Contains(up, []byte("canary-group")) {
		t.Fatalf("capture of %d bytes agent->meta lacks the topic or group name: capture broken", len(up))
	}
	if !bytes.Contains(up, []byte("canary-txn")) {
		t.Fatalf("capture of %d bytes agent->meta lacks the transactional id: capture broken", len(up))
	}
	if withSASL && !bytes.Contains(up, []byte("carol")) {
		// The agent asked meta for carol's credential through the capture.
		t.Fatalf("capture of %d bytes agent->meta lacks the user name: the logins did not go through meta", len(up))
	}
	t.Logf("captured %d bytes agent->meta, %d bytes meta->agent", len(up), len(down))
	for _, c := range append([]string{prefix}, canaries...) {
		for _, side := range []struct {
			name string
			b    []byte
		}{{"agent->meta", up}, {"meta->agent", down}} {
			if bytes.Contains(side.b, []byte(c)) {
				t.Fatalf("canary %q crossed to meta (%s)", c, side.name)
			}
		}
	}
	// Nor is any canary in what meta stored.
	err = filepath.Walk(filepath.Join(dir, "meta"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(prefix)) {
			return fmt.Errorf("canary bytes in meta's store file %s", path)
		}
		if withSASL && bytes.Contains(b, []byte(password)) {
			return fmt.Errorf("the SASL password in meta's store file %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	m.stop(t)
}

// TestVirtualClustersAreIsolated runs two clusters on one meta, each
// with its own agent and bucket: neither sees the other's topics, data,
// groups or agents, the same topic name lives independently in both, and
// a revoked key stops its agent within seconds.
func TestVirtualClustersAreIsolated(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	maddr := m.lines["meta"]
	keyA, keyB := createKey(t, maddr, "tenant-a"), createKey(t, maddr, "tenant-b")
	agA := startAgent(t, "agent-a", maddr, keyA, "file://"+filepath.Join(dir, "bucket-a"))
	agB := startAgent(t, "agent-b", maddr, keyB, "file://"+filepath.Join(dir, "bucket-b"))
	ctx := testCtx(t, 2*time.Minute)

	client := func(bootstrap string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl, kadm.NewClient(cl)
	}
	clA, admA := client(agA.lines["bootstrap"])
	clB, admB := client(agB.lines["bootstrap"])

	// The same name in both clusters, with different shapes.
	if _, err := admA.CreateTopic(ctx, 5, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := admA.CreateTopic(ctx, 1, 1, nil, "a-only"); err != nil {
		t.Fatal(err)
	}
	if _, err := admB.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatalf("cluster B cannot create a topic cluster A has: %v", err)
	}
	produce := func(cl *kgo.Client, prefix string, n int) {
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Topic: "orders", Value: fmt.Appendf(nil, "%s-%d", prefix, i)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(clA, "tenant-a", 300)
	produce(clB, "tenant-b", 200)

	topicsB, err := admB.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topicsB.Has("a-only") || len(topicsB.Names()) != 1 {
		t.Fatalf("cluster B sees topics %v, want only its own orders", topicsB.Names())
	}
	if d := topicsB["orders"]; len(d.Partitions) != 3 {
		t.Fatalf("cluster B's orders has %d partitions, want 3", len(d.Partitions))
	}

	readAll := func(bootstrap, group string, want int) []string {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup(group),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		// Closed here, while its cluster is up: closing leaves the group,
		// which a client left to Cleanup would retry for half a minute
		// against an agent revoked or stopped by then.
		defer cl.Close()
		var vals []string
		for len(vals) < want && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		// Anything beyond want would show a leak from the other cluster.
		pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
		cancel()
		return vals
	}
	valsA := readAll(agA.lines["bootstrap"], "group-a", 300)
	valsB := readAll(agB.lines["bootstrap"], "group-b", 200)
	for _, c := range []struct {
		vals   []string
		prefix string
		n      int
	}{{valsA, "tenant-a-", 300}, {valsB, "tenant-b-", 200}} {
		if len(c.vals) != c.n {
			t.Fatalf("read %d records, want %d", len(c.vals), c.n)
		}
		for _, v := range c.vals {
			if !strings.HasPrefix(v, c.prefix) {
				t.Fatalf("record %q in the cluster of %s", v, c.prefix)
			}
		}
	}

	groupsB, err := admB.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(groupsB.Groups(), "group-a") || !slices.Contains(groupsB.Groups(), "group-b") {
		t.Fatalf("cluster B lists groups %v", groupsB.Groups())
	}
	// Each cluster's Metadata lists its own agent only.
	for _, c := range []struct {
		adm  *kadm.Client
		want string
	}{{admA, agA.lines["bootstrap"]}, {admB, agB.lines["bootstrap"]}} {
		md, err := c.adm.BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)) != c.want {
			t.Fatalf("brokers %+v, want only %s", md.Brokers, c.want)
		}
	}

	// Revoke A's key: within seconds A's agent is refused by meta, and
	// B goes on working.
	if strings.Contains(agA.stderr.String(), "meta refuses this agent's key") {
		t.Fatalf("agent A refused before its key was revoked:\n%s", tail(agA.stderr.String(), 4096))
	}
	list, err := metaKeys(t, maddr, "list", "--cluster", "tenant-a")
	if err != nil {
		t.Fatalf("keys list: %v\n%s", err, list)
	}
	fields := strings.Fields(strings.Split(strings.TrimSpace(list), "\n")[1])
	revoked := time.Now() // from the start of the revoke command
	if out, err := metaKeys(t, maddr, "revoke", "--cluster", "tenant-a", "--id", fields[0]); err != nil {
		t.Fatalf("keys revoke: %v\n%s", err, out)
	}
	for !strings.Contains(agA.stderr.String(), "meta refuses this agent's key") {
		if time.Since(revoked) > 20*time.Second {
			t.Fatalf("agent A not refused 20s after its key was revoked:\n%s", tail(agA.stderr.String(), 4096))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("agent A refused %v after revocation", time.Since(revoked).Round(100*time.Millisecond))
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = clA.ProduceSync(pctx, &kgo.Record{Topic: "a-only", Value: []byte("after revoke")}).FirstErr()
	cancel()
	if err == nil {
		t.Fatal("agent A acknowledged a produce after its key was revoked")
	}
	produce(clB, "tenant-b-late", 10)
	if out, _ := metaKeys(t, maddr, "list", "--cluster", "tenant-a"); !strings.Contains(out, "revoked") {
		t.Fatalf("keys list does not show the revocation:\n%s", out)
	}
	agB.stop(t)
	m.stop(t)
}

// freePort returns a loopback address nobody listens on, for a meta that
// is restarted and must come back on the same address: below the
// ephemeral range (freeport), where the loads beside these tests cannot
// take it while that meta is down, as they could a port from ":0".
func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr(nil)
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestMetaOutage stops meta under a running agent: produces fail with an
// error in bounded time and acknowledge nothing, fetches of data the
// agent has indexed keep working, and everything recovers when meta
// returns on the same address.
func TestMetaOutage(t *testing.T) {
	t.Parallel() // mostly waiting on meta's outage: runs beside the load tests (see TestLoadtest)
	dir := t.TempDir()
	store, maddr := filepath.Join(dir, "meta"), freePort(t)
	m := startMeta(t, "meta", store, maddr)
	key := createKey(t, maddr, "outage")
	a := startAgent(t, "agent-outage", maddr, key, "file://"+filepath.Join(dir, "bucket"))
	bootstrap := a.lines["bootstrap"]
	ctx := testCtx(t, 3*time.Minute)

	const topic = "outage"
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProduceRequestTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	oracle := &loadtest.Oracle{}
	produceN := func(prefix string, n int) error {
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "%s-%05d", prefix, i)})
		}
		res := cl.ProduceSync(ctx, recs...)
		for _, r := range res {
			if r.Err == nil {
				oracle.Ack(loadtest.TopicPartition{Topic: r.Record.Topic, Partition: r.Record.Partition}, r.Record.Offset, r.Record.Value)
			}
		}
		return res.FirstErr()
	}
	if err := produceN("before", 500); err != nil {
		t.Fatal(err)
	}
	// readAll reads the 500 records with a new consumer at explicit
	// offsets and returns how many it got within 30 s.
	readAll := func() int {
		cons, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(0), 1: kgo.NewOffset().At(0)}}))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		got := 0
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for got < 500 && rctx.Err() == nil {
			cons.PollFetches(rctx).EachRecord(func(*kgo.Record) { got++ })
		}
		return got
	}
	// An acknowledgement is not yet in the agent's index: the commit
	// event travels meta's watch stream after the commit's answer, and a
	// kill in between loses it (CI saw that, reading 0 of 500). Reading
	// the records once indexes them (from the events or from meta's
	// lookup answer), which is what this test is about.
	if got := readAll(); got != 500 {
		t.Fatalf("read %d of 500 records with meta up", got)
	}

	m.kill()
	down := time.Now()

	// Indexed data is still served: a new consumer at explicit offsets.
	if got := readAll(); got != 500 {
		t.Fatalf("read %d of 500 indexed records while meta was down", got)
	}

	// A produce request fails, in bounded time, with a retriable error,
	// and nothing is acknowledged. A raw request shows the agent's own
	// answer (a client would retry it).
	raw, err := kafkatest.Dial(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 15000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 16, ProducerID: -1, FirstTS: time.Now().UnixMilli()})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	start := time.Now()
	resp, err := raw.RoundTrip(req, 60*time.Second)
	took := time.Since(start)
	raw.Close()
	if err != nil {
		t.Fatalf("produce during the outage: no answer: %v", err)
	}
	code := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode
	if code != kerr.RequestTimedOut.Code {
		t.Fatalf("produce during the outage answered %v, want REQUEST_TIMED_OUT (retriable)", kerr.ErrorForCode(code))
	}
	// The agent gives up on a commit after 10 s (agent.Config.CommitTimeout);
	// the request's own timeout is 15 s. 5 s of slack for a loaded machine.
	if took > 20*time.Second {
		t.Fatalf("produce during the outage answered after %v: not within the request timeout (15 s)", took)
	}
	t.Logf("produce during the outage answered %v after %v (meta down %v)", kerr.ErrorForCode(code), took.Round(100*time.Millisecond), time.Since(down).Round(100*time.Millisecond))

	m = startMeta(t, "meta-restarted", store, maddr)
	// The agent reconnects by itself; produce until it works again.
	recovered := time.Now()
	for {
		err := produceN("after", 50)
		if err == nil {
			break
		}
		if time.Since(recovered) > 60*time.Second {
			t.Fatalf("produce still failing 60s after meta returned: %v", err)
		}
	}
	t.Logf("produce works again %v after meta returned", time.Since(recovered).Round(100*time.Millisecond))
	verify(t, oracle, consumeAll(t, bootstrap, topic))
	a.stop(t)
	m.stop(t)
}

// waitHealthy polls a process's /healthz until it answers 200.
func waitHealthy(httpAddr string, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < within {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start), true
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), false
}

// writeCert writes a self-signed certificate for 127.0.0.1 (its own CA)
// and its key as PEM files.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sluice-meta-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "meta.crt"), filepath.Join(dir, "meta.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestMetaOverTLS: meta serves gRPC over TLS; the keys command and an
// agent that trust its CA (--meta-ca) work end to end, and an agent that
// speaks plaintext to it fails to start with an error naming meta.
func TestMetaOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeCert(t, dir)
	m := startProc(t, "meta-tls", []string{"SLUICE_ADMIN_TOKEN=" + adminToken},
		[]string{"meta", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "meta"), "--http-addr", "127.0.0.1:0",
			"--tls-cert", cert, "--tls-key", key}, "meta", "http")
	maddr := m.lines["meta"]

	out, err := metaKeys(t, maddr, "create", "--cluster", "secure", "--meta-ca", cert)
	if err != nil {
		t.Fatalf("keys create over TLS: %v\n%s", err, out)
	}
	agentKey := strings.TrimSpace(out)
	a := startAgent(t, "agent-tls", maddr, agentKey, "file://"+filepath.Join(dir, "bucket"), "--meta-ca", cert)
	ctx := testCtx(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.DefaultProduceTopic("tls"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("over tls")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// Plaintext against TLS: refused, and the error says where.
	cmd := exec.Command(sluiceBin, "agent", "--meta-addr", maddr, "--bucket", "file://"+filepath.Join(dir, "bucket"),
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "", "--agent-id", "plaintext")
	cmd.Env = append(os.Environ(), "SLUICE_AGENT_KEY="+agentKey)
	done := make(chan struct{})
	var pout []byte
	go func() { pout, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("a plaintext agent against a TLS meta neither started nor failed in 90s:\n%s", pout)
	}
	if err == nil || !strings.Contains(string(pout), "--meta-addr") {
		t.Fatalf("plaintext agent: err %v, output:\n%s", err, tail(string(pout), 2048))
	}
	a.stop(t)
	m.stop(t)
}

// TestPlaygroundZones: `sluice playground --agents 3 --zones a,b,c`
// prints every agent with its zone, and a client of zone c produces and
// consumes through zone c's agent only.
func TestPlaygroundZones(t *testing.T) {
	p := startProc(t, "playground", nil, []string{"playground", "--data-dir", t.TempDir(), "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--agents", "3", "--zones", "a,b,c"}, "bootstrap", "http", "agent 0", "agent 1", "agent 2")
	bootstrap := p.lines["bootstrap"]
	for i, z := range []string{"a", "b", "c"} {
		line := p.lines[fmt.Sprintf("agent %d", i)]
		if !strings.Contains(line, "zone="+z) {
			t.Fatalf("agent %d line %q lacks its zone %s", i, line, z)
		}
	}
	addrs := strings.Split(strings.Fields(bootstrap)[0], ",")
	if len(addrs) != 3 || !strings.Contains(bootstrap, "zone=b") {
		t.Fatalf("bootstrap %q does not list 3 agents with their zones", bootstrap)
	}
	ctx := testCtx(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("e2e,sluice_az=c"),
		kgo.DefaultProduceTopic("zones"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)) != addrs[2] {
		t.Fatalf("a zone-c client is offered %+v, want only %s", md.Brokers, addrs[2])
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("in zone c")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.stop(t)
}

// transactionalCanaries (issue 15) commits 100 canary records in one
// transaction and aborts 50 in another, then reads the topic with
// read_committed until it has seen all 100 committed ones and none of the
// aborted ones. It returns the canaries it wrote.
func transactionalCanaries(ctx context.Context, t *testing.T, bootstrap, topic, prefix string, opts []kgo.Opt) []string {
	t.Helper()
	p, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.TransactionalID("canary-txn"), kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var canaries []string
	committed := map[string]bool{}
	for _, commit := range []bool{true, false} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		n := 50
		if commit {
			n = 100
		}
		for range n {
			v := prefix + "-txn-" + randHex(16)
			canaries = append(canaries, v)
			committed[v] = commit
			recs = append(recs, &kgo.Record{Value: []byte(v)})
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("EndTransaction(commit=%v): %v", commit, err)
		}
	}
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := 0
	for got < 100 {
		f := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d of 100 committed transactional records", got)
		}
		f.EachRecord(func(r *kgo.Record) {
			if ok, txn := committed[string(r.Value)]; txn && !ok {
				t.Errorf("read_committed returned an aborted record %q", r.Value)
			} else if txn {
				got++
			}
		})
	}
	return canaries
}

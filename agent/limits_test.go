package agent_test

import (
	"context"
	"math"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/meta"
)

// Issue 11, part 2: connections past --max-connections are closed on
// accept (and counted); once one closes, a new one is served again.
func TestMaxConnections(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{MaxConnections: 3})
	refusedBefore := metricValue(t, `sluice_kafka_connections_refused_total{reason="max_connections"}`)
	apiVersions := func(conn *kafkatest.Conn) error {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(3)
		_, err := conn.RoundTrip(req, 5*time.Second)
		return err
	}
	var open []*kafkatest.Conn
	for i := range 3 {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := apiVersions(conn); err != nil {
			t.Fatalf("connection %d of 3: %v", i+1, err)
		}
		open = append(open, conn)
	}
	extra, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	expectClosed(t, extra, "fourth connection")
	if got := metricValue(t, `sluice_kafka_connections_refused_total{reason="max_connections"}`); got != refusedBefore+1 {
		t.Fatalf("refused counter moved by %v, want 1", got-refusedBefore)
	}

	// A slot frees when a connection closes (OnClose runs on the loop, so
	// poll until a new connection is served).
	open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		err = apiVersions(conn)
		conn.Close()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A connection has at most --max-inflight-requests-per-conn requests
// dispatched and unanswered: pipelined long polls park that many at a
// time (not one goroutine per request, as before), and all are answered,
// in order.
func TestInflightRequestsPerConnBound(t *testing.T) {
	const bound, requests = 4, 40
	c := startCluster(t, t.TempDir(), agent.Config{MaxInflightRequestsPerConn: bound})
	createTopic(t, c.addr(), "quiet", 1)
	limitedBefore := metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`)
	baseG := runtime.NumGoroutine()

	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var frames []byte
	for i := range requests {
		req := fetchRequest("quiet", 1<<20)
		req.MaxWaitMillis = 300 // nothing to read: each parks until its MaxWait
		frames = appendRequest(frames, int32(i+1), req)
	}
	if _, err := conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`) == limitedBefore {
		if time.Now().After(deadline) {
			t.Fatal("the in-flight bound was never reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Parked fetches each hold a goroutine: at most bound of them, plus
	// the connection's own and test slack, never one per request.
	if g := runtime.NumGoroutine() - baseG; g > bound+10 {
		t.Errorf("%d goroutines more than before %d pipelined long polls, bound %d", g, requests, bound)
	}
	for i := range requests {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if err := conn.Receive(int32(i+1), resp, 30*time.Second); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("response %d: %v", i+1, kerr.ErrorForCode(code))
		}
	}
}

// joinRecordingMeta records the JoinGroup requests the agent forwards.
type joinRecordingMeta struct {
	meta.Client
	mu    sync.Mutex
	joins []meta.JoinGroupRequest
}

func (m *joinRecordingMeta) JoinGroup(ctx context.Context, req meta.JoinGroupRequest) (meta.JoinGroupResult, error) {
	m.mu.Lock()
	m.joins = append(m.joins, req)
	m.mu.Unlock()
	return m.Client.JoinGroup(ctx, req)
}

// A JoinGroup waits on the agent as long as its rebalance timeout, which
// the client chooses (up to MaxInt32 ms, 24 days): the agent serves it
// as at most 30 minutes. A Fetch asking for 2 GiB is served as 55 MiB.
func TestClientChosenWaitsAndSizesCapped(t *testing.T) {
	rec := &joinRecordingMeta{}
	c := startClusterWith(t, t.TempDir(), agent.Config{}, func(m meta.Client) meta.Client {
		rec.Client = m
		return rec
	})
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	join := kmsg.NewPtrJoinGroupRequest()
	join.SetVersion(5)
	join.Group = "capped"
	join.SessionTimeoutMillis = 10000
	join.RebalanceTimeoutMillis = math.MaxInt32
	join.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	join.Protocols = append(join.Protocols, p)
	r, err := conn.RoundTrip(join, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// v4+: the first join only learns its member id.
	if code := r.(*kmsg.JoinGroupResponse).ErrorCode; code != kerr.MemberIDRequired.Code {
		t.Fatalf("join: %v", kerr.ErrorForCode(code))
	}
	rec.mu.Lock()
	joins := append([]meta.JoinGroupRequest(nil), rec.joins...)
	rec.mu.Unlock()
	if len(joins) != 1 || joins[0].RebalanceTimeout != 30*time.Minute {
		t.Fatalf("forwarded joins %+v, want one with a 30m rebalance timeout", joins)
	}

	createTopic(t, c.addr(), "big-ask", 1)
	cappedBefore := metricValue(t, `sluice_fetch_max_bytes_capped_total`)
	fr, err := conn.RoundTrip(fetchRequest("big-ask", math.MaxInt32), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := fr.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("fetch: %v", kerr.ErrorForCode(code))
	}
	if got := metricValue(t, `sluice_fetch_max_bytes_capped_total`); got != cappedBefore+1 {
		t.Fatalf("capped counter moved by %v, want 1", got-cappedBefore)
	}
}

// Produce requests waiting in the pipeline for their segment's commit
// are not held to the in-flight bound: each waits about one flush
// interval, so a bound of 32 capped a connection at ~128 requests a
// second and librdkafka without idempotence (one request per linger.ms)
// fell ever further behind (p50 175 ms -> 10 s at 5,000 records/s).
// Here the bound is 4 and 40 acks=all produces are pipelined: the bound
// is never hit and every one is answered, at dense offsets.
func TestParkedProducesNotHeldToInflightBound(t *testing.T) {
	const bound, requests = 4, 40
	c := startCluster(t, t.TempDir(), agent.Config{MaxInflightRequestsPerConn: bound})
	createTopic(t, c.addr(), "busy", 1)
	limitedBefore := metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`)

	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var frames []byte
	for i := range requests {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		req.TimeoutMillis = 30000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "busy"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 2, ValueSize: 10, FirstTS: time.Now().UnixMilli(), ProducerID: -1})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		frames = appendRequest(frames, int32(i+1), req)
	}
	if _, err := conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	for i := range requests {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if err := conn.Receive(int32(i+1), resp, 30*time.Second); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.BaseOffset != int64(2*i) {
			t.Fatalf("response %d: %v at offset %d, want offset %d", i+1, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset, 2*i)
		}
	}
	if got := metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`); got != limitedBefore {
		t.Fatalf("pipelined produces hit the in-flight bound (%v -> %v times)", limitedBefore, got)
	}
}

// A client that reads none of its responses holds its connection's share
// of the agent's fetch budget; a few such clients held all of it and
// every other fetch waited, then came back empty. It is closed after
// --slow-client-timeout with a log line, and its budget returns: another
// client's fetch then gets records.
func TestSlowClientClosed(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SlowClientTimeout: time.Second,
		MaxConnUnsentBytes: 4 << 20, MaxFetchBytesInflight: 8 << 20})
	createTopic(t, c.addr(), "slow", 1)
	var recs []byte
	for range 8 {
		recs = kafkatest.AppendBatch(recs, kafkatest.BatchOpts{Records: 16, ValueSize: 4 << 10, ProducerID: -1})
	}
	if codes, _ := produceRaw(t, c.addr(), "slow", map[int32][]byte{0: recs}); codes[0] != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(codes[0]))
	}
	before := metricValue(t, `sluice_kafka_slow_clients_closed_total`)

	// Two clients that never read, each asking for far more than its share.
	for range 2 {
		flood, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer flood.Close()
		if tc, ok := flood.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4 << 10) // the kernel holds little for us
		}
		var frames []byte
		for i := range 64 {
			frames = appendRequest(frames, int32(i+1), fetchRequest("slow", 1<<20))
		}
		_ = flood.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := flood.Write(frames); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(t, `sluice_kafka_slow_clients_closed_total`) < before+2 {
		if time.Now().After(deadline) {
			t.Fatalf("clients that read nothing were not closed (closed %v)", metricValue(t, `sluice_kafka_slow_clients_closed_total`)-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The budget came back: a reading client gets records.
	other, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	r, err := other.RoundTrip(fetchRequest("slow", 1<<20), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches); got == 0 {
		t.Fatal("fetch after the slow clients were closed returned no records")
	}
}

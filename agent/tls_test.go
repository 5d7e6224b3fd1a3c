package agent_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/internal/tlstest"
	"sluice.dev/server"
)

// TestSlowTLSClientClosed is TestSlowClientClosed on the TLS transport:
// its writer blocks on a client that reads nothing, the write deadline
// (--slow-client-timeout per 256 KiB) closes it, its share of the fetch
// budget comes back, and a reading TLS client gets records.
func TestSlowTLSClientClosed(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "agent")
	c := startCluster(t, t.TempDir(), agent.Config{SlowClientTimeout: time.Second,
		MaxConnUnsentBytes: 4 << 20, MaxFetchBytesInflight: 8 << 20,
		KafkaTLS: server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	tcfg := &tls.Config{RootCAs: ca.Pool()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DialTLSConfig(tcfg), kgo.DefaultProduceTopic("slow"),
		kgo.ProducerBatchCompression(kgo.NoCompression())) // responses as large as the records
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "slow"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 128 {
		v := make([]byte, 4<<10)
		for j := range v {
			v[j] = byte(i + j)
		}
		recs = append(recs, &kgo.Record{Value: v})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	before := metricValue(t, `sluice_kafka_slow_clients_closed_total`)

	// Two TLS clients that never read, each asking for far more than its
	// share.
	for range 2 {
		raw, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.(*net.TCPConn).SetReadBuffer(4 << 10) // the kernel holds little for us
		flood := tls.Client(raw, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
		defer flood.Close()
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
			t.Fatalf("TLS clients that read nothing were not closed (closed %v)", metricValue(t, `sluice_kafka_slow_clients_closed_total`)-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The budget came back: a reading client gets records.
	tc, err := tls.Dial("tcp", c.addr(), tcfg)
	if err != nil {
		t.Fatal(err)
	}
	other := &kafkatest.Conn{Conn: tc}
	defer other.Close()
	r, err := other.RoundTrip(fetchRequest("slow", 1<<20), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches); got == 0 {
		t.Fatal("fetch after the slow TLS clients were closed returned no records")
	}
}

// TestTLSClientBackpressure: a TLS client that pipelines produce requests
// while the pipeline cannot take them (uploads stalled, the in-flight
// bytes at their bound) is stopped by TCP: the TLS reader stops reading
// once the connection's queue is at its bound, so the client's writes
// block, and the agent holds a bounded amount however long it tries
// (gnet, by contrast, keeps reading and must close such a client).
func TestTLSClientBackpressure(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "agent")
	c := startCluster(t, t.TempDir(), agent.Config{MaxInFlightBytes: 16 << 20, MaxSegmentBytes: 1 << 20,
		KafkaTLS: server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	tcfg := &tls.Config{RootCAs: ca.Pool()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DialTLSConfig(tcfg))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 1, nil, "pushy"); err != nil {
		t.Fatal(err)
	}
	release := c.stallStore()
	defer release()

	// One 1 MiB produce request, sent again and again.
	var recs []byte
	for range 16 {
		recs = kafkatest.AppendBatch(recs, kafkatest.BatchOpts{Records: 16, ValueSize: 4 << 10, ProducerID: -1})
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = 1
	req.TimeoutMillis = 60000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "pushy"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = recs
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	frame := appendRequest(nil, 1, req)

	conn, err := tls.Dial("tcp", c.addr(), tcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The agent may hold its in-flight bytes, the connection's queue
	// (64 MiB) and what the kernel buffers on both sides; 512 MiB is far
	// past all of it.
	const limit = 512 << 20
	sent := 0
	for sent < limit {
		_ = conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
		n, err := conn.Write(frame)
		sent += n
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("write after %d MiB: %v (want a blocked write, not a closed connection)", sent>>20, err)
			}
			t.Logf("writes blocked after %d MiB", sent>>20)
			return
		}
	}
	t.Fatalf("wrote %d MiB with the pipeline stalled and no write ever blocked", sent>>20)
}

package agent_test

import (
	"context"
	"crypto/tls"
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

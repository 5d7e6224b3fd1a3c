package agent_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// --connections-max-idle (Kafka's connections.max.idle.ms): a connection
// that says nothing, or stops halfway through a frame, is closed after
// the limit; one that keeps sending requests, or that waits on its own
// parked produce longer than the limit, is not.
func TestIdleConnectionsClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	c := startCluster(t, t.TempDir(), agent.Config{ConnectionsMaxIdle: idle, FlushInterval: 1500 * time.Millisecond,
		EarlySealsPerSecond: -1}) // no early seal: the produce waits out the interval
	createTopic(t, c.addr(), "idle", 1)
	before := metricValue(t, "sluice_kafka_connections_idle_closed_total")

	dial := func() *kafkatest.Conn {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
	silent, half := dial(), dial()
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1000) // a 1,000-byte frame, of which 10 bytes come
	if _, err := half.Write(append(hdr[:], make([]byte, 10)...)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()

	// Busy: ApiVersions every 100 ms for 1.2 s.
	busy := dial()
	// Waiting: a produce parked for the 1.5 s flush interval, five times
	// the idle limit, is answered on the same connection.
	waiting := dial()
	corr, err := waiting.Send(produceRequest("idle", map[int32][]byte{
		0: kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 10, ProducerID: -1, FirstTS: time.Now().UnixMilli()}),
	}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		v := kmsg.NewPtrApiVersionsRequest()
		v.SetVersion(3)
		if _, err := busy.RoundTrip(v, 5*time.Second); err != nil {
			t.Fatalf("request %d on a busy connection: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	if err := waiting.Receive(corr, resp, 10*time.Second); err != nil {
		t.Fatalf("a produce parked longer than the idle limit: %v", err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("parked produce: error code %d", code)
	}

	expectClosed(t, silent.Conn, "a connection that sent nothing")
	expectClosed(t, half.Conn, "a connection stopped halfway through a frame")
	if el := time.Since(t0); el < idle {
		t.Fatalf("idle connections closed after %v, before the %v limit", el, idle)
	}
	if got := metricValue(t, "sluice_kafka_connections_idle_closed_total") - before; got < 2 {
		t.Fatalf("idle-closed counter moved by %v, want at least 2", got)
	}
}

package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// produceRaw sends one Produce v9 request with the given records per
// partition of topic and returns the per-partition error codes and base
// offsets.
func produceRaw(t *testing.T, addr, topic string, records map[int32][]byte) (map[int32]int16, map[int32]int64) {
	t.Helper()
	c, err := kafkatest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.RoundTrip(produceRequest(topic, records), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp := r.(*kmsg.ProduceResponse)
	codes, offsets := map[int32]int16{}, map[int32]int64{}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			codes[p.Partition] = p.ErrorCode
			offsets[p.Partition] = p.BaseOffset
		}
	}
	return codes, offsets
}

// produceRequest is a Produce v9 request, acks=all, with the given
// records per partition of topic.
func produceRequest(topic string, records map[int32][]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for p, recs := range records {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = recs
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	c, err := kafkatest.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	r, err := c.RoundTrip(req, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create %s: %v", topic, kerr.ErrorForCode(code))
	}
}

// A corrupt batch fails its own partition with CORRUPT_MESSAGE; the other
// partition in the same request is stored and readable.
func TestCorruptBatchFailsOnlyItsPartition(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	createTopic(t, c.addr(), "corrupt", 2)
	good := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 3, ValueSize: 20, ProducerID: -1, FirstTS: time.Now().UnixMilli()})
	bad := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 3, ValueSize: 20, ProducerID: -1, FirstTS: time.Now().UnixMilli()})
	bad[len(bad)-5] ^= 0xff // payload byte: the CRC no longer matches
	codes, offsets := produceRaw(t, c.addr(), "corrupt", map[int32][]byte{0: good, 1: bad})
	if codes[0] != 0 || offsets[0] != 0 {
		t.Fatalf("good partition: code %d offset %d", codes[0], offsets[0])
	}
	if codes[1] != kerr.CorruptMessage.Code {
		t.Fatalf("corrupt partition: code %d, want CORRUPT_MESSAGE", codes[1])
	}
	// Truncated records and a wrong magic get errors too.
	codes, _ = produceRaw(t, c.addr(), "corrupt", map[int32][]byte{1: good[:len(good)-1]})
	if codes[1] != kerr.CorruptMessage.Code {
		t.Fatalf("truncated batch: code %d, want CORRUPT_MESSAGE", codes[1])
	}
	m1 := append([]byte(nil), good...)
	m1[16] = 1
	codes, _ = produceRaw(t, c.addr(), "corrupt", map[int32][]byte{1: m1})
	if codes[1] == 0 {
		t.Fatal("magic 1 batch accepted")
	}

	cl := consumeClient(t, c.addr(), "corrupt")
	recs := pollN(t, cl, 3)
	for _, r := range recs {
		if r.Partition != 0 {
			t.Fatalf("record in partition %d", r.Partition)
		}
	}
}

func consumeClient(t *testing.T, addr string, topics ...string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func pollN(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before timeout", len(out), n)
		}
		f.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, f.Records()...)
	}
	return out
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
			return
		}
		t.Fatalf("%s: connection not closed: %v", what, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// Oversized frames, random bytes, an unknown API and a truncated frame
// followed by a disconnect each cost only the offending connection: a
// franz-go client producing and consuming alongside sees nothing, and
// what was stored before is intact.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{MaxRequestBytes: 1 << 20})
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("steady"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	produced := 0
	produce := func(n int) {
		for i := 0; i < n; i++ {
			if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(produced)}}).FirstErr(); err != nil {
				t.Fatalf("steady producer: %v", err)
			}
			produced++
		}
	}
	produce(5)

	attacks := []struct {
		name string
		send func(net.Conn)
	}{
		{"oversized frame", func(c net.Conn) {
			_, _ = c.Write(binary.BigEndian.AppendUint32(nil, 200<<20))
		}},
		{"negative frame size", func(c net.Conn) {
			_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xf0})
		}},
		{"random bytes", func(c net.Conn) {
			b := make([]byte, 4096)
			_, _ = rand.Read(b)
			b[0] = 0 // a plausible size so the body is read and fails to decode
			b[1] = 0
			b[2] = 0x0f
			b[3] = 0xfc
			_, _ = c.Write(b)
		}},
		{"unknown api", func(c net.Conn) {
			f := binary.BigEndian.AppendUint32(nil, 10)
			f = binary.BigEndian.AppendUint16(f, 9999)
			f = append(f, 0, 0, 0, 0, 0, 1, 0, 0)
			_, _ = c.Write(f)
		}},
	}
	for _, a := range attacks {
		conn, err := net.Dial("tcp", c.addr())
		if err != nil {
			t.Fatal(err)
		}
		a.send(conn)
		expectClosed(t, conn, a.name)
		conn.Close()
		produce(3)
	}
	// A truncated frame and a disconnect.
	conn, err := net.Dial("tcp", c.addr())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write(append(binary.BigEndian.AppendUint32(nil, 1000), make([]byte, 10)...))
	conn.Close()
	produce(3)

	cl := consumeClient(t, c.addr(), "steady")
	recs := pollN(t, cl, produced)
	if len(recs) != produced {
		t.Fatalf("consumed %d, produced %d", len(recs), produced)
	}
}

// The event loop never blocks: while every produce is stuck waiting for a
// commit (the object store hangs), other requests on other connections and
// on the same connection are still answered.
func TestEventLoopServesWhileProduceWaits(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	createTopic(t, c.addr(), "stuck", 1)
	release := c.stallStore()

	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	req.TimeoutMillis = 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "stuck"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 10, ProducerID: -1})
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	corr, err := conn.Send(req)
	if err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 20; i++ {
		other, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		mreq := kmsg.NewPtrMetadataRequest()
		mreq.SetVersion(9)
		if _, err := other.RoundTrip(mreq, 5*time.Second); err != nil {
			t.Fatalf("metadata while produce is stuck: %v", err)
		}
		other.Close()
	}
	// On the stuck connection a pipelined request waits its turn: responses
	// keep request order.
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	avCorr, err := conn.Send(av)
	if err != nil {
		t.Fatal(err)
	}
	release()
	presp := kmsg.NewPtrProduceResponse()
	presp.SetVersion(9)
	if err := conn.Receive(corr, presp, 30*time.Second); err != nil {
		t.Fatalf("produce response first: %v", err)
	}
	if code := presp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(code))
	}
	avResp := kmsg.NewPtrApiVersionsResponse()
	avResp.SetVersion(3)
	if err := conn.Receive(avCorr, avResp, 10*time.Second); err != nil {
		t.Fatalf("api versions response second: %v", err)
	}
}

package agent_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/bufpool"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/internal/tlstest"
	"sluice.dev/server"
)

// TestProduceFramesPooled: produce frames are read in pieces straight
// into pooled buffers, which go back to the pool once their batches are
// laid out in a segment (server/frames.go). Here the pool poisons every
// released buffer and checks it was not written after release, frames
// arrive glued together and cut at random points (one byte at a time
// too), with other APIs' frames in between, over several rounds so that
// buffers are reused; then every record is read back and compared byte
// for byte. A buffer reused while a segment or a response still needed
// it would show as a wrong value or a panic.
func TestProduceFramesPooled(t *testing.T) {
	defer bufpool.Poison()()
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond})
	const topic, partitions = "pooled", 4
	createTopic(t, c.addr(), topic, partitions)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 13))
	t.Logf("seed %d", seed)

	value := func(batch, i int) []byte {
		v := make([]byte, 1000+(batch*7919+i*104729)%60000)
		for j := range v {
			v[j] = byte(batch*31 + i*7 + j)
		}
		return v
	}
	const tsBase = 1_700_000_000_000
	type sent struct{ batch, records int }
	var all []sent
	batch := 0

	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	corr := int32(0)
	for round := 0; round < 6; round++ {
		var stream []byte
		var produces, order []int32
		for r := 0; r < 8; r++ {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks = -1
			req.TimeoutMillis = 30000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = topic
			for p := int32(0); p < partitions; p++ {
				n := 1 + rng.IntN(4)
				b := batch
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p
				rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: n, ProducerID: -1,
					FirstTS: tsBase + int64(b)*1000, Value: func(i int) []byte { return value(b, i) }})
				rt.Partitions = append(rt.Partitions, rp)
				all = append(all, sent{b, n})
				batch++
			}
			req.Topics = append(req.Topics, rt)
			corr++
			stream = appendRequest(stream, corr, req)
			produces = append(produces, corr)
			order = append(order, corr)
			if r%3 == 1 {
				// A frame of another API between produce frames.
				mr := kmsg.NewPtrMetadataRequest()
				mr.SetVersion(4)
				corr++
				stream = appendRequest(stream, corr, mr)
				order = append(order, corr)
			}
		}
		// Cut the stream at random points; in round 2 the first 8 KiB
		// go one to three bytes at a time.
		_ = conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
		written := 0
		for written < len(stream) {
			n := 1 + rng.IntN(300<<10)
			if round == 2 && written < 8<<10 {
				n = 1 + rng.IntN(3)
			}
			n = min(n, len(stream)-written)
			if _, err := conn.Write(stream[written : written+n]); err != nil {
				t.Fatalf("write: %v", err)
			}
			written += n
			if n < 4 && rng.IntN(64) == 0 {
				time.Sleep(time.Millisecond) // let the agent see a piece alone
			}
		}
		// Responses in request order; produces must all succeed.
		for _, want := range order {
			got, body := readFrame(t, conn)
			if got != want {
				t.Fatalf("response correlation %d, want %d", got, want)
			}
			if !contains(produces, got) {
				continue
			}
			// Produce v9 is flexible: response header v1, an empty
			// tagged-field section after the correlation id.
			if len(body) == 0 || body[0] != 0 {
				t.Fatalf("produce response header tags %x", body[:min(len(body), 1)])
			}
			resp := kmsg.NewPtrProduceResponse()
			resp.SetVersion(9)
			if err := resp.ReadFrom(body[1:]); err != nil {
				t.Fatalf("produce response: %v", err)
			}
			for _, tp := range resp.Topics {
				if tp.Topic != topic {
					t.Fatalf("response names topic %q", tp.Topic)
				}
				for _, p := range tp.Partitions {
					if p.ErrorCode != 0 {
						t.Fatalf("round %d: partition %d: error code %d", round, p.Partition, p.ErrorCode)
					}
				}
			}
		}
	}

	total := 0
	for _, s := range all {
		total += s.records
	}
	cl := consumeClient(t, c.addr(), topic)
	recs := pollN(t, cl, total)
	if len(recs) != total {
		t.Fatalf("read %d records, sent %d", len(recs), total)
	}
	for _, r := range recs {
		ms := r.Timestamp.UnixMilli() - tsBase
		b, i := int(ms/1000), int(ms%1000)
		if !bytes.Equal(r.Value, value(b, i)) || string(r.Key) != fmt.Sprintf("key-%d", i) {
			t.Fatalf("record %d of batch %d (partition %d offset %d) differs from what was sent (seed %d)",
				i, b, r.Partition, r.Offset, seed)
		}
	}
	if metricValue(t, "sluice_kafka_direct_read_bytes_total") == 0 {
		t.Error("no request byte was read straight into its frame: the large frames' direct reads went untested")
	}
	if metricValue(t, "sluice_kafka_frame_pool_reused_total") == 0 {
		t.Errorf("no produce frame buffer was reused (%v gets): the test proves nothing",
			metricValue(t, "sluice_kafka_frame_pool_gets_total"))
	}
}

func contains(s []int32, x int32) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// readFrame reads one response frame: its correlation id and the body
// after it (response header v0).
func readFrame(t *testing.T, c *kafkatest.Conn) (int32, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("read response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:])-4)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return int32(binary.BigEndian.Uint32(hdr[4:])), body
}

// TestFetchResponsesPooled: large fetch responses are encoded into pooled
// buffers that go back to the pool once the transport has taken their
// bytes (server/frames.go, newResponse and releaseResponses). With the
// pool poisoning every buffer put back, three consumers read the same
// topic at once, over and over, so buffers pass between connections; every
// record is compared byte for byte. A buffer put back while gnet still
// had to send it would reach a client as poison (a CRC error) or panic
// at the next Get.
func TestFetchResponsesPooled(t *testing.T) {
	t.Run("plaintext", func(t *testing.T) {
		testFetchResponsesPooled(t, agent.Config{FlushInterval: 20 * time.Millisecond})
	})
	// The TLS writer coalesces small pieces and writes large ones as
	// they are, then reports them written (server/tls_conn.go).
	t.Run("tls", func(t *testing.T) {
		dir := t.TempDir()
		ca := tlstest.NewCA(t, dir, "sluice")
		srv := ca.Server(t, dir, "agent")
		testFetchResponsesPooled(t, agent.Config{FlushInterval: 20 * time.Millisecond,
			KafkaTLS: server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
			kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool()}))
	})
}

func testFetchResponsesPooled(t *testing.T, cfg agent.Config, opts ...kgo.Opt) {
	defer bufpool.Poison()()
	c := startCluster(t, t.TempDir(), cfg)
	const topic, n = "pooled-fetch", 6000
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 4, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addr()), kgo.ProducerLinger(5 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = makeRecord(topic, i)
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	gets0 := metricValue(t, "sluice_kafka_response_pool_gets_total")
	reused0 := metricValue(t, "sluice_kafka_response_pool_reused_total")
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				// Small partition fetches, so that many responses (each
				// one pooled buffer) pass through the pool.
				cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics(topic),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
					kgo.FetchMaxPartitionBytes(256 << 10)}, opts...)...)
				if err != nil {
					errs <- err
					return
				}
				seen := 0
				for seen < n && ctx.Err() == nil {
					f := cl.PollFetches(ctx)
					f.EachError(func(_ string, p int32, err error) {
						if ctx.Err() == nil {
							errs <- fmt.Errorf("round %d: fetch partition %d: %w", round, p, err)
						}
					})
					for _, r := range f.Records() {
						var i int
						if _, err := fmt.Sscanf(string(r.Key), topic+"-%d", &i); err != nil {
							errs <- fmt.Errorf("key %q: %w", r.Key, err)
							continue
						}
						if err := sameRecord(r, recs[i]); err != nil {
							errs <- fmt.Errorf("round %d: %w", round, err)
						}
						seen++
					}
				}
				cl.Close()
				if seen < n {
					errs <- fmt.Errorf("round %d: read %d of %d records", round, seen, n)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	gets := metricValue(t, "sluice_kafka_response_pool_gets_total") - gets0
	reused := metricValue(t, "sluice_kafka_response_pool_reused_total") - reused0
	t.Logf("%v pooled responses, %v of them in a reused buffer", gets, reused)
	if reused == 0 {
		t.Errorf("no response buffer was reused (%v gets): the test proves nothing", gets)
	}
}

package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// A client with five produce requests waiting on the open segment can
// send nothing more (the idempotent producer's limit), so once the segment
// holds enough bytes to be worth an object it is sealed without waiting
// out the flush interval. Below that size the interval still applies
// when the budget of small early seals is off (see
// TestStalledClientEarlySealBudget for when it is on).
func TestStalledClientSealsEarly(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: time.Minute, EarlySealsPerSecond: -1})
	createTopic(t, c.addr(), "early", 1)
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	build := func(valueSize int) *kmsg.ProduceRequest {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		req.TimeoutMillis = 120000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "early"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 8, ValueSize: valueSize, ProducerID: -1})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	send := func(req *kmsg.ProduceRequest) int32 {
		corr, err := conn.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		return corr
	}
	// Built first and sent back to back, as a client's pipeline does: a
	// client that pauses between requests looks stalled at fewer
	// (TestQuietClientSealsEarly).
	var reqs []*kmsg.ProduceRequest
	// 5 × 448 KiB: past the 2 MiB floor, and four are not. A slow machine
	// can leave a gap of a few lingers between two of the sends, and the
	// quiet-client check then runs with four parked: with four past the
	// floor it sealed those, and the fifth waited alone for the interval.
	for i := 0; i < 5; i++ {
		reqs = append(reqs, build(56<<10))
	}
	var corrs []int32
	for _, req := range reqs {
		corrs = append(corrs, send(req))
	}
	for _, corr := range corrs {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		// Far below the one-minute flush interval.
		if err := conn.Receive(corr, resp, 20*time.Second); err != nil {
			t.Fatalf("stalled client not answered before the flush interval: %v", err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}

	// Five small requests: the segment is too small to be worth an early
	// object, so they wait for the interval.
	for i := 0; i < 5; i++ {
		send(build(10))
	}
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	if err := conn.Receive(corrs[len(corrs)-1]+1, resp, 2*time.Second); err == nil {
		t.Fatal("small segment sealed before its flush interval")
	}
}

// With a budget of small early seals (--max-early-seals-per-second), a
// stalled client's small segment is sealed at once while the budget
// lasts; past it the seal waits for the budget to refill (here 37 s, at
// 0.01 a second plus the one-minute interval's share), so the extra PUTs
// a second never exceed the budget.
func TestStalledClientEarlySealBudget(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: time.Minute, EarlySealsPerSecond: 0.01})
	createTopic(t, c.addr(), "budget", 1)
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// send5 sends five small requests in one write: sent one by one, a
	// gap of a few lingers between two (a loaded machine) let the
	// quiet-client check spend the one token on the first few, and the
	// rest waited for the interval.
	send5 := func() (last int32) {
		var reqs []kmsg.Request
		for range 5 {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(9)
			req.Acks = -1
			req.TimeoutMillis = 120000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "budget"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 2, ValueSize: 10, ProducerID: -1})
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			reqs = append(reqs, req)
		}
		first, err := conn.SendAll(reqs...)
		if err != nil {
			t.Fatal(err)
		}
		return first + 4
	}
	// The budget's one token (a burst of at least one): five small
	// requests are answered long before the one-minute interval.
	last := send5()
	for corr := last - 4; corr <= last; corr++ {
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if err := conn.Receive(corr, resp, 20*time.Second); err != nil {
			t.Fatalf("stalled client not sealed early within the budget: %v", err)
		}
	}
	// The budget is spent (0.01 a second): the next five wait.
	last = send5()
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(9)
	if err := conn.Receive(last-4, resp, 2*time.Second); err == nil {
		t.Fatal("sealed early past the budget")
	}
}

// A client that keeps fewer than five requests in flight (sarama keeps one
// when idempotent, librdkafka one per partition) stalls with fewer parked:
// a connection with produce parked that sends nothing more for a few
// lingers counts as stalled, and its small segment is sealed within the
// early-seal budget instead of waiting out the flush interval.
func TestQuietClientSealsEarly(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: time.Minute})
	createTopic(t, c.addr(), "quiet", 1)
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for round := 0; round < 3; round++ {
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(9)
		req.Acks = -1
		req.TimeoutMillis = 120000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "quiet"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 4, ValueSize: 10, ProducerID: -1})
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		corr, err := conn.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		// Far below the one-minute flush interval.
		if err := conn.Receive(corr, resp, 20*time.Second); err != nil {
			t.Fatalf("round %d: one parked request of a quiet client not answered before the flush interval: %v", round, err)
		}
		if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != int64(4*round) {
			t.Fatalf("round %d: error %v, base offset %d", round, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
		}
	}
}

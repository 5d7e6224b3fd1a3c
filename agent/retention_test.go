package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
)

// Issue 12 item 1 through a real client: records older than the topic's
// retention.ms become unreadable after one retention check: ListOffsets
// earliest moves past them, a Fetch below it gets OFFSET_OUT_OF_RANGE, a
// consumer from the start gets exactly the records that are kept.
func TestRetentionThroughKafka(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("aged"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	hour := "3600000"
	if res, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"retention.ms": &hour}, "aged"); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	// Five batches from three hours ago, then five from now; each
	// ProduceSync is its own segment, so its own index entry.
	old := time.Now().Add(-3 * time.Hour)
	for i := range 10 {
		ts := old
		if i >= 5 {
			ts = time.Now()
		}
		var recs []*kgo.Record
		for j := range 10 {
			recs = append(recs, &kgo.Record{Value: []byte{byte(i), byte(j)}, Timestamp: ts})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := c.meta.EnforceRetention(ctx); err != nil || n != 1 {
		t.Fatalf("EnforceRetention = %d, %v", n, err)
	}

	// The agent learns the new start from the commit stream; poll.
	deadline := time.Now().Add(10 * time.Second)
	for {
		starts, err := adm.ListStartOffsets(ctx, "aged")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := starts.Lookup("aged", 0)
		if o.Offset == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("earliest offset %d, want 50", o.Offset)
		}
		time.Sleep(50 * time.Millisecond)
	}

	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 100
	req.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "aged"
	tds, err := adm.ListTopics(ctx, "aged")
	if err != nil {
		t.Fatal(err)
	}
	ft.TopicID = tds["aged"].ID // Fetch v13+ names topics by id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.FetchOffset = 10
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; !errors.Is(kerr.ErrorForCode(code), kerr.OffsetOutOfRange) {
		t.Fatalf("fetch below the start: error %d, want OFFSET_OUT_OF_RANGE", code)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics("aged"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []int64
	for len(got) < 50 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
	}
	if len(got) != 50 || got[0] != 50 || got[49] != 99 {
		t.Fatalf("consumed %d records from %v, want offsets 50..99", len(got), got[:min(len(got), 3)])
	}
}

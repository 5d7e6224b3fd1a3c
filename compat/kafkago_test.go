package compat_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

func kgoCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func kafkagoProduce(t *testing.T, addr, topic string, codec compress.Compression, from, n int) {
	t.Helper()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(addr),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		Compression:            codec,
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              50,
		BatchTimeout:           5 * time.Millisecond,
		AllowAutoTopicCreation: true,
		MaxAttempts:            10,
	}
	defer w.Close()
	msgs := make([]kafka.Message, 0, n)
	for i := from; i < from+n; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(keyOf(topic, i)), Value: []byte(valueOf(topic, i))})
	}
	ctx := kgoCtx(t, time.Minute)
	// The first write may race auto-creation; kafka-go reports
	// UNKNOWN_TOPIC_OR_PARTITION then, and a retry succeeds.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = w.WriteMessages(ctx, msgs...); err == nil {
			return
		}
		if !errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.LeaderNotAvailable) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kafka-go produce %s (codec %v): %v", topic, codec, err)
}

// kafkagoHWM returns each partition's high watermark.
func kafkagoHWM(t *testing.T, addr, topic string, parts int) map[int]int64 {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < parts; p++ {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := cl.ListOffsets(kgoCtx(t, 30*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets %s[%d]: %v", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out
}

func kafkagoConsumeAll(t *testing.T, addr, topic string, parts int) []rec {
	t.Helper()
	var out []rec
	for p, hwm := range kafkagoHWM(t, addr, topic, parts) {
		if hwm == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: p,
			MaxWait: 200 * time.Millisecond, MaxBytes: 10 << 20})
		ctx := kgoCtx(t, 30*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("kafka-go consume %s[%d]: %v", topic, p, err)
			}
			out = append(out, rec{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value)})
			if m.Offset+1 >= hwm {
				break
			}
		}
		r.Close()
	}
	return out
}

// TestKafkaGoCodecs produces with every compression codec through
// kafka.Writer (acks=all, hash balancer) and reads everything back exactly
// with partition readers.
func TestKafkaGoCodecs(t *testing.T) {
	c := startCluster(t)
	codecs := map[string]compress.Compression{
		"none": 0, "gzip": compress.Gzip, "snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd,
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "kafkago-" + name
			const n = 500
			kafkagoProduce(t, c.addr(), topic, codec, 0, n)
			checkExact(t, topic, n, kafkagoConsumeAll(t, c.addr(), topic, 4))
		})
	}
}

// kafkagoMember is a kafka.Reader in a group that commits each record
// synchronously after processing it.
type kafkagoMember struct {
	name string
	r    *kafka.Reader
	done chan struct{}
	mu   sync.Mutex
	got  []rec
}

func startKafkagoMember(t *testing.T, addr, group, topic, name string) *kafkagoMember {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, GroupID: group, Topic: topic,
		MaxWait: 200 * time.Millisecond, HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 5 * time.Second, StartOffset: kafka.FirstOffset,
		GroupBalancers: []kafka.GroupBalancer{kafka.RangeGroupBalancer{}}})
	m := &kafkagoMember{name: name, r: r, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		ctx := context.Background()
		for {
			msg, err := r.FetchMessage(ctx)
			if err != nil {
				return // closed
			}
			m.mu.Lock()
			m.got = append(m.got, rec{partition: int32(msg.Partition), offset: msg.Offset, key: string(msg.Key), value: string(msg.Value)})
			m.mu.Unlock()
			if err := r.CommitMessages(ctx, msg); err != nil {
				t.Logf("%s: commit %d/%d: %v", name, msg.Partition, msg.Offset, err)
			}
		}
	}()
	return m
}

func (m *kafkagoMember) snapshot() []rec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rec(nil), m.got...)
}

func (m *kafkagoMember) close(t *testing.T) {
	if err := m.r.Close(); err != nil {
		t.Errorf("%s: close: %v", m.name, err)
	}
	<-m.done
}

// waitKafkagoAssigned waits until DescribeGroups shows want members, each
// assigned at least one partition of topic, and returns the assignment.
func waitKafkagoAssigned(t *testing.T, addr, group, topic string, want int) map[string][]int {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := cl.DescribeGroups(kgoCtx(t, 10*time.Second), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		var last string
		if err != nil {
			last = err.Error()
		} else if len(resp.Groups) == 1 {
			g := resp.Groups[0]
			asg := map[string][]int{}
			total := 0
			for _, mem := range g.Members {
				for _, tp := range mem.MemberAssignments.Topics {
					if tp.Topic == topic {
						asg[mem.ClientID+"/"+mem.MemberID] = tp.Partitions
						total += len(tp.Partitions)
					}
				}
			}
			if g.GroupState == "Stable" && len(g.Members) == want && len(asg) == want && total == 4 {
				return asg
			}
			last = fmt.Sprintf("state %s, %d members, assignment %v, error %v", g.GroupState, len(g.Members), asg, g.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s not stable with %d assigned members: %s", group, want, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestKafkaGoConsumerGroup runs two kafka.Reader group members on one
// 4-partition topic: both get partitions and together consume everything;
// one closes, more is produced and the survivor resumes from the committed
// offsets with nothing skipped; the committed offsets then equal the high
// watermarks and a new member reads exactly what was produced after.
func TestKafkaGoConsumerGroup(t *testing.T) {
	c := startCluster(t)
	const topic, group = "kafkago-group", "kafkago-g"
	const n1, n2, n3 = 400, 400, 200
	kafkagoProduce(t, c.addr(), topic, 0, 0, 4) // create the topic
	a := startKafkagoMember(t, c.addr(), group, topic, "kafkago-a")
	b := startKafkagoMember(t, c.addr(), group, topic, "kafkago-b")
	asg := waitKafkagoAssigned(t, c.addr(), group, topic, 2)
	t.Logf("assignment: %v", asg)
	kafkagoProduce(t, c.addr(), topic, 0, 4, n1-4)
	both := func() []rec { return append(a.snapshot(), b.snapshot()...) }
	waitDistinct(t, "two members", n1, both)
	if len(a.snapshot()) == 0 || len(b.snapshot()) == 0 {
		t.Errorf("a member consumed nothing: a %d, b %d", len(a.snapshot()), len(b.snapshot()))
	}

	b.close(t)
	waitKafkagoAssigned(t, c.addr(), group, topic, 1)
	kafkagoProduce(t, c.addr(), topic, 0, n1, n2)
	waitDistinct(t, "survivor", n1+n2, both)
	a.close(t)
	all := both()
	dups := checkGroup(t, topic, n1+n2, all)
	t.Logf("phase 1+2: %d deliveries, %d re-delivered (at-least-once)", len(all), dups)

	cl := &kafka.Client{Addr: kafka.TCP(c.addr())}
	committed, err := cl.ConsumerOffsets(kgoCtx(t, 10*time.Second), kafka.TopicAndGroup{Topic: topic, GroupId: group})
	if err != nil {
		t.Fatal(err)
	}
	for p, hwm := range kafkagoHWM(t, c.addr(), topic, 4) {
		if committed[p] != hwm {
			t.Errorf("committed offset of %s[%d] = %d, want %d", topic, p, committed[p], hwm)
		}
	}

	kafkagoProduce(t, c.addr(), topic, 0, n1+n2, n3)
	d := startKafkagoMember(t, c.addr(), group, topic, "kafkago-d")
	waitDistinct(t, "new member", n3, d.snapshot)
	time.Sleep(300 * time.Millisecond)
	d.close(t)
	seen := map[string]bool{}
	redelivered := 0
	for _, r := range d.snapshot() {
		var i int
		if _, err := fmt.Sscanf(r.key[len(topic)+2:], "%d", &i); err != nil || i < n1+n2 {
			redelivered++
		}
		seen[r.key] = true
	}
	for i := n1 + n2; i < n1+n2+n3; i++ {
		if !seen[keyOf(topic, i)] {
			t.Errorf("new member skipped %q", keyOf(topic, i))
		}
	}
	if redelivered > 0 {
		t.Errorf("new member re-read %d records that were committed", redelivered)
	}
}

// TestKafkaGoAdmin creates, describes (metadata and configs) and deletes a
// topic with kafka.Client.
func TestKafkaGoAdmin(t *testing.T) {
	c := startCluster(t)
	cl := &kafka.Client{Addr: kafka.TCP(c.addr())}
	ctx := kgoCtx(t, time.Minute)
	const topic = "kafkago-admin"
	create := func() error {
		resp, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
			Topic: topic, NumPartitions: 3, ReplicationFactor: 1,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
		}}})
		if err != nil {
			return err
		}
		return resp.Errors[topic]
	}
	if err := create(); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := create(); !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Errorf("second create: %v, want TopicAlreadyExists", err)
	}

	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || md.Topics[0].Name != topic || len(md.Topics[0].Partitions) != 3 {
		t.Fatalf("metadata: %+v", md.Topics)
	}
	if len(md.Brokers) == 0 {
		t.Error("metadata: no brokers")
	}
	dc, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"retention.ms"}}}})
	if err != nil {
		t.Fatalf("describe configs: %v", err)
	}
	if len(dc.Resources) != 1 || dc.Resources[0].Error != nil || len(dc.Resources[0].ConfigEntries) != 1 ||
		dc.Resources[0].ConfigEntries[0].ConfigName != "retention.ms" || dc.Resources[0].ConfigEntries[0].ConfigValue != "3600000" {
		t.Errorf("describe configs: %+v", dc.Resources)
	}

	del := func() error {
		resp, err := cl.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}})
		if err != nil {
			return err
		}
		return resp.Errors[topic]
	}
	if err := del(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// kafka-go's Transport answers Metadata from its own cache (refreshed
	// every MetadataTTL, not on DeleteTopics), so ask through a fresh one.
	fresh := &kafka.Client{Addr: kafka.TCP(c.addr()), Transport: &kafka.Transport{}}
	md, err = fresh.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		if tp.Name == topic {
			t.Errorf("topic still listed after delete")
		}
	}
	if err := del(); !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Errorf("second delete: %v, want UnknownTopicOrPartition", err)
	}
}

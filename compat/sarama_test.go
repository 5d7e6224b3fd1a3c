package compat_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0 // negotiate modern APIs
	cfg.ClientID = "compat-sarama"
	cfg.Metadata.AllowAutoTopicCreation = true
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // required by the idempotent producer
	cfg.Producer.Retry.Max = 10
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	return cfg
}

func saramaProduce(t *testing.T, addr, topic string, codec sarama.CompressionCodec, from, n int) {
	t.Helper()
	cfg := saramaConfig()
	cfg.Producer.Compression = codec
	cfg.Producer.Flush.Messages = 50
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond // without it a partial batch may never flush
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := from; i < from+n; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(keyOf(topic, i)), Value: sarama.StringEncoder(valueOf(topic, i))})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("sarama produce %s (%v): %v", topic, codec, err)
	}
}

// saramaConsumeAll reads every partition of topic from the oldest offset up
// to its high watermark.
func saramaConsumeAll(t *testing.T, addr, topic string) []rec {
	t.Helper()
	return saramaConsumeAllWith(t, addr, topic, saramaConfig())
}

// saramaConsumeAllWith is saramaConsumeAll with the client configured by
// cfg (TLS: compat/tls_test.go).
func saramaConsumeAllWith(t *testing.T, addr, topic string, cfg *sarama.Config) []rec {
	t.Helper()
	cl, err := sarama.NewClient([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cons, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	parts, err := cl.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []rec
	for _, p := range parts {
		hwm, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		if hwm == 0 {
			continue
		}
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatal(err)
		}
		timeout := time.After(30 * time.Second)
	read:
		for {
			select {
			case m := <-pc.Messages():
				out = append(out, rec{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value)})
				if m.Offset+1 >= hwm {
					break read
				}
			case err := <-pc.Errors():
				t.Fatalf("sarama consume %s[%d]: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("sarama consume %s[%d]: timed out before offset %d", topic, p, hwm)
			}
		}
		pc.Close()
	}
	return out
}

// TestSaramaCodecs produces with every compression codec through sarama's
// idempotent sync producer and reads everything back exactly.
func TestSaramaCodecs(t *testing.T) {
	c := startCluster(t)
	codecs := map[string]sarama.CompressionCodec{
		"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
		"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "sarama-" + name
			const n = 500
			saramaProduce(t, c.addr(), topic, codec, 0, n)
			checkExact(t, topic, n, saramaConsumeAll(t, c.addr(), topic))
		})
	}
}

// saramaMember is one consumer group member; it records what it consumed
// and the partitions of every session it had.
type saramaMember struct {
	name   string
	cg     sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	got    []rec
	claims map[int32]bool
}

func (m *saramaMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ps := range s.Claims() {
		for _, p := range ps {
			m.claims[p] = true
		}
	}
	return nil
}
func (m *saramaMember) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (m *saramaMember) ConsumeClaim(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	for msg := range cl.Messages() {
		m.mu.Lock()
		m.got = append(m.got, rec{partition: msg.Partition, offset: msg.Offset, key: string(msg.Key), value: string(msg.Value)})
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *saramaMember) snapshot() []rec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]rec(nil), m.got...)
}

func startSaramaMember(t *testing.T, addr, group, topic, name string) *saramaMember {
	t.Helper()
	cfg := saramaConfig()
	cfg.ClientID = name
	cfg.Consumer.Offsets.AutoCommit.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{name: name, cg: cg, cancel: cancel, done: make(chan struct{}), claims: map[int32]bool{}}
	go func() {
		for err := range cg.Errors() {
			t.Logf("%s: group error: %v", name, err)
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
				t.Logf("%s: consume: %v", name, err)
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return m
}

func (m *saramaMember) close(t *testing.T) {
	m.cancel()
	<-m.done
	if err := m.cg.Close(); err != nil {
		t.Errorf("%s: close: %v", m.name, err)
	}
}

func waitDistinct(t *testing.T, what string, want int, snap func() []rec) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		keys := map[string]bool{}
		for _, r := range snap() {
			keys[r.key] = true
		}
		if len(keys) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d distinct records consumed after 60s, want %d", what, len(keys), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSaramaConsumerGroup runs two sarama group members on one 4-partition
// topic, checks both get partitions and together consume everything, closes
// one, produces more and checks the survivor picks up its partitions from
// the committed offsets; then checks the committed offsets equal the high
// watermarks and that a new member resumes from them.
func TestSaramaConsumerGroup(t *testing.T) {
	c := startCluster(t)
	const topic, group = "sarama-group", "sarama-g"
	const n1, n2, n3 = 400, 400, 200
	saramaProduce(t, c.addr(), topic, sarama.CompressionNone, 0, n1)

	a := startSaramaMember(t, c.addr(), group, topic, "sarama-a")
	b := startSaramaMember(t, c.addr(), group, topic, "sarama-b")
	both := func() []rec { return append(a.snapshot(), b.snapshot()...) }
	waitDistinct(t, "two members", n1, both)
	// Both members must have been given partitions at some point: wait
	// for a generation that includes b.
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		na := len(a.claims)
		a.mu.Unlock()
		b.mu.Lock()
		nb := len(b.claims)
		b.mu.Unlock()
		if na > 0 && nb > 0 {
			t.Logf("partitions: a %d, b %d", na, nb)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members did not both get partitions: a %d, b %d", na, nb)
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.close(t) // commits b's marked offsets and leaves the group
	saramaProduce(t, c.addr(), topic, sarama.CompressionNone, n1, n2)
	waitDistinct(t, "survivor", n1+n2, both)
	a.close(t)
	all := both()
	dups := checkGroup(t, topic, n1+n2, all)
	t.Logf("phase 1+2: %d deliveries, %d re-delivered (at-least-once)", len(all), dups)

	// Every consumed record was committed on close: committed == HWM.
	admin, err := sarama.NewClusterAdmin([]string{c.addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cl, err := sarama.NewClient([]string{c.addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 4; p++ {
		hwm, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		blk := offs.GetBlock(topic, p)
		if blk == nil || blk.Err != sarama.ErrNoError || blk.Offset != hwm {
			t.Errorf("committed offset of %s[%d] = %+v, want %d", topic, p, blk, hwm)
		}
	}

	// A new member resumes from the committed offsets: it sees exactly
	// the records produced after.
	saramaProduce(t, c.addr(), topic, sarama.CompressionNone, n1+n2, n3)
	d := startSaramaMember(t, c.addr(), group, topic, "sarama-d")
	waitDistinct(t, "new member", n3, d.snapshot)
	time.Sleep(300 * time.Millisecond) // let any stray re-delivery show
	d.close(t)
	got := d.snapshot()
	redelivered := 0
	seen := map[string]bool{}
	for _, r := range got {
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

// TestSaramaAdmin creates, describes (metadata and configs) and deletes a
// topic with sarama's ClusterAdmin.
func TestSaramaAdmin(t *testing.T) {
	c := startCluster(t)
	cfg := saramaConfig()
	cfg.Metadata.AllowAutoTopicCreation = false
	admin, err := sarama.NewClusterAdmin([]string{c.addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	const topic = "sarama-admin"
	retention := "3600000"
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		t.Fatalf("create: %v", err)
	}
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
		t.Errorf("second create: %v, want TOPIC_ALREADY_EXISTS", err)
	}

	md, err := admin.DescribeTopics([]string{topic})
	if err != nil {
		t.Fatalf("describe topics: %v", err)
	}
	if len(md) != 1 || md[0].Err != sarama.ErrNoError || md[0].Name != topic || len(md[0].Partitions) != 3 {
		t.Fatalf("describe topics: %+v", md)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	if d, ok := topics[topic]; !ok || d.NumPartitions != 3 {
		t.Errorf("list topics: %s = %+v (present %v), want 3 partitions", topic, d, ok)
	} else if v := d.ConfigEntries["retention.ms"]; v == nil || *v != retention {
		t.Errorf("list topics: retention.ms = %v, want %s", v, retention)
	}
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}},
		sarama.DescribeConfigsOptions{IncludeSynonyms: true, IncludeDocumentation: true})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	if len(results) != 1 || results[0].ErrorCode != sarama.ErrNoError {
		t.Fatalf("describe config: %+v", results)
	}
	entries := results[0].Configs
	found := false
	for _, e := range entries {
		if e.Name == "retention.ms" {
			found = true
			if e.Value != retention {
				t.Errorf("describe config: retention.ms = %q, want %q", e.Value, retention)
			}
		}
	}
	if !found {
		t.Errorf("describe config: no retention.ms in %d entries", len(entries))
	}
	brokers, _, err := admin.DescribeCluster()
	if err != nil || len(brokers) == 0 {
		t.Errorf("describe cluster: %d brokers, %v", len(brokers), err)
	}

	if err := admin.DeleteTopic(topic); err != nil {
		t.Fatalf("delete: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		topics, err := admin.ListTopics()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := topics[topic]; !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("topic still listed 10s after delete")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := admin.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		t.Errorf("second delete: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

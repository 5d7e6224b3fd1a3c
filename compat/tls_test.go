package compat_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"

	"sluice.dev/agent"
	"sluice.dev/internal/tlstest"
	"sluice.dev/server"
)

// tlsCluster is startCluster with the Kafka listener on mutual TLS: the
// agent's certificate and a client's, both of one CA.
type tlsCluster struct {
	*cluster
	ca     *tlstest.CA
	client *tlstest.Leaf
}

func startTLSCluster(t *testing.T) *tlsCluster {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "agent")
	client := ca.Client(t, dir, "client", pkix.Name{CommonName: "compat"})
	c := startCluster(t, func(cfg *agent.Config) {
		cfg.KafkaTLS = server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File}
	})
	return &tlsCluster{cluster: c, ca: ca, client: client}
}

// TestSaramaMTLS: sarama's idempotent producer and its partition consumer
// over mutual TLS, every record checked; without a client certificate
// sarama cannot connect.
func TestSaramaMTLS(t *testing.T) {
	c := startTLSCluster(t)
	cfg := saramaConfig()
	cfg.Net.TLS.Enable = true
	cfg.Net.TLS.Config = &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{c.client.TLS}}
	cfg.Producer.Flush.Messages = 50
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	const topic, n = "sarama-mtls", 400
	p, err := sarama.NewSyncProducer([]string{c.addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topic,
			Key: sarama.StringEncoder(keyOf(topic, i)), Value: sarama.StringEncoder(valueOf(topic, i))})
	}
	if err := p.SendMessages(msgs); err != nil {
		t.Fatalf("sarama produce over mTLS: %v", err)
	}
	p.Close()

	got := saramaConsumeAllWith(t, c.addr(), topic, cfg)
	checkExact(t, topic, n, got)

	noCert := saramaConfig()
	noCert.Net.TLS.Enable = true
	noCert.Net.TLS.Config = &tls.Config{RootCAs: c.ca.Pool()}
	noCert.Metadata.Retry.Max = 0
	if cl, err := sarama.NewClient([]string{c.addr()}, noCert); err == nil {
		cl.Close()
		t.Fatal("sarama without a client certificate connected")
	}
}

// TestKafkaJSMTLS: kafkajs produces (idempotent, acks=-1) and consumes in
// a group over mutual TLS, every record checked (compat/kafkajs/tls.js).
func TestKafkaJSMTLS(t *testing.T) {
	node := lookKafkaJS(t)
	c := startTLSCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, filepath.Join("kafkajs", "tls.js"), c.addr(), c.ca.File,
		c.client.CertFile, c.client.KeyFile).CombinedOutput()
	t.Logf("kafkajs over mTLS:\n%s", out)
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("kafkajs over mTLS failed: %v", err)
	}
}

// TestKafkaGoMTLS: kafka-go's Writer (acks=all) and partition Readers over
// mutual TLS, every record checked.
func TestKafkaGoMTLS(t *testing.T) {
	c := startTLSCluster(t)
	tcfg := &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{c.client.TLS}}
	const topic, n, parts = "kafkago-mtls", 400, 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(c.addr()), Topic: topic, Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 50, BatchTimeout: 5 * time.Millisecond, AllowAutoTopicCreation: true, MaxAttempts: 10,
		Transport: &kafka.Transport{TLS: tcfg}}
	defer w.Close()
	var msgs []kafka.Message
	for i := range n {
		msgs = append(msgs, kafka.Message{Key: []byte(keyOf(topic, i)), Value: []byte(valueOf(topic, i))})
	}
	var err error
	for range 20 { // the first write may race auto-creation, as in kafkagoProduce
		if err = w.WriteMessages(ctx, msgs...); err == nil || (!errors.Is(err, kafka.UnknownTopicOrPartition) && !errors.Is(err, kafka.LeaderNotAvailable)) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("kafka-go produce over mTLS: %v", err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(c.addr()), Transport: &kafka.Transport{TLS: tcfg}}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	resp, err := cl.ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var got []rec
	for _, po := range resp.Topics[topic] {
		if po.Error != nil || po.LastOffset == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{c.addr()}, Topic: topic, Partition: po.Partition,
			MaxWait: 200 * time.Millisecond, MaxBytes: 10 << 20, Dialer: &kafka.Dialer{Timeout: 10 * time.Second, TLS: tcfg}})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("kafka-go consume over mTLS %s[%d]: %v", topic, po.Partition, err)
			}
			got = append(got, rec{partition: int32(m.Partition), offset: m.Offset, key: string(m.Key), value: string(m.Value)})
			if m.Offset+1 >= po.LastOffset {
				break
			}
		}
		r.Close()
	}
	checkExact(t, topic, n, got)
}

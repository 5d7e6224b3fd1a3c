package ctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAgainstKfake: the CLI speaks only Kafka, so it drives another
// implementation too: franz-go's kfake, a Kafka in a test process.
func TestAgainstKfake(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	c := &cli{t: t, addr: k.ListenAddrs()[0]}
	c.ok("", "topic", "create", "kf", "--partitions", "2", "--config", "retention.ms=60000")
	c.ok("a:1\nb:2\nc:3\n", "produce", "kf", "-K", ":")
	if got := sortLines(c.ok("", "consume", "kf", "-e", "-f", `%k=%s\n`)); got != "a=1\nb=2\nc=3\n" {
		t.Errorf("consume from kfake: %q", got)
	}
	c.ok("", "consume", "kf", "--group", "kg", "-n", "3")
	if out := c.ok("", "group", "lag", "kg"); !strings.Contains(out, "TOTAL LAG 0") {
		t.Errorf("group lag on kfake:\n%s", out)
	}
	c.ok("", "group", "reset-offsets", "kg", "--to", "earliest")
	if out := c.ok("", "group", "lag", "kg"); !strings.Contains(out, "TOTAL LAG 3") {
		t.Errorf("group lag on kfake after reset to earliest:\n%s", out)
	}
	var desc topicDescJSON
	c.jsonOf(&desc, "", "topic", "describe", "kf")
	if desc.Partitions != 2 || len(desc.Configs) != 1 || desc.Configs[0].Value != "60000" {
		t.Errorf("topic describe on kfake: %+v", desc)
	}
	c.ok("", "cluster", "info")
	c.ok("", "topic", "delete", "kf")
}

// TestConsumeEndAfterTransactionMarker: a partition whose last offset is a
// transaction's commit marker is still read to its end by -e (the marker
// takes an offset but is no record to print). Sluice does not serve
// transactions yet; kfake does.
func TestConsumeEndAfterTransactionMarker(t *testing.T) {
	k, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	p, err := kgo.NewClient(kgo.SeedBrokers(k.ListenAddrs()...), kgo.TransactionalID("ctl-test"), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"one", "two"} {
		if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, addr: k.ListenAddrs()[0]}
	for _, iso := range [][]string{nil, {"--read-committed"}} {
		if got := c.ok("", append([]string{"consume", "tx", "-e", "-f", `%o:%s\n`}, iso...)...); got != "0:one\n1:two\n" {
			t.Errorf("consume -e %v: %q, want the two records (and an exit past the marker)", iso, got)
		}
	}
}

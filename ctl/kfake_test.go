package ctl

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
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

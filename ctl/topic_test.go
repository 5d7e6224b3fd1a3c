package ctl

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestTopicCommands: create, list, describe, alter-config, add-partitions
// and delete round-trip against a real agent; the table output matches
// the golden files, the JSON output is parsed back and checked against
// kadm's own answers.
func TestTopicCommands(t *testing.T) {
	c := newCLI(t)
	norm := c.normaliser()

	out := c.ok("", "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000", "--config", "cleanup.policy=delete")
	golden(t, "topic_create", out)
	c.ok("", "topic", "create", "--partitions", "1", "audit")
	dry := c.ok("", "topic", "create", "never", "--partitions", "2", "--dry-run")
	golden(t, "topic_create_dry_run", dry)

	golden(t, "topic_list", c.ok("", "topic", "list"))
	var listed []topicJSON
	c.jsonOf(&listed, "", "topic", "list")
	if len(listed) != 2 || listed[0].Name != "audit" || listed[1].Name != "orders" || listed[1].Partitions != 3 {
		t.Fatalf("topic list --format json = %+v, want audit and orders (3 partitions); the dry run must create nothing", listed)
	}

	printf := "k1:a\nk2:b\nk3:c\nk4:d\n"
	c.ok(printf, "produce", "orders", "-K", ":")
	golden(t, "topic_describe", norm.apply(c.ok("", "topic", "describe", "orders")))

	var desc topicDescJSON
	c.jsonOf(&desc, "", "topic", "describe", "orders")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := c.admin().ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range desc.PartitionList {
		o, _ := ends.Lookup("orders", p.Partition)
		if p.HighWatermark != o.Offset {
			t.Errorf("describe: partition %d high watermark %d, kadm says %d", p.Partition, p.HighWatermark, o.Offset)
		}
		total += p.HighWatermark
	}
	if total != 4 || len(desc.PartitionList) != 3 {
		t.Errorf("describe: %d partitions holding %d records, want 3 holding 4", len(desc.PartitionList), total)
	}

	golden(t, "topic_alter_config", c.ok("", "topic", "alter-config", "orders", "--set", "retention.ms=7200000", "--delete", "cleanup.policy"))
	c.jsonOf(&desc, "", "topic", "describe", "orders")
	if len(desc.Configs) != 1 || desc.Configs[0].Name != "retention.ms" || desc.Configs[0].Value != "7200000" || desc.Configs[0].Source != "topic" {
		t.Errorf("after alter-config, topic configs = %+v, want only retention.ms=7200000", desc.Configs)
	}

	golden(t, "topic_add_partitions", c.ok("", "topic", "add-partitions", "orders", "--num", "2"))
	c.jsonOf(&desc, "", "topic", "describe", "orders")
	if desc.Partitions != 5 || len(desc.PartitionList) != 5 {
		t.Errorf("after add-partitions --num 2: %d partitions, want 5", desc.Partitions)
	}

	golden(t, "topic_delete", c.ok("", "topic", "delete", "audit"))
	c.jsonOf(&listed, "", "topic", "list")
	if len(listed) != 1 || listed[0].Name != "orders" {
		t.Errorf("after delete: topics %+v, want only orders", listed)
	}
}

// TestTopicErrors: the cluster's refusals become plain words with the
// Kafka error name and what to do.
func TestTopicErrors(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "orders", "--partitions", "1")
	c.fails([]string{`topic "orders" already exists (TOPIC_ALREADY_EXISTS`, "sluice topic describe orders"}, "", "topic", "create", "orders")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`, "list topics with `sluice topic list`"}, "", "topic", "describe", "nope")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`}, "", "topic", "delete", "nope")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`}, "", "topic", "alter-config", "nope", "--set", "retention.ms=1")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`, "create it with `sluice topic create nope`"}, "x\n", "produce", "nope")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`}, "", "consume", "nope", "-e")
	c.fails([]string{`"bad/name" is not a valid topic name (INVALID_TOPIC_EXCEPTION`}, "", "topic", "create", "bad/name")
	c.fails([]string{"INVALID_CONFIG", "--config"}, "", "topic", "create", "t2", "--config", "retention.ms=soon")
	c.fails([]string{"--partitions must be positive or -1"}, "", "topic", "create", "t3", "--partitions", "0")
	c.fails([]string{"--num must be positive"}, "", "topic", "add-partitions", "orders")
	c.fails([]string{"nothing to change"}, "", "topic", "alter-config", "orders")
	c.fails([]string{"name the topic to create"}, "", "topic", "create")
	c.fails([]string{"--format must be table or json"}, "", "topic", "list", "--format", "xml")
	c.fails([]string{"want name=value"}, "", "topic", "create", "t4", "--config", "retention.ms")
	c.fails([]string{"unknown subcommand \"frobnicate\""}, "", "topic", "frobnicate")
}

// TestUnreachableBroker: a closed port fails naming --brokers; a broker
// that accepts connections and never answers fails within --timeout (the
// command's own bound, not the caller's), naming --timeout too.
func TestUnreachableBroker(t *testing.T) {
	c := &cli{t: t, addr: ""}
	port := closedPort(t)
	c.fails([]string{"cannot reach a broker at 127.0.0.1:" + port, "check --brokers (or $SLUICE_BROKERS)"}, "", "topic", "list", "--brokers", "127.0.0.1:"+port, "--timeout", "2s")
	// $SLUICE_BROKERS is the default of --brokers.
	c.env = map[string]string{EnvBrokers: "127.0.0.1:" + port}
	c.fails([]string{"cannot reach a broker at 127.0.0.1:" + port}, "", "cluster", "info", "--timeout", "2s")

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 16) // accepted, held open, never answered
	defer func() {
		silent.Close()
		for len(held) > 0 {
			(<-held).Close()
		}
	}()
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			select {
			case held <- conn:
			default:
				conn.Close()
			}
		}
	}()
	parent, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb strings.Builder
	err = Run(parent, []string{"group", "list", "--brokers", silent.Addr().String(), "--timeout", "1s"}, IO{Out: &out, Err: &errb, Getenv: func(string) string { return "" }})
	if parent.Err() != nil {
		t.Fatalf("a silent broker held the command until the caller's deadline: --timeout did not bound it (%v)", err)
	}
	for _, want := range []string{"cannot reach a broker at " + silent.Addr().String() + " within --timeout 1s", "raise --timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("silent broker: error %v, want it to contain %q", err, want)
		}
	}
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

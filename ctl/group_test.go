package ctl

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceStamped writes n records to partition 0 of topic with
// timestamps base, base+1000, ... through `sluice produce --format json`.
func (c *cli) produceStamped(topic string, n int, base int64) {
	c.t.Helper()
	var in strings.Builder
	for i := range n {
		fmt.Fprintf(&in, `{"key":"k%d","value":"v%d","timestamp":%d}`+"\n", i, i, base+int64(i)*1000)
	}
	c.ok(in.String(), "produce", topic, "-p", "0", "--format", "json")
}

// resumeAt joins group with a plain franz-go consumer and returns the
// offset of the first record it is given on partition 0 of topic: where
// the group's committed offset put it. It commits nothing and leaves.
func (c *cli) resumeAt(group, topic string) int64 {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		var first int64 = -1
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if first < 0 && r.Partition == 0 {
				first = r.Offset
			}
		})
		if first >= 0 {
			return first
		}
	}
	c.t.Fatalf("group %s: the consumer got no record of %s within 30s", group, topic)
	return -1
}

func (c *cli) lag(group string) groupDescJSON {
	c.t.Helper()
	var g groupDescJSON
	c.jsonOf(&g, "", "group", "describe", group)
	return g
}

func committedOf(g groupDescJSON, topic string, p int32) int64 {
	for _, l := range g.Lag {
		if l.Topic == topic && l.Partition == p {
			return l.Committed
		}
	}
	return -2
}

// TestGroupResetOffsets: a group consumed by `sluice consume --group`
// is listed, described and its lag shown (golden tables); each kind of
// reset (--dry-run, earliest, latest, offset, timestamp, per topic) is
// verified by a consumer of the group that resumes where the reset put it.
func TestGroupResetOffsets(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "pay", "--partitions", "1")
	c.ok("", "topic", "create", "ship", "--partitions", "1")
	c.produceStamped("pay", 10, 2_000_000)
	c.produceStamped("ship", 3, 2_000_000)

	if got := c.ok("", "consume", "pay", "ship", "--group", "billing", "-n", "4", "-f", `%t:%o\n`); strings.Count(got, "\n") != 4 {
		t.Fatalf("consume --group -n 4 printed:\n%s", got)
	}
	// -n 4 commits exactly the 4 records printed, over both topics.
	g := c.lag("billing")
	if g.State != "Empty" || committedOf(g, "pay", 0)+max(committedOf(g, "ship", 0), 0) != 4 {
		t.Fatalf("after consuming 4 records: %+v", g)
	}
	// Make the committed state exact for the golden tables.
	c.ok("", "group", "reset-offsets", "billing", "--to", "offset:4", "--topic", "pay")
	c.ok("", "group", "reset-offsets", "billing", "--to", "latest", "--topic", "ship")

	golden(t, "group_list", c.ok("", "group", "list"))
	golden(t, "group_lag", c.ok("", "group", "lag", "billing"))
	golden(t, "group_describe_empty", c.ok("", "group", "describe", "billing"))

	golden(t, "group_reset_dry_run", c.ok("", "group", "reset-offsets", "billing", "--to", "earliest", "--dry-run"))
	if got := committedOf(c.lag("billing"), "pay", 0); got != 4 {
		t.Fatalf("--dry-run moved pay[0] to %d", got)
	}
	if got := c.resumeAt("billing", "pay"); got != 4 {
		t.Fatalf("consumer resumed at %d, want 4 (the committed offset)", got)
	}

	golden(t, "group_reset_offset", c.ok("", "group", "reset-offsets", "billing", "--to", "offset:7", "--topic", "pay"))
	if got := c.resumeAt("billing", "pay"); got != 7 {
		t.Errorf("after --to offset:7 the consumer resumed at %d", got)
	}
	c.ok("", "group", "reset-offsets", "billing", "--to", "timestamp:2003000", "--topic", "pay")
	if got := c.resumeAt("billing", "pay"); got != 3 {
		t.Errorf("after --to timestamp:2003000 the consumer resumed at %d, want 3", got)
	}
	rfc := time.UnixMilli(2_005_500).UTC().Format(time.RFC3339Nano)
	c.ok("", "group", "reset-offsets", "billing", "--to", "timestamp:"+rfc, "--topic", "pay:0")
	if got := c.resumeAt("billing", "pay"); got != 6 {
		t.Errorf("after --to timestamp:%s the consumer resumed at %d, want 6", rfc, got)
	}
	// Earliest, over every committed partition; the CLI's own group
	// consumer resumes there.
	c.ok("", "group", "reset-offsets", "billing", "--to", "earliest")
	if got := c.ok("", "consume", "pay", "--group", "billing", "-n", "1", "-f", `%o`); got != "0" {
		t.Errorf("after --to earliest, sluice consume --group printed offset %q, want 0", got)
	}
	var plan struct {
		Group  string     `json:"group"`
		DryRun bool       `json:"dry_run"`
		Plan   []resetRow `json:"partitions"`
	}
	c.jsonOf(&plan, "", "group", "reset-offsets", "billing", "--to", "offset:99", "--topic", "pay")
	if len(plan.Plan) != 1 || plan.Plan[0].New != 10 || plan.Plan[0].Current != 1 || !strings.Contains(plan.Plan[0].Note, "clamped") {
		t.Errorf("--to offset:99 plan %+v, want pay[0] 1 -> 10 (clamped to the log end)", plan)
	}
	c.ok("", "group", "reset-offsets", "billing", "--to", "latest")
	if g := c.lag("billing"); g.TotalLag != 0 {
		t.Errorf("after --to latest the total lag is %d, want 0", g.TotalLag)
	}
	// A timestamp after every record resets to the log end.
	c.ok("", "group", "reset-offsets", "billing", "--to", "timestamp:9000000", "--topic", "pay")
	if got := committedOf(c.lag("billing"), "pay", 0); got != 10 {
		t.Errorf("--to a timestamp after all records: pay[0] at %d, want 10 (log end)", got)
	}

	c.fails([]string{"--to is required"}, "", "group", "reset-offsets", "billing")
	c.fails([]string{"--to must be earliest, latest, timestamp:T"}, "", "group", "reset-offsets", "billing", "--to", "yesterday")
	c.fails([]string{`group "fresh" has no committed offsets; name what to reset with --topic`}, "", "group", "reset-offsets", "fresh", "--to", "earliest")
	c.fails([]string{`topic "nope" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`}, "", "group", "reset-offsets", "billing", "--to", "earliest", "--topic", "nope")
	c.fails([]string{`topic "pay" has no partition 3`}, "", "group", "reset-offsets", "billing", "--to", "earliest", "--topic", "pay:3")
	// A new group may be given offsets before it first runs.
	c.ok("", "group", "reset-offsets", "fresh", "--to", "offset:8", "--topic", "pay")
	if got := c.resumeAt("fresh", "pay"); got != 8 {
		t.Errorf("new group reset to offset 8 resumed at %d", got)
	}
}

// TestGroupActive: a group with a running member is described with its
// member and assignment, and is protected: reset-offsets refuses, delete
// gets NON_EMPTY_GROUP. Once the member leaves, delete works and the
// group is gone.
func TestGroupActive(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "pay", "--partitions", "2")
	c.produceStamped("pay", 3, 2_000_000)

	member, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("pay"),
		kgo.ClientID("live-member"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	// The member joins as it polls; wait (bounded) until the coordinator
	// reports it Stable with the member.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			member.PollFetches(ctx)
		}
	}()
	var g groupDescJSON
	for {
		out, err := c.run("", "group", "describe", "live", "--format", "json")
		if err == nil {
			if jerr := jsonUnmarshal(out, &g); jerr == nil && g.State == "Stable" && len(g.Members) == 1 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("group live not Stable with one member within 30s: %+v (%v)", g, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the coordinator, bounded by ctx
	}
	m := g.Members[0]
	if m.ClientID != "live-member" || len(m.Assigned) != 1 || m.Assigned[0] != "pay:0,1" {
		t.Errorf("member %+v, want client live-member assigned pay:0,1", m)
	}
	if g.ProtocolType != "consumer" || g.Protocol == "" {
		t.Errorf("group protocol %q/%q", g.ProtocolType, g.Protocol)
	}
	table := c.ok("", "group", "describe", "live")
	for _, want := range []string{"STATE          Stable", "MEMBERS        1", "live-member", "pay:0,1"} {
		if !strings.Contains(table, want) {
			t.Errorf("group describe table lacks %q:\n%s", want, table)
		}
	}

	c.fails([]string{`group "live" has 1 active members (state Stable)`, "stop its consumers"}, "", "group", "reset-offsets", "live", "--to", "earliest", "--topic", "pay")
	c.fails([]string{`group "live" still has members (NON_EMPTY_GROUP)`}, "", "group", "delete", "live")

	cancel()
	member.Close() // leaves the group
	golden(t, "group_delete", c.ok("", "group", "delete", "live"))
	c.fails([]string{`group "live" does not exist (GROUP_ID_NOT_FOUND)`, "sluice group list"}, "", "group", "describe", "live")
	c.fails([]string{`group "live" does not exist (GROUP_ID_NOT_FOUND)`}, "", "group", "lag", "live")
}

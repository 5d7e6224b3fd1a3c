package compat_test

// Transactions (issue 15) with kafkajs and kafka-go; the sarama tests are
// in sarama_txn_test.go. franz-go is the reference reader here: it reads
// what the other clients wrote with read_committed.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// franzRead reads topic from the start with the isolation level given
// until it has want records, and returns them in partition, offset order.
func franzRead(t *testing.T, addr, topic string, iso kgo.IsolationLevel, want int) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []rec
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: read %d of %d records before the deadline: %v", topic, len(got), want, got)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Errorf("fetch %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, rec{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
		})
	}
	sort.Slice(got, func(a, b int) bool {
		return got[a].partition < got[b].partition || got[a].partition == got[b].partition && got[a].offset < got[b].offset
	})
	return got
}

// partValues renders recs as partition:value@offset, for exact
// comparisons.
func partValues(recs []rec) string {
	var s []string
	for _, r := range recs {
		s = append(s, fmt.Sprintf("%d:%s@%d", r.partition, r.value, r.offset))
	}
	return strings.Join(s, " ")
}

// TestKafkaJSTxn (compat.js txn) runs kafkajs 2.2.4's transactional
// producer against two agents (both given as brokers): commit, abort,
// commit over two partitions, read with readUncommitted false (exactly
// the committed records at their offsets) and true (all); a
// consume-transform-produce loop whose sendOffsets moves the group's
// committed offsets only with the committed transaction; a second
// producer with the same transactionalId fencing the first (kafkajs sends
// EndTxn v1, so the refusal is INVALID_PRODUCER_EPOCH). Then franz-go
// reads what kafkajs wrote with read_committed: the same committed
// records, the transformed output once each, the fenced record never.
func TestKafkaJSTxn(t *testing.T) {
	node := lookKafkaJS(t)
	c := startCluster(t)
	b := c.AddAgent(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("kafkajs", "compat.js"), c.addr()+","+b.AdvertisedAddr(), "txn")
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	t.Logf("kafkajs txn:\n%s", out)
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("kafkajs txn failed: %v", err)
	}

	var want []string
	for part := range 2 {
		for i := part; i < 10; i += 2 {
			want = append(want, fmt.Sprintf("%d:c1-%d@%d", part, i, i/2))
		}
		for i := part; i < 4; i += 2 {
			want = append(want, fmt.Sprintf("%d:c3-%d@%d", part, i, 10+i/2))
		}
	}
	if got := partValues(franzRead(t, b.AdvertisedAddr(), "kafkajs-txn", kgo.ReadCommitted(), len(want))); got != strings.Join(want, " ") {
		t.Errorf("franz-go read_committed of kafkajs-txn:\n got %s\nwant %s", got, strings.Join(want, " "))
	}
	const n = 20
	outRecs := franzRead(t, c.addr(), "kafkajs-ctp-out", kgo.ReadCommitted(), n)
	seen := map[string]int{}
	for _, r := range outRecs {
		seen[r.value]++
	}
	for i := range n {
		if v := "out:" + keyOf("kafkajs-ctp-in", i); seen[v] != 1 {
			t.Errorf("franz-go read_committed of kafkajs-ctp-out holds %q %d times, want once", v, seen[v])
		}
	}
	if got := partValues(franzRead(t, c.addr(), "kafkajs-fence", kgo.ReadCommitted(), 1)); got != "0:after-0@2" {
		t.Errorf("franz-go read_committed of kafkajs-fence: %s, want 0:after-0@2 (the zombie's record at 0 aborted)", got)
	}
}

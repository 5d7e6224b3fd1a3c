package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
)

// startSecondAgent starts another agent on the same meta and bucket, as a
// second process would in production.
func startSecondAgent(t *testing.T, c *testCluster) *agent.Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, agent.Config{ID: "agent-b", NodeID: 1, KafkaAddr: "127.0.0.1:0",
		FlushInterval: 50 * time.Millisecond, AutoCreateTopics: true, DefaultPartitions: 8}, c.meta, c.gate)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = a.Stop(sctx)
	})
	return a
}

func produceN(t *testing.T, addr, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprint(from + i)), Value: []byte(fmt.Sprint(from + i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// groupMember consumes in a group, committing what it processed
// synchronously after every poll and only then letting a rebalance
// proceed, and reports each record.
type groupMember struct {
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}
}

func startMember(t *testing.T, addr, group, topic string, onRecord func(member string, r *kgo.Record), name string, opts ...kgo.Opt) *groupMember {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	m := &groupMember{cl: cl, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			f := cl.PollFetches(ctx)
			cancel()
			f.EachRecord(func(r *kgo.Record) { onRecord(name, r) })
			if f.NumRecords() > 0 {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := cl.CommitUncommittedOffsets(cctx); err != nil {
					t.Logf("%s: commit: %v", name, err)
				}
				ccancel()
			}
			// Rebalances wait for this: whatever was polled is committed
			// first, so a partition's next owner starts after it.
			cl.AllowRebalance()
		}
	}()
	return m
}

func (m *groupMember) close() {
	close(m.stop)
	<-m.done
	m.cl.Close() // leaves the group
}

// A consumer group of members on two different agents shares one
// multi-partition topic: every record is consumed, work is split, and
// after a member leaves and another joins, consumption resumes from the
// committed offsets with nothing skipped or repeated.
func TestConsumerGroupAcrossAgents(t *testing.T) {
	for _, tc := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"eager-range", kgo.RangeBalancer()},
	} {
		t.Run(tc.name, func(t *testing.T) { testConsumerGroupAcrossAgents(t, kgo.Balancers(tc.balancer)) })
	}
}

func testConsumerGroupAcrossAgents(t *testing.T, balancer kgo.Opt) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 50 * time.Millisecond, DefaultPartitions: 8})
	b := startSecondAgent(t, c)
	const topic, group = "grouped", "g1"
	produceN(t, c.addr(), topic, 0, 2000)

	var mu sync.Mutex
	seen := map[string]int{}
	byMember := map[string]int{}
	on := func(member string, r *kgo.Record) {
		mu.Lock()
		seen[string(r.Value)]++
		byMember[member]++
		mu.Unlock()
	}
	count := func() (distinct, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range seen {
			distinct++
			total += n
		}
		return
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				d, tot := count()
				t.Fatalf("timed out waiting for %s (distinct %d, total %d, by member %v)", what, d, tot, byMember)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	m1 := startMember(t, c.addr(), group, topic, on, "m1", balancer)
	m2 := startMember(t, b.AdvertisedAddr(), group, topic, on, "m2", balancer)
	waitFor("the first 2000 records", func() bool { d, _ := count(); return d == 2000 })
	filler := 1_000_000
	waitFor("both members to get work", func() bool {
		produceN(t, c.addr(), topic, filler, 16) // keeps partitions busy so both are assigned data
		filler += 16
		mu.Lock()
		defer mu.Unlock()
		return byMember["m1"] > 0 && byMember["m2"] > 0
	})
	d0 := 2000 + filler - 1_000_000
	waitFor("the filler records", func() bool { d, _ := count(); return d == d0 })
	m1.close()

	// Everything so far was committed; a new member joins and more data
	// arrives.
	assigned := make(chan struct{}, 1)
	m3 := startMember(t, b.AdvertisedAddr(), group, topic, on, "m3", balancer,
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			if len(a[topic]) > 0 {
				select {
				case assigned <- struct{}{}:
				default:
				}
			}
		}))
	// The new data goes out once m3 holds partitions, so that it has a
	// share to read (otherwise m2 may read it all before m3 joins).
	select {
	case <-assigned:
	case <-time.After(60 * time.Second):
		t.Fatal("m3 was never assigned partitions")
	}
	produceN(t, c.addr(), topic, 2000, 1000)
	waitFor("the next 1000 records", func() bool { d, _ := count(); return d >= d0+1000 })
	m2.close()
	m3.close()

	mu.Lock()
	defer mu.Unlock()
	repeats := 0
	for _, n := range seen {
		repeats += n - 1
	}
	t.Logf("by member %v; %d distinct, %d repeats", byMember, len(seen), repeats)
	if len(seen) != d0+1000 {
		t.Fatalf("%d distinct records consumed, %d produced", len(seen), d0+1000)
	}
	if repeats != 0 {
		t.Fatalf("%d records consumed twice although every poll was committed before the member left", repeats)
	}
	if byMember["m3"] == 0 {
		t.Fatal("the member that joined later got nothing")
	}
}

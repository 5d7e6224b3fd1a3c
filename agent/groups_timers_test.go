package agent_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
)

// Issue 11, item 6, with a real client: franz-go members with a session
// timeout of 1 s, a rebalance timeout of 10 s, and one member whose
// OnPartitionsRevoked takes 3 s (franz-go heartbeats while it runs). A
// third member joining starts a rebalance in which the fast members wait
// 3 s in JoinGroup for the slow one. Before the fix meta expelled them
// after their 1 s session (UNKNOWN_MEMBER_ID), they rejoined with new
// ids, and the group went through generation after generation. Now the
// group settles in one rebalance: every member keeps its id, nobody's
// partitions are lost, and the group is Stable with all three.
func TestGroupSlowRevokeRealClient(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 50 * time.Millisecond, DefaultPartitions: 6})
	const topic, group = "slow-revoke", "slow-revoke-g"
	admCl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 6, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	var lost atomic.Int32 // partitions lost: the member was fenced
	var mu sync.Mutex
	assigned := map[string]int{} // member name → partitions held
	start := func(name string, revokeDelay time.Duration) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.Balancers(kgo.RangeBalancer()),                                             // eager: every rebalance revokes everything
			kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(500*time.Millisecond), /* 1 s flaked under -race on a loaded machine */
			kgo.RebalanceTimeout(20*time.Second),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
				mu.Lock()
				assigned[name] = len(a[topic])
				mu.Unlock()
			}),
			kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {
				mu.Lock()
				assigned[name] = 0
				mu.Unlock()
				time.Sleep(revokeDelay)
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
				if len(l) > 0 {
					lost.Add(1)
					t.Logf("%s lost its partitions (fenced)", name)
				}
			}),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		// Consuming drives the group (franz-go joins on the first poll).
		go func() {
			for {
				f := cl.PollFetches(context.Background())
				if f.IsClientClosed() {
					return
				}
			}
		}()
		return cl
	}
	stable := func(what string, members int) kadm.DescribedGroup {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			ds, err := adm.DescribeGroups(ctx, group)
			d := ds[group]
			mu.Lock()
			held := 0
			for _, n := range assigned {
				held += n
			}
			mu.Unlock()
			if err == nil && d.State == "Stable" && len(d.Members) == members && held == 6 {
				return d
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: group not stable with %d members holding 6 partitions: %+v %v (held %d)", what, members, d, err, held)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fast := start("fast", 0)
	slow := start("slow", 7*time.Second) // more than twice the session
	stable("two members", 2)
	fastID, gen0 := fast.GroupMetadata()
	slowID, _ := slow.GroupMetadata()

	began := time.Now()
	third := start("third", 0)
	stable("three members", 3)
	took := time.Since(began)
	if n := lost.Load(); n != 0 {
		t.Fatalf("%d members were fenced during a rebalance shorter than the rebalance timeout", n)
	}
	fastID2, gen := fast.GroupMetadata()
	slowID2, _ := slow.GroupMetadata()
	thirdID, thirdGen := third.GroupMetadata()
	if fastID2 != fastID || slowID2 != slowID {
		t.Fatalf("member ids changed (expelled and rejoined): fast %s→%s slow %s→%s", fastID, fastID2, slowID, slowID2)
	}
	if gen != gen0+1 || thirdGen != gen {
		t.Fatalf("generation %d → %d (third %d): want exactly one rebalance", gen0, gen, thirdGen)
	}
	t.Logf("one rebalance with a 7 s revoke and 3 s sessions took %v; member %s joined", took, thirdID)
}

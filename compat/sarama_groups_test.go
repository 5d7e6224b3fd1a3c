package compat_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// slowMember is a sarama group member whose Cleanup (sarama's "revoke":
// it runs at the end of every session, with heartbeats still going) takes
// a while. It records every session it got.
type slowMember struct {
	cleanup time.Duration

	mu       sync.Mutex
	sessions []sarama.ConsumerGroupSession
	claims   int
}

func (m *slowMember) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions = append(m.sessions, s)
	m.claims = 0
	for _, ps := range s.Claims() {
		m.claims += len(ps)
	}
	return nil
}

func (m *slowMember) Cleanup(sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	m.claims = 0
	m.mu.Unlock()
	time.Sleep(m.cleanup)
	return nil
}

func (m *slowMember) ConsumeClaim(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	for range cl.Messages() {
	}
	return nil
}

// last returns the member's latest session's member id and generation,
// the number of sessions it had, and the partitions it holds.
func (m *slowMember) last() (id string, gen int32, n, claims int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sessions) == 0 {
		return "", -1, 0, 0
	}
	s := m.sessions[len(m.sessions)-1]
	return s.MemberID(), s.GenerationID(), len(m.sessions), m.claims
}

// Issue 11, item 6, with sarama: session timeout 3 s, rebalance timeout
// 20 s, one member whose Cleanup takes 7 s. When a third member joins,
// the others wait in JoinGroup for the slow one; meta used to expel them
// after the session timeout (UNKNOWN_MEMBER_ID) and the group rebalanced again and
// again. Now one rebalance settles it and every member keeps its id.
func TestSaramaSlowCleanupRebalance(t *testing.T) {
	c := startCluster(t)
	addr := c.Agent.AdvertisedAddr()
	const topic, group = "sarama-slow", "sarama-slow-g"
	admin, err := sarama.NewClusterAdmin([]string{addr}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	start := func(name string, cleanup time.Duration) *slowMember {
		cfg := saramaConfig()
		cfg.ClientID = name
		cfg.Consumer.Group.Session.Timeout = 3 * time.Second // 1 s flaked under -race on a loaded machine
		cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
		cfg.Consumer.Group.Rebalance.Timeout = 20 * time.Second
		cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
		cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := &slowMember{cleanup: cleanup}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			for err := range cg.Errors() {
				t.Logf("%s: group error: %v", name, err)
			}
		}()
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{topic}, m); err != nil && !errors.Is(err, sarama.ErrClosedConsumerGroup) {
					t.Logf("%s: consume: %v", name, err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
		t.Cleanup(func() {
			cancel()
			<-done
			_ = cg.Close()
		})
		return m
	}
	// settled waits until every member is in a session of one generation
	// and together they hold the 6 partitions.
	settled := func(what string, ms ...*slowMember) int32 {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			var gen int32 = -2
			same, held := true, 0
			for _, m := range ms {
				_, g, _, claims := m.last()
				if gen == -2 {
					gen = g
				}
				same = same && g == gen && g >= 0
				held += claims
			}
			if same && held == 6 {
				return gen
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the members never settled in one generation holding 6 partitions", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fast := start("fast", 0)
	slow := start("slow", 7*time.Second) // more than twice the session
	gen0 := settled("two members", fast, slow)
	fastID, _, fastN, _ := fast.last()
	slowID, _, slowN, _ := slow.last()

	began := time.Now()
	third := start("third", 0)
	gen := settled("three members", fast, slow, third)
	took := time.Since(began)
	fastID2, _, fastN2, _ := fast.last()
	slowID2, _, slowN2, _ := slow.last()
	if fastID2 != fastID || slowID2 != slowID {
		t.Fatalf("member ids changed (expelled and rejoined): fast %s→%s slow %s→%s", fastID, fastID2, slowID, slowID2)
	}
	if gen != gen0+1 || fastN2 != fastN+1 || slowN2 != slowN+1 {
		t.Fatalf("generation %d → %d, sessions fast %d → %d, slow %d → %d: want exactly one rebalance",
			gen0, gen, fastN, fastN2, slowN, slowN2)
	}
	t.Logf("one rebalance with a 7 s Cleanup and 3 s sessions took %v", took)
}

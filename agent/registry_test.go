package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/meta"
)

// TestMetadataListsLiveAgents: Metadata lists every agent registered
// with meta, spreads partition leaders over them, and drops an agent
// whose heartbeats stop once its lease runs out; a clean Stop leaves at
// once.
func TestMetadataListsLiveAgents(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A second, real agent on the same meta, and a ghost that registers
	// once and never beats again.
	b, err := agent.Start(ctx, agent.Config{ID: "second", KafkaAddr: "127.0.0.1:0", Logger: quietLogger()}, c.meta, c.store)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.meta.RegisterAgent(ctx, meta.AgentInfo{ID: "ghost", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 64, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	brokers := func() (map[int32]string, map[int32]int) {
		t.Helper()
		// The agent's view of the registry is renewed behind a request
		// once it is a second old: wait, ask once to renew it, then ask
		// again. A new client each time: franz-go answers a repeated
		// Metadata request from its own cache for a while.
		var md kadm.Metadata
		for range 2 {
			time.Sleep(1100 * time.Millisecond)
			fresh, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
			if err != nil {
				t.Fatal(err)
			}
			md, err = kadm.NewClient(fresh).Metadata(ctx, "spread")
			fresh.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		bs := map[int32]string{}
		for _, br := range md.Brokers {
			bs[br.NodeID] = fmt.Sprintf("%s:%d", br.Host, br.Port)
		}
		leaders := map[int32]int{}
		for _, p := range md.Topics["spread"].Partitions {
			leaders[p.Leader]++
			if _, ok := bs[p.Leader]; !ok {
				t.Fatalf("partition %d led by %d, not a listed broker", p.Partition, p.Leader)
			}
		}
		return bs, leaders
	}
	bs, leaders := brokers()
	if len(bs) != 3 || bs[c.agent.NodeID()] != c.addr() || bs[b.NodeID()] != b.AdvertisedAddr() {
		t.Fatalf("brokers %v, want the two agents and the ghost", bs)
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders %v: 64 partitions not spread over 3 agents", leaders)
	}
	// The ghost's lease (10s) runs out; the real agents keep beating.
	deadline := time.Now().Add(20 * time.Second)
	for len(bs) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("ghost still listed: %v", bs)
		}
		bs, _ = brokers()
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", b.AdvertisedAddr(), time.Second); err == nil {
		conn.Close()
		t.Logf("stopped agent still accepts connections")
	}
	if live, err := c.meta.Agents(ctx); err != nil || len(live) != 1 {
		t.Fatalf("meta lists %+v (%v) after a clean stop", live, err)
	}
	if bs, _ = brokers(); len(bs) != 1 || bs[c.agent.NodeID()] != c.addr() {
		t.Fatalf("after a clean stop brokers are %v, want only %s", bs, c.addr())
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

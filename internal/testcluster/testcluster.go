// Package testcluster starts a playground inside a test process: an
// embedded meta, a local-directory bucket and one agent on a free
// loopback port, stopped when the test ends. It is for tests that need a
// real Kafka endpoint but not the sluice binary (the admin CLI's tests
// among them); e2e/ covers the binary.
package testcluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sluice.dev/agent"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
)

// Cluster is one running in-process playground.
type Cluster struct {
	Meta  *controller.Service
	Store objstore.Store
	Agent *agent.Agent
}

// Start starts a cluster whose agent flushes every 20 ms and auto-creates
// topics with 4 partitions; opts adjust the agent's configuration.
func Start(t testing.TB, opts ...func(*agent.Config)) *Cluster {
	t.Helper()
	return StartWithMeta(t, controller.Config{}, opts...)
}

// StartWithMeta is Start with meta's configuration; its directory and
// logger are filled in.
func StartWithMeta(t testing.TB, mcfg controller.Config, opts ...func(*agent.Config)) *Cluster {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mcfg.Dir, mcfg.Logger = filepath.Join(dir, "meta"), log
	m, err := controller.Open(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	local, err := objstore.NewLocal(filepath.Join(dir, "bucket"))
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := agent.Config{
		KafkaAddr:         "127.0.0.1:0",
		FlushInterval:     20 * time.Millisecond,
		AutoCreateTopics:  true,
		DefaultPartitions: 4,
		Logger:            log,
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.Start(ctx, cfg, m, local)
	if err != nil {
		local.Close()
		m.Close()
		t.Fatal(err)
	}
	c := &Cluster{Meta: m, Store: local, Agent: a}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := c.Agent.Stop(sctx); err != nil {
			t.Errorf("stop agent: %v", err)
		}
		c.Store.Close()
		c.Meta.Close()
	})
	return c
}

// Addr is the agent's Kafka bootstrap address.
func (c *Cluster) Addr() string { return c.Agent.AdvertisedAddr() }

// AddAgent starts another agent (ID "agent-<n>", node id n) on the same
// meta and bucket, as a second process would in production, stopped when
// the test ends; opts adjust its configuration. Transactions across
// agents (issue 15) need one: a client's transaction coordinator and a
// partition's writes may sit on different agents.
func (c *Cluster) AddAgent(t testing.TB, n int32, opts ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := agent.Config{
		ID:                fmt.Sprintf("agent-%d", n),
		NodeID:            n,
		KafkaAddr:         "127.0.0.1:0",
		FlushInterval:     20 * time.Millisecond,
		AutoCreateTopics:  true,
		DefaultPartitions: 4,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := agent.Start(ctx, cfg, c.Meta, c.Store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		if err := a.Stop(sctx); err != nil {
			t.Errorf("stop agent %s: %v", cfg.ID, err)
		}
	})
	return a
}

// Package agent assembles one stateless Sluice agent from its parts: the
// index cache fed by meta, the block cache over the object store, the
// produce pipeline and the Kafka listener. It owns their start order and
// the reverse stop order; cmd/sluice only parses flags and calls it.
package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"sluice.dev/cache"
	"sluice.dev/jobs"
	"sluice.dev/meta"
	"sluice.dev/objstore"
	"sluice.dev/pipeline"
	"sluice.dev/server"
)

// Config configures an agent. Zero fields take the parts' defaults.
type Config struct {
	ID              string
	NodeID          int32
	KafkaAddr       string // --kafka-addr
	AdvertisedAddr  string
	FlushInterval   time.Duration // --flush-interval
	MaxSegmentBytes int           // --max-segment-bytes
	// EarlySealsPerSecond: --max-early-seals-per-second (pipeline.Config;
	// 0 takes the default, negative turns small early seals off).
	EarlySealsPerSecond float64
	MaxInFlightBytes    int64 // --max-inflight-bytes
	// BrokerIdentities and IdentitiesSharePort: --broker-identities and
	// --broker-identities-share-port (server.Config; 0 or 1 identities:
	// one Kafka node id per agent, on KafkaAddr alone).
	BrokerIdentities    int
	IdentitiesSharePort bool
	MaxRequestBytes     int // --max-request-bytes
	// Per-connection and per-agent memory bounds of the Kafka listener
	// (server.Config); zero takes the server's defaults.
	MaxInflightRequestsPerConn int           // --max-inflight-requests-per-conn
	MaxConnUnsentBytes         int           // --max-conn-unsent-bytes
	MaxFetchBytesInflight      int64         // --max-fetch-bytes-inflight
	MaxConnections             int           // --max-connections
	SlowClientTimeout          time.Duration // --slow-client-timeout
	ConnectionsMaxIdle         time.Duration // --connections-max-idle (0: 10 min; negative: never)
	CacheBytes                 int64         // --cache-bytes
	BlockSize                  int64         // --cache-block-bytes
	AutoCreateTopics           bool          // --auto-create-topics
	Zone                       string        // --zone
	Group                      string        // --group
	Roles                      []string      // --roles
	// CompactionInterval and GCInterval: how often an agent with the
	// jobs role asks meta for compaction and garbage collection work
	// (jobs.Config; 0 takes the defaults, 1 minute each).
	CompactionInterval time.Duration // --compaction-interval
	GCInterval         time.Duration // --gc-interval
	// JobsMaxBytesPerSecond paces compaction and key cleaning, bytes
	// read and written together (jobs.Config.MaxBytesPerSecond; flag
	// --jobs-max-bytes-per-second). 0 takes the default,
	// DefaultJobsPaceWithProduce when the agent also takes produce and
	// unlimited when it does not; negative is unlimited.
	JobsMaxBytesPerSecond int64
	// PeerListen, when set, runs the zone cache (cache.Zone): agents of
	// one zone share their block caches over an authenticated peer
	// protocol on this address. PeerSecret authenticates it (every agent
	// of the cluster's zone shares it); PeerAdvertise is what the others
	// dial (default: the bound address).
	PeerListen    string
	PeerAdvertise string
	PeerSecret    []byte
	// PeerMaxConnections bounds the peer listener's open connections
	// (cache.ZoneConfig.MaxConnections; 0: its default, 4096).
	PeerMaxConnections int
	// RegisterTimeout bounds the first registration with meta (meta
	// may start after the agent). Default 30s.
	RegisterTimeout time.Duration
	// CommitTimeout bounds uploading and committing one segment to
	// meta, retries included, counted from its seal; past it its
	// produce requests fail with a retriable error. Default 10s.
	CommitTimeout     time.Duration
	DefaultPartitions int32 // --default-partitions
	Logger            *slog.Logger
	// TLS (issue 14): KafkaTLS serves the Kafka listener over TLS
	// (--kafka-tls-*, --ssl-principal-mapping-rules); PeerTLS and
	// PeerClientTLS run the zone cache's peer port over mutual TLS
	// (--peer-tls-*; internal/tlsconf.Peer builds them).
	KafkaTLS      server.TLSConfig
	PeerTLS       *tls.Config
	PeerClientTLS *tls.Config
	// Authorizer and SuperUsers: --authorizer and --super-users
	// (server/authz.go, issue 14).
	Authorizer server.AuthorizerMode
	SuperUsers []server.Principal
	// SASL (issue 14): authentication on the Kafka listener
	// (--sasl-* flags; server/sasl.go). The zero value is none.
	SASL server.SASLConfig
}

// Agent is a running agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	index    *cache.Index
	blocks   *cache.BlockCache
	pipeline *pipeline.Pipeline
	server   *server.Server
	meta     meta.Client
	zone     *cache.Zone  // nil without a peer listener
	jobs     *jobs.Runner // nil without the jobs role
	peerView *peerView

	ttl    time.Duration // registry lease, from meta
	hbStop chan struct{}
	hbDone chan struct{}

	// storeCounts are this agent's bucket requests, reported to meta
	// with every heartbeat for the console's cost page (issue 16).
	storeCounts objstore.Counts
}

// Start brings an agent up: index, block cache, pipeline, listener.
func Start(ctx context.Context, cfg Config, mc meta.Client, store objstore.Store) (*Agent, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ID == "" {
		cfg.ID = fmt.Sprintf("agent-%d", cfg.NodeID)
	}
	if cfg.RegisterTimeout <= 0 {
		cfg.RegisterTimeout = 30 * time.Second
	}
	if cfg.CommitTimeout <= 0 {
		cfg.CommitTimeout = 10 * time.Second
	}
	a := &Agent{cfg: cfg, log: cfg.Logger.With("agent", cfg.ID), meta: mc,
		hbStop: make(chan struct{}), hbDone: make(chan struct{})}
	store = objstore.Count(store, &a.storeCounts) // console (issue 16)

	step := func(name string, fn func() error) error {
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("agent: start %s: %w", name, err)
		}
		a.log.Debug("started", "part", name, "took", time.Since(start))
		return nil
	}
	var err error
	if err = step("index", func() error {
		a.index = cache.NewIndex(mc, a.log)
		return nil
	}); err != nil {
		return nil, err
	}
	if err = step("block cache", func() error {
		a.blocks, err = cache.NewBlockCache(store, cache.BlockCacheConfig{BlockSize: cfg.BlockSize, MaxBytes: cfg.CacheBytes})
		return err
	}); err != nil {
		a.index.Close()
		return nil, err
	}
	if err = step("zone cache", a.startZone); err != nil {
		a.blocks.Close()
		a.index.Close()
		return nil, err
	}
	// Reads and fresh uploads go through the zone cache when there is one.
	var reader server.RangeReader = a.blocks
	onUploaded := a.blocks.Insert
	if a.zone != nil {
		reader, onUploaded = a.zone, a.zone.Uploaded
	}
	_ = step("pipeline", func() error {
		a.pipeline = pipeline.New(pipeline.Config{
			FlushInterval:       cfg.FlushInterval,
			MaxSegmentBytes:     cfg.MaxSegmentBytes,
			MaxInFlightBytes:    cfg.MaxInFlightBytes,
			EarlySealsPerSecond: cfg.EarlySealsPerSecond,
			CommitTimeout:       cfg.CommitTimeout,
			AgentID:             cfg.ID,
			Logger:              a.log,
			OnUploaded:          onUploaded,
		}, store, mc)
		return nil
	})
	if err = step("kafka listener", func() error {
		a.server = server.New(server.Config{
			Addr:                  cfg.KafkaAddr,
			AdvertisedAddr:        cfg.AdvertisedAddr,
			NodeID:                cfg.NodeID,
			AgentID:               cfg.ID,
			BrokerIdentities:      cfg.BrokerIdentities,
			IdentitiesSharePort:   cfg.IdentitiesSharePort,
			Zone:                  cfg.Zone,
			Group:                 cfg.Group,
			Roles:                 cfg.Roles,
			MaxRequestBytes:       cfg.MaxRequestBytes,
			MaxInflightPerConn:    cfg.MaxInflightRequestsPerConn,
			MaxConnUnsentBytes:    cfg.MaxConnUnsentBytes,
			MaxFetchBytesInflight: cfg.MaxFetchBytesInflight,
			MaxConnections:        cfg.MaxConnections,
			SlowClientTimeout:     cfg.SlowClientTimeout,
			ConnectionsMaxIdle:    cfg.ConnectionsMaxIdle,
			AutoCreateTopics:      cfg.AutoCreateTopics,
			DefaultPartitions:     cfg.DefaultPartitions,
			Authorizer:            cfg.Authorizer,
			SuperUsers:            cfg.SuperUsers,
			Multicore:             true,
			Logger:                a.log,
			TLS:                   cfg.KafkaTLS,
			SASL:                  cfg.SASL, // issue 14
		}, server.Deps{Meta: mc, Pipeline: a.pipeline, Index: a.index, Blocks: reader})
		return a.server.Start(ctx)
	}); err != nil {
		_ = a.pipeline.Close(ctx)
		a.closeZone()
		a.blocks.Close()
		a.index.Close()
		return nil, err
	}
	if err = step("registration", func() error { return a.register(ctx, cfg.RegisterTimeout) }); err != nil {
		_ = a.server.Stop(ctx)
		_ = a.pipeline.Close(ctx)
		a.closeZone()
		a.blocks.Close()
		a.index.Close()
		return nil, err
	}
	go a.heartbeat(a.hbStop)
	a.startPeerView(ctx)
	if err = step("jobs", func() error { return a.startJobs(store) }); err != nil {
		_ = a.Stop(ctx)
		return nil, err
	}
	return a, nil
}

// startJobs runs the background jobs when the agent has the jobs role
// (no --roles means every role) and meta serves them.
func (a *Agent) startJobs(store objstore.Store) error {
	if len(a.cfg.Roles) > 0 && !slices.Contains(a.cfg.Roles, "jobs") {
		return nil
	}
	jc, ok := a.meta.(meta.JobsClient)
	if !ok {
		a.log.Warn("agent: the jobs role is on, but this control plane does not serve jobs: no compaction or garbage collection")
		return nil
	}
	r, err := jobs.New(jobs.Config{
		AgentID:            a.cfg.ID,
		Meta:               jc,
		Store:              store,
		CompactionInterval: a.cfg.CompactionInterval,
		GCInterval:         a.cfg.GCInterval,
		MaxBytesPerSecond:  a.jobsPace(),
		Busy:               a.producing,
		Log:                a.log,
	})
	if err != nil {
		return err
	}
	a.jobs = r
	r.Start()
	return nil
}

// DefaultJobsPaceWithProduce is the default pace of the jobs of an
// agent that also takes produce: rewriting objects competes with produce
// for the disk, the page cache and memory bandwidth, and CPU priority does
// not share those out. BENCHMARKS.md ("Compaction") has the measurements
// behind the figure. A jobs-only agent is not paced by default.
const DefaultJobsPaceWithProduce = 32 << 20

// producing reports whether produce is in flight on this agent: the jobs'
// pace applies only then (jobs.Config.Busy).
func (a *Agent) producing() bool {
	return a.pipeline != nil && a.pipeline.InFlightBytes() > 0
}

// jobsPace maps Config.JobsMaxBytesPerSecond to jobs.Config's
// convention (0 = unlimited).
func (a *Agent) jobsPace() int64 {
	switch v := a.cfg.JobsMaxBytesPerSecond; {
	case v < 0:
		return 0
	case v > 0:
		return v
	}
	if len(a.cfg.Roles) == 0 || slices.Contains(a.cfg.Roles, "produce") {
		return DefaultJobsPaceWithProduce
	}
	return 0
}

// Jobs is the agent's job runner, nil without the jobs role (tests run
// jobs through it without waiting for an interval).
func (a *Agent) Jobs() *jobs.Runner { return a.jobs }

func (a *Agent) closeZone() error {
	if a.zone == nil {
		return nil
	}
	return a.zone.Close()
}

// NodeID is the Kafka node id meta assigned to this agent.
func (a *Agent) NodeID() int32 { return a.server.NodeID() }

// Addr is the Kafka listener's bound address.
func (a *Agent) Addr() net.Addr { return a.server.Addr() }

// AdvertisedAddr is the bootstrap address clients should use.
func (a *Agent) AdvertisedAddr() string { return a.server.AdvertisedAddr() }

// Pipeline exposes the produce pipeline (tests, metrics).
func (a *Agent) Pipeline() *pipeline.Pipeline { return a.pipeline }

// Stop shuts the agent down in reverse start order. The pipeline goes
// first: new produce requests are refused with a retriable error while
// every admitted one finishes its upload and commit (or fails), and their
// responses are queued before the listener closes. Nothing half-written is
// acknowledged.
func (a *Agent) Stop(ctx context.Context) error {
	var first error
	step := func(name string, fn func() error) {
		start := time.Now()
		err := fn()
		if err != nil && first == nil {
			first = fmt.Errorf("agent: stop %s: %w", name, err)
		}
		a.log.Info("stopped", "part", name, "took", time.Since(start).Round(time.Millisecond), "err", err)
	}
	if a.jobs != nil {
		// A job in progress is given back to meta for another agent.
		step("jobs", func() error { a.jobs.Stop(); return nil })
	}
	step("registration", func() error {
		// Leave the registry first, so that other agents stop sending
		// clients here while this one drains.
		close(a.hbStop)
		<-a.hbDone
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return a.meta.UnregisterAgent(uctx, a.cfg.ID)
	})
	step("pipeline", func() error { return a.pipeline.Close(ctx) })
	step("kafka listener", func() error {
		// Give queued responses a moment to reach their sockets.
		a.server.FlushResponses(ctx, time.Second)
		return a.server.Stop(ctx)
	})
	step("zone cache", func() error { a.stopPeerView(); return a.closeZone() })
	step("block cache", func() error { a.blocks.Close(); return nil })
	step("index", func() error { a.index.Close(); return nil })
	return first
}

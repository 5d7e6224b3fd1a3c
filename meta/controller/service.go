package controller

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sluice.dev/internal/lograte"
	"sluice.dev/meta"
	"sluice.dev/meta/groups"
	"sluice.dev/meta/kv"
	"sluice.dev/meta/planner"
)

// Config configures a Service. Zero values take the defaults below.
type Config struct {
	// Dir is the directory of the embedded store (the file meta.db in
	// it). Required unless Store is set.
	Dir string
	// Store, when set, is used instead of the embedded store in Dir
	// (OpenPostgres, for example). Close closes it.
	Store kv.KV
	// DefaultPartitions is the partition count of a topic created with
	// Partitions == -1 (Kafka's "broker default"). Default 1, Kafka's
	// num.partitions.
	DefaultPartitions int32
	// MaxPartitions bounds a topic's partition count. Every partition
	// costs memory in meta and in every agent's index cache. Default
	// 100000.
	MaxPartitions int32
	// SegmentResultTTL and SegmentResultLimit bound how long the answer
	// to a committed segment is kept for idempotent re-commits: answers
	// older than the TTL are dropped, and the oldest are dropped beyond
	// the limit, whichever comes first. A re-commit after its answer was
	// dropped is refused with ErrSegmentExpired as long as the TTL is at
	// least half of GCGrace (commits of older ids are refused anyway),
	// which Open checks; only the limit could make a re-commit count as
	// new (its data stored twice), so it must stay far beyond the
	// segments committed in an agent's commit retry window. An answer
	// costs about 100 bytes of memory plus ~4-8 bytes per chunk.
	// Defaults 1h and 1<<20 (~0.5 GiB at the limit with 64 chunks per
	// segment).
	SegmentResultTTL   time.Duration
	SegmentResultLimit int
	// WatchBuffer is how many commit batches a watcher may fall behind
	// before it is dropped (Client.Watch). Default 1024, about four
	// minutes of commit groups at the agent's 250 ms flush interval
	// even if every group were its own batch, far more than a live
	// watcher lags.
	WatchBuffer int
	// AgentTTL is how long a registered agent stays live without a
	// heartbeat (registry.go). Default 10s.
	AgentTTL time.Duration
	// MaxTopics and MaxClusterPartitions bound the topics and the
	// partitions (all topics together) of the cluster; CreateTopics and
	// CreatePartitions past them fail with ErrLimit. Each partition costs
	// meta and every agent's index cache memory, so a client must not be
	// able to make them without bound. Defaults 100,000 and 1,000,000.
	MaxTopics            int
	MaxClusterPartitions int
	// DefaultRetentionMs and DefaultRetentionBytes are the retention.ms
	// and retention.bytes of topics that do not set them (retention.go);
	// -1 keeps data forever. Defaults 7 days (Kafka's) and -1; 0 takes
	// the default. RetentionCheckInterval is how often retention runs:
	// expired data becomes unreadable within one interval. Default 30s.
	DefaultRetentionMs     int64
	DefaultRetentionBytes  int64
	RetentionCheckInterval time.Duration
	// ProducerIDExpiration is how long an idempotent producer id may go
	// unused before meta forgets it and its sequence state
	// (producer_expiry.go). Kafka's producer.id.expiration.ms; default
	// one day, like Kafka's.
	ProducerIDExpiration time.Duration
	// GCGrace is how long an object nothing references stays in the
	// bucket before the garbage collector deletes it, and twice the age
	// of the oldest segment id a commit may name (docs/compaction.md).
	// It must outlive every reader holding an old index entry. Default
	// 5 minutes (--gc-grace).
	GCGrace time.Duration
	// Compaction holds the planner's thresholds (meta/planner).
	Compaction planner.Config
	// CompactEntryBytes bounds an index entry of a compaction output: a
	// fetch reads whole entries. Default 1 MiB.
	CompactEntryBytes int64
	// CleanWindowBytes bounds the bytes one key cleaning job rewrites; a
	// compacted partition whose log is larger is cleaned in passes of
	// several jobs (jobs.go, cleanPass). Default 256 MiB.
	CleanWindowBytes int64
	// JobLeaseTTL is how long a job stays one agent's. Default the
	// smaller of 2 minutes and GCGrace/4, so that a compaction result is
	// in long before its output id is too old to commit.
	JobLeaseTTL time.Duration
	// OrphanInterval is how often one pass over the bucket for orphans
	// is leased (it lists every object). Default 10 minutes.
	OrphanInterval time.Duration
	// Groups bounds consumer groups and their offsets (groups.go).
	Groups groups.Config
	// MaxTransactionTimeoutMs caps a transactional producer's
	// transaction.timeout.ms (Kafka's transaction.max.timeout.ms);
	// InitProducerId above it fails with INVALID_TRANSACTION_TIMEOUT.
	// Default 15 minutes, Kafka's (--max-transaction-timeout).
	MaxTransactionTimeoutMs int32
	// TransactionalIDExpiration is how long an idle transactional id
	// (no transaction open) is kept (Kafka's
	// transactional.id.expiration.ms); then meta forgets it. Default 7
	// days, Kafka's (--transactional-id-expiration).
	TransactionalIDExpiration time.Duration
	// Logger receives meta's log lines. Default slog.Default().
	Logger *slog.Logger

	// noJanitors: tests drive retention and expiry themselves, so that
	// nothing changes the state between a snapshot and a reopen.
	noJanitors bool
}

const (
	defaultMaxPartitions      = 100_000
	defaultSegmentResultTTL   = time.Hour
	defaultSegmentResultLimit = 1 << 20
	defaultWatchBuffer        = 1024
)

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.DefaultPartitions == 0 {
		cfg.DefaultPartitions = 1
	}
	if cfg.MaxPartitions == 0 {
		cfg.MaxPartitions = defaultMaxPartitions
	}
	if cfg.SegmentResultTTL == 0 {
		cfg.SegmentResultTTL = defaultSegmentResultTTL
	}
	if cfg.SegmentResultLimit == 0 {
		cfg.SegmentResultLimit = defaultSegmentResultLimit
	}
	if cfg.WatchBuffer == 0 {
		cfg.WatchBuffer = defaultWatchBuffer
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxTransactionTimeoutMs == 0 {
		cfg.MaxTransactionTimeoutMs = defaultMaxTxnTimeout
	}
	if cfg.TransactionalIDExpiration == 0 {
		cfg.TransactionalIDExpiration = 7 * 24 * time.Hour
	}
	if cfg.AgentTTL == 0 {
		cfg.AgentTTL = defaultAgentTTL
	}
	if cfg.MaxTopics == 0 {
		cfg.MaxTopics = 100_000
	}
	if cfg.MaxClusterPartitions == 0 {
		cfg.MaxClusterPartitions = 1_000_000
	}
	if cfg.DefaultRetentionMs == 0 {
		cfg.DefaultRetentionMs = defaultRetentionMs
	}
	if cfg.DefaultRetentionBytes == 0 {
		cfg.DefaultRetentionBytes = -1
	}
	if cfg.RetentionCheckInterval == 0 {
		cfg.RetentionCheckInterval = 30 * time.Second
	}
	if cfg.ProducerIDExpiration == 0 {
		cfg.ProducerIDExpiration = defaultProducerIDExpiration
	}
	if cfg.GCGrace == 0 {
		cfg.GCGrace = defaultGCGrace
	}
	cfg.Compaction = cfg.Compaction.WithDefaults()
	if cfg.CompactEntryBytes == 0 {
		cfg.CompactEntryBytes = defaultCompactEntry
	}
	if cfg.CleanWindowBytes == 0 {
		cfg.CleanWindowBytes = defaultCleanWindow
	}
	if cfg.JobLeaseTTL == 0 {
		cfg.JobLeaseTTL = min(2*time.Minute, cfg.GCGrace/4)
	}
	if cfg.OrphanInterval == 0 {
		cfg.OrphanInterval = defaultOrphanInterval
	}
	var err error
	if cfg.Groups, err = cfg.Groups.WithDefaults(); err != nil {
		return cfg, err
	}
	switch {
	case cfg.MaxPartitions < 0:
		return cfg, fmt.Errorf("meta: Config.MaxPartitions %d < 0", cfg.MaxPartitions)
	case cfg.DefaultPartitions < 1 || cfg.DefaultPartitions > cfg.MaxPartitions:
		return cfg, fmt.Errorf("meta: Config.DefaultPartitions %d not in [1, MaxPartitions %d]", cfg.DefaultPartitions, cfg.MaxPartitions)
	case cfg.SegmentResultTTL < cfg.GCGrace/2:
		return cfg, fmt.Errorf("meta: Config.SegmentResultTTL %v is shorter than half of --gc-grace %v: a retried commit could be stored twice", cfg.SegmentResultTTL, cfg.GCGrace)
	case cfg.SegmentResultLimit < 0:
		return cfg, fmt.Errorf("meta: Config.SegmentResultLimit %d < 0", cfg.SegmentResultLimit)
	case cfg.MaxTopics < 0 || cfg.MaxClusterPartitions < 0:
		return cfg, fmt.Errorf("meta: Config.MaxTopics %d or MaxClusterPartitions %d < 0", cfg.MaxTopics, cfg.MaxClusterPartitions)
	case cfg.DefaultRetentionMs < -1 || cfg.DefaultRetentionBytes < -1:
		return cfg, fmt.Errorf("meta: Config.DefaultRetentionMs %d or DefaultRetentionBytes %d < -1", cfg.DefaultRetentionMs, cfg.DefaultRetentionBytes)
	case cfg.RetentionCheckInterval < 0:
		return cfg, fmt.Errorf("meta: Config.RetentionCheckInterval %v < 0", cfg.RetentionCheckInterval)
	case cfg.ProducerIDExpiration < 0:
		return cfg, fmt.Errorf("meta: Config.ProducerIDExpiration %v < 0", cfg.ProducerIDExpiration)
	case cfg.GCGrace < 4*time.Second || cfg.JobLeaseTTL <= 0 || cfg.JobLeaseTTL > cfg.GCGrace/2 || cfg.OrphanInterval < 0 || cfg.CompactEntryBytes < 0:
		return cfg, fmt.Errorf("meta: --gc-grace %v must be at least 4s and the job lease %v in (0, grace/2]", cfg.GCGrace, cfg.JobLeaseTTL)
	case cfg.MaxTransactionTimeoutMs < 0:
		return cfg, fmt.Errorf("meta: --max-transaction-timeout %dms < 0", cfg.MaxTransactionTimeoutMs)
	case cfg.TransactionalIDExpiration < 0:
		return cfg, fmt.Errorf("meta: --transactional-id-expiration %v < 0", cfg.TransactionalIDExpiration)
	case cfg.WatchBuffer < 0:
		return cfg, fmt.Errorf("meta: Config.WatchBuffer %d < 0", cfg.WatchBuffer)
	}
	return cfg, nil
}

// Service is the control plane in-process: the state in memory, the
// embedded bbolt store under it, and the committer goroutine that is the
// only writer of both. See doc.go for the write path and its invariants.
type Service struct {
	cfg Config
	log *slog.Logger
	kv  kv.KV

	ops       chan *op      // to the committer
	closing   chan struct{} // closed by Close: the committer stops
	stopped   chan struct{} // closed by the committer when it has exited
	closed    atomic.Bool   // set when Close starts; reads fail from then on
	closeOnce sync.Once
	closeErr  error

	// Owned by the committer goroutine; nobody else touches them.
	g     *group
	arena []byte           // bbolt values of the group being written
	now   func() time.Time // clock for segment answer keys and pruning

	// mu guards st: the committer changes st only while holding mu for
	// writing (and may read it without mu, being the only writer);
	// everybody else reads st holding mu for reading. Never held with
	// wmu.
	mu sync.RWMutex
	st *state

	// wmu guards the watchers. Never held with mu.
	wmu         sync.Mutex
	watchers    map[*watcher]struct{}
	watchClosed bool

	// groups is the consumer group coordinator (in memory; see groups.go).
	groups *groups.Coordinator

	// jobs holds the leases of background jobs (jobs.go).
	jobs *jobsState
	// stats caches JobsStats for the gauges (metrics.go).
	statsMu sync.Mutex
	stats   JobsStats
	statsAt time.Time

	// registry holds the live agents (in memory; see registry.go).
	registry *registry

	openedAt time.Time      // offsets of groups not seen empty count from here (offsets.go)
	bg       sync.WaitGroup // background loops (janitors.go); Close waits for them

	limitLogged lograte.Limiter // the group-limit log line (logLimit)

	// For tests.
	txCount   atomic.Uint64                // bbolt write transactions of commit groups
	writeHook atomic.Pointer[func() error] // called inside each group's transaction; an error aborts it
}

var _ meta.Client = (*Service)(nil)

// Open opens (creating if needed) the store in cfg.Dir, loads it and
// starts the committer.
func Open(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	store := cfg.Store
	if store == nil {
		if store, err = kv.OpenBolt(cfg.Dir); err != nil {
			return nil, err
		}
	}
	st, err := loadStore(store, cfg.Logger)
	if err != nil {
		store.Close()
		return nil, err
	}
	s := &Service{
		cfg:      cfg,
		log:      cfg.Logger,
		kv:       store,
		ops:      make(chan *op, maxGroupOps),
		closing:  make(chan struct{}),
		stopped:  make(chan struct{}),
		g:        newGroup(st),
		now:      time.Now,
		st:       st,
		watchers: make(map[*watcher]struct{}),
		registry: newRegistry(cfg.AgentTTL),
		openedAt: time.Now(),
		jobs:     newJobsState(),
	}
	s.groups = groups.New(cfg.Groups, groupOffsets{s})
	s.groups.SetTopics(s.consumerGroupTopics) // KIP-848 consumer groups
	s.g.touchEvery = touchEvery(cfg.ProducerIDExpiration)
	go s.run()
	open.Store(s, struct{}{})
	if !cfg.noJanitors {
		s.startJanitors()
	}
	s.log.Info("meta: store opened", "store", store.String(), "topics", len(st.topicsByID),
		"producers", len(st.epochs), "segment_answers", st.segLen(), "took", time.Since(start))
	return s, nil
}

// Close stops the committer (queued ops get ErrClosed), closes every
// watcher and the store. Calls after the first return its result.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		start := time.Now()
		open.Delete(s)
		s.closed.Store(true)
		close(s.closing)
		<-s.stopped
		s.bg.Wait()
		s.closeWatchers()
		name := s.kv.String()
		s.closeErr = s.kv.Close()
		s.log.Info("meta: store closed", "store", name, "took", time.Since(start), "err", s.closeErr)
	})
	return s.closeErr
}

// readable returns the error a read must fail with, if any.
func (s *Service) readable(ctx context.Context) error {
	if s.closed.Load() {
		return meta.ErrClosed
	}
	return ctx.Err()
}

// ClusterID implements Client. The id never changes after Open.
func (s *Service) ClusterID(ctx context.Context) (string, error) {
	if err := s.readable(ctx); err != nil {
		return "", err
	}
	return s.st.clusterID, nil
}

// copyTopic returns t with its own Configs map.
func copyTopic(t meta.Topic) meta.Topic {
	t.Configs = maps.Clone(t.Configs)
	return t
}

// Topics implements Client.
func (s *Service) Topics(ctx context.Context, names []string) ([]meta.Topic, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	if names == nil {
		out := make([]meta.Topic, 0, len(st.names))
		for _, name := range st.names {
			out = append(out, copyTopic(st.topicsByName[name].topic))
		}
		return out, nil
	}
	out := make([]meta.Topic, 0, len(names))
	for _, name := range names {
		if t := st.topicsByName[name]; t != nil {
			out = append(out, copyTopic(t.topic))
		}
	}
	slices.SortFunc(out, func(a, b meta.Topic) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(out, func(a, b meta.Topic) bool { return a.Name == b.Name }), nil
}

// TopicsByID implements Client. Topics come in request order, each once.
func (s *Service) TopicsByID(ctx context.Context, ids []meta.TopicID) ([]meta.Topic, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]meta.Topic, 0, len(ids))
	for i, id := range ids {
		if t := s.st.topicsByID[id]; t != nil && !slices.Contains(ids[:i], id) {
			out = append(out, copyTopic(t.topic))
		}
	}
	return out, nil
}

// partLocked returns the partition tp names, nil if none. s.mu must be
// held.
func (s *Service) partLocked(tp meta.TopicPartition) *partState {
	t := s.st.topicsByID[tp.TopicID]
	if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.parts) {
		return nil
	}
	return t.parts[tp.Partition]
}

// PartitionStates implements Client.
func (s *Service) PartitionStates(ctx context.Context, tps []meta.TopicPartition) ([]meta.PartitionState, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	out := make([]meta.PartitionState, len(tps))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, tp := range tps {
		out[i] = meta.PartitionState{TopicID: tp.TopicID, Partition: tp.Partition}
		if ps := s.partLocked(tp); ps != nil {
			out[i].LogStartOffset = ps.logStart
			out[i].HighWatermark = ps.next
		} else {
			out[i].Err = meta.ErrUnknownTopicOrPartition
		}
	}
	return out, nil
}

// Lookup implements Client. maxEntries < 1 counts as 1.
func (s *Service) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, maxEntries int) (meta.LookupResult, error) {
	if err := s.readable(ctx); err != nil {
		return meta.LookupResult{}, err
	}
	maxEntries = max(maxEntries, 1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := s.partLocked(tp)
	if ps == nil {
		return meta.LookupResult{}, meta.ErrUnknownTopicOrPartition
	}
	r := meta.LookupResult{LogStartOffset: ps.logStart, HighWatermark: ps.next, Stable: s.st.stableLocked(ps)}
	switch {
	case offset < ps.logStart || offset > ps.next:
		return r, fmt.Errorf("%w: offset %d, log start %d, high watermark %d", meta.ErrOffsetOutOfRange, offset, ps.logStart, ps.next)
	case offset == ps.next:
		return r, nil
	}
	// Entries are dense and the first holds logStart (invariant 3), so
	// the entry found holds offset.
	i := max(ps.entries.find(offset), 0)
	n := min(maxEntries, ps.entries.len()-i)
	r.Entries = ps.entries.copyRange(make([]meta.IndexEntry, 0, n), i, n)
	return r, nil
}

// CreateTopics implements Client.
func (s *Service) CreateTopics(ctx context.Context, specs []meta.TopicSpec) ([]meta.TopicResult, error) {
	o := &op{kind: opCreateTopics, specs: specs}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.topicResults, nil
}

// CommitSegment implements Client.
func (s *Service) CommitSegment(ctx context.Context, c meta.SegmentCommit) (meta.CommitResult, error) {
	o := &op{kind: opCommitSegment, commit: &c}
	if err := s.submit(ctx, o); err != nil {
		return meta.CommitResult{}, err
	}
	return o.commitResult, o.err
}

// InitProducerID implements Client.
func (s *Service) InitProducerID(ctx context.Context, req meta.ProducerIDRequest) (meta.ProducerIDResult, error) {
	o := &op{kind: opInitProducerID, pidReq: req}
	if err := s.submit(ctx, o); err != nil {
		return meta.ProducerIDResult{}, err
	}
	return o.pidResult, nil
}

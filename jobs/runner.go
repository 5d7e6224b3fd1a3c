package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"sluice.dev/meta"
	"sluice.dev/objstore"
)

// Config configures a Runner.
type Config struct {
	// AgentID names this agent to meta (the lease holder).
	AgentID string
	Meta    meta.JobsClient
	Store   objstore.Store
	// CompactionInterval is how often the Runner asks for compaction
	// work (default 1 m); GCInterval for deletions and the orphan pass
	// (default 1 m). On each tick it runs jobs back to back until meta
	// has none due, at most MaxJobsPerTick of them.
	CompactionInterval time.Duration
	GCInterval         time.Duration
	MaxJobsPerTick     int
	// MaxJobBytes bounds the bytes one compaction job may read (its
	// memory is about twice that): a larger job is given back (default
	// 512 MiB).
	MaxJobBytes int64
	// ReadConcurrency bounds the GETs and DELETEs one job runs at once
	// (default 8).
	ReadConcurrency int
	// CleanInterval is how often the Runner asks for key cleanings of
	// compacted topics (default the smaller of CompactionInterval and
	// 10 s: it bounds the compaction lag). KeyMapBytes bounds a
	// cleaning's key map (default 128 MiB: about 5 million keys; a
	// partition with more dirty keys is cleaned in several passes).
	CleanInterval time.Duration
	KeyMapBytes   int64
	// MaxBytesPerSecond paces compaction and key cleaning: the bytes
	// they read and write together, per second (pace.go; flag
	// --jobs-max-bytes-per-second). 0 is unlimited.
	MaxBytesPerSecond int64
	// Busy, when set, says whether the pace applies now: the agent
	// passes "produce is in flight", so an idle agent compacts at full
	// speed.
	Busy func() bool
	Log  *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.CompactionInterval == 0 {
		c.CompactionInterval = time.Minute
	}
	if c.GCInterval == 0 {
		c.GCInterval = time.Minute
	}
	if c.MaxJobsPerTick == 0 {
		c.MaxJobsPerTick = 64
	}
	if c.MaxJobBytes == 0 {
		c.MaxJobBytes = 512 << 20
	}
	if c.ReadConcurrency == 0 {
		c.ReadConcurrency = 8
	}
	if c.CleanInterval == 0 {
		c.CleanInterval = min(c.CompactionInterval, 10*time.Second)
	}
	if c.KeyMapBytes == 0 {
		c.KeyMapBytes = 128 << 20
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	switch {
	case c.AgentID == "":
		return c, errors.New("jobs: Config.AgentID is empty")
	case c.Meta == nil || c.Store == nil:
		return c, errors.New("jobs: Config.Meta and Config.Store are required")
	case c.CompactionInterval < 0 || c.GCInterval < 0:
		return c, fmt.Errorf("jobs: --compaction-interval %v and --gc-interval %v must be positive", c.CompactionInterval, c.GCInterval)
	case c.MaxBytesPerSecond != 0 && c.MaxBytesPerSecond < MinBytesPerSecond:
		return c, fmt.Errorf("jobs: --jobs-max-bytes-per-second %d is below %d (4 MiB/s): a job would outlive its lease; use 0 for unlimited", c.MaxBytesPerSecond, MinBytesPerSecond)
	case c.MaxJobBytes < 0 || c.ReadConcurrency < 0 || c.MaxJobsPerTick < 0 || c.CleanInterval < 0 || c.KeyMapBytes < 1<<16:
		return c, errors.New("jobs: negative limit in Config")
	}
	return c, nil
}

// MinBytesPerSecond is the slowest pace a Runner takes: at it, a
// compaction job of the default target (about 80 MiB read and as much
// written) takes about 40 s of its lease (2 minutes by default).
const MinBytesPerSecond = 4 << 20

// Runner asks meta for jobs and runs them, one at a time.
type Runner struct {
	cfg  Config
	log  *slog.Logger
	pace *pacer // nil: unlimited

	mu     sync.Mutex // serialises jobs: one at a time bounds memory
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Runner; Start starts its loop.
func New(cfg Config) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Runner{cfg: cfg, log: cfg.Log.With("component", "jobs"), pace: newPacer(cfg.MaxBytesPerSecond, cfg.Busy)}, nil
}

// Start runs the loop until Stop.
func (r *Runner) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() {
		defer close(r.done)
		compact := time.NewTicker(r.cfg.CompactionInterval)
		defer compact.Stop()
		gc := time.NewTicker(r.cfg.GCInterval)
		defer gc.Stop()
		clean := time.NewTicker(r.cfg.CleanInterval)
		defer clean.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-compact.C:
				r.drain(ctx, meta.JobCompact)
			case <-gc.C:
				r.drain(ctx, meta.JobDelete, meta.JobOrphans)
			case <-clean.C:
				r.drain(ctx, meta.JobCleanKeys)
			}
		}
	}()
}

// Stop ends the loop; a job in progress is abandoned (its lease given
// back) and Stop waits for it to return.
func (r *Runner) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// drain runs due jobs of kinds until meta has none or the tick's budget
// is spent.
func (r *Runner) drain(ctx context.Context, kinds ...meta.JobKind) {
	for i := 0; i < r.cfg.MaxJobsPerTick && ctx.Err() == nil; i++ {
		ran, err := r.RunOne(ctx, kinds...)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("jobs: job failed; meta will lease it again", "err", err)
		}
		if !ran {
			return
		}
	}
}

// RunOne leases one due job of kinds and runs it. ran is false when
// meta had none due.
func (r *Runner) RunOne(ctx context.Context, kinds ...meta.JobKind) (ran bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	job, ok, err := r.cfg.Meta.AcquireJob(ctx, r.cfg.AgentID, kinds)
	if err != nil {
		return false, fmt.Errorf("jobs: acquire: %w", err)
	}
	if !ok {
		return false, nil
	}
	m := stats[job.Kind]
	if m == nil {
		return true, r.abandon(job, fmt.Errorf("jobs: unknown job kind %d", job.Kind))
	}
	m.runs.Inc()
	// The lease bounds the work: a result after it is likely wasted.
	jctx, cancel := context.WithTimeout(ctx, max(job.LeaseTTL, time.Second))
	defer cancel()
	start := time.Now()
	switch job.Kind {
	case meta.JobCompact:
		err = r.compact(jctx, job)
	case meta.JobDelete:
		err = r.deleteDead(jctx, job)
	case meta.JobOrphans:
		err = r.collectOrphans(jctx, job)
	case meta.JobCleanKeys:
		err = r.clean(jctx, job)
	default:
		err = fmt.Errorf("jobs: unknown job kind %v", job.Kind)
	}
	if err != nil {
		m.failures.Inc()
		return true, r.abandon(job, err)
	}
	m.lastSuccess.Set(float64(time.Now().Unix()))
	r.log.Debug("jobs: done", "kind", job.Kind.String(), "job", job.ID, "took", time.Since(start))
	return true, nil
}

// abandon gives the lease back so another agent may take the job now,
// and returns err.
func (r *Runner) abandon(job meta.Job, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if aerr := r.cfg.Meta.AbandonJob(ctx, job.ID, err.Error()); aerr != nil && !errors.Is(aerr, meta.ErrJobLost) {
		r.log.Debug("jobs: abandon failed; the lease will expire", "job", job.ID, "err", aerr)
	}
	return fmt.Errorf("%s job %d: %w", job.Kind, job.ID, err)
}

package controller

import (
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics are package variables (one control plane per process; tests
// that open several services share them).
var (
	// commitDuration is the time from taking a group to answering it,
	// the fsync included.
	commitDuration = metrics.NewHistogram("sluice_meta_commit_duration_seconds")
	// commitGroupSize is the number of ops per commit group.
	commitGroupSize = metrics.NewHistogram("sluice_meta_commit_group_size")
	// segmentsCommitted counts segments committed for the first time
	// (idempotent repeats are not counted).
	segmentsCommitted = metrics.NewCounter("sluice_meta_segments_committed_total")
	// watchersDropped counts watchers closed for falling behind.
	watchersDropped = metrics.NewCounter("sluice_meta_watchers_dropped_total")
	// registryExpired counts agents forgotten because their lease ran out.
	registryExpired = metrics.NewCounter("sluice_meta_agents_expired_total")
	// retentionMoves counts log start moves by retention (retention.go).
	retentionMoves = metrics.NewCounter("sluice_meta_retention_log_start_moves_total")
	// Background jobs (jobs.go).
	jobsLeased          = metrics.NewCounter("sluice_meta_jobs_leased_total")
	jobsAbandoned       = metrics.NewCounter("sluice_meta_jobs_abandoned_total")
	compactSwapped      = metrics.NewCounter("sluice_meta_compaction_entries_swapped_total")
	compactRefused      = metrics.NewCounter("sluice_meta_compaction_entries_refused_total")
	compactBytesRead    = metrics.NewCounter("sluice_meta_compaction_read_bytes_total")
	compactBytesWritten = metrics.NewCounter("sluice_meta_compaction_written_bytes_total")
	objectsDeleted      = metrics.NewCounter("sluice_meta_gc_objects_deleted_total")
	orphansDeleted      = metrics.NewCounter("sluice_meta_gc_orphans_deleted_total")
	// cleanLag is, per key cleaning leased, how long the oldest dirty
	// data of its partition had waited (compacted topics).
	cleanLag = metrics.NewHistogram("sluice_meta_compaction_lag_seconds_at_lease")
	// cleanLagDone is, per key cleaning committed, the time from the
	// commit of the oldest dirty data it cleaned to the commit of its
	// result: the longest any record of it waited to be compacted (Kafka's
	// compaction lag, measured as its worst case per job).
	cleanLagDone = metrics.NewHistogram("sluice_meta_key_cleaning_lag_seconds")
	// cleanPasses counts the windowed key cleaning passes started: of
	// compacted partitions whose log does not fit one job's window.
	cleanPasses = metrics.NewCounter("sluice_meta_key_cleaning_windowed_passes_total")
	// cleanWindowsUnchanged counts the windows of passes that kept every
	// record in place: no object was written for them.
	cleanWindowsUnchanged = metrics.NewCounter("sluice_meta_key_cleaning_windows_unchanged_total")
)

// open holds the open Services, for the gauges below (a meta host opens
// one per virtual cluster; the gauges sum over them).
var open sync.Map // *Service -> struct{}

func sumStats(f func(JobsStats) float64) func() float64 {
	return func() float64 {
		var v float64
		open.Range(func(k, _ any) bool {
			v += f(k.(*Service).cachedStats())
			return true
		})
		return v
	}
}

// cachedStats is JobsStats at most a second old: one scrape reads every
// gauge below, and each would otherwise walk all objects and partitions.
func (s *Service) cachedStats() JobsStats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if time.Since(s.statsAt) > time.Second {
		s.stats, s.statsAt = s.JobsStats(), time.Now()
	}
	return s.stats
}

func init() {
	metrics.NewGauge(`sluice_meta_objects{state="live"}`, sumStats(func(s JobsStats) float64 { return float64(s.LiveObjects) }))
	metrics.NewGauge(`sluice_meta_objects{state="dead"}`, sumStats(func(s JobsStats) float64 { return float64(s.DeadObjects) }))
	metrics.NewGauge(`sluice_meta_object_bytes{state="live"}`, sumStats(func(s JobsStats) float64 { return float64(s.LiveBytes) }))
	metrics.NewGauge(`sluice_meta_object_bytes{state="dead"}`, sumStats(func(s JobsStats) float64 { return float64(s.DeadBytes) }))
	metrics.NewGauge(`sluice_meta_compaction_awaiting_bytes`, sumStats(func(s JobsStats) float64 { return float64(s.AwaitingCompactionBytes) }))
	metrics.NewGauge(`sluice_meta_compaction_lag_seconds`, func() float64 {
		var v float64
		open.Range(func(k, _ any) bool {
			v = max(v, k.(*Service).cachedStats().CompactionLag.Seconds())
			return true
		})
		return v
	})
	metrics.NewGauge(`sluice_meta_jobs_leased`, sumStats(func(s JobsStats) float64 { return float64(s.Leased) }))
	metrics.NewGauge(`sluice_meta_index_entries`, sumStats(func(s JobsStats) float64 { return float64(s.IndexEntries) }))
	// Deploy (issue 16): registered agents for the control-plane
	// dashboard, over every open cluster. An agent past its TTL counts
	// until the next registry call expires it (at most one --agent-ttl).
	metrics.NewGauge(`sluice_meta_agents_registered`, func() float64 {
		var n int
		open.Range(func(k, _ any) bool {
			r := k.(*Service).registry
			r.mu.Lock()
			n += len(r.agents)
			r.mu.Unlock()
			return true
		})
		return float64(n)
	})
}

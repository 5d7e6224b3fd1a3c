package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/planner"
)

// Jobs (docs/compaction.md): meta plans, an agent with the jobs role
// executes, meta commits the result. This file is the control plane's
// side of meta.JobsClient: leases, planning, and the ops that commit
// results through the committer.
//
// Leases live in memory only (jobsState): they spread work, they guard
// nothing. A result is checked against the state when it is committed
// (swap.go), and everything a lost job leaves behind is an object nobody
// references, which the garbage collector finds.

var _ meta.JobsClient = (*Service)(nil)

const (
	defaultGCGrace        = 5 * time.Minute
	defaultCompactEntry   = 1 << 20
	maxDeletePerJob       = 1000
	defaultOrphanInterval = 10 * time.Minute
)

// jobsState holds the leases. Lock order: Service.mu before jobsState.mu.
type jobsState struct {
	mu   sync.Mutex
	next uint64
	jobs map[uint64]*jobRec
	busy map[meta.SegmentID]uint64 // object -> the job that holds it
	// cooling holds the objects of a job given back (AbandonJob) out of
	// new jobs until the time given: a job that fails the same way each
	// time (an object missing from the bucket, a bad byte range) was
	// planned again at once, first, and every tick of every jobs agent
	// spent its budget on it, so that one broken object stopped all
	// compaction.
	cooling map[meta.SegmentID]time.Time
	// passes holds the windowed key cleanings going on (cleanPass).
	passes map[*partState]*cleanPass
	orphan struct {
		leased    uint64    // the orphan pass in progress, 0 if none
		lastDone  time.Time // when the last pass ended
		coolUntil time.Time // a pass given back: no new one before this
	}
}

// jobRec is one leased job.
type jobRec struct {
	id    uint64
	kind  meta.JobKind
	agent string
	until time.Time // lease end
	level int8
	clean bool // a key cleaning (JobCleanKeys)
	// dirtySince is, for a key cleaning, when the oldest dirty data it
	// cleans was committed (unix ms): its completion observes the
	// compaction lag from it.
	dirtySince int64
	output     meta.SegmentID
	objects    map[meta.SegmentID]bool // compaction sources, or objects to delete
	// pass is the windowed key cleaning this job is a window of, which
	// ends at windowEnd; final: the pass's last window.
	pass      *cleanPass
	windowEnd int64
	final     bool
}

func newJobsState() *jobsState {
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	// Ids start at a random point so that a result from before a restart
	// does not match a job of the new process by chance.
	n := uint64(seed[0])<<40 | uint64(seed[1])<<32 | uint64(seed[2])<<24 | uint64(seed[3])<<16 | uint64(seed[4])<<8 | uint64(seed[5])
	return &jobsState{next: n + 1, jobs: make(map[uint64]*jobRec), busy: make(map[meta.SegmentID]uint64),
		cooling: make(map[meta.SegmentID]time.Time), passes: make(map[*partState]*cleanPass)}
}

// abandonCooldown is how long the objects of a job given back stay out
// of new jobs (jobsState.cooling): a quarter of the GC grace, at most a
// minute. Jobs are background work: such a delay costs little, and a job
// that keeps failing is tried once a minute, with one log line each time,
// instead of in a loop; tied to the grace, dead objects whose deletion
// failed (a bucket outage) still go within about 1.25 graces, which
// `sluice loadtest --compaction` checks with its grace of seconds.
func (s *Service) abandonCooldown() time.Duration {
	return min(time.Minute, max(s.cfg.GCGrace/4, time.Second))
}

// heldLocked reports whether object id may not go into a new job now: a
// job holds it, or it is cooling after a job was given back.
func (j *jobsState) heldLocked(id meta.SegmentID, now time.Time) bool {
	if _, ok := j.busy[id]; ok {
		return true
	}
	until, ok := j.cooling[id]
	return ok && now.Before(until)
}

// commitMaxAge is the oldest segment id a commit may name: half the GC
// grace, so that the orphan collector, which takes only ids older than
// the whole grace, can never delete an object a commit still claims.
func (s *Service) commitMaxAge() time.Duration { return s.cfg.GCGrace / 2 }

// leaseTTL is how long a job stays one agent's.
func (s *Service) leaseTTL() time.Duration { return s.cfg.JobLeaseTTL }

// expireLocked drops leases that ran out, freeing their objects, and the
// cooldowns that are over.
func (j *jobsState) expireLocked(now time.Time) {
	for id, jr := range j.jobs {
		if now.After(jr.until) {
			j.releaseLocked(id)
		}
	}
	for id, until := range j.cooling {
		if !now.Before(until) {
			delete(j.cooling, id)
		}
	}
}

func (j *jobsState) releaseLocked(id uint64) *jobRec {
	jr := j.jobs[id]
	if jr == nil {
		return nil
	}
	delete(j.jobs, id)
	for o := range jr.objects {
		if j.busy[o] == id {
			delete(j.busy, o)
		}
	}
	if j.orphan.leased == id {
		j.orphan.leased = 0
	}
	return jr
}

func (j *jobsState) addLocked(jr *jobRec) {
	jr.id = j.next
	j.next++
	j.jobs[jr.id] = jr
	for o := range jr.objects {
		j.busy[o] = jr.id
	}
}

// AcquireJob leases the next due job of one of kinds.
func (s *Service) AcquireJob(ctx context.Context, agentID string, kinds []meta.JobKind) (meta.Job, bool, error) {
	if err := s.readable(ctx); err != nil {
		return meta.Job{}, false, err
	}
	if agentID == "" {
		return meta.Job{}, false, fmt.Errorf("%w: AcquireJob without an agent id", meta.ErrInvalidRequest)
	}
	now := s.now()
	for _, k := range kinds {
		var (
			job meta.Job
			ok  bool
		)
		switch k {
		case meta.JobCompact:
			job, ok = s.planCompaction(agentID, now)
		case meta.JobDelete:
			job, ok = s.planDelete(agentID, now)
		case meta.JobOrphans:
			job, ok = s.planOrphans(agentID, now)
		case meta.JobCleanKeys:
			job, ok = s.planClean(agentID, now)
		default:
			return meta.Job{}, false, fmt.Errorf("%w: job kind %d", meta.ErrInvalidRequest, k)
		}
		if ok {
			jobsLeased.Inc()
			return job, true, nil
		}
	}
	return meta.Job{}, false, nil
}

func (s *Service) planCompaction(agentID string, now time.Time) (meta.Job, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.expireLocked(now)
	objs := s.st.objs.planInput()
	busy := func(id meta.SegmentID) bool { return s.jobs.heldLocked(id, now) }
	plan, ok := planner.Compaction(objs, busy, now, s.cfg.Compaction)
	if !ok {
		return meta.Job{}, false
	}
	srcs := s.sourcesLocked(plan.Objects)
	if len(srcs) < 2 {
		return meta.Job{}, false
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	jr := &jobRec{kind: meta.JobCompact, agent: agentID, until: now.Add(s.leaseTTL()), level: plan.Level,
		output: meta.NewSegmentID(now, rnd), objects: make(map[meta.SegmentID]bool, len(plan.Objects))}
	for _, id := range plan.Objects {
		jr.objects[id] = true
	}
	s.jobs.addLocked(jr)
	return meta.Job{ID: jr.id, Kind: meta.JobCompact, LeaseTTL: s.leaseTTL(), Compact: &meta.CompactJob{
		Level: plan.Level, Output: jr.output, MaxEntryBytes: s.cfg.CompactEntryBytes, Sources: srcs,
	}}, true
}

// sourcesLocked returns the committed entries that point into ids,
// grouped by partition and in offset order. Caller holds s.mu.
func (s *Service) sourcesLocked(ids []meta.SegmentID) []meta.IndexEntry {
	var out []meta.IndexEntry
	for _, id := range ids {
		ob := s.st.objs.byID[id]
		if ob == nil {
			continue
		}
		for _, p := range ob.parts {
			t := s.st.topicsByID[p.tp.topic]
			if t == nil || int(p.tp.part) >= len(t.parts) {
				continue
			}
			l := &t.parts[p.tp.part].entries
			for i := max(l.find(p.first), 0); i < l.len() && l.at(i).BaseOffset <= p.last; i++ {
				if e := l.at(i); e.SegmentID == id {
					out = append(out, *e)
				}
			}
		}
	}
	// Transaction markers (issue 15) right after a source entry go with
	// it: the job renders them into its output, so a partition written
	// in transactions does not keep an index entry per marker (a Streams
	// app committing every 100 ms places ten a second in each partition
	// it writes). A marker never changes, so no lease guards it; the job
	// holding the entry before it is the only one that takes it.
	for i, n := 0, len(out); i < n; i++ {
		e := out[i]
		l := &s.st.topicsByID[e.TopicID].parts[e.Partition].entries
		next := e.LastOffset + 1
		for k := l.find(next); k >= 0 && k < l.len(); k++ {
			m := l.at(k)
			if m.BaseOffset < next {
				continue // the entry itself
			}
			if !m.IsMarker() || m.BaseOffset != next {
				break
			}
			out = append(out, *m)
			next++
		}
	}
	slices.SortFunc(out, func(a, b meta.IndexEntry) int {
		if c := compareTP(&a, &b); c != 0 {
			return c
		}
		return cmp.Compare(a.BaseOffset, b.BaseOffset)
	})
	// An object's hints may name a partition twice.
	return slices.CompactFunc(out, func(a, b meta.IndexEntry) bool { return sameTP(&a, &b) && a.BaseOffset == b.BaseOffset })
}

func compareTP(a, b *meta.IndexEntry) int {
	if c := slices.Compare(a.TopicID[:], b.TopicID[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func (s *Service) planDelete(agentID string, now time.Time) (meta.Job, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.expireLocked(now)
	cutoff := now.Add(-s.cfg.GCGrace).UnixMilli()
	var refs []meta.ObjectRef
	for id, ob := range s.st.objs.byID {
		if ob.refs > 0 || ob.deadSince == 0 || ob.deadSince > cutoff {
			continue
		}
		if s.jobs.heldLocked(id, now) {
			continue
		}
		refs = append(refs, meta.ObjectRef{ID: id, Key: ob.key, Size: ob.size})
		if len(refs) == maxDeletePerJob {
			break
		}
	}
	if len(refs) == 0 {
		return meta.Job{}, false
	}
	jr := &jobRec{kind: meta.JobDelete, agent: agentID, until: now.Add(s.leaseTTL()), objects: make(map[meta.SegmentID]bool, len(refs))}
	for _, r := range refs {
		jr.objects[r.ID] = true
	}
	s.jobs.addLocked(jr)
	return meta.Job{ID: jr.id, Kind: meta.JobDelete, LeaseTTL: s.leaseTTL(), Delete: &meta.DeleteJob{Objects: refs}}, true
}

// planOrphans leases one pass over the bucket every OrphanInterval, and
// none during the first grace period after Open: objects that died
// before a restart are known to this process only as orphans, and their
// grace started before it.
func (s *Service) planOrphans(agentID string, now time.Time) (meta.Job, bool) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.expireLocked(now)
	if s.jobs.orphan.leased != 0 || now.Sub(s.openedAt) < s.cfg.GCGrace || now.Before(s.jobs.orphan.coolUntil) ||
		(!s.jobs.orphan.lastDone.IsZero() && now.Sub(s.jobs.orphan.lastDone) < s.cfg.OrphanInterval) {
		return meta.Job{}, false
	}
	jr := &jobRec{kind: meta.JobOrphans, agent: agentID, until: now.Add(s.leaseTTL())}
	s.jobs.addLocked(jr)
	s.jobs.orphan.leased = jr.id
	return meta.Job{ID: jr.id, Kind: meta.JobOrphans, LeaseTTL: s.leaseTTL(),
		Orphans: &meta.OrphansJob{Prefix: meta.ObjectPrefix, MinAge: s.cfg.GCGrace}}, true
}

// job returns the lease id, of kind, if this process still knows it.
func (s *Service) job(id uint64, kind meta.JobKind) (*jobRec, error) {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	jr := s.jobs.jobs[id]
	if jr == nil || jr.kind != kind {
		return nil, fmt.Errorf("%w: %s job %d", meta.ErrJobLost, kind, id)
	}
	return jr, nil
}

func (s *Service) release(id uint64) {
	s.jobs.mu.Lock()
	s.jobs.releaseLocked(id)
	s.jobs.mu.Unlock()
}

// CompleteCompaction commits a compaction result (swap.go).
func (s *Service) CompleteCompaction(ctx context.Context, r meta.CompactResult) (meta.CompactOutcome, error) {
	jr, err := s.job(r.JobID, meta.JobCompact)
	if errors.Is(err, meta.ErrJobLost) {
		jr, err = s.job(r.JobID, meta.JobCleanKeys)
	}
	if err != nil {
		return meta.CompactOutcome{}, err
	}
	if r.Output != jr.output {
		return meta.CompactOutcome{}, fmt.Errorf("%w: job %d has output %s, result names %s", meta.ErrInvalidRequest, r.JobID, jr.output, r.Output)
	}
	if r.Unchanged {
		// A window that kept everything in place: the index already
		// holds what a swap would put there, so only the pass moves.
		s.jobs.mu.Lock()
		defer s.jobs.mu.Unlock()
		if jr.pass == nil || jr.final || len(r.Entries) > 0 {
			return meta.CompactOutcome{}, fmt.Errorf("%w: job %d: only a window of a windowed key cleaning before its last may come back unchanged", meta.ErrInvalidRequest, r.JobID)
		}
		s.jobs.endPassLocked(jr, true)
		s.jobs.releaseLocked(r.JobID)
		cleanWindowsUnchanged.Inc()
		compactBytesRead.Add(int(r.BytesRead))
		return meta.CompactOutcome{}, nil
	}
	r.Entries = slices.Clone(r.Entries)
	o := &op{kind: opSwap, swap: &swapReq{res: r, sources: jr.objects, level: jr.level, clean: jr.clean}}
	if err := s.submit(ctx, o); err != nil {
		return meta.CompactOutcome{}, err
	}
	if o.err == nil || errors.Is(o.err, meta.ErrSegmentExpired) || errors.Is(o.err, meta.ErrInvalidRequest) {
		s.jobs.mu.Lock()
		s.jobs.endPassLocked(jr, o.err == nil && o.swapOutcome.Swapped > 0)
		s.jobs.releaseLocked(r.JobID)
		s.jobs.mu.Unlock()
	}
	if o.err != nil {
		return meta.CompactOutcome{}, o.err
	}
	if jr.clean && o.swapOutcome.Swapped > 0 && (jr.pass == nil || jr.final) {
		cleanLagDone.Update(float64(s.now().UnixMilli()-jr.dirtySince) / 1000)
	}
	compactSwapped.Add(o.swapOutcome.Swapped)
	compactRefused.Add(o.swapOutcome.Refused)
	compactBytesRead.Add(int(r.BytesRead))
	compactBytesWritten.Add(int(r.Size))
	return o.swapOutcome, nil
}

// CompleteDelete forgets the deleted objects of a delete job.
func (s *Service) CompleteDelete(ctx context.Context, r meta.DeleteResult) error {
	jr, err := s.job(r.JobID, meta.JobDelete)
	if err != nil {
		return err
	}
	ids := make([]meta.SegmentID, 0, len(r.Deleted))
	for _, id := range r.Deleted {
		if jr.objects[id] {
			ids = append(ids, id)
		}
	}
	o := &op{kind: opForgetObjects, forgetIDs: ids}
	if err := s.submit(ctx, o); err != nil {
		return err
	}
	s.release(r.JobID)
	objectsDeleted.Add(len(ids))
	return o.err
}

// CheckOrphans returns the offered keys that name objects meta does not
// know and that are older than the grace on meta's clock. It runs as a
// committer op, after every commit queued before it: a commit of such an
// id is either applied before (then the object is known) or refused
// (applyCommit's age limit is half the grace).
func (s *Service) CheckOrphans(ctx context.Context, jobID uint64, keys []string) ([]string, error) {
	if _, err := s.job(jobID, meta.JobOrphans); err != nil {
		return nil, err
	}
	o := &op{kind: opCheckOrphans, orphanKeys: slices.Clone(keys)}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.orphans, o.err
}

func (s *Service) applyCheckOrphans(g *group, keys []string, now int64) []string {
	if time.Duration(now-s.openedAt.UnixNano()) < s.cfg.GCGrace {
		return nil // see planOrphans
	}
	cutoff := now - s.cfg.GCGrace.Nanoseconds()
	var out []string
	for _, k := range keys {
		id, ok := meta.ParseObjectKey(k)
		if !ok || id.Time().UnixNano() >= cutoff || g.st.objs.byID[id] != nil {
			continue
		}
		if slices.ContainsFunc(g.objsNew, func(b bornObj) bool { return b.id == id }) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// CompleteOrphans ends an orphan pass.
func (s *Service) CompleteOrphans(ctx context.Context, r meta.OrphansResult) error {
	if _, err := s.job(r.JobID, meta.JobOrphans); err != nil {
		return err
	}
	s.jobs.mu.Lock()
	s.jobs.releaseLocked(r.JobID)
	s.jobs.orphan.lastDone = s.now()
	s.jobs.mu.Unlock()
	orphansDeleted.Add(int(r.Deleted))
	return nil
}

// AbandonJob gives a lease back.
func (s *Service) AbandonJob(ctx context.Context, jobID uint64, reason string) error {
	s.jobs.mu.Lock()
	jr := s.jobs.releaseLocked(jobID)
	if jr != nil {
		until := s.now().Add(s.abandonCooldown())
		for o := range jr.objects {
			s.jobs.cooling[o] = until
		}
		if jr.kind == meta.JobOrphans {
			s.jobs.orphan.coolUntil = until
		}
	}
	s.jobs.mu.Unlock()
	if jr == nil {
		return fmt.Errorf("%w: job %d", meta.ErrJobLost, jobID)
	}
	jobsAbandoned.Inc()
	s.log.Warn("meta: a jobs agent gave a job back", "kind", jr.kind.String(), "job", jobID, "agent", jr.agent, "reason", reason)
	return nil
}

// JobsStats is what the jobs look like now (metrics, /healthz detail).
type JobsStats struct {
	LiveObjects, DeadObjects int
	LiveBytes, DeadBytes     int64
	// AwaitingCompaction: objects below the planner's large size, and
	// their live bytes; CompactionLag is the age of the oldest of them.
	AwaitingCompaction      int
	AwaitingCompactionBytes int64
	CompactionLag           time.Duration
	Leased                  int
	// IndexEntries counts the index entries of every partition: what
	// meta's memory and store grow with.
	IndexEntries int
}

// JobsStats reports the objects and jobs.
func (s *Service) JobsStats() JobsStats {
	now := s.now()
	s.mu.RLock()
	var st JobsStats
	cfg := s.cfg.Compaction.WithDefaults()
	for _, ob := range s.st.objs.byID {
		if ob.refs == 0 {
			st.DeadObjects++
			st.DeadBytes += ob.size
			continue
		}
		st.LiveObjects++
		st.LiveBytes += ob.live
		if ob.size < cfg.LargeObjectBytes && ob.level < cfg.MaxLevel {
			st.AwaitingCompaction++
			st.AwaitingCompactionBytes += ob.live
			st.CompactionLag = max(st.CompactionLag, now.Sub(msTime(ob.committed)))
		}
	}
	for _, t := range s.st.topicsByID {
		for _, ps := range t.parts {
			st.IndexEntries += ps.entries.len()
		}
	}
	s.mu.RUnlock()
	s.jobs.mu.Lock()
	st.Leased = len(s.jobs.jobs)
	s.jobs.mu.Unlock()
	return st
}

// Key cleaning of compacted topics (cleanup.policy=compact).

// defaultCleanWindow is Config.CleanWindowBytes's default: what one key
// cleaning job rewrites (and holds in memory).
const defaultCleanWindow = 256 << 20

// maxPassOffsets bounds a windowed pass's dirty range in offsets, so that
// its keys (at most one per offset) fit the jobs agent's key map (5.0
// million keys in the default 128 MiB): every window of a pass must be
// judged against the same complete map.
const maxPassOffsets = 4_000_000

// defaultCleanLag is how long dirty data of a compacted topic waits for
// a cleaning when the topic sets no max.compaction.lag.ms (Kafka's
// default never forces one): short enough that the compaction lag stays
// under a minute with agents polling every CleanPollInterval. It applies
// to partitions whose log fits one job's window: a larger log is
// rewritten whole by each cleaning, so it is cleaned when
// min.cleanable.dirty.ratio says so, or when the topic's own
// max.compaction.lag.ms does, as in Kafka.
const defaultCleanLag = 30 * time.Second

// cleanConfig is a compacted topic's cleaning configuration.
type cleanConfig struct {
	compact            bool
	minLagMs, maxLagMs int64
	topicLagMs         int64 // max.compaction.lag.ms as the topic sets it, 0 if unset
	ratio              float64
	deleteRetentionMs  int64
}

func cleanConfigOf(t *topicState) cleanConfig {
	c := cleanConfig{maxLagMs: defaultCleanLag.Milliseconds(), ratio: 0.5, deleteRetentionMs: 86_400_000}
	for _, p := range strings.Split(t.topic.Configs["cleanup.policy"], ",") {
		if strings.TrimSpace(p) == "compact" {
			c.compact = true
		}
	}
	if v, err := strconv.ParseInt(t.topic.Configs["min.compaction.lag.ms"], 10, 64); err == nil && v >= 0 {
		c.minLagMs = v
	}
	if v, err := strconv.ParseInt(t.topic.Configs["max.compaction.lag.ms"], 10, 64); err == nil && v > 0 {
		c.maxLagMs = min(v, c.maxLagMs)
		c.topicLagMs = v
	}
	if v, err := strconv.ParseFloat(t.topic.Configs["min.cleanable.dirty.ratio"], 64); err == nil && v >= 0 && v <= 1 {
		c.ratio = v
	}
	if v, err := strconv.ParseInt(t.topic.Configs["delete.retention.ms"], 10, 64); err == nil && v >= 0 {
		c.deleteRetentionMs = v
	}
	return c
}

// cleanPass is the key cleaning of a partition whose log does not fit
// one job's window (Config.CleanWindowBytes). Like Kafka's cleaner, it
// judges the whole log against the keys of one dirty range [dirty,
// keyEnd]: one job per window, in offset order from the log start, each
// building the same key map from that range (the jobs agent reads it
// without holding it) and rewriting its window against it. The last
// window, from finalStart, holds the whole dirty range, and its swap
// moves the partition's clean end past keyEnd. So every record below
// the clean end has been judged against every later record below it,
// which is what lets a cleaning drop an old tombstone in the clean part.
//
// A pass lives in meta's memory. When it cannot go on as planned (a
// window's result is refused, the log start moves past its dirty start,
// meta restarts), it is dropped and the next cleaning starts a new one
// from the log start: more work, never a record judged against less.
type cleanPass struct {
	ps            *partState
	topicID       meta.TopicID
	dirty, keyEnd int64
	finalStart    int64
	next          int64  // first offset this pass has not rewritten
	dirtySince    int64  // commit time of the oldest dirty data (unix ms)
	horizonMs     int64  // the tombstone horizon, fixed for the pass
	leased        uint64 // the job cleaning a window now, if it lives
}

// cleanCand is a partition due for cleaning.
type cleanCand struct {
	ps     *partState
	cc     cleanConfig
	oldest int64
	pass   *cleanPass // a windowed pass going on
}

// planClean leases the cleaning of the compacted partition whose dirty
// data has waited longest, once it is due: its dirty share reached
// min.cleanable.dirty.ratio, or its oldest dirty data max.compaction.lag.ms
// (default 30 s for a log that fits one window). Data younger than
// min.compaction.lag.ms is left alone, and so is data at or past the last
// stable offset (issue 15): every transaction in the range has ended, so
// the job can tell aborted records (the aborted ranges go with it) from
// committed ones. Transaction markers in the range are sources like
// entries; the job renders them. A partition in a windowed pass gets its
// next window.
func (s *Service) planClean(agentID string, now time.Time) (meta.Job, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	s.jobs.expireLocked(now)
	nowMs := now.UnixMilli()
	window := s.cfg.CleanWindowBytes
	var cands []cleanCand
	for ps, p := range s.jobs.passes {
		// Passes of deleted or re-created topics.
		if t := s.st.topicsByID[p.topicID]; t == nil || int(ps.tp.part) >= len(t.parts) || t.parts[ps.tp.part] != ps {
			delete(s.jobs.passes, ps)
		}
	}
	for _, t := range s.st.topicsByID {
		cc := cleanConfigOf(t)
		if !cc.compact {
			continue
		}
		for _, ps := range t.parts {
			l := &ps.entries
			dirty := max(ps.cleanEnd, ps.logStart)
			if p := s.jobs.passes[ps]; p != nil {
				if p.leased != 0 && s.jobs.jobs[p.leased] != nil {
					continue // a window of it is being cleaned
				}
				if p.dirty == dirty && l.len() > 0 {
					cands = append(cands, cleanCand{ps: ps, cc: cc, oldest: p.dirtySince, pass: p})
					continue
				}
				delete(s.jobs.passes, ps) // the log start moved past it
			}
			if l.len() == 0 || dirty >= s.st.lsoLocked(ps) {
				continue
			}
			di := max(l.find(dirty), 0)
			oldest := s.committedLocked(l.at(di), nowMs)
			var total, dirtyBytes int64
			for k := range l.len() {
				total += l.at(k).Length
				if k >= di {
					dirtyBytes += l.at(k).Length
				}
			}
			lag := cc.maxLagMs
			if total > window {
				lag = cc.topicLagMs // see defaultCleanLag
			}
			if (lag <= 0 || nowMs-oldest < lag) && float64(dirtyBytes) < cc.ratio*float64(total) {
				continue
			}
			cands = append(cands, cleanCand{ps: ps, cc: cc, oldest: oldest})
		}
	}
	slices.SortFunc(cands, func(a, b cleanCand) int { return cmp.Compare(a.oldest, b.oldest) })
	for _, c := range cands {
		if c.pass == nil {
			job, ok, started := s.planCleanWhole(agentID, c, now)
			if ok {
				return job, true
			}
			if !started {
				continue
			}
			c.pass = s.jobs.passes[c.ps]
		}
		if job, ok := s.planCleanWindow(agentID, c, now); ok {
			return job, true
		}
	}
	return meta.Job{}, false
}

// committedLocked is when e's data was committed (unix ms): its object's
// commit, or a marker's own stamp.
func (s *Service) committedLocked(e *meta.IndexEntry, nowMs int64) int64 {
	if e.IsMarker() {
		return e.MaxTimestamp // stamped by meta's clock when placed
	}
	if ob := s.st.objs.byID[e.SegmentID]; ob != nil {
		return ob.committed
	}
	return nowMs
}

// cleanableLocked reports whether e may be in a cleaning now: below the
// last stable offset and older than min.compaction.lag.ms.
func (s *Service) cleanableLocked(e *meta.IndexEntry, lso int64, c cleanCand, nowMs int64) bool {
	return e.LastOffset < lso && nowMs-s.committedLocked(e, nowMs) >= c.cc.minLagMs
}

// planCleanWhole plans the cleaning of a partition whose log, from its
// start to its cleanable end, fits one window: one job. When the log
// does not fit, it starts a windowed pass instead (started).
func (s *Service) planCleanWhole(agentID string, c cleanCand, now time.Time) (job meta.Job, ok, started bool) {
	nowMs := now.UnixMilli()
	l := &c.ps.entries
	dirty := max(c.ps.cleanEnd, c.ps.logStart)
	lso := s.st.lsoLocked(c.ps)
	var (
		srcs  []meta.IndexEntry
		bytes int64
		full  bool
	)
	for k := 0; k < l.len(); k++ {
		e := l.at(k)
		if !s.cleanableLocked(e, lso, c, nowMs) {
			break
		}
		if bytes+e.Length > s.cfg.CleanWindowBytes && len(srcs) > 0 {
			full = true
			break
		}
		if !e.IsMarker() && s.jobs.heldLocked(e.SegmentID, now) {
			return meta.Job{}, false, false
		}
		srcs = append(srcs, *e)
		bytes += e.Length
	}
	if len(srcs) == 0 {
		return meta.Job{}, false, false
	}
	if srcs[len(srcs)-1].LastOffset < dirty {
		if !full {
			return meta.Job{}, false, false
		}
		return meta.Job{}, false, s.startPassLocked(c, now)
	}
	spec := &meta.CleanSpec{DirtyStart: dirty, TombstoneHorizon: nowMs - c.cc.deleteRetentionMs, FromLogStart: true,
		Aborted: s.abortedOverlapLocked(c.ps, srcs[0].BaseOffset, srcs[len(srcs)-1].LastOffset)}
	jr := s.cleanJobLocked(agentID, c.oldest, srcs, nil, now)
	cleanLag.Update(float64(nowMs-c.oldest) / 1000)
	return meta.Job{ID: jr.id, Kind: meta.JobCleanKeys, LeaseTTL: s.leaseTTL(), Compact: &meta.CompactJob{
		Level: meta.LevelCleaned, Output: jr.output, MaxEntryBytes: s.cfg.CompactEntryBytes, Sources: srcs, Clean: spec,
	}}, true, false
}

// startPassLocked starts a windowed pass of c's partition: its dirty
// range is what fits half a window and maxPassOffsets, so that the last
// window holds it whole with clean data before it.
func (s *Service) startPassLocked(c cleanCand, now time.Time) bool {
	nowMs := now.UnixMilli()
	l := &c.ps.entries
	dirty := max(c.ps.cleanEnd, c.ps.logStart)
	lso := s.st.lsoLocked(c.ps)
	first := max(l.find(dirty), 0)
	end, last := int64(-1), -1
	var bytes int64
	for k := first; k < l.len(); k++ {
		e := l.at(k)
		if !s.cleanableLocked(e, lso, c, nowMs) || (k > first && (bytes+e.Length > s.cfg.CleanWindowBytes/2 || e.LastOffset-dirty+1 > maxPassOffsets)) {
			break
		}
		end, last = e.LastOffset, k
		bytes += e.Length
	}
	if last < 0 || end < dirty {
		return false
	}
	// The last window: back from the dirty range's end while it fits.
	start := last
	for bytes = 0; start >= 0 && bytes+l.at(start).Length <= s.cfg.CleanWindowBytes; start-- {
		bytes += l.at(start).Length
	}
	finalStart := l.at(min(start+1, first)).BaseOffset
	s.jobs.passes[c.ps] = &cleanPass{ps: c.ps, topicID: c.ps.tp.topic, dirty: dirty, keyEnd: end, finalStart: finalStart,
		next: c.ps.logStart, dirtySince: c.oldest, horizonMs: nowMs - c.cc.deleteRetentionMs}
	cleanPasses.Inc()
	return true
}

// planCleanWindow leases the next window of c's pass: entries from where
// the pass is, up to a window's bytes and below the last window's start;
// or the last window, through the end of the dirty range.
func (s *Service) planCleanWindow(agentID string, c cleanCand, now time.Time) (meta.Job, bool) {
	nowMs := now.UnixMilli()
	p := c.pass
	l := &c.ps.entries
	i := max(l.find(max(p.next, c.ps.logStart)), 0)
	final := l.at(i).LastOffset >= p.finalStart
	var (
		srcs  []meta.IndexEntry
		bytes int64
	)
	for k := i; k < l.len(); k++ {
		e := l.at(k)
		if e.BaseOffset > p.keyEnd || (!final && (e.LastOffset >= p.finalStart || (bytes+e.Length > s.cfg.CleanWindowBytes && len(srcs) > 0))) {
			break
		}
		if !e.IsMarker() && s.jobs.heldLocked(e.SegmentID, now) {
			return meta.Job{}, false
		}
		srcs = append(srcs, *e)
		bytes += e.Length
	}
	if len(srcs) == 0 {
		delete(s.jobs.passes, c.ps)
		return meta.Job{}, false
	}
	// The dirty range's entries after the window: the job reads their
	// keys.
	var keys []meta.IndexEntry
	if !final {
		for k := max(l.find(p.dirty), 0); k < l.len() && l.at(k).BaseOffset <= p.keyEnd; k++ {
			e := l.at(k)
			if e.IsMarker() {
				continue // no keys
			}
			if s.jobs.heldLocked(e.SegmentID, now) {
				return meta.Job{}, false
			}
			keys = append(keys, *e)
		}
	}
	spec := &meta.CleanSpec{DirtyStart: p.dirty, TombstoneHorizon: p.horizonMs, KeySources: keys, KeyEnd: p.keyEnd,
		FromLogStart: srcs[0].BaseOffset <= c.ps.logStart,
		Aborted:      s.abortedOverlapLocked(c.ps, srcs[0].BaseOffset, max(p.keyEnd, srcs[len(srcs)-1].LastOffset))}
	jr := s.cleanJobLocked(agentID, p.dirtySince, srcs, keys, now)
	jr.pass, jr.windowEnd, jr.final = p, srcs[len(srcs)-1].LastOffset, final
	p.leased = jr.id
	if final {
		cleanLag.Update(float64(nowMs-p.dirtySince) / 1000)
	}
	return meta.Job{ID: jr.id, Kind: meta.JobCleanKeys, LeaseTTL: s.leaseTTL(), Compact: &meta.CompactJob{
		Level: meta.LevelCleaned, Output: jr.output, MaxEntryBytes: s.cfg.CompactEntryBytes, Sources: srcs, Clean: spec,
	}}, true
}

// abortedOverlapLocked returns ps's aborted transactions that overlap
// [from, to], in marker order.
func (s *Service) abortedOverlapLocked(ps *partState, from, to int64) []meta.AbortedTxn {
	var out []meta.AbortedTxn
	for _, a := range s.st.aborted[ps.tp] {
		if a.LastOffset >= from && a.FirstOffset <= to {
			out = append(out, a)
		}
	}
	return out
}

// cleanJobLocked leases a key cleaning of srcs, holding their objects and
// those of keys.
func (s *Service) cleanJobLocked(agentID string, dirtySince int64, srcs, keys []meta.IndexEntry, now time.Time) *jobRec {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	jr := &jobRec{kind: meta.JobCleanKeys, agent: agentID, until: now.Add(s.leaseTTL()), level: meta.LevelCleaned, clean: true,
		dirtySince: dirtySince, output: meta.NewSegmentID(now, rnd), objects: make(map[meta.SegmentID]bool)}
	for _, e := range slices.Concat(srcs, keys) {
		if !e.IsMarker() {
			jr.objects[e.SegmentID] = true
		}
	}
	s.jobs.addLocked(jr)
	return jr
}

// endPassLocked moves jr's pass on after its window's completion (ok: the
// result was swapped in) or gives the pass up.
func (j *jobsState) endPassLocked(jr *jobRec, ok bool) {
	p := jr.pass
	if p == nil || j.passes[p.ps] != p || p.leased != jr.id {
		return
	}
	p.leased = 0
	if !ok || jr.final {
		delete(j.passes, p.ps)
		return
	}
	p.next = jr.windowEnd + 1
}

// AgeReport is how the bytes older than an age lie: how many there are
// (by their entries' largest record timestamp) and how many of them live
// in objects of at least the planner's large size, or in an object that
// holds the whole of its partition's older data (a partition too small to
// fill one). It walks every index entry: for /jobs and benchmarks, not
// for every metrics scrape.
type AgeReport struct {
	Age                 time.Duration
	OlderBytes          int64
	OlderInLargeObjects int64
}

// AgeReport measures the bytes older than age (see AgeReport).
func (s *Service) AgeReport(age time.Duration) AgeReport {
	cutoff := s.now().Add(-age).UnixMilli()
	large := s.cfg.Compaction.WithDefaults().LargeObjectBytes
	r := AgeReport{Age: age}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.st.topicsByID {
		for _, ps := range t.parts {
			l := &ps.entries
			var older, inLarge int64
			var objs map[meta.SegmentID]bool
			for k := range l.len() {
				e := l.at(k)
				if e.MaxTimestamp < 0 || e.MaxTimestamp >= cutoff {
					continue
				}
				older += e.Length
				if ob := s.st.objs.byID[e.SegmentID]; ob != nil && ob.size >= large {
					inLarge += e.Length
				}
				if objs == nil {
					objs = map[meta.SegmentID]bool{}
				}
				objs[e.SegmentID] = true
			}
			if len(objs) == 1 {
				inLarge = older // the partition's whole older data in one object
			}
			r.OlderBytes += older
			r.OlderInLargeObjects += inLarge
		}
	}
	return r
}

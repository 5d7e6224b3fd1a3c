// Package pipeline owns the produce path of an agent: it gathers record
// batches from every connection and partition into one open segment, seals
// it when the flush interval passes or its size limit is reached, uploads
// sealed segments (several at once, bounded), commits them to meta strictly
// in seal order, and only then completes the produce requests they hold.
//
//	Append ──► open segment ──seal──► upload (≤ MaxConcurrentUploads) ──► commit (in seal order) ──► done(results)
//	  ▲                                                                                              │
//	  └──────────────── in-flight bytes released (backpressure bound) ◄──────────────────────────────┘
//
// Invariants:
//   - done is called exactly once per Append, after the segment holding its
//     batches is durable in the object store AND committed in meta, or with
//     an error; never a success before (DESIGN.md invariant 1).
//   - done is called by the deadline of Append's ctx, if it has one: a
//     request that outlives its own timeout is answered with a retriable
//     error (ErrTimedOut) even while its segment is still in the works.
//   - A segment's commit is bounded by its seal time plus CommitTimeout,
//     never past its requests' own deadlines; when meta is unreachable,
//     every segment sealed before the failure is failed at once, untried,
//     rather than each waiting out its own deadline.
//   - Segments are committed in seal order, so one producer's batches keep
//     their order across segments (invariant 3).
//   - Bytes admitted but not completed never exceed MaxInFlightBytes, except
//     that one Append larger than the bound is admitted alone (invariant 7).
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/codec"
	"sluice.dev/internal/lograte"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

var (
	// ErrClosed is returned by Append once Close has begun.
	ErrClosed = errors.New("pipeline: closed")
	// ErrUpload wraps a failed segment upload; its requests are failed
	// with a retriable error and nothing in the segment is acknowledged.
	ErrUpload = errors.New("pipeline: segment upload failed")
	// ErrCommit wraps a failed meta commit.
	ErrCommit = errors.New("pipeline: segment commit failed")
	// ErrTimedOut answers a request whose own deadline passed before its
	// segment committed. It wraps ErrCommit: the outcome is unknown (the
	// segment may still commit), so the client retries, and an idempotent
	// producer's retry is deduplicated.
	ErrTimedOut = fmt.Errorf("%w: the request's timeout passed first", ErrCommit)
	// ErrSegmentRefused answers the requests of a segment meta refused on
	// its first commit attempt as too old (meta.ErrSegmentExpired): its
	// object may be an orphan the collector deletes, so the commit can
	// never succeed, and nothing of it was stored. The client sends the
	// batches again and they go into a new segment. It wraps ErrCommit.
	ErrSegmentRefused = fmt.Errorf("%w: meta refused the segment id as too old; nothing of it was stored", ErrCommit)

	// errQueuedTooLong: a segment's deadline passed before its turn. It
	// was never sent, so it is known not committed; it says nothing about
	// meta (the segment ahead may just have been slow).
	errQueuedTooLong = errors.New("deadline passed while queued")
)

// Config configures the pipeline. Zero fields take the defaults below.
type Config struct {
	// FlushInterval is how long the first batch of a segment waits for
	// company before the segment is sealed (flag --flush-interval). It is
	// the floor of acks=1/all latency at light load and sets the object
	// PUT rate: one object per interval per agent, not per partition.
	FlushInterval time.Duration
	// MaxSegmentBytes seals a segment early when it is this large
	// (default 8 MiB): big enough that PUT costs stay negligible, small
	// enough that a busy agent seals several per interval.
	MaxSegmentBytes int
	// MaxInFlightBytes bounds record bytes admitted but not yet
	// acknowledged (default 256 MiB). Past it Append waits.
	MaxInFlightBytes int64
	// MaxConcurrentUploads bounds parallel PUTs (default 4).
	MaxConcurrentUploads int
	// UploadTimeout bounds one PUT attempt (default 30s).
	UploadTimeout time.Duration
	// CommitTimeout bounds committing one segment, retries included,
	// counted from its seal (default 30s): time spent queued behind
	// earlier segments counts, so a queue of segments during a meta
	// outage does not add up deadlines one after the other.
	CommitTimeout time.Duration
	// EarlySealsPerSecond is the budget of segments sealed before their
	// flush interval because a client is stalled on them (early.go) while
	// smaller than the early-seal minimum: each is one more object PUT.
	// Such seals and the interval's together are at most
	// EarlySealsPerSecond + 1/FlushInterval a second.
	// Default 8 (flag --max-early-seals-per-second); negative turns such
	// seals off.
	EarlySealsPerSecond float64
	// AgentID names this agent in commits.
	AgentID string
	Logger  *slog.Logger
	// OnUploaded, if set, receives each uploaded object (ownership passes
	// to it) so a read cache can serve tail reads without a GET.
	OnUploaded func(key string, object []byte)
}

func (c *Config) setDefaults() {
	if c.FlushInterval <= 0 {
		c.FlushInterval = 250 * time.Millisecond
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = 8 << 20
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = 256 << 20
	}
	if c.MaxConcurrentUploads <= 0 {
		c.MaxConcurrentUploads = 4
	}
	if c.UploadTimeout <= 0 {
		c.UploadTimeout = 30 * time.Second
	}
	if c.CommitTimeout <= 0 {
		c.CommitTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.EarlySealsPerSecond == 0 {
		c.EarlySealsPerSecond = 8
	}
}

// Batch is one validated record batch for one partition.
type Batch struct {
	TopicID   meta.TopicID
	Partition int32
	// Data must stay valid and unmodified until the pipeline lets go of
	// it, which may be after done: a request answered at its deadline
	// leaves its bytes in a segment still waiting to be laid out. With
	// AppendRelease the pipeline says when (release); with Append the
	// caller must never reuse Data.
	Data   []byte
	Header codec.BatchHeader
}

// Result answers one Batch.
type Result struct {
	Err            error // nil when the batch was committed (or was a duplicate)
	Status         meta.ChunkStatus
	BaseOffset     int64
	LogStartOffset int64
}

var (
	mSealed        = metrics.NewCounter(`sluice_segments_sealed_total`)
	mSealInterval  = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="interval"}`)
	mSealSize      = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="size"}`)
	mSealClose     = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="shutdown"}`)
	mSegmentBytes  = metrics.NewHistogram(`sluice_segment_bytes`)
	mSegmentChunks = metrics.NewHistogram(`sluice_segment_chunks`)
	mUploadDur     = metrics.NewHistogram(`sluice_segment_upload_duration_seconds`)
	mCommitDur     = metrics.NewHistogram(`sluice_segment_commit_duration_seconds`)
	mUploadErrors  = metrics.NewCounter(`sluice_segment_upload_errors_total`)
	mCommitErrors  = metrics.NewCounter(`sluice_segment_commit_errors_total`)
	mInFlightBytes = metrics.NewGauge(`sluice_produce_inflight_bytes`, nil)
	mBackpressure  = metrics.NewFloatCounter(`sluice_produce_backpressure_wait_seconds_total`)
	mTimedOut      = metrics.NewCounter(`sluice_produce_timed_out_total`)
	mFailedUntried = metrics.NewCounter(`sluice_segments_failed_untried_total`)
	mExpired       = metrics.NewCounter(`sluice_segments_expired_total`)
)

// request is one Append waiting for its segment.
type request struct {
	chunks   []int // chunk arrival indices in the segment builder, per batch
	bytes    int64
	deadline time.Time   // from Append's ctx; zero: none
	timer    *time.Timer // answers at deadline; nil without one
	answered atomic.Bool // done has been called (by the segment or the timer)
	done     func([]Result)
	// release, if set, is called once the segment no longer refers to
	// the request's batch bytes (upload, after Finish); exactly once.
	release func()
}

// answer calls done once; later calls (the timer racing the segment's
// completion) do nothing. It does not touch timer: the timer's own
// goroutine may call it before Append has stored the timer.
func (r *request) answer(out []Result) {
	if !r.answered.CompareAndSwap(false, true) {
		return
	}
	r.done(out)
}

// stopTimer frees the deadline timer of a request its segment is about to
// answer. Only the commit loop calls it, which sees timer through mu.
func (r *request) stopTimer() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// fail answers every batch of r with err.
func (r *request) fail(err error) {
	out := make([]Result, len(r.chunks))
	for i := range out {
		out[i] = Result{Err: err}
	}
	r.answer(out)
}

// segment is the open or a sealed segment.
type segment struct {
	builder *codec.SegmentBuilder
	reqs    []*request
	bytes   int64 // record bytes held (for in-flight accounting)
	timer   *time.Timer

	// set at seal, under Pipeline.mu
	id       meta.SegmentID // see sealLocked
	seq      uint64         // seal order, from 1
	deadline time.Time      // the commit gives up here: see commitDeadline
	capped   bool           // deadline is its requests' own, before CommitTimeout

	// set under Pipeline.mu while open, for early seals (early.go)
	lastAppend time.Time   // when the newest request joined
	stallSince time.Time   // when a client first stalled on it; zero if none has
	stallMin   int         // the size from which that client's stall seals at once
	stallPaced bool        // that stall's seal waited for the budget
	early      *time.Timer // the next look at that stall

	// set by the uploader
	uploaded chan struct{}
	key      string
	size     int64
	metas    []codec.ChunkMeta
	err      error
}

// Pipeline is the produce path of one agent.
type Pipeline struct {
	cfg   Config
	store objstore.Store
	meta  meta.Client
	log   *slog.Logger
	// lastExpiredLog limits ErrSegmentExpired's error-level line: a clock
	// behind meta's refuses every segment, four a second, and one line
	// per expiredLogEvery says it.
	lastExpiredLog lograte.Limiter

	uploadSlots chan struct{}
	commitWake  chan struct{} // capacity 1: tells commitLoop to look at sealed
	commitDone  chan struct{}

	mu       sync.Mutex
	open     *segment        // guarded by mu: the segment Append adds to; nil when empty
	sealed   []*segment      // guarded by mu: sealed, not yet taken by commitLoop, in seal order
	inFlight int64           // guarded by mu: admitted, not yet completed bytes
	waiters  []chan struct{} // guarded by mu: Appends waiting for in-flight room
	closed   bool            // guarded by mu
	sealSeq  uint64          // guarded by mu: seq of the last sealed segment
	early    tokenBucket     // guarded by mu: budget of small early seals (early.go)
}

// New starts a pipeline.
func New(cfg Config, store objstore.Store, mc meta.Client) *Pipeline {
	cfg.setDefaults()
	p := &Pipeline{
		cfg:         cfg,
		store:       store,
		meta:        mc,
		log:         cfg.Logger.With("component", "pipeline"),
		uploadSlots: make(chan struct{}, cfg.MaxConcurrentUploads),
		commitWake:  make(chan struct{}, 1),
		commitDone:  make(chan struct{}),
	}
	go p.commitLoop()
	return p
}

// Config returns the effective configuration.
func (p *Pipeline) Config() Config { return p.cfg }

// Append admits batches into the open segment and calls done with one
// Result per batch, in order, once their segment has committed or failed.
// All batches of one Append land in the same segment. Append blocks while
// the in-flight bound is reached (never on the event loop: callers are
// connection workers) and returns an error without calling done when ctx
// ends first or the pipeline is closed.
func (p *Pipeline) Append(ctx context.Context, batches []Batch, done func([]Result)) error {
	return p.AppendRelease(ctx, batches, done, nil)
}

// AppendRelease is Append for callers that reuse the batches' memory
// (pooled request frames): when it returns nil, release is called exactly
// once, from the segment's upload goroutine, as soon as the pipeline
// holds no reference to any batch's Data, which is once the segment has
// been laid out into its object (codec.SegmentBuilder.Finish copies the
// bytes). That can be before or after done. When it returns an error the
// pipeline kept nothing and release is not called.
//
// Why not at done: a request answered at its own deadline (its timer)
// leaves its batches in a segment that is still waiting to be laid out.
func (p *Pipeline) AppendRelease(ctx context.Context, batches []Batch, done func([]Result), release func()) error {
	var n int64
	for i := range batches {
		n += int64(len(batches[i].Data))
	}
	if err := p.admit(ctx, n); err != nil {
		return err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.release(n)
		return ErrClosed
	}
	// Keep a segment near its size limit: seal what is open if this
	// request would push it past, unless the segment is empty (a request
	// larger than the limit gets a segment of its own).
	if p.open != nil && p.open.builder.Len() > 0 &&
		p.open.builder.Size()+int(n)+len(batches)*codec.SegmentIndexEntrySize > p.cfg.MaxSegmentBytes {
		p.sealLocked(mSealSize)
	}
	if p.open == nil {
		p.open = p.newSegment()
		seg := p.open
		seg.timer = time.AfterFunc(p.cfg.FlushInterval, func() { p.sealIfOpen(seg) })
	}
	seg := p.open
	r := &request{chunks: make([]int, len(batches)), bytes: n, done: done, release: release}
	for i := range batches {
		b := &batches[i]
		r.chunks[i] = seg.builder.Add(b.TopicID, b.Partition, b.Data, b.Header)
	}
	if dl, ok := ctx.Deadline(); ok {
		// The client stops waiting at its timeout; answering it later
		// is pointless and, during a meta outage, is what made requests
		// wait out one commit deadline per segment queued ahead of them.
		r.deadline = dl
		r.timer = time.AfterFunc(time.Until(dl), func() {
			if !r.answered.Load() {
				mTimedOut.Inc()
			}
			r.fail(ErrTimedOut)
		})
	}
	seg.reqs = append(seg.reqs, r)
	seg.bytes += n
	seg.lastAppend = time.Now()
	if seg.builder.Size() >= p.cfg.MaxSegmentBytes {
		p.sealLocked(mSealSize)
	}
	p.mu.Unlock()
	return nil
}

func (p *Pipeline) newSegment() *segment {
	return &segment{builder: codec.NewSegmentBuilder(meta.SegmentID{}), uploaded: make(chan struct{})}
}

// newSegmentID names a segment by the time now (and 8 random bytes), so
// that ids sort by creation time.
func newSegmentID() meta.SegmentID {
	var id meta.SegmentID
	binary.BigEndian.PutUint64(id[:8], uint64(time.Now().UnixNano()))
	_, _ = rand.Read(id[8:])
	return id
}

// ObjectKey is where a segment lives in the bucket (meta.ObjectKey).
func ObjectKey(id meta.SegmentID) string { return meta.ObjectKey(id) }

func (p *Pipeline) sealIfOpen(seg *segment) {
	p.mu.Lock()
	if p.open == seg {
		p.spendSealBudgetLocked() // early.go
		p.sealLocked(mSealInterval)
	}
	p.mu.Unlock()
}

// sealLocked closes the open segment to new batches and sends it to upload
// and commit. The commit queue receives it here, under mu, so seal order is
// commit order. The queue is a slice, not a bounded channel: a send that
// blocked here would hold mu, which commitLoop needs to complete segments,
// and how many segments are sealed is bounded only by in-flight bytes,
// not by a count.
func (p *Pipeline) sealLocked(reason *metrics.Counter) {
	seg := p.open
	p.open = nil
	if seg.timer != nil {
		seg.timer.Stop()
	}
	if seg.early != nil {
		seg.early.Stop()
	}
	mSealed.Inc()
	reason.Inc()
	p.sealSeq++
	seg.seq = p.sealSeq
	// The id is taken at the seal, not when the segment opened: meta
	// refuses a commit whose id is older than half its --gc-grace
	// (ErrSegmentExpired), and a segment may stay open for a whole
	// --flush-interval, which nothing bounds by the grace. From the seal,
	// the commit deadline (CommitTimeout) bounds the id's age at commit.
	// Taken under mu, ids still sort in seal order.
	seg.id = newSegmentID()
	seg.builder.SetID(seg.id)
	seg.deadline, seg.capped = commitDeadline(time.Now(), p.cfg.CommitTimeout, seg.reqs)
	p.sealed = append(p.sealed, seg)
	p.wakeCommitLoop()
	go p.upload(seg)
}

// commitDeadline is when a segment sealed at sealedAt stops trying to
// commit: CommitTimeout after the seal, and never after the last of its
// requests' own deadlines (nobody would hear the answer; holding on would
// only delay the segments behind it). Requests without a deadline leave
// the bound at CommitTimeout. capped says the requests' deadline won.
func commitDeadline(sealedAt time.Time, timeout time.Duration, reqs []*request) (dl time.Time, capped bool) {
	dl = sealedAt.Add(timeout)
	var last time.Time
	for _, r := range reqs {
		if r.deadline.IsZero() {
			return dl, false
		}
		if r.deadline.After(last) {
			last = r.deadline
		}
	}
	if !last.IsZero() && last.Before(dl) {
		return last, true
	}
	return dl, false
}

func (p *Pipeline) wakeCommitLoop() {
	select {
	case p.commitWake <- struct{}{}:
	default:
	}
}

// upload builds the object and stores it, bounded by uploadSlots, retrying
// transient failures within UploadTimeout per attempt.
func (p *Pipeline) upload(seg *segment) {
	p.uploadSlots <- struct{}{}
	defer func() { <-p.uploadSlots }()
	defer close(seg.uploaded)

	obj, metas := seg.builder.Finish()
	seg.builder = nil
	// The object holds copies of every batch: the requests' own memory
	// may go back to its owners now, before the PUT, so that a pooled
	// frame is reused while still warm. Nothing below reads it (a retry
	// puts obj again).
	for _, r := range seg.reqs {
		if r.release != nil {
			r.release()
		}
	}
	seg.key = ObjectKey(seg.id)
	seg.size = int64(len(obj))
	seg.metas = metas
	mSegmentBytes.Update(float64(len(obj)))
	mSegmentChunks.Update(float64(len(metas)))

	start := time.Now()
	backoff := 50 * time.Millisecond
	// The upload shares the segment's deadline (from its seal): an
	// object stored after it could not be committed anyway, and a slot
	// held by such an upload is one the segments behind it wait for.
	deadline := start.Add(p.cfg.UploadTimeout)
	if seg.deadline.Before(deadline) {
		deadline = seg.deadline
	}
	if !start.Before(deadline) {
		seg.err = fmt.Errorf("%w: %s: %w", ErrUpload, seg.key, errQueuedTooLong)
		p.log.Error("segment not uploaded: its deadline passed while it waited for an upload slot; its produce requests fail with a retriable error",
			"key", seg.key)
		return
	}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := p.store.Put(ctx, seg.key, obj)
		cancel()
		if err == nil {
			break
		}
		mUploadErrors.Inc()
		if time.Now().Add(backoff).After(deadline) {
			seg.err = fmt.Errorf("%w: %s after %d attempts: %v", ErrUpload, seg.key, attempt, err)
			p.log.Error("segment upload failed; its produce requests fail with a retriable error",
				"key", seg.key, "attempts", attempt, "err", err)
			return
		}
		p.log.Warn("segment upload failed, retrying", "key", seg.key, "attempt", attempt, "err", err)
		time.Sleep(backoff)
		backoff = min(backoff*2, 2*time.Second)
	}
	mUploadDur.UpdateDuration(start)
	if p.cfg.OnUploaded != nil {
		p.cfg.OnUploaded(seg.key, obj)
	}
}

// commitLoop commits sealed segments strictly in seal order. It returns
// once Close has begun and every segment sealed before it is completed.
//
// When a commit fails because meta is unreachable (or refuses this agent),
// every segment sealed up to that moment fails at once without being sent:
// each would meet the same meta and, tried one after the other, each would
// wait out its own deadline (five queued segments were answered 9.6 s
// apart). An untried segment's outcome is known (not committed), so
// failing it cannot lose an acknowledged record; segments sealed after the
// failure try meta again, which is how produce resumes when meta returns.
func (p *Pipeline) commitLoop() {
	defer close(p.commitDone)
	var downThrough uint64 // segments with seq <= this fail untried
	var downErr error
	for {
		p.mu.Lock()
		segs := p.sealed
		p.sealed = nil
		closed := p.closed
		p.mu.Unlock()
		if len(segs) == 0 {
			if closed {
				return // nothing is sealed after closed is set
			}
			<-p.commitWake
			continue
		}
		for i, seg := range segs {
			segs[i] = nil // its requests' memory goes with its bytes' release
			if seg.seq <= downThrough {
				p.failUntried(seg, downErr)
				continue
			}
			<-seg.uploaded
			var res meta.CommitResult
			err := seg.err
			if err == nil {
				res, err = p.commit(seg)
				if err != nil && metaDown(seg, err) {
					p.mu.Lock()
					downThrough = p.sealSeq
					p.mu.Unlock()
					downErr = err
				}
			}
			p.complete(seg, res, err)
		}
	}
}

// metaDown reports whether seg's commit failed for a reason every segment
// behind it would meet too: meta unreachable, or not answering within the
// full CommitTimeout, the client closed, or this agent's key refused. An
// upload failure or a malformed answer is the segment's own, and so is
// running out of a deadline its requests cut short: otherwise one client
// asking for a tiny timeout could fail every other client's produces.
func metaDown(seg *segment, err error) bool {
	if errors.Is(err, meta.ErrUnavailable) || errors.Is(err, meta.ErrClosed) || errors.Is(err, meta.ErrUnauthenticated) {
		return true
	}
	return !seg.capped && errors.Is(err, context.DeadlineExceeded)
}

// failUntried answers a segment's requests with a retriable error without
// sending it to meta, and releases its bytes once its upload has let go of
// them (the in-flight bound counts memory, which the upload still holds).
func (p *Pipeline) failUntried(seg *segment, cause error) {
	mFailedUntried.Inc()
	err := fmt.Errorf("%w: not sent, meta failed the segment before it: %w", ErrCommit, cause)
	for _, r := range seg.reqs {
		r.stopTimer()
		r.fail(err)
	}
	go func() {
		<-seg.uploaded
		p.release(seg.bytes)
	}()
}

func (p *Pipeline) commit(seg *segment) (meta.CommitResult, error) {
	c := meta.SegmentCommit{
		SegmentID: seg.id,
		ObjectKey: seg.key,
		Size:      seg.size,
		AgentID:   p.cfg.AgentID,
		Chunks:    make([]meta.Chunk, len(seg.metas)),
	}
	for i, m := range seg.metas {
		c.Chunks[i] = meta.Chunk{
			TopicID:        m.TopicID,
			Partition:      m.Partition,
			Start:          m.Start,
			Length:         m.Length,
			RecordCount:    m.RecordCount,
			FirstTimestamp: m.FirstTimestamp,
			MaxTimestamp:   m.MaxTimestamp,
			ProducerID:     m.ProducerID,
			ProducerEpoch:  m.ProducerEpoch,
			BaseSequence:   m.BaseSequence,
			Transactional:  m.Transactional,
		}
	}
	start := time.Now()
	deadline := seg.deadline
	if !start.Before(deadline) {
		// It spent its time queued (behind a slow upload or commit):
		// not sent, so known not committed.
		mCommitErrors.Inc()
		return meta.CommitResult{}, fmt.Errorf("%w: %w", ErrCommit, errQueuedTooLong)
	}
	backoff := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		res, err := p.meta.CommitSegment(ctx, c)
		cancel()
		if err == nil {
			if len(res.Chunks) != len(c.Chunks) {
				return res, fmt.Errorf("%w: meta answered %d chunks for %d", ErrCommit, len(res.Chunks), len(c.Chunks))
			}
			mCommitDur.UpdateDuration(start)
			return res, nil
		}
		mCommitErrors.Inc()
		if errors.Is(err, meta.ErrSegmentExpired) {
			// Never retried: the id only gets older. Meta keeps a
			// committed segment's answer for longer than it accepts
			// its id (meta's SegmentResultTTL >= half of --gc-grace),
			// so on a first attempt this means nothing was stored;
			// after an attempt whose outcome was unknown it may have
			// been, and the client hears the usual "outcome unknown".
			p.logExpired(seg, attempt, err)
			if attempt == 1 {
				return res, fmt.Errorf("%w: segment %s: %w", ErrSegmentRefused, seg.id, err)
			}
			return res, fmt.Errorf("%w: %w", ErrCommit, err)
		}
		// Commits are idempotent on the segment id, so retrying after an
		// unknown outcome is safe.
		if errors.Is(err, meta.ErrClosed) || errors.Is(err, meta.ErrUnauthenticated) || time.Now().Add(backoff).After(deadline) {
			p.log.Error("segment commit failed; its produce requests fail with a retriable error",
				"segment", seg.id.String(), "attempts", attempt, "err", err)
			return res, fmt.Errorf("%w: %w", ErrCommit, err)
		}
		time.Sleep(backoff)
		backoff = min(backoff*2, time.Second)
	}
}

// expiredLogEvery rate-limits the error line for refused segments.
const expiredLogEvery = 10 * time.Second

// logExpired says why meta refused a segment as too old, at error level
// at most once per expiredLogEvery (the rest at debug).
func (p *Pipeline) logExpired(seg *segment, attempt int, err error) {
	mExpired.Inc()
	age := time.Since(seg.id.Time()).Round(time.Millisecond)
	if p.lastExpiredLog.Allow(time.Now(), expiredLogEvery) {
		p.log.Error("meta refused a segment as too old to commit; its produce requests fail with a retriable error and clients send them again. "+
			"Likely cause: meta was unreachable for longer than half of its --gc-grace, or this agent's clock is behind meta's (check NTP)",
			"segment", seg.id.String(), "age_by_agent_clock", age, "attempts", attempt, "err", err)
		return
	}
	p.log.Debug("meta refused a segment as too old to commit", "segment", seg.id.String(), "age_by_agent_clock", age, "err", err)
}

// complete answers every request of a segment (those still waiting: a
// request past its deadline was answered by its timer) and releases its
// bytes.
func (p *Pipeline) complete(seg *segment, res meta.CommitResult, err error) {
	for _, r := range seg.reqs {
		r.stopTimer()
		if r.answered.Load() {
			continue
		}
		out := make([]Result, len(r.chunks))
		for i, ci := range r.chunks {
			if err != nil {
				out[i] = Result{Err: err}
				continue
			}
			cr := res.Chunks[ci]
			out[i] = Result{Status: cr.Status, BaseOffset: cr.BaseOffset, LogStartOffset: cr.LogStartOffset}
		}
		r.answer(out)
	}
	p.release(seg.bytes)
}

// admit waits until n bytes fit under MaxInFlightBytes.
func (p *Pipeline) admit(ctx context.Context, n int64) error {
	var waitStart time.Time
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.inFlight == 0 || p.inFlight+n <= p.cfg.MaxInFlightBytes {
			p.inFlight += n
			mInFlightBytes.Set(float64(p.inFlight))
			p.mu.Unlock()
			if !waitStart.IsZero() {
				mBackpressure.Add(time.Since(waitStart).Seconds())
			}
			return nil
		}
		ch := make(chan struct{})
		p.waiters = append(p.waiters, ch)
		p.mu.Unlock()
		if waitStart.IsZero() {
			waitStart = time.Now()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Pipeline) release(n int64) {
	p.mu.Lock()
	p.inFlight -= n
	mInFlightBytes.Set(float64(p.inFlight))
	ws := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}

// InFlightBytes reports admitted but not yet completed bytes.
func (p *Pipeline) InFlightBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight
}

// Close stops admitting, seals the open segment and waits until every
// sealed segment has committed or failed, or ctx ends. Every request
// admitted before Close gets its done call: nothing half-written is
// acknowledged. A later call waits the same way (with its own ctx).
func (p *Pipeline) Close(ctx context.Context) error {
	p.mu.Lock()
	var ws []chan struct{}
	if !p.closed {
		p.closed = true
		if p.open != nil {
			p.sealLocked(mSealClose)
		}
		ws = p.waiters
		p.waiters = nil
		p.wakeCommitLoop()
	}
	p.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
	select {
	case <-p.commitDone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pipeline: close: %w", ctx.Err())
	}
}

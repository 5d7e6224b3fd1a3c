package pipeline

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var (
	mSealBlocked       = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked"}`)
	mSealBlockedBudget = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked_budget"}`)
	mEarlySealPaced    = metrics.NewCounter(`sluice_early_seals_paced_total`)
)

// SealIfAtLeast seals the open segment now if it holds at least minBytes;
// smaller, it seals it early within the seal budget (Config.EarlySealsPerSecond).
//
// The server calls it when a client can send nothing more until we answer
// (its pipeline of produce requests is full: idempotent Kafka producers
// keep at most five in flight per broker, and librdkafka's carry one
// partition each). Waiting out the flush interval then adds latency and
// no bytes from that client: with 16 partitions and five requests in
// flight librdkafka needed four intervals per round, a p99 of 2-3 s at
// 5,000 records a second. The only reason to wait is the object count:
// a segment of minBytes is large enough that its PUT costs little, and
// smaller ones are sealed within a budget of PUTs a second, so that the
// object cost of a quiet cluster stays bounded.
//
// Budget. Early seals under minBytes and the interval's seals together
// are at most EarlySealsPerSecond + 1/FlushInterval a second (12 at the
// defaults, 31 M PUTs a month per agent, about $156 at S3's list price of
// $0.005 per 1,000): the interval's own seals spend from the same budget,
// so early seals take the interval's share when they make it idle, and
// the ceiling is what the interval and the early seals allowed before
// they shared it.
//
// Two things make each of those PUTs answer as many clients as it can:
//   - Gathering: the seal waits until no request has joined the segment
//     for earlyGatherQuiet (at most earlyGatherMax). A stall is seen on
//     one connection; the same client's other connections (one per broker
//     identity) and other clients answered by the last seal send their
//     next requests within a few milliseconds of each other, and a seal
//     in the middle of them split them into cohorts that each waited a
//     round for the other.
//   - Pacing: with the budget spent, the seal is made when it refills,
//     not at the flush interval. Spending the budget at once and then
//     waiting out the interval made rounds of a few milliseconds and
//     rounds of 250 ms; even rounds at the budget's rate have a far lower
//     p99 for the same number of PUTs (BENCHMARKS.md, "Early seals
//     gathered and paced").
func (p *Pipeline) SealIfAtLeast(minBytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seg := p.open
	if seg == nil || p.closed {
		return
	}
	if seg.builder.Size() >= minBytes {
		p.sealLocked(mSealBlocked)
		return
	}
	if p.cfg.EarlySealsPerSecond <= 0 || !seg.stallSince.IsZero() {
		return // small early seals are off, or this one is under way
	}
	now := time.Now()
	seg.stallSince, seg.stallMin = now, minBytes
	p.earlySealLocked(seg, now)
}

// earlyGatherQuiet and earlyGatherMax bound how long a small early seal
// waits for requests still arriving (see SealIfAtLeast).
var (
	earlyGatherQuiet = 2 * time.Millisecond
	earlyGatherMax   = 10 * time.Millisecond
)

// earlySealLocked seals seg, on which a client stalled, if it has
// gathered what was arriving and the budget allows, or looks again when
// one of them may have changed.
func (p *Pipeline) earlySealLocked(seg *segment, now time.Time) {
	if seg.builder.Size() >= seg.stallMin {
		p.sealLocked(mSealBlocked)
		return
	}
	var wait time.Duration
	rate := p.sealRate()
	quiet, waited := now.Sub(seg.lastAppend), now.Sub(seg.stallSince)
	if quiet < earlyGatherQuiet && waited < earlyGatherMax {
		wait = min(earlyGatherQuiet-quiet, earlyGatherMax-waited) // still arriving
	} else if wait = p.early.wait(now, rate); wait > 0 {
		seg.stallPaced = true // the budget is spent: wait for its next token
	} else {
		p.early.take(now, rate)
		if seg.stallPaced {
			mEarlySealPaced.Inc()
		}
		p.sealLocked(mSealBlockedBudget)
		return
	}
	// The interval's timer still runs: if it comes first, the segment is
	// sealed then, and this timer is stopped with it.
	seg.early = time.AfterFunc(wait, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.open == seg && !p.closed {
			p.earlySealLocked(seg, time.Now())
		}
	})
}

// sealRate is how many small segments a second the budget allows: the
// early seals' own and the flush interval's (see SealIfAtLeast).
func (p *Pipeline) sealRate() float64 {
	return p.cfg.EarlySealsPerSecond + float64(time.Second)/float64(p.cfg.FlushInterval)
}

// spendSealBudgetLocked charges an interval seal to the budget, which may
// go into debt: the early seals after it wait until it is repaid.
func (p *Pipeline) spendSealBudgetLocked() {
	if p.cfg.EarlySealsPerSecond > 0 {
		p.early.spend(time.Now(), p.sealRate())
	}
}

// tokenBucket allows rate events a second, in bursts of at most one
// second's worth (and at least one). The zero value is full.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) refill(now time.Time, rate float64) {
	switch {
	case b.last.IsZero():
		b.tokens, b.last = max(rate, 1), now
	case now.After(b.last):
		b.tokens, b.last = min(max(rate, 1), b.tokens+now.Sub(b.last).Seconds()*rate), now
	}
}

func (b *tokenBucket) take(now time.Time, rate float64) bool {
	if rate <= 0 {
		return false
	}
	b.refill(now, rate)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// spend takes a token whether or not there is one.
func (b *tokenBucket) spend(now time.Time, rate float64) {
	if rate > 0 {
		b.refill(now, rate)
		b.tokens--
	}
}

// wait is how long from now until take would succeed: 0 if it would now.
// It is never 0 when take would fail (a wait rounded down to nothing
// would have its caller look again at once, and again).
func (b *tokenBucket) wait(now time.Time, rate float64) time.Duration {
	if rate <= 0 {
		return time.Duration(1<<63 - 1)
	}
	b.refill(now, rate)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1-b.tokens)/rate*float64(time.Second)) + time.Microsecond
}

package pipeline

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var (
	mSealBlocked       = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked"}`)
	mSealBlockedBudget = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked_budget"}`)
	// Early seals asked for a segment already sealed: nothing to do.
	mSealEarlyStale = metrics.NewCounter(`sluice_segments_early_seal_stale_total`)
	// Early seals put off while another small early seal was in flight.
	mSealEarlyDeferred = metrics.NewCounter(`sluice_segments_early_seal_deferred_total`)
	// Early seals scheduled for the budget's next token.
	mSealEarlyPaced = metrics.NewCounter(`sluice_segments_early_seal_paced_total`)
)

// SealIfAtLeast seals the open segment now if it holds at least minBytes,
// or, smaller, if the early-seal budget (Config.EarlySealsPerSecond) has
// room.
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
// object cost of a quiet cluster stays bounded (at 8 a second, at most
// 8 × 2.6 M ≈ 21 M extra PUTs a month per agent, about $105 at S3's list
// price of $0.005 per 1,000; the flush interval alone is 4 a second).
func (p *Pipeline) SealIfAtLeast(minBytes int) {
	p.mu.Lock()
	p.sealEarlyLocked(minBytes, StallFull)
	p.mu.Unlock()
}

// SealEarly is SealIfAtLeast for the segment with sequence number seq (from
// AppendReleaseSeq): if that segment is sealed already, the client waits
// on its upload and commit, not on the open segment, and sealing the open
// one would spend the budget on a PUT that answers nobody sooner. It
// reports whether it sealed.
func (p *Pipeline) SealEarly(seq uint64, minBytes int, why Stall) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil || p.sealSeq+1 != seq {
		mSealEarlyStale.Inc()
		return false
	}
	return p.sealEarlyLocked(minBytes, why)
}

// Stall says why a client is stalled on the open segment.
type Stall int

const (
	// StallFull: the client has as many requests in flight as it allows
	// itself; nothing more will come from it until we answer.
	StallFull Stall = iota
	// StallQuiet: the client has requests parked and has sent nothing
	// for a while; it may still send more when others are answered.
	StallQuiet
)

func (p *Pipeline) sealEarlyLocked(minBytes int, why Stall) bool {
	if p.open == nil || p.closed {
		return false
	}
	if p.open.builder.Size() >= minBytes {
		p.sealLocked(mSealBlocked)
		return true
	}
	if p.earlySeq != 0 && why == StallQuiet {
		// One small early seal at a time. Clients stalled on us wait in
		// cohorts: those answered by the segment in flight send their
		// next requests as soon as it completes. Sealing now would give
		// this cohort a PUT of its own and keep the two apart for good
		// (each early seal then answered about half of librdkafka's
		// partitions); waiting for the completion joins them, so that
		// one PUT answers every stalled client, at a cost of at most one
		// upload and commit of latency once. A full client
		// (StallFull) has no more to send with the next cohort, so
		// its seal is not put off.
		p.earlyWanted = true
		p.earlyMin = minBytes
		mSealEarlyDeferred.Inc()
		return false
	}
	now := time.Now()
	if wait := p.early.wait(now, p.cfg.EarlySealsPerSecond); wait != 0 {
		if wait > 0 {
			p.sealAtTokenLocked(wait, minBytes, why)
		}
		return false
	}
	p.early.take(now, p.cfg.EarlySealsPerSecond)
	p.sealLocked(mSealBlockedBudget)
	p.earlySeq = p.sealSeq
	return true
}

// sealAtTokenLocked seals the open segment early once the budget has a
// token again, wait from now. A client stalled on an empty budget used to
// wait out the flush interval (250 ms), and at an even load one stalled
// cohort after another met an empty budget: the seals came in bursts and
// the tail waited for the interval. Sealing at the next token spaces the
// early seals evenly at the budget's rate instead, and each one takes
// every request that stalled meanwhile.
func (p *Pipeline) sealAtTokenLocked(wait time.Duration, minBytes int, why Stall) {
	seq := p.sealSeq + 1 // the open segment's
	if p.earlyTimerSeq == seq {
		return // its seal is scheduled already
	}
	p.earlyTimerSeq = seq
	mSealEarlyPaced.Inc()
	time.AfterFunc(wait, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.open != nil && p.sealSeq+1 == seq {
			p.sealEarlyLocked(minBytes, why)
		}
	})
}

// earlyDone notes that seg completed; if it was the early seal in flight
// and another was put off meanwhile, that one is made Config.EarlySealRejoin
// later: the clients seg answered have sent their next requests by then, so
// theirs are in it too.
func (p *Pipeline) earlyDone(seg *segment) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seg.seq != p.earlySeq {
		return
	}
	p.earlySeq = 0
	if !p.earlyWanted {
		return
	}
	p.earlyWanted = false
	minBytes := p.earlyMin
	time.AfterFunc(p.cfg.EarlySealRejoin, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.earlySeq != 0 {
			// A stalled client of the joined cohort sealed already;
			// it will ask again if it needs to.
			return
		}
		p.sealEarlyLocked(minBytes, StallQuiet)
	})
}

// tokenBucket allows rate events a second, in bursts of at most one
// second's worth (and at least one). The zero value is full.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// wait returns how long until take would succeed: 0 if it would now, -1 if
// never (a rate of 0).
func (b *tokenBucket) wait(now time.Time, rate float64) time.Duration {
	if rate <= 0 {
		return -1
	}
	tokens := max(rate, 1)
	if !b.last.IsZero() {
		tokens = min(tokens, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1-tokens)/rate*float64(time.Second)) + time.Millisecond
}

func (b *tokenBucket) take(now time.Time, rate float64) bool {
	if rate <= 0 {
		return false
	}
	burst := max(rate, 1)
	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

package pipeline

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

var (
	mSealBlocked       = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked"}`)
	mSealBlockedBudget = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked_budget"}`)
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
	if p.open != nil && !p.closed {
		switch {
		case p.open.builder.Size() >= minBytes:
			p.sealLocked(mSealBlocked)
		case p.early.take(time.Now(), p.cfg.EarlySealsPerSecond):
			p.sealLocked(mSealBlockedBudget)
		}
	}
	p.mu.Unlock()
}

// tokenBucket allows rate events a second, in bursts of at most one
// second's worth (and at least one). The zero value is full.
type tokenBucket struct {
	tokens float64
	last   time.Time
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

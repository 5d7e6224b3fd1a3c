package pipeline

import "github.com/VictoriaMetrics/metrics"

var mSealBlocked = metrics.NewCounter(`sluice_segments_sealed_by_total{reason="client_blocked"}`)

// SealIfAtLeast seals the open segment now if it holds at least minBytes.
//
// The server calls it when a client can send nothing more until we answer
// (its pipeline of produce requests is full: idempotent Kafka producers
// keep at most five in flight per broker). Waiting out the flush interval
// then adds latency and no bytes from that client, so the only reason to
// wait is the object count: minBytes keeps segments large enough that PUT
// costs stay small, which is why a light producer still waits for the
// interval.
func (p *Pipeline) SealIfAtLeast(minBytes int) {
	p.mu.Lock()
	if p.open != nil && !p.closed && p.open.builder.Size() >= minBytes {
		p.sealLocked(mSealBlocked)
	}
	p.mu.Unlock()
}

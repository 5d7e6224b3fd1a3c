package controller

import (
	"context"
	"time"

	"sluice.dev/meta/kv"
)

// Producer id expiry (issue 11: the control plane cannot be grown
// without bound by clients). Every InitProducerID hands out an id whose
// epoch, and whose sequence state on every partition it writes, meta
// keeps; a client that starts a producer per request would grow meta
// forever. Like Kafka's producer.id.expiration.ms (default one day), an
// id that has not been used (InitProducerID, or an appended batch) for
// Config.ProducerIDExpiration is forgotten with all its sequence state.
// A later batch from it is answered ChunkUnknownProducer
// (UNKNOWN_PRODUCER_ID), and clients then ask for a new id. Meta tells
// such an id from one it never handed out because ids are handed out in
// order: every id below nextPID was handed out.
//
// The last use is stored with the id's epoch, so expiry survives
// restarts. To keep appends from rewriting the record on every batch,
// it is only advanced when it moved by touchEvery (1/64 of the
// expiration): an id may expire that much early, never late.

const defaultProducerIDExpiration = 24 * time.Hour

// touchEvery is how far a producer id's stored last use may lag.
func touchEvery(exp time.Duration) int64 {
	return max(1, exp.Milliseconds()/64)
}

// touchPID notes that pid was used at the group's current time. Only ids
// meta handed out have a record to carry it: an id it never handed out
// has no epoch, and a record for it would be one Open refuses.
func (g *group) touchPID(pid int64) {
	if _, known := g.epoch(pid); !known {
		return
	}
	last, ok := g.pidUse[pid]
	if !ok {
		last = g.st.pidUse[pid]
	}
	if g.nowMs-last >= g.touchEvery {
		g.pidUse[pid] = g.nowMs
	}
}

// applyExpireProducers marks every producer id idle for exp as dead in
// the group. Ids used earlier in this group are not idle.
func applyExpireProducers(g *group, exp time.Duration) int {
	cutoff := g.nowMs - exp.Milliseconds()
	n := 0
	for pid, use := range g.st.pidUse {
		if use > cutoff || g.deadPIDs[pid] {
			continue
		}
		if _, used := g.pidUse[pid]; used {
			continue
		}
		if _, used := g.epochs[pid]; used {
			continue
		}
		if g.st.txnPID[pid] != nil {
			continue // a transactional id's producer: kept with its id (issue 15)
		}
		g.deadPIDs[pid] = true
		n++
	}
	return n
}

// writeExpired deletes the records of the group's dead producer ids: the
// id's epoch record and its sequence state on every partition.
func writeExpired(tx kv.KVTx, g *group) error {
	if len(g.deadPIDs) == 0 {
		return nil
	}
	var kbuf [28]byte
	for pid := range g.deadPIDs {
		if err := tx.Delete(bucketProducers, be.AppendUint64(kbuf[:0], uint64(pid))); err != nil {
			return err
		}
	}
	for k := range g.st.prodParts {
		if g.deadPIDs[k.pid] {
			if err := tx.Delete(bucketProducers, appendTPKey(be.AppendUint64(kbuf[:0], uint64(k.pid)), k.tp)); err != nil {
				return err
			}
		}
	}
	return nil
}

func mergeExpiredLocked(st *state, dead map[int64]bool) {
	if len(dead) == 0 {
		return
	}
	for pid := range dead {
		delete(st.epochs, pid)
		delete(st.pidUse, pid)
	}
	for k := range st.prodParts {
		if dead[k.pid] {
			delete(st.prodParts, k)
		}
	}
}

// ExpireProducers forgets the producer ids idle for longer than
// Config.ProducerIDExpiration and returns how many it forgot. The
// service runs it periodically (janitors.go); tests call it directly.
func (s *Service) ExpireProducers(ctx context.Context) (int, error) {
	o := &op{kind: opExpireProducers}
	if err := s.submit(ctx, o); err != nil {
		return 0, err
	}
	return o.count, nil
}

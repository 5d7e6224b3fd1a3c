package cache

// read_committed from the index cache (issues 15 and 13,
// docs/transactions.md "Fetch").
//
// A read_committed fetch needs, per partition, the last stable offset
// (LSO) and the aborted transactions that overlap what it returns. Asking
// meta (TxnPartition) on every fetch fill put meta on the hot path of
// every librdkafka consumer (read_committed is its default), even on
// topics that never saw a transaction. Instead meta sends the
// partition's transaction state (meta.StableState) with every Lookup
// answer and every commit event, and the abort marker's first offset
// with each abort marker's event; this file keeps it beside the entries.
//
// Why it is exact. The LSO never moves back, so a state learned at some
// past commit is a lower bound: a lagging agent serves less, never an
// open record. For the aborted list: a record below the LSO of a
// snapshot belongs to a transaction that had ended by then, so if it was
// aborted, its abort marker was placed by then too. The cache holds every
// aborted transaction whose marker is at or past abortedFrom (a snapshot
// told it that none exists past LastAbortOffset; the stream then brought
// each later one), so a fetch from at or past abortedFrom gets exactly
// the list meta would give (markers at or past from, first offsets below
// the LSO). A fetch from before abortedFrom (a catch-up read over old
// aborted ranges) asks meta, as before.
//
// The state is extended only by the watch stream that keeps it current.
// When the stream is lost the state freezes and is still served: it is
// the state at a past commit, exact by the argument above, so
// read_committed consumers go on reading up to that LSO while meta is
// unreachable, as read_uncommitted ones read the cached entries. When
// the stream is back, events may have been missed, so the state is
// forgotten (reconnected) and learnt again from the next event or from
// a Lookup answer obtained while the stream was live.

import (
	"context"
	"sort"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/meta"
)

// maxCachedAborted bounds the aborted transactions kept per partition:
// a consumer at the tail needs the last few; one further back asks meta.
const maxCachedAborted = 64

var (
	mStableHits   = metrics.NewCounter(`sluice_index_cache_read_committed_total{answer="cache"}`)
	mStableMisses = metrics.NewCounter(`sluice_index_cache_read_committed_total{answer="meta"}`)
)

// stableState is one partition's transaction state as read_committed
// needs it. Guarded by Index.mu with the partIndex holding it.
type stableState struct {
	known bool  // learnt; the live stream extends it, a lost one freezes it
	lso   int64 // the newest LSO learnt
	// aborted holds, in marker order, every aborted transaction of the
	// partition whose abort marker (LastOffset) is at or past
	// abortedFrom.
	aborted     []meta.AbortedTxn
	abortedFrom int64
	// lastAbort is the newest LastAbortOffset meta sent: a guard that
	// no abort marker's event was missed.
	lastAbort int64
}

// forget drops the state: events may have been missed.
func (s *stableState) forget() {
	clear(s.aborted)
	*s = stableState{aborted: s.aborted[:0]}
}

// learn starts the state from a snapshot taken while the stream was
// live: no aborted transaction past st.LastAbortOffset is known, and the
// stream brings every later one.
func (s *stableState) learn(st meta.StableState) {
	s.forget()
	s.known, s.lso, s.abortedFrom, s.lastAbort = true, st.LastStableOffset, st.LastAbortOffset+1, st.LastAbortOffset
}

// stableLookupLocked takes a Lookup answer's state, obtained while the
// stream was live. A partition already kept current by events ignores
// it: the answer may be newer than the events applied so far, and taking
// its LSO before the events of the aborts below it arrive could list
// too few aborted transactions.
func (p *partIndex) stableLookupLocked(st meta.StableState) {
	if st.Known && !p.stable.known {
		p.stable.learn(st)
	}
}

// stableEventLocked applies one commit event of the partition. Events
// arrive in commit order, each with the state after its commit.
func (p *partIndex) stableEventLocked(ev *meta.CommitEvent) {
	s := &p.stable
	if !ev.Stable.Known {
		s.forget() // a meta that does not send the state: ask it
		return
	}
	if !s.known {
		// This event's own marker, if any, is at or below
		// LastAbortOffset: before abortedFrom.
		s.learn(ev.Stable)
		return
	}
	s.lso = max(s.lso, ev.Stable.LastStableOffset)
	s.lastAbort = ev.Stable.LastAbortOffset
	e := &ev.Entry
	if e.Control != meta.ControlAbort || ev.Swap || ev.Trim || ev.AbortFirstOffset < 0 || e.BaseOffset < s.abortedFrom {
		return
	}
	if n := len(s.aborted); n > 0 && s.aborted[n-1].LastOffset >= e.BaseOffset {
		return // already known
	}
	if len(s.aborted) >= maxCachedAborted {
		// Keep the newer half; offsets before it ask meta.
		drop := len(s.aborted) - maxCachedAborted/2
		s.abortedFrom = s.aborted[drop-1].LastOffset + 1
		n := copy(s.aborted, s.aborted[drop:])
		clear(s.aborted[n:])
		s.aborted = s.aborted[:n]
	}
	s.aborted = append(s.aborted, meta.AbortedTxn{ProducerID: e.ProducerID, FirstOffset: ev.AbortFirstOffset, LastOffset: e.BaseOffset})
}

// ReadCommitted answers, from the cache when it can, what a
// read_committed fetch of tp from offset from needs: the last stable
// offset and the aborted transactions with a marker at or past from and
// a first offset below it (meta.Transactions.TxnPartition's answer),
// appended to aborted. ok is false when only meta can answer exactly;
// the caller asks TxnPartition then. A partition not yet known is
// looked up in meta once per watch stream, which learns its state.
func (x *Index) ReadCommitted(ctx context.Context, tp meta.TopicPartition, from int64, aborted []meta.AbortedTxn) (lso int64, out []meta.AbortedTxn, ok bool) {
	x.mu.Lock()
	lso, out, ok, known := x.readCommittedLocked(tp, from, aborted)
	live, gen := x.connected, x.gen
	ask := !ok && !known && live && x.partLocked(tp).stableAsked != gen+1
	x.mu.Unlock()
	if ask {
		// Learn the state once per stream: Lookup carries it (the
		// cache's own Lookup may answer a tail read without meta, so
		// ask meta directly). A meta that answers without it is not
		// asked again until the stream is lost.
		res, err := x.meta.Lookup(ctx, tp, from, 1)
		x.mu.Lock()
		p := x.partLocked(tp)
		if err == nil || res.Stable.Known {
			p.stableAsked = gen + 1 // answered; a failed call is retried
		}
		if (err == nil || res.Stable.Known) && x.connected && gen == x.gen {
			p.stableLookupLocked(res.Stable)
			lso, out, ok, _ = x.readCommittedLocked(tp, from, aborted)
		}
		x.mu.Unlock()
	}
	if ok {
		mStableHits.Inc()
	} else {
		mStableMisses.Inc()
	}
	return lso, out, ok
}

func (x *Index) readCommittedLocked(tp meta.TopicPartition, from int64, aborted []meta.AbortedTxn) (lso int64, out []meta.AbortedTxn, ok, known bool) {
	p := x.parts[tp]
	if p == nil || !p.stable.known {
		return 0, aborted, false, false
	}
	s := &p.stable
	n := len(s.aborted)
	if from < s.abortedFrom || (s.lastAbort >= s.abortedFrom && (n == 0 || s.aborted[n-1].LastOffset < s.lastAbort)) {
		// Before what the cache holds; or meta told of an abort whose
		// marker's event never came (cannot happen while the stream
		// is live and in order: a guard, not a path).
		return 0, aborted, false, true
	}
	i := sort.Search(n, func(k int) bool { return s.aborted[k].LastOffset >= from })
	for _, a := range s.aborted[i:] {
		if a.FirstOffset < s.lso {
			aborted = append(aborted, a)
		}
	}
	return s.lso, aborted, true, true
}

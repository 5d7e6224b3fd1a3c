package controller

import (
	"math"

	"sluice.dev/meta"
)

// Idempotent producers, as Kafka does them (ProducerStateManager and
// ProducerAppendInfo in Kafka's storage module):
//
// State is kept per (producer id, partition): the epoch of the latest
// batch and the latest producerWindow appended batches. A batch of the
// same epoch must either repeat one of those (a retry: answered with its
// original base offset, not stored again) or continue the latest one
// (BaseSequence == last+1, wrapping from MaxInt32 to 0). A newer epoch
// starts over and must start at sequence 0; an older epoch is fenced.
// With no state at all for the pair any sequence is accepted, like Kafka
// does after producer state expired or for a partition the producer never
// wrote to.
//
// Meta additionally knows the epoch InitProducerID handed out last for
// the producer id. A batch older than that epoch is fenced even on a
// partition whose own state still has the old epoch: the producer bumped
// its epoch because it gave up on those batches (KIP-360), so accepting
// one now could only reorder or duplicate data. A Kafka partition leader
// cannot do this because it does not know the coordinator's epoch.

// producerWindow is how many of a producer's latest batches per partition
// are remembered for duplicate detection. Kafka keeps 5, matching the
// largest max.in.flight.requests.per.connection that keeps idempotence.
const producerWindow = 5

// seqAdd returns the sequence number n after s, wrapping from MaxInt32
// to 0 like Kafka's DefaultRecordBatch.incrementSequence. n >= 0.
func seqAdd(s, n int32) int32 {
	if s > math.MaxInt32-n {
		return n - (math.MaxInt32 - s) - 1
	}
	return s + n
}

// checkSequence decides what happens to chunk ch of producer ch.ProducerID
// on a partition where the producer's state is pp (have reports whether
// there is any). pidEpoch is the producer's current epoch from
// InitProducerID (havePID whether meta knows one). For ChunkDuplicate it
// also returns the original base offset.
func checkSequence(pp *prodPart, have bool, pidEpoch int16, havePID bool, ch *meta.Chunk) (meta.ChunkStatus, int64) {
	if ch.ProducerEpoch < 0 || ch.BaseSequence < 0 {
		return meta.ChunkInvalid, 0
	}
	if havePID && ch.ProducerEpoch < pidEpoch {
		return meta.ChunkFenced, 0
	}
	if !have || pp.n == 0 {
		return meta.ChunkAppended, 0
	}
	switch {
	case ch.ProducerEpoch < pp.epoch:
		return meta.ChunkFenced, 0
	case ch.ProducerEpoch > pp.epoch:
		if ch.BaseSequence != 0 {
			return meta.ChunkOutOfOrder, 0
		}
		return meta.ChunkAppended, 0
	}
	last := seqAdd(ch.BaseSequence, ch.RecordCount-1)
	for i := 0; i < int(pp.n); i++ {
		if b := &pp.win[i]; b.first == ch.BaseSequence && b.last == last {
			return meta.ChunkDuplicate, b.baseOffset
		}
	}
	if ch.BaseSequence == seqAdd(pp.win[pp.n-1].last, 1) {
		return meta.ChunkAppended, 0
	}
	return meta.ChunkOutOfOrder, 0
}

// record notes an appended batch: a new epoch (or no state before) starts
// the window over; otherwise the batch goes last and the oldest falls out
// when the window is full.
func (pp *prodPart) record(have bool, ch *meta.Chunk, baseOffset int64) {
	if !have || ch.ProducerEpoch != pp.epoch {
		*pp = prodPart{epoch: ch.ProducerEpoch}
	}
	if int(pp.n) == producerWindow {
		copy(pp.win[:], pp.win[1:])
		pp.n--
	}
	pp.win[pp.n] = seqBatch{
		first:      ch.BaseSequence,
		last:       seqAdd(ch.BaseSequence, ch.RecordCount-1),
		baseOffset: baseOffset,
	}
	pp.n++
}

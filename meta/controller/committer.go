package controller

import (
	"context"
	"fmt"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// Group commit.
//
// One goroutine, the committer (run), makes every change. It waits for
// an op, takes every other op already queued (up to maxGroupOps), and
// handles them as one group:
//
//	take ─► apply each op to the overlay ─► one bbolt tx (fsync)
//	                                          │ ok            │ error
//	                                          ▼               ▼
//	                         merge overlay under mu    drop overlay
//	                         publish to watchers       every op gets the error
//	                         answer ops
//
// While a group's transaction is being fsynced new ops pile up in the
// queue and become the next group, so the number of fsyncs adapts to the
// load with no timer: one op alone is committed at once, many concurrent
// ops share one fsync. This is bbolt's DB.Batch idea without its timer
// and without re-running functions after a failure; pebble's commit
// pipeline does the same for its WAL.
//
// Why an overlay and not mutate-then-undo: an undo log would have to
// restore every map and slice exactly, and a missed case would corrupt
// the state only after a disk error, the least tested path there is.
// With an overlay the state is not touched until the data is durable.

// maxGroupOps bounds the ops in one group, so one transaction stays small
// enough that its latency does not hurt the ops in it. Also the queue's
// capacity: past it, callers wait to enqueue (backpressure).
const maxGroupOps = 256

// maxPruneGroup bounds how many old segment answers one group deletes.
const maxPruneGroup = 4096

type opKind uint8

const (
	opCreateTopics opKind = iota
	opCommitSegment
	opInitProducerID
	opCommitOffsets
	opTopicAdmin
	opDeleteRecords
	opExpireProducers
	opRetention
	opSwap          // a compaction result (swap.go)
	opCheckOrphans  // jobs.go: reads only, ordered after every commit before it
	opForgetObjects // jobs.go: deleted objects; changes memory only
	opACLs          // acls.go: create or delete ACL bindings
	// SASL (issue 14): SCRAM credentials (scram.go).
	opScram
	// Transactions (issue 15): the coordinator's writes (txn.go).
	opTxn
)

// op is one mutation on its way through the committer. The caller fills
// the inputs; the committer fills err and the result, then closes done.
// After done is closed the committer no longer touches the op.
type op struct {
	ctx  context.Context
	kind opKind

	specs  []meta.TopicSpec
	commit *meta.SegmentCommit
	pidReq meta.ProducerIDRequest
	offs   *offsetCommitReq
	admin  *topicAdminReq
	// deletes are DeleteRecords specs.
	deletes []meta.DeleteRecordsSpec
	// swap, orphanKeys, forgetIDs: the jobs' ops.
	swap       *swapReq
	orphanKeys []string
	forgetIDs  []meta.SegmentID
	acl        *aclReq
	// SASL (issue 14): scram is an AlterScramCredentials (scram.go);
	// its answers go to adminErrs.
	scram *scramReq
	// txn is a transactional op (issue 15, txn.go).
	txn *txnReq

	err           error
	topicResults  []meta.TopicResult
	commitResult  meta.CommitResult
	pidResult     meta.ProducerIDResult
	adminErrs     []error
	deleteResults []meta.PartitionState
	swapOutcome   meta.CompactOutcome
	orphans       []string
	aclsDeleted   [][]meta.ACLBinding
	count         int // producer ids expired (opExpireProducers), partitions moved (opRetention)
	done          chan struct{}
}

// submit hands o to the committer and waits for its answer. If ctx ends
// while o is queued or being committed submit returns ctx.Err() at once;
// the op then still completes (or not) on its own, which the Client
// contract allows: every write is safe to retry.
func (s *Service) submit(ctx context.Context, o *op) error {
	if s.closed.Load() {
		return meta.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	o.ctx = ctx
	o.done = make(chan struct{})
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return meta.ErrClosed
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopped:
		// The committer has exited; it may have answered o just before.
		select {
		case <-o.done:
			return o.err
		default:
			return meta.ErrClosed
		}
	}
}

// run is the committer goroutine.
func (s *Service) run() {
	defer close(s.stopped)
	ops := make([]*op, 0, maxGroupOps)
	for {
		select {
		case o := <-s.ops:
			ops = append(ops, o)
		case <-s.closing:
			s.failQueued()
			return
		}
	take:
		for len(ops) < maxGroupOps {
			select {
			case o := <-s.ops:
				ops = append(ops, o)
			default:
				break take
			}
		}
		s.commitGroup(ops)
		clear(ops)
		ops = ops[:0]
	}
}

// failQueued answers every op still queued with ErrClosed.
func (s *Service) failQueued() {
	for {
		select {
		case o := <-s.ops:
			o.err = meta.ErrClosed
			close(o.done)
		default:
			return
		}
	}
}

// commitGroup runs one group (see the top of this file).
func (s *Service) commitGroup(ops []*op) {
	start := time.Now()
	g := s.g
	g.reset()
	now := s.now().UnixNano()
	live := 0
	for _, o := range ops {
		if err := o.ctx.Err(); err != nil {
			// Not taken: the caller gave up before we got to it.
			o.err = err
			close(o.done)
			continue
		}
		ops[live] = o
		live++
		s.apply(g, o, now)
	}
	ops = ops[:live]
	if live == 0 {
		return
	}

	if g.dirty() {
		g.planPrune(now-s.cfg.SegmentResultTTL.Nanoseconds(), s.cfg.SegmentResultLimit, maxPruneGroup)
		s.txCount.Add(1)
		err := s.kv.Update(func(tx kv.KVTx) error {
			if h := s.writeHook.Load(); h != nil {
				if err := (*h)(); err != nil {
					return err
				}
			}
			return writeGroup(tx, g, &s.arena)
		})
		if err != nil {
			// Invariant 2: the state is untouched; every answer in this
			// group may rest on the dropped changes, so all fail.
			werr := fmt.Errorf("%w: store write failed: %w", meta.ErrUnavailable, err)
			s.log.Error("meta: commit group failed", "ops", len(ops), "err", err)
			for _, o := range ops {
				o.err = werr
				close(o.done)
			}
			return
		}
		s.mu.Lock()
		g.mergeLocked()
		s.mu.Unlock()
		s.publish(g.events)
		segmentsCommitted.Add(len(g.segs))
	} else if len(g.forget) > 0 {
		// Only memory changes: objects meta stops tracking.
		s.mu.Lock()
		g.mergeLocked()
		s.mu.Unlock()
	}
	for _, o := range ops {
		close(o.done)
	}
	commitGroupSize.Update(float64(len(ops)))
	commitDuration.UpdateDuration(start)
}

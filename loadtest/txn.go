package loadtest

// Transactions mode (--transactions): the producers are transactional
// (one transactional id each) and write records in transactions of
// TxnRecords records spread over random partitions, committing most and
// aborting every AbortEvery-th on purpose. Each transaction's outcome is
// remembered (txnOutcome) and, after the run, verifyTxn checks the log
// read with read_committed and with read_uncommitted against them
// (txnverify.go).
//
// A producer that meets any error (a produce that fails or times out
// while an agent is down, an EndTxn that fails while meta restarts, a
// fenced epoch) does not try to repair its client: it closes it and
// starts a new one with the same transactional id, whose InitProducerId
// bumps the epoch and makes meta abort whatever the old epoch left open.
// That is the recovery every transactional client has to fall back on,
// and it keeps the outcomes simple: a transaction is committed only if
// EndTxn(commit) said so, and one whose commit was never asked can only
// have been aborted.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// txnOutcome is what the producer knows of a transaction's end.
type txnOutcome uint8

const (
	// txnCommitted: EndTxn(commit) returned success. Every record must be
	// visible to read_committed, once.
	txnCommitted txnOutcome = iota + 1
	// txnAborted: aborted on purpose; commit was never asked. None of
	// its records may be visible to read_committed.
	txnAborted
	// txnFailed: a produce (or the begin) failed, so the producer
	// aborted, or gave the client up; commit was never asked, so none of
	// its records may be visible either.
	txnFailed
	// txnUnknown: EndTxn(commit) returned an error: the commit may or may
	// not have happened. Its records are all visible, once, or none is.
	txnUnknown
)

func (o txnOutcome) String() string {
	switch o {
	case txnCommitted:
		return "committed"
	case txnAborted:
		return "aborted on purpose"
	case txnFailed:
		return "failed and aborted"
	case txnUnknown:
		return "unknown outcome"
	}
	return "unfinished"
}

// txnRec is one transaction: producer's records firstSeq up to
// firstSeq+count-1, and its outcome.
type txnRec struct {
	producer int
	n        int64 // the producer's transaction number, from 0
	firstSeq int64
	count    int
	outcome  txnOutcome
	// acked are the records the agents acknowledged, with their offsets;
	// for a committed or unknown transaction, all count of them.
	acked []ackedRec
}

type ackedRec struct {
	tp     TopicPartition
	offset int64
	seq    int64
}

// txnWorkload is the transactional producers' state.
type txnWorkload struct {
	w       *workload
	txnSize int
	every   int           // abort every every-th transaction on purpose; 0 never
	timeout time.Duration // the producers' transaction.timeout.ms

	ended   [txnUnknown + 1]atomic.Int64 // transactions by outcome, for progress lines
	reinits atomic.Int64                 // clients given up and started again
	fenced  atomic.Int64                 // errors that were PRODUCER_FENCED or INVALID_PRODUCER_EPOCH

	mu   sync.Mutex
	txns [][]*txnRec // guarded by mu; per producer, in order
}

func newTxnWorkload(w *workload) *txnWorkload {
	return &txnWorkload{
		w: w, txnSize: w.cfg.TxnRecords, every: w.cfg.AbortEvery, timeout: w.cfg.TxnTimeout,
		txns: make([][]*txnRec, w.cfg.Producers),
	}
}

// txnID is producer id's transactional id: unique per run.
func (t *txnWorkload) txnID(id int) string { return fmt.Sprintf("%s-tx%02d", t.w.topic, id) }

func (t *txnWorkload) newClient(id int) (*kgo.Client, error) {
	return kgo.NewClient(
		kgo.SeedBrokers(t.w.seeds...),
		kgo.ClientID(fmt.Sprintf("loadtest-txn-p%d", id)),
		kgo.TransactionalID(t.txnID(id)),
		kgo.TransactionTimeout(t.timeout),
		kgo.DefaultProduceTopic(t.w.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(2*time.Millisecond),
	)
}

// noteErr counts a fencing error and keeps the error's text.
func (t *txnWorkload) noteErr(err error) {
	if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) {
		t.fenced.Add(1)
	}
	t.w.noteErr(err)
}

// run is producer id: transactions back to back, paced to rate records
// per second, until stop is closed; the transaction in progress then
// ends as any other. Its client is closed on return.
func (t *txnWorkload) run(ctx context.Context, stop <-chan struct{}, id int, seed uint64, rate float64) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	cl, err := t.newClient(id)
	if err != nil {
		t.noteErr(err)
		return
	}
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	start := time.Now()
	var seq, n int64
	for {
		// Pace: a transaction starts once its records are due.
		for due := int64(time.Since(start).Seconds() * rate); seq+int64(t.txnSize) > due; due = int64(time.Since(start).Seconds() * rate) {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		tx := &txnRec{producer: id, n: n, firstSeq: seq, count: t.txnSize}
		seq += int64(t.txnSize)
		n++
		t.mu.Lock()
		t.txns[id] = append(t.txns[id], tx)
		t.mu.Unlock()
		ok := t.one(ctx, cl, tx, rng)
		t.ended[tx.outcome].Add(1)
		if !ok {
			cl.Close()
			t.reinits.Add(1)
			if cl, err = t.newClient(id); err != nil {
				t.noteErr(err)
				cl = nil
				return
			}
		}
	}
}

// one runs one transaction and records its outcome; false means the
// client must be given up (the outcome is set either way).
func (t *txnWorkload) one(ctx context.Context, cl *kgo.Client, tx *txnRec, rng *rand.Rand) bool {
	tx.outcome = txnFailed // until EndTxn says otherwise
	if err := cl.BeginTransaction(); err != nil {
		t.noteErr(err)
		return false
	}
	recs := make([]*kgo.Record, tx.count)
	for i := range recs {
		recs[i] = &kgo.Record{
			Partition: rng.Int32N(t.w.cfg.Partitions),
			Value:     appendValue(nil, tx.producer, tx.firstSeq+int64(i)),
		}
	}
	// A produce retries until the transaction would time out anyway.
	pctx, cancel := context.WithTimeout(ctx, t.timeout)
	res := cl.ProduceSync(pctx, recs...)
	cancel()
	allAcked := true
	for _, r := range res { // in the order of the acknowledgements, not of recs
		if r.Err != nil {
			allAcked = false
			t.w.failed.Add(1)
			t.noteErr(r.Err)
			continue
		}
		_, seq, _ := parseValue(r.Record.Value)
		tp := TopicPartition{r.Record.Topic, r.Record.Partition}
		t.w.acked.Add(1)
		t.w.lastAckNs.Store(time.Now().UnixNano())
		t.w.oracle.Ack(tp, r.Record.Offset, r.Record.Value)
		tx.acked = append(tx.acked, ackedRec{tp, r.Record.Offset, seq})
	}
	ectx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	abort := t.every > 0 && tx.n%int64(t.every) == int64(t.every-1)
	switch {
	case !allAcked:
		// Never commit a transaction that lost a record: abort it, or
		// leave it to the next client's InitProducerId.
		if err := cl.AbortBufferedRecords(ectx); err != nil {
			t.noteErr(err)
			return false
		}
		if err := cl.EndTransaction(ectx, kgo.TryAbort); err != nil {
			t.noteErr(err)
		}
		return false
	case abort:
		tx.outcome = txnAborted
		if err := cl.EndTransaction(ectx, kgo.TryAbort); err != nil {
			t.noteErr(err)
			return false
		}
		return true
	default:
		if err := cl.EndTransaction(ectx, kgo.TryCommit); err != nil {
			tx.outcome = txnUnknown
			t.noteErr(err)
			return false
		}
		tx.outcome = txnCommitted
		return true
	}
}

// fence sends InitProducerId for every producer's transactional id, so
// that meta aborts whatever transaction a given-up client left open and
// every partition's last stable offset reaches its high watermark. It
// retries each id until bound.
func (t *txnWorkload) fence(ctx context.Context, bound time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(t.w.seeds...), kgo.ClientID("loadtest-txn-fence"))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(bound)
	for id := range t.w.cfg.Producers {
		for {
			req := kmsg.NewPtrInitProducerIDRequest()
			txnID := t.txnID(id)
			req.TransactionalID = &txnID
			req.TransactionTimeoutMillis = int32(t.timeout.Milliseconds())
			req.ProducerID, req.ProducerEpoch = -1, -1
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := req.RequestWith(rctx, cl)
			cancel()
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err == nil {
				break
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				return fmt.Errorf("InitProducerId for %s at the end: %w", txnID, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}

// progress is the outcomes so far, for a progress line.
func (t *txnWorkload) progress() string {
	return fmt.Sprintf("transactions: %d committed, %d aborted, %d failed, %d unknown, %d re-inits",
		t.ended[txnCommitted].Load(), t.ended[txnAborted].Load(), t.ended[txnFailed].Load(), t.ended[txnUnknown].Load(), t.reinits.Load())
}

// all returns every transaction, by producer then number.
func (t *txnWorkload) all() []*txnRec {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*txnRec
	for _, txns := range t.txns {
		out = append(out, txns...)
	}
	return out
}

// txnIndex finds the transaction of a producer's record.
type txnIndex map[int][]*txnRec

func newTxnIndex(txns []*txnRec) txnIndex {
	ix := txnIndex{}
	for _, tx := range txns {
		ix[tx.producer] = append(ix[tx.producer], tx)
	}
	for _, l := range ix {
		sort.Slice(l, func(i, j int) bool { return l[i].firstSeq < l[j].firstSeq })
	}
	return ix
}

func (ix txnIndex) find(producer int, seq int64) *txnRec {
	l := ix[producer]
	i := sort.Search(len(l), func(i int) bool { return l[i].firstSeq+int64(l[i].count) > seq })
	if i < len(l) && l[i].firstSeq <= seq {
		return l[i]
	}
	return nil
}

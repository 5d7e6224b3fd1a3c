package server

// Fetch, versions 4–17 (record batch v2; v13+ names topics by id).
//
// For each partition the agent's index cache maps the fetch offset to
// index entries (segment object, byte range, base offset); the bytes come
// through the block cache; each batch goes into the response with its
// base offset (and partition leader epoch) patched in, the CRC not
// covering those fields: copied when small, else lent from the cached
// block with only its first 16 bytes copied (fetch_records.go). Whole batches are returned: a batch that starts
// before the fetch offset is skipped only when all of it lies before.
// MaxBytes and per-partition MaxBytes are honoured, except that the first
// batch of the response is always returned whole so a consumer can make
// progress (KIP-74).
//
// Long poll: when fewer than MinBytes are ready, the fetch registers a
// watcher on its partitions and waits for a commit event or MaxWaitMs,
// whichever comes first; the connection keeps serving other requests
// meanwhile, and responses still go out in request order.
//
// Memory: MaxBytes is capped at 55 MiB (Kafka's fetch.max.bytes is
// 55 MiB by default, and a client may ask for 2 GiB). Bytes are reserved
// from the connection's share and the agent's fetch budget before they
// are gathered into a response, and released once they leave gnet's
// outbound buffer (conn.go); a lent block is counted whole against the
// same budget until the last response referring to it is written; a reservation that cannot be had by its
// deadline answers the partition with no records and its watermarks, and
// the client simply fetches again. MaxWaitMs is capped at 30 s.
//
// Fetch sessions (KIP-227) are not kept: the response carries session id
// 0, which tells clients to send full fetch requests. Rack-aware preferred
// read replicas: -1.
//
// Transactions (issue 15, docs/transactions.md): a marker entry (no
// object) is rendered as a control batch (codec.AppendControlBatch) in
// both isolation levels. read_committed takes the partition's last
// stable offset and aborted transactions from the index cache
// (Index.ReadCommitted, which meta keeps current with the commit events),
// or from meta (Client.TxnPartition) when the cache cannot answer
// exactly (a read from before the aborted ranges it holds), returns
// nothing at or past the LSO and lists the aborted transactions that
// start below it. A long poll wakes on every commit event of its
// partitions, markers included, so an EndTxn that moves the LSO wakes it.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/codec"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

func init() { register(int16(kmsg.Fetch), 4, 17, handleFetch) }

// maxFetchWait caps MaxWaitMs so a client cannot park a request for long.
const maxFetchWait = 30 * time.Second

// maxFetchBytes caps a request's MaxBytes: Kafka's own fetch.max.bytes
// default (55 MiB). A larger ask is served as if it were this.
const maxFetchBytes = 55 << 20

// fetchBudgetWait is how long a fetch waits for budget at least (a long
// poll waits until its own deadline if that is later). Past it the
// fetch answers without records rather than keep the client waiting;
// clients' request timeouts are 30 s and more, and an empty answer only
// has the client ask again at once, so waiting a while is the kinder
// backpressure.
const fetchBudgetWait = 5 * time.Second

// mFetchStaleEntries counts reads that found an index entry's object
// deleted (readPartition): each dropped the partition's cached entries.
var mFetchStaleEntries = metrics.NewCounter(`sluice_fetch_stale_entries_total`)

type fetchPart struct {
	tp       meta.TopicPartition
	offset   int64
	maxBytes int
	out      *kmsg.FetchResponseTopicPartition
	known    bool
	// committed: isolation_level read_committed (issue 15).
	committed bool
}

// lendBufBytes is the copy buffer a record set starts with when its
// batches can be lent (fetch_records.go): their headers and the small
// batches, not the whole reservation.
const lendBufBytes = 64 << 10

func handleFetch(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.FetchRequest)
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		// We never hand out sessions, so one named here is not ours.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		rc.respond(resp)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()

	topics, err := s.topics.resolve(ctx, len(req.Topics), rc.version >= 13,
		func(i int) string { return req.Topics[i].Topic },
		func(i int) meta.TopicID { return req.Topics[i].TopicID })
	if err != nil {
		resp.ErrorCode = errorCode(err)
		rc.respond(resp)
		return
	}

	var parts []fetchPart
	resp.Topics = make([]kmsg.FetchResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		ot := &resp.Topics[ti]
		*ot = kmsg.NewFetchResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		ot.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		t, known := topics[ti]
		name := rt.Topic
		if known {
			name = t.Name
		}
		// READ on the topic (authz.go), before existence as in Kafka.
		denied := !(!known && rc.version >= 13) && !s.authorize(rc, meta.OpRead, meta.ResourceTopic, name)
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			op := &ot.Partitions[pi]
			*op = kmsg.NewFetchResponseTopicPartition()
			op.Partition = rp.Partition
			op.HighWatermark, op.LastStableOffset, op.LogStartOffset = -1, -1, -1
			op.PreferredReadReplica = -1
			// Empty, never null: librdkafka rejects a null record set.
			op.RecordBatches = []byte{}
			fp := fetchPart{offset: rp.FetchOffset, maxBytes: int(rp.PartitionMaxBytes), out: op, committed: req.IsolationLevel == 1}
			switch {
			case !known && rc.version >= 13:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case denied:
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !known || rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				fp.tp = meta.TopicPartition{TopicID: t.ID, Partition: rp.Partition}
				fp.known = true
			}
			parts = append(parts, fp)
		}
	}

	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 50 << 20 // fetch.max.bytes default; pre-v3 had no limit field
	}
	if maxBytes > maxFetchBytes {
		maxBytes = maxFetchBytes
		mFetchMaxBytesCapped.Inc()
	}
	wait := min(time.Duration(req.MaxWaitMillis)*time.Millisecond, maxFetchWait)
	minBytes := int(req.MinBytes)
	res := &fetchReservation{s: s, c: rc.c, seq: rc.seq, deadline: time.Now().Add(wait)}

	// The read runs off the connection worker: a cold read waits on the
	// object store and a long poll waits on commits, and neither may hold
	// up the requests behind it.
	rc.goAsync(func() {
		// recs[i] holds parts[i]'s batches of the latest fill; the
		// response takes them over, and whatever it did not (a
		// connection closed under a long poll) is given back here.
		recs := make([]recordSet, len(parts))
		leases := &fetchLeases{l: s.lent, c: rc.c}
		defer func() {
			for i := range recs {
				recs[i].release()
			}
			leases.release()
		}()
		// reply answers with what the last fill gathered, its encoding
		// buffer sized for the record bytes plus per-partition framing.
		reply := func(n int) {
			rc.sizeHint = n + 96*len(parts) + 256
			// The response takes over the reservation; conn.respond
			// trues it up to the encoded size.
			rc.c.reserve(rc.seq, res.held)
			res.held = 0
			rc.respondFetch(resp, recs, leases) // takes the record sets and leases over (fetch_encode.go)
		}
		if wait <= 0 {
			n, _ := s.fillFetch(parts, recs, leases, maxBytes, res)
			reply(n)
			return
		}
		// Register before the first read, so a commit that lands between
		// the read and the wait still wakes us.
		w := s.waiters.add(parts)
		defer s.waiters.remove(w)
		n, hardErr := s.fillFetch(parts, recs, leases, maxBytes, res)
		if hardErr || n >= minBytes {
			reply(n)
			return
		}
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for {
			select {
			case <-w.ch:
				n, hardErr = s.fillFetch(parts, recs, leases, maxBytes, res)
				if hardErr || n >= minBytes {
					reply(n)
					return
				}
				if rc.c.isClosed() {
					res.releaseAll()
					return
				}
			case <-timer.C:
				n, _ = s.fillFetch(parts, recs, leases, maxBytes, res)
				reply(n)
				return
			case <-w.closed:
				reply(n)
				return
			}
		}
	})
}

// fetchReservation is the fetch budget one fetch holds for the record
// bytes of its latest fill: taken from the connection's share first, then
// from the agent's budget, so a connection at its share waits on its own
// client and never queues in front of everyone else.
type fetchReservation struct {
	s        *Server
	c        *conn
	seq      uint64
	deadline time.Time // the fetch's own deadline (now + MaxWait)
	held     int64
	refused  bool // the latest fill could not reserve all it wanted
}

// take reserves n bytes, waiting until the later of the fetch's deadline
// and fetchBudgetWait from now: the connection's share first (see
// conn.takeShare), then the agent's budget.
func (r *fetchReservation) take(n int64) bool {
	if n <= 0 {
		return true
	}
	deadline := r.deadline
	if d := time.Now().Add(fetchBudgetWait); d.After(deadline) {
		deadline = d
	}
	if !r.c.takeShare(r.seq, n, deadline) {
		r.refuse()
		return false
	}
	got, ok := r.s.fetchBudget.acquire(n, deadline)
	if !ok {
		r.c.mu.Lock()
		r.c.shareUsed -= n
		r.c.shareChangedLocked()
		r.c.mu.Unlock()
		r.refuse()
		return false
	}
	r.held += n
	if got < n {
		// Larger than the whole agent budget: granted as the whole
		// budget, the rest taken past it (one response, bounded by
		// maxFetchBytes plus one batch).
		r.s.fetchBudget.force(n - got)
	}
	return true
}

func (r *fetchReservation) refuse() {
	r.refused = true
	mFetchBudgetRefused.Inc()
}

func (r *fetchReservation) force(n int64) {
	r.c.forceBudget(n)
	r.held += n
}

// settle trues a reservation of reserved bytes up to the used bytes.
func (r *fetchReservation) settle(reserved, used int64) {
	if d := used - reserved; d > 0 {
		r.force(d)
	} else if d < 0 {
		r.c.releaseBudget(-d)
		r.held += d
	}
}

func (r *fetchReservation) releaseAll() {
	r.c.releaseBudget(r.held)
	r.held = 0
}

// fillFetch reads every known partition into its response slot and its
// record set (recs[i] for parts[i]; the blocks lent in leases) and returns the record bytes gathered
// and whether some partition has an error worth answering at once. Each
// fill replaces the previous one's bytes, so it starts by giving them and
// their reservation back.
func (s *Server) fillFetch(parts []fetchPart, recs []recordSet, leases *fetchLeases, maxBytes int, res *fetchReservation) (total int, hardErr bool) {
	ctx, cancel := context.WithTimeout(context.Background(), metaTimeout)
	defer cancel()
	res.releaseAll()
	res.refused = false
	for i := range recs {
		recs[i].release()
	}
	leases.release()
	for i := range parts {
		fp := &parts[i]
		if !fp.known {
			hardErr = true
			continue
		}
		budget := min(fp.maxBytes, maxBytes-total)
		if budget < 0 || res.refused {
			// Refused once: the rest of this fill answers watermarks
			// only, and overwrites what an earlier fill put here.
			budget = 0
		}
		var reserved int64
		reserve := func(n int) bool {
			if !res.take(int64(n)) {
				return false
			}
			reserved = int64(n)
			return true
		}
		limit, lso := int64(math.MaxInt64), int64(-1)
		op := fp.out
		op.AbortedTransactions = nil
		if fp.committed {
			// Transactions (issue 15): nothing at or past the LSO. The
			// index cache answers when it can, so meta stays off the
			// fetch path (issue 13, cache/index_stable.go); else meta.
			stable, aborted, ok := s.deps.Index.ReadCommitted(ctx, fp.tp, fp.offset, nil)
			if !ok {
				ts, err := s.deps.Meta.TxnPartition(ctx, fp.tp, fp.offset)
				if err != nil {
					op.ErrorCode, op.RecordBatches = errorCode(err), []byte{}
					hardErr = true
					continue
				}
				stable, aborted = ts.LastStableOffset, ts.Aborted
			}
			limit, lso = stable, stable
			for _, a := range aborted {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				op.AbortedTransactions = append(op.AbortedTransactions, at)
			}
		}
		rs, logStart, hwm, err := s.readPartition(ctx, leases, fp.tp, fp.offset, limit, budget, total == 0 && !res.refused, reserve)
		res.settle(reserved, int64(cap(rs.buf)+rs.lentN))
		recs[i] = rs
		op.ErrorCode = errorCode(err)
		if lso < 0 || lso > hwm {
			lso = hwm // read_uncommitted; or the index cache is behind meta
		}
		op.HighWatermark, op.LastStableOffset, op.LogStartOffset = hwm, lso, logStart
		if err != nil {
			hardErr = true
			s.log.Debug("fetch: partition error", "topic", fp.tp.TopicID.String(), "partition", fp.tp.Partition,
				"offset", fp.offset, "err", err)
		}
		total += rs.n
	}
	mFetchBytes.Add(total)
	s.fetchedBytes.Add(int64(total)) // console (issue 16)
	return total, hardErr
}

// readPartition gathers whole batches holding offsets from offset on, up
// to budget bytes (at least one batch when first is set and data exists):
// copied, or lent by the block cache (fetch_records.go).
//
// reserve is called once, before the copy buffer is allocated, with the
// bytes the set may hold; when it refuses, nothing is gathered. Blocks
// lent are leased in leases (nil: none is, everything is copied).
//
// An entry whose object is gone (objstore.ErrNotFound) is stale: a
// compaction swapped it out and the garbage collector deleted its object
// while this agent's index cache still held it (the watch stream was down
// longer than --gc-grace, or a Lookup raced the swap). The partition's
// cached entries are dropped and the offset is looked up in meta again,
// once; only a second failure is the client's error.
//
// Nothing at or past limit is gathered (read_committed: the LSO).
func (s *Server) readPartition(ctx context.Context, leases *fetchLeases, tp meta.TopicPartition, offset, limit int64, budget int, first bool, reserve func(int) bool) (rs recordSet, logStart, hwm int64, err error) {
	for retried := false; ; retried = true {
		res, err := s.deps.Index.Lookup(ctx, tp, offset)
		logStart, hwm = res.LogStartOffset, res.HighWatermark
		if err != nil {
			return recordSet{}, logStart, hwm, err
		}
		if budget <= 0 && !first || offset >= limit {
			return recordSet{}, logStart, hwm, nil
		}
		rs, err = s.copyEntries(ctx, leases, res.Entries, offset, limit, budget, first, reserve)
		if !errors.Is(err, objstore.ErrNotFound) {
			return rs, logStart, hwm, err
		}
		s.deps.Index.Invalidate(tp)
		mFetchStaleEntries.Inc()
		if rs.n > 0 {
			return rs, logStart, hwm, nil // the next fetch looks up afresh
		}
		rs.release()
		if retried {
			return recordSet{}, logStart, hwm, err
		}
		s.log.Debug("fetch: index entry names a deleted object; looking the offset up again",
			"topic", tp.TopicID.String(), "partition", tp.Partition, "offset", offset, "err", err)
	}
}

// copyEntries gathers the batches of entries holding offsets from offset
// on, as readPartition describes. An error reading an entry's bytes is
// returned with what was gathered before it; callers return that data and
// drop the error (the next fetch retries), except objstore.ErrNotFound.
func (s *Server) copyEntries(ctx context.Context, leases *fetchLeases, entries []meta.IndexEntry, offset, limit int64, budget int, first bool, reserve func(int) bool) (rs recordSet, err error) {
	lender, canLend := s.deps.Blocks.(BlockRangeReader)
	// alloc reserves once for every entry this read can use, and sizes
	// the copy buffer for it: growing it by append would copy a
	// response's bytes several times over (BenchmarkFetchLoopback). When
	// batches can be lent, the buffer starts small: it holds their
	// headers and the small batches only.
	alloc := func(size int) bool {
		want := 0
		for i := range entries {
			if want += entryBytes(&entries[i]); want >= budget {
				break
			}
		}
		want = max(min(want, budget), size)
		if !reserve(want) {
			return false
		}
		if canLend {
			want = min(want, lendBufBytes)
		}
		rs.buf = newFetchData(want)
		return true
	}
	for _, e := range entries {
		if e.BaseOffset >= limit {
			break
		}
		if e.IsMarker() {
			// Transactions (issue 15): rendered, never read.
			if e.BaseOffset < offset {
				continue
			}
			if rs.n+codec.ControlBatchSize > budget && !(first && rs.n == 0) {
				return rs, nil
			}
			if rs.buf == nil && !alloc(codec.ControlBatchSize) {
				return recordSet{}, nil
			}
			rs.appendControl(e.BaseOffset, e.ProducerID, e.ProducerEpoch, e.Control == meta.ControlCommit, e.MaxTimestamp)
			continue
		}
		var raw, block []byte
		if canLend && e.Length >= lendMin {
			raw, block, err = lender.ReadRangeBlock(ctx, e.ObjectKey, e.ObjectSize, e.Start, e.Length)
		} else {
			raw, err = s.deps.Blocks.ReadRange(ctx, e.ObjectKey, e.ObjectSize, e.Start, e.Length)
		}
		if err != nil {
			if rs.n > 0 && !errors.Is(err, objstore.ErrNotFound) {
				return rs, nil // return what we have; the next fetch retries
			}
			return rs, err
		}
		next := e.BaseOffset
		for len(raw) > 0 {
			if len(raw) < codec.BatchHeaderSize {
				return rs, corruptEntry(e)
			}
			size := 12 + int(int32(binary.BigEndian.Uint32(raw[8:])))
			count := int64(int32(binary.BigEndian.Uint32(raw[23:]))) + 1
			if size < codec.BatchHeaderSize || size > len(raw) || count <= 0 {
				return rs, corruptEntry(e)
			}
			base := next
			next += count
			if base+count <= offset {
				raw = raw[size:]
				continue
			}
			if base >= limit {
				return rs, nil // read_committed: the LSO is a batch's base
			}
			if rs.n+size > budget && !(first && rs.n == 0) {
				return rs, nil
			}
			if rs.buf == nil && !alloc(size) {
				return recordSet{}, nil
			}
			if block != nil && size >= lendMin {
				if leases.hold(block) {
					rs.lendBatch(raw[:size], base)
					raw = raw[size:]
					continue
				}
				block = nil // no room to lend the block now: copy
			}
			rs.copyBatch(raw[:size], base)
			raw = raw[size:]
		}
		if next != e.LastOffset+1 {
			return rs, corruptEntry(e)
		}
		if rs.n >= budget {
			break
		}
	}
	return rs, nil
}

// entryBytes is what entry e adds to a fetch response.
func entryBytes(e *meta.IndexEntry) int {
	if e.IsMarker() {
		return codec.ControlBatchSize
	}
	return int(e.Length)
}

// corruptEntry reports an index entry whose bytes do not hold the batches
// it promises: corruption, never a reason to panic.
func corruptEntry(e meta.IndexEntry) error {
	return fmt.Errorf("%w: index entry [%d, %d] does not match the bytes of %s", codec.ErrCorrupt, e.BaseOffset, e.LastOffset, e.ObjectKey)
}

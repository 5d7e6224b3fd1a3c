package server

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxConnQueued bounds the number of requests queued on one connection and
// not yet dispatched; Kafka clients keep at most a handful in flight.
const maxConnQueued = 256

// Polling gnet's outbound buffer: gnet tells nobody when it drains, so a
// connection with unsent bytes asks its event loop to look again, first
// soon, then backing off (see observeOutbound).
const (
	outboundPollMin = 2 * time.Millisecond
	outboundPollMax = 100 * time.Millisecond
)

// The write queue goes to gnet when its outbound buffer holds at most
// outboundLowWater bytes, at most writevMax bytes and writevMaxPieces
// pieces a time (see flushLocked). What the socket does not take at once
// gnet copies into its outbound buffer, so a hand-off is small: with 4
// MiB hand-offs that copy was 44 % of the agent's CPU in a catch-up read
// (BENCHMARKS.md). writev(2) refuses more than IOV_MAX (1024) vectors
// with EINVAL, which gnet would take for a broken connection.
const (
	outboundLowWater = 256 << 10
	writevMax        = 256 << 10
	writevMaxPieces  = 1024
	// splitMin: a hand-off fills its last bytes with the head of the
	// next piece only when at least this much room is left.
	splitMin = 16 << 10
)

// conn is one client connection.
//
// Request side: the event loop appends frames to queue; one worker
// goroutine, started on demand and exiting when the queue is empty, pops
// and dispatches them in order, giving each the next sequence number.
//
//	idle --enqueue--> running --queue empty--> idle
//	running --inflight or unsent bytes at bound--> blocked
//	blocked --a response written / outbound drained--> running
//
// Response side: a request completes by calling respond(seq, bytes), from
// any goroutine, in any order. Responses are written strictly in sequence
// order: a response that finishes early waits in pending for its turn. A
// request that gets no response (acks=0) completes with nil bytes, which
// only advances the sequence.
//
// Memory bound (DESIGN.md invariant 7): a connection has at most
// MaxInflightPerConn requests dispatched and not yet in order for the
// socket (nextSeq-nextWrite: handlers running, long polls and group waits
// parked, responses waiting for their turn), and at most
// MaxConnUnsentBytes of responses not yet on the socket (pending, in the
// write queue, handed to AsyncWritev, and in gnet's outbound buffer). Past either bound the
// worker stops dispatching; the queue then fills and OnTraffic stops
// cutting frames, so a client that pipelines without reading holds a
// bounded amount of memory however much it sends (gnet keeps reading the
// socket into its inbound buffer regardless, which OnTraffic bounds by
// closing the connection; see there).
type conn struct {
	s *Server
	// tr is the socket: gnet's for plaintext, a crypto/tls connection
	// with its own reader and writer goroutines for TLS (transport.go).
	tr     transport
	remote string
	// principal is who the connection acts as (principal.go): set by
	// the TLS handshake or SASL before the requests it governs, read by
	// the authorizer.
	principal atomic.Pointer[Principal]
	// sasl is the connection's SASL state (sasl.go): nil until its
	// first SaslHandshake; only its worker touches it.
	sasl *saslConn
	// shareLimit is this connection's share of the agent's fetch
	// budget (MaxConnUnsentBytes), so one client that never reads pins
	// at most about this much of it (see takeShare).
	shareLimit int64

	mu          sync.Mutex
	queue       []*frameBuf         // guarded by mu: frames waiting for dispatch
	queuedBytes int                 // guarded by mu
	running     bool                // guarded by mu: a worker is draining queue
	blocked     bool                // guarded by mu: the worker stopped at the inflight/unsent bound
	stalled     bool                // guarded by mu: OnTraffic stopped cutting frames
	closed      bool                // guarded by mu
	nextSeq     uint64              // guarded by mu: next sequence to hand out
	nextWrite   uint64              // guarded by mu: next sequence to write
	pending     map[uint64][]outBuf // guarded by mu: completed, waiting for turn
	// Unsent response bytes, in three places; all guarded by mu.
	pendingBytes int64    // in pending
	writeQ       []outBuf // in order, waiting for gnet's outbound buffer to drain
	writeQBytes  int64
	handoff      int64 // given to AsyncWritev, its callback not yet run
	outbound     int64 // in gnet's outbound buffer when last looked at (on the loop)
	// Fetch budget held by responses (guarded by mu): reserved[seq] by
	// a response not yet handed to the loop, wireBudget by responses
	// handed to it, released as the outbound buffer drains.
	reserved   map[uint64]int64
	wireBudget int64
	// The connection's share (guarded by mu): shareUsed is every byte
	// of fetch budget its responses hold (being built, pending, in the
	// write queue, on the way to the socket), pendingShare the part of
	// it held by pending responses; shareCh, when not nil, is closed when
	// either or nextWrite changes, to wake takeShare's waiters.
	shareUsed    int64
	pendingShare int64
	shareCh      chan struct{}
	// lent and lentBytes (guarded by mu): the cached blocks its
	// responses hold leases on, each counted whole and once (tryLend,
	// fetch_records.go).
	lent      map[*byte]*lentBlock
	lentBytes int64
	// Slow client detection (guarded by mu): gnetTotal counts bytes whose
	// AsyncWritev completed (in gnet's buffer or sent), so gnetTotal -
	// outbound is what reached the socket; stuckSince is when that last
	// stopped growing while bytes were unsent (zero when none were).
	gnetTotal  int64
	lastSent   int64
	stuckSince time.Time
	// closeOnDrain (guarded by mu): close once the write queue and the
	// hand-off are empty (closeWhenSent).
	closeOnDrain bool
	pollArmed    bool          // guarded by mu: a Wake is scheduled to look at outbound again
	pollDelay    time.Duration // guarded by mu
	// pendingProduces counts acks=1/all produce requests admitted to the
	// pipeline and not yet answered.
	pendingProduces atomic.Int32
	// lastProduce (unix nanoseconds) is when the connection last parked
	// a produce; stallArmed is whether a stall check is scheduled
	// (stall.go).
	lastProduce atomic.Int64
	stallArmed  atomic.Bool
	// lastReceived (unix nanoseconds) is when bytes last arrived from
	// the client (stall.go): a large request streaming in is not
	// silence.
	lastReceived atomic.Int64
	// zone is whether the client's zone matches the agent's (zones.go).
	zone atomic.Int32

	// The frame being read (OnTraffic), and how many of its bytes have
	// arrived. Only the event loop touches them, so no lock.
	rd  *frameBuf
	rdN int
}

func newConn(s *Server, tr transport, remote net.Addr) *conn {
	c := &conn{s: s, tr: tr, pending: make(map[uint64][]outBuf), reserved: make(map[uint64]int64),
		shareLimit: min(int64(s.cfg.MaxConnUnsentBytes), s.fetchBudget.limit)}
	if remote != nil {
		c.remote = remote.String()
	}
	c.received(time.Now()) // the idle clock starts at open (idle.go)
	return c
}

// overBound reports whether the connection holds as much undispatched work
// as it may; called on the event loop.
func (c *conn) overBound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	over := len(c.queue) >= maxConnQueued || c.queuedBytes >= c.s.cfg.MaxConnPendingBytes
	if over {
		c.stalled = true
	}
	return over
}

// maxParkedProducesPerConn bounds the acks=1/all produce requests of one
// connection waiting in the pipeline for their segment's commit. They are
// not counted against MaxInflightPerConn: each waits about one flush
// interval, so 32 of them would cap a connection at ~128 requests a
// second, and librdkafka (max.in.flight 1,000,000 without idempotence)
// sends one request per linger.ms and partition leader: at 5,000 records
// a second its latency went from 175 ms to over 10 s. A parked produce
// holds no goroutine; its bytes count against the pipeline's in-flight
// bound (--max-inflight-bytes), where Append makes the worker wait; what
// this bounds is the small per-request state (response, timer).
const maxParkedProducesPerConn = 1024

// inflightLocked returns the requests dispatched and not yet written,
// less the produces parked in the pipeline, and those parked produces.
func (c *conn) inflightLocked() (others, parked uint64) {
	inflight := c.nextSeq - c.nextWrite
	parked = uint64(max(c.pendingProduces.Load(), 0))
	parked = min(parked, inflight)
	return inflight - parked, parked
}

// atOutputBoundLocked reports whether the worker must stop dispatching:
// too many requests unanswered or too many response bytes unsent.
func (c *conn) atOutputBoundLocked() bool {
	others, parked := c.inflightLocked()
	return others >= uint64(c.s.cfg.MaxInflightPerConn) || parked >= maxParkedProducesPerConn ||
		c.pendingBytes+c.writeQBytes+c.handoff+c.outbound >= int64(c.s.cfg.MaxConnUnsentBytes)
}

// resumeLocked restarts a blocked worker once the connection is back under
// its bounds; the caller starts the goroutine when it returns true, after
// unlocking.
func (c *conn) resumeLocked() bool {
	if !c.blocked || c.closed || c.atOutputBoundLocked() {
		return false
	}
	c.blocked = false
	if c.running || len(c.queue) == 0 {
		return false
	}
	c.running = true
	return true
}

// enqueue queues a frame, taking over the reference OnTraffic holds;
// called on the event loop, never blocks.
func (c *conn) enqueue(frame *frameBuf) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		frame.release()
		return
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame.b)
	start := !c.running && !c.blocked
	if start {
		c.running = true
	}
	c.mu.Unlock()
	if start {
		go c.work()
	}
}

func (c *conn) work() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.running = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		if c.atOutputBoundLocked() {
			// Whoever brings the connection back under its bounds
			// (respond, the write callback, an outbound look) restarts
			// the worker. Exiting rather than waiting keeps a blocked
			// connection at zero goroutines of its own.
			c.running = false
			c.blocked = true
			others, parked := c.inflightLocked()
			c.mu.Unlock()
			if others >= uint64(c.s.cfg.MaxInflightPerConn) || parked >= maxParkedProducesPerConn {
				mConnInflightLimited.Inc()
			} else {
				mConnUnsentLimited.Inc()
			}
			return
		}
		frame := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queuedBytes -= len(frame.b)
		seq := c.nextSeq
		c.nextSeq++
		wake := c.stalled && len(c.queue) < maxConnQueued/2 && c.queuedBytes < c.s.cfg.MaxConnPendingBytes/2
		if wake {
			c.stalled = false
		}
		c.mu.Unlock()
		if wake {
			// Frames may sit in gnet's inbound buffer (or the TLS
			// reader waits); have the reader cut them now.
			c.tr.wake()
		}
		if !c.s.dispatch(c, seq, frame) {
			c.close()
			return
		}
	}
}

// reserve records fetch budget (already taken from c.budget and the
// agent's budget) held by request seq's response; respond takes it over.
// On a closed connection the bytes go straight back.
func (c *conn) reserve(seq uint64, n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.releaseBudget(n)
		return
	}
	c.reserved[seq] += n
	c.mu.Unlock()
}

// takeShare takes n bytes of the connection's share for request seq,
// waiting until deadline at most; false means the deadline passed first
// and nothing was taken.
//
// Responses go out in order, so the share may be held by pending
// responses that wait for this very request: the oldest unanswered
// request may therefore use what pending responses hold, or the
// connection would sit until the deadline refused it
// (TestPipelinedFetchesNeverRead under -race answered half its fetches
// empty that way). Only pending responses are lent: the write queue and
// the socket drain by the client reading, which is the point of the
// share. A request larger than the whole share is let in when the share
// is otherwise unused.
func (c *conn) takeShare(seq uint64, n int64, deadline time.Time) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		avail := c.shareLimit - c.shareUsed
		if seq == c.nextWrite {
			avail += c.pendingShare
		}
		if c.closed || n <= avail || (c.shareUsed == 0 && n > c.shareLimit) {
			c.shareUsed += n
			c.mu.Unlock()
			return true
		}
		if c.shareCh == nil {
			c.shareCh = make(chan struct{})
		}
		ch := c.shareCh
		c.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// tryLend counts a lease on block id (n bytes) against the connection
// (fetch_records.go): the distinct blocks its responses hold leases on
// may add up to limit at most. Kept apart from its share of the fetch
// budget, so that a response's leases never hold up the reservations
// of its own partitions.
func (c *conn) tryLend(id *byte, n, limit int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if b := c.lent[id]; b != nil {
		b.refs++
		return true
	}
	if n > limit-c.lentBytes {
		return false
	}
	if c.lent == nil {
		c.lent = make(map[*byte]*lentBlock)
	}
	c.lent[id] = &lentBlock{refs: 1, size: n}
	c.lentBytes += n
	return true
}

// unlend gives back a lease that tryLend counted.
func (c *conn) unlend(id *byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.lent[id]
	if b == nil {
		panic("BUG: server: a connection's lent block released more often than lent")
	}
	if b.refs--; b.refs == 0 {
		delete(c.lent, id)
		c.lentBytes -= b.size
	}
}

// shareChangedLocked wakes takeShare's waiters.
func (c *conn) shareChangedLocked() {
	if c.shareCh != nil {
		close(c.shareCh)
		c.shareCh = nil
	}
}

// forceBudget takes n bytes of fetch budget past both bounds (a first
// batch larger than reserved, framing).
func (c *conn) forceBudget(n int64) {
	c.mu.Lock()
	c.shareUsed += n
	c.mu.Unlock()
	c.s.fetchBudget.force(n)
}

// releaseBudget returns fetch budget to the connection's share and to the
// agent.
func (c *conn) releaseBudget(n int64) {
	c.mu.Lock()
	c.releaseBudgetLocked(n)
	c.mu.Unlock()
}

// releaseBudgetLocked is releaseBudget with mu held. The agent budget's
// lock is a leaf: taking it under c.mu is fine.
func (c *conn) releaseBudgetLocked(n int64) {
	if n <= 0 {
		return
	}
	c.shareUsed -= n
	c.shareChangedLocked()
	c.s.fetchBudget.release(n)
}

// respond completes request seq with a fully framed response (nil for
// none). Safe from any goroutine.
func (c *conn) respond(seq uint64, resp []outBuf) {
	size := outLen(resp)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	// A reservation covers the response as encoded: take or give back
	// the difference (framing, and a first batch larger than reserved).
	if r, ok := c.reserved[seq]; ok {
		if d := size - r; d > 0 {
			c.shareUsed += d
			c.s.fetchBudget.force(d)
		} else {
			c.releaseBudgetLocked(-d)
		}
		c.reserved[seq] = size
	}
	if seq != c.nextWrite {
		c.pending[seq] = resp // nil: no response (acks=0); presence is what counts
		c.pendingBytes += size
		if r, ok := c.reserved[seq]; ok {
			c.pendingShare += r
			c.shareChangedLocked()
		}
		c.mu.Unlock()
		return
	}
	take := func(seq uint64, r []outBuf) {
		for _, b := range r {
			if len(b.b) > 0 {
				c.writeQ = append(c.writeQ, b)
				c.writeQBytes += int64(len(b.b))
			}
		}
		if b, ok := c.reserved[seq]; ok {
			delete(c.reserved, seq)
			c.wireBudget += b
		}
	}
	take(seq, resp)
	c.nextWrite++
	for {
		r, ok := c.pending[c.nextWrite]
		if !ok {
			break
		}
		delete(c.pending, c.nextWrite)
		c.pendingBytes -= outLen(r)
		c.pendingShare -= c.reserved[c.nextWrite]
		take(c.nextWrite, r)
		c.nextWrite++
	}
	c.shareChangedLocked()
	c.flushLocked()
	start := c.resumeLocked()
	c.mu.Unlock()
	if start {
		go c.work()
	}
}

// flushLocked hands the write queue to the event loop, in order, once the
// previous hand-off was written and gnet's outbound buffer is (nearly)
// empty. Why not hand everything over at once: gnet copies whatever the
// socket does not take into its outbound buffer, from a pool that keeps
// freed chunks until the next GC, so a client that reads slowly made the
// agent hold each response twice or three times over (the heap profile of
// TestPipelinedFetchesNeverRead: 68 MB of gnet pool beside 50 MB of
// responses). Holding them here keeps one copy, counted.
//
// AsyncWritev is called under mu so that writes reach the event loop in
// sequence order; it only queues a task and does not block. Its callback
// runs on the loop once the bytes are on the socket or in gnet's
// outbound buffer.
func (c *conn) flushLocked() {
	if len(c.writeQ) == 0 || c.handoff > 0 || c.outbound > outboundLowWater || c.closed {
		return
	}
	// At most writevMax bytes and writevMaxPieces pieces a time, so
	// gnet's copy stays small when the socket is full. A piece that does
	// not fit (a partition's record batches, up to megabytes, or a lent
	// batch behind the framing) goes in parts: its head now, the rest
	// first in the queue. Each hand-off waits for the one before, so a
	// full one each time is what keeps a fast reader's socket busy.
	var n int64
	i := 0
	for i < len(c.writeQ) && i < writevMaxPieces && n+int64(len(c.writeQ[i].b)) <= writevMax {
		n += int64(len(c.writeQ[i].b))
		i++
	}
	var head []outBuf
	if room := writevMax - n; i < len(c.writeQ) && i < writevMaxPieces && (room >= splitMin || i == 0) {
		q := &c.writeQ[i]
		head = []outBuf{{b: q.b[:room:room]}}
		q.whole = q.wholeBuf()
		q.b = q.b[room:]
		n += room
	}
	// A fresh slice for gnet, and the queue's slots cleared: a response
	// must not stay reachable through the queue's array once written.
	out := make([]outBuf, i, i+len(head))
	copy(out, c.writeQ)
	out = append(out, head...)
	clear(c.writeQ[:i])
	c.writeQ = c.writeQ[i:]
	if len(c.writeQ) == 0 {
		c.writeQ = nil
	}
	c.writeQBytes -= n
	c.handoff += n
	if err := c.tr.writev(c, out, n); err != nil {
		c.handoff -= n
		c.closeLocked()
	}
}

// written is the AsyncWritev callback: n bytes left our hands; outbound
// is gnet's outbound buffer now. Runs on the event loop.
func (c *conn) written(bufs []outBuf, n int64, outbound int) {
	releaseResponses(bufs)
	c.mu.Lock()
	c.handoff -= n
	c.gnetTotal += n
	c.mu.Unlock()
	c.observeOutbound(outbound)
	c.mu.Lock()
	drained := c.closeOnDrain && c.handoff == 0 && len(c.writeQ) == 0
	c.mu.Unlock()
	if drained {
		c.close()
	}
}

// closeWhenSent closes the connection once the responses already queued
// for the socket have left for it (a failed SASL login: its error
// response first, then the close). gnet writes what it holds before it
// closes; the TLS writer would not, so the close waits for its write. A
// response still waiting for its turn behind earlier ones is dropped with
// the connection.
func (c *conn) closeWhenSent() {
	c.mu.Lock()
	if c.handoff == 0 && len(c.writeQ) == 0 {
		c.mu.Unlock()
		c.close()
		return
	}
	c.closeOnDrain = true
	c.mu.Unlock()
}

// observeOutbound records the size of gnet's outbound buffer, read on the
// event loop (OnTraffic, the write callback). Fetch budget beyond what is
// still unsent is released, the write queue moves on, a blocked worker
// restarts, and while bytes remain in the outbound buffer a Wake is
// scheduled to look again: gnet has no drain callback, and without a look
// a connection whose client read everything and went quiet would pin its
// budget and its queued responses forever. The look backs off while the
// client reads nothing and comes back to soon as it reads.
func (c *conn) observeOutbound(outbound int) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	drained := int64(outbound) < c.outbound
	c.outbound = int64(outbound)
	// A client that reads nothing of what waits for it is closed after
	// SlowClientTimeout; one that reads, however slowly, is not.
	slow := false
	switch sent := c.gnetTotal - c.outbound; {
	case sent > c.lastSent || c.outbound+c.writeQBytes+c.handoff == 0:
		c.lastSent = sent
		c.stuckSince = time.Time{}
	case c.stuckSince.IsZero():
		c.stuckSince = time.Now()
	default:
		slow = time.Since(c.stuckSince) > c.s.cfg.SlowClientTimeout
	}
	if slow {
		unsent := c.outbound + c.writeQBytes + c.handoff
		c.mu.Unlock()
		mSlowClientsClosed.Inc()
		c.s.log.Warn("closing a client that read none of its responses", "remote", c.remote,
			"unsent_bytes", unsent, "for", c.s.cfg.SlowClientTimeout, "setting", "--slow-client-timeout")
		c.close()
		return
	}
	// The bytes leave in order and the budget is the oldest bytes', so
	// budget beyond what is still unsent belongs to bytes gone.
	if keep := min(c.wireBudget, c.writeQBytes+c.handoff+c.outbound); keep < c.wireBudget {
		c.releaseBudgetLocked(c.wireBudget - keep)
		c.wireBudget = keep
	}
	c.flushLocked()
	start := c.resumeLocked()
	var arm time.Duration
	switch {
	case c.outbound == 0:
		c.pollDelay = 0
	case !c.pollArmed:
		c.pollArmed = true
		if drained {
			c.pollDelay = outboundPollMin
		} else {
			c.pollDelay = min(max(2*c.pollDelay, outboundPollMin), outboundPollMax)
		}
		arm = c.pollDelay
	}
	c.mu.Unlock()
	if arm > 0 {
		time.AfterFunc(arm, c.pollOutbound)
	}
	if start {
		go c.work()
	}
}

// pollOutbound has the event loop look at the outbound buffer again.
func (c *conn) pollOutbound() {
	c.mu.Lock()
	c.pollArmed = false
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.tr.wake() // OnTraffic calls observeOutbound
	}
}

// busy reports whether the connection has responses not yet written to
// its socket or requests not yet answered (FlushResponses).
func (c *conn) busy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && (len(c.pending) > 0 || c.nextWrite < c.nextSeq || len(c.writeQ) > 0 || c.handoff > 0)
}

// outBuf is a piece of a response on its way to the socket. A response
// is one piece (frameResponse) or several (a fetch's framing between its
// partitions' record batches, fetch_encode.go), written in order.
// release marks a whole buffer the response owns alone, which written
// may give back to its pool (releaseResponses); a piece that is part of
// another buffer never is.
type outBuf struct {
	b       []byte
	release bool
	// whole is the buffer b was cut from when flushLocked split a large
	// piece (b is then its tail), or a record set's buffer of which b is
	// the last piece (fetch_records.go); release gives back whole, not b.
	whole []byte
	// leases keep the cached blocks the pieces before and including this
	// one refer to counted (fetch_records.go), until this one is written.
	leases []*blockLease
}

// wholeBuf is the buffer a release of b gives back.
func (b *outBuf) wholeBuf() []byte {
	if b.whole != nil {
		return b.whole
	}
	return b.b
}

// outLen is the bytes of a response's pieces.
func outLen(bufs []outBuf) int64 {
	var n int64
	for _, b := range bufs {
		n += int64(len(b.b))
	}
	return n
}

// closeLocked marks the connection closed and returns every byte of
// fetch budget its responses held.
func (c *conn) closeLocked() {
	if c.closed {
		return
	}
	c.closed = true
	// Frames never dispatched: the queue holds their only reference.
	for _, f := range c.queue {
		f.release()
	}
	c.queue = nil
	c.pending = nil
	c.pendingBytes = 0
	c.writeQ = nil
	c.writeQBytes = 0
	held := c.wireBudget
	for _, r := range c.reserved {
		held += r
	}
	c.reserved = nil
	c.wireBudget = 0
	c.pendingShare = 0
	c.releaseBudgetLocked(held)
}

func (c *conn) markClosed() {
	c.mu.Lock()
	c.closeLocked()
	c.mu.Unlock()
}

func (c *conn) close() {
	c.markClosed()
	c.tr.close()
}

// isClosed reports whether the connection has gone; long waits check it to
// stop early.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// frameResponse prefixes a response body with its size and correlation id,
// and the empty tagged-field section of response header v1.
func frameResponse(corrID int32, flexibleHeader bool, body func([]byte) []byte, sizeHint int) outBuf {
	b := newResponse(sizeHint)
	binary.BigEndian.PutUint32(b[4:], uint32(corrID))
	if flexibleHeader {
		b = append(b, 0)
	}
	b = body(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	// The whole buffer is this response's alone (grown or not).
	return outBuf{b: b, release: true}
}

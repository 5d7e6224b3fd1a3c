package server

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"
)

// maxConnQueued bounds the number of requests queued on one connection and
// not yet dispatched; Kafka clients keep at most a handful in flight.
const maxConnQueued = 256

// conn is one client connection.
//
// Request side: the event loop appends frames to queue; one worker
// goroutine, started on demand and exiting when the queue is empty, pops
// and dispatches them in order, giving each the next sequence number.
//
//	idle --enqueue--> running --queue empty--> idle
//
// Response side: a request completes by calling respond(seq, bytes), from
// any goroutine, in any order. Responses are written strictly in sequence
// order: a response that finishes early waits in pending for its turn. A
// request that gets no response (acks=0) completes with nil bytes, which
// only advances the sequence.
type conn struct {
	s      *Server
	gc     gnet.Conn
	remote string

	mu          sync.Mutex
	queue       [][]byte          // guarded by mu: frames waiting for dispatch
	queuedBytes int               // guarded by mu
	running     bool              // guarded by mu: a worker is draining queue
	stalled     bool              // guarded by mu: OnTraffic stopped cutting frames
	closed      bool              // guarded by mu
	nextSeq     uint64            // guarded by mu: next sequence to hand out
	nextWrite   uint64            // guarded by mu: next sequence to write
	pending     map[uint64][]byte // guarded by mu: completed, waiting for turn
	// pendingProduces counts acks=1/all produce requests admitted to the
	// pipeline and not yet answered.
	pendingProduces atomic.Int32
	// zone is whether the client's zone matches the agent's (zones.go).
	zone atomic.Int32
}

func newConn(s *Server, gc gnet.Conn) *conn {
	c := &conn{s: s, gc: gc, pending: make(map[uint64][]byte)}
	if a := gc.RemoteAddr(); a != nil {
		c.remote = a.String()
	}
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

// enqueue queues a frame; called on the event loop, never blocks.
func (c *conn) enqueue(frame []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.queue = append(c.queue, frame)
	c.queuedBytes += len(frame)
	start := !c.running
	c.running = true
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
		frame := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.queuedBytes -= len(frame)
		seq := c.nextSeq
		c.nextSeq++
		wake := c.stalled && len(c.queue) < maxConnQueued/2 && c.queuedBytes < c.s.cfg.MaxConnPendingBytes/2
		if wake {
			c.stalled = false
		}
		c.mu.Unlock()
		if wake {
			// Frames may sit in gnet's inbound buffer; have the event
			// loop cut them now.
			_ = c.gc.Wake(nil)
		}
		if !c.s.dispatch(c, seq, frame) {
			c.close()
			return
		}
	}
}

// respond completes request seq with a fully framed response (nil for
// none). Safe from any goroutine.
func (c *conn) respond(seq uint64, resp []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if seq != c.nextWrite {
		if resp == nil {
			resp = noResponse
		}
		c.pending[seq] = resp
		return
	}
	var out [][]byte
	if resp != nil {
		out = append(out, resp)
	}
	c.nextWrite++
	for {
		r, ok := c.pending[c.nextWrite]
		if !ok {
			break
		}
		delete(c.pending, c.nextWrite)
		c.nextWrite++
		if len(r) > 0 {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return
	}
	// AsyncWritev is called under mu so that writes reach the event loop
	// in sequence order; it only queues a task and does not block.
	if err := c.gc.AsyncWritev(out, nil); err != nil {
		c.closed = true
	}
}

// noResponse marks a completed request that writes nothing (acks=0).
var noResponse = []byte{}

func (c *conn) markClosed() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.pending = nil
	c.mu.Unlock()
}

func (c *conn) close() {
	c.markClosed()
	_ = c.gc.Close()
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
func frameResponse(corrID int32, flexibleHeader bool, body func([]byte) []byte, sizeHint int) []byte {
	b := make([]byte, 8, max(64, sizeHint))
	binary.BigEndian.PutUint32(b[4:], uint32(corrID))
	if flexibleHeader {
		b = append(b, 0)
	}
	b = body(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

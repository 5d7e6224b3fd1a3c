package server

import "time"

// A client stalls on us when it can send nothing more until we answer:
// its produce pipeline is full. Waiting out the flush interval then adds
// latency and no bytes from that client, so the open segment is sealed
// early (pipeline.SealIfAtLeast: at once from 2 MiB, within the early-seal
// budget below that).
//
// Two signs say a client stalled:
//   - clientPipelineDepth produce requests parked on its connection
//     (franz-go and the Java client keep five in flight per broker);
//   - produce requests parked and none sent for stallQuiet. Clients that
//     stop short of five do this: sarama keeps one request in flight when
//     idempotent, and librdkafka one per partition, so a connection of
//     librdkafka's with four partitions behind it stalls at four. A client
//     that still had room would have sent its next batch within its linger
//     (5 ms in every client's recommended setting, and the default of
//     librdkafka and of the Java client since Kafka 4.0).
//
// Requests the connection has queued but not yet dispatched, and bytes of
// one still arriving, are not silence: the client sent them, and the
// agent has not got to them.
//
// A quiet client that is merely idle (a light producer between records)
// looks the same; sealing for it costs a PUT from the same budget and
// answers it sooner, which is the budget's purpose.

// stallQuiet is how long a connection with produce parked must send no
// produce before it counts as stalled: three lingers of 5 ms.
const stallQuiet = 15 * time.Millisecond

// watchStall notes a produce parked on c and makes sure a check runs
// stallQuiet after the connection's last produce.
func (s *Server) watchStall(c *conn, now time.Time) {
	c.lastProduce.Store(now.UnixNano())
	if c.stallArmed.CompareAndSwap(false, true) {
		time.AfterFunc(stallQuiet, func() { s.checkStall(c) })
	}
}

// checkStall runs on a timer: it seals the open segment early when c has
// produce parked and has sent none for stallQuiet, re-arms itself while
// the connection is still sending, and disarms when nothing is parked.
func (s *Server) checkStall(c *conn) {
	for {
		if c.isClosed() || c.pendingProduces.Load() <= 0 {
			c.stallArmed.Store(false)
			// A produce parked between the load and the store found the
			// watch armed and left it to us: take it back if so.
			if c.isClosed() || c.pendingProduces.Load() <= 0 || !c.stallArmed.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		idle := time.Since(time.Unix(0, max(c.lastProduce.Load(), c.lastReceived.Load())))
		if idle >= stallQuiet && c.hasQueued() {
			// The client did send more; we have not got to it yet (a
			// busy agent, or a large batch being checked).
			idle = 0
		}
		if idle < stallQuiet {
			time.AfterFunc(stallQuiet-idle, func() { s.checkStall(c) })
			return
		}
		mStallsQuiet.Inc()
		s.deps.Pipeline.SealIfAtLeast(minEarlySealBytes)
		// The client's requests are on their way out; its next produce
		// re-arms the watch.
		c.stallArmed.Store(false)
		return
	}
}

// hasQueued reports whether frames wait on c for its worker (or, with
// the connection stalled, in gnet's inbound buffer).
func (c *conn) hasQueued() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) > 0 || c.running || c.stalled
}

// received notes that bytes arrived from the client (the transport calls
// it as they do).
func (c *conn) received(now time.Time) { c.lastReceived.Store(now.UnixNano()) }

package server

// Transports. A conn (conn.go) is the per-connection machinery: the frame
// queue and its worker, ordered responses, the in-flight and unsent-byte
// bounds, the connection's share of the fetch budget and slow-client
// detection. It needs three things of its socket, which transport names:
// hand over response bytes without blocking, learn when they left, and be
// woken or closed. Two transports serve it:
//
//   - gnet (plaintext, server.go): one event loop per core reads every
//     connection, cuts frames (OnTraffic) and writes with AsyncWritev. It
//     cannot terminate TLS, and is untouched by TLS's existence: the only
//     cost the abstraction adds to it is one interface call where conn
//     called gnet.Conn's methods directly, with no allocation or lock per
//     request (the callback closure AsyncWritev takes is the one it took
//     before).
//   - crypto/tls (tls_conn.go), used for every port of the listener when
//     --kafka-tls-cert is set: a standard net.Listener, and per connection
//     one reader goroutine that performs the handshake, sets the principal
//     from the client certificate, then cuts frames into the same
//     frameBufs and queues them with the same conn.enqueue; and one writer
//     goroutine that takes the chunks flushLocked hands over (writev) and
//     writes them with blocking writes, then reports them written.
//
// A listener speaks one protocol, as a Kafka listener does: with TLS
// configured every port (Config.BrokerIdentities) is TLS-only, and a
// plaintext client there fails the handshake and is closed.
//
// How the bounds carry over to TLS: the reader stops reading when the
// connection's queue is at its bound (overBound), and waits to be woken by
// the worker, so TCP backpressure reaches the client; gnet has no such
// pause and needs the inbound cap of OnTraffic instead. The writer's
// blocking write is the outbound buffer: bytes it holds count as handoff
// (flushLocked hands it at most writevMax at a time, one chunk at once),
// and its outbound is always zero. A client that reads nothing makes a
// write outlast its deadline (SlowClientTimeout per writePiece bytes),
// which closes the connection as observeOutbound does for gnet.

import (
	"github.com/panjf2000/gnet/v2"
)

// transport is the socket under a conn.
type transport interface {
	// writev hands bufs, n bytes in all, to the socket in order, without
	// blocking. Once they are on the socket or in the transport's own
	// buffer (so bufs are no longer read), c.written(bufs, n, outbound)
	// runs. Called with c.mu held, so
	// hand-offs keep their order; at most one is outstanding (flushLocked
	// waits for written before the next). An error means the connection
	// is gone.
	writev(c *conn, bufs []outBuf, n int64) error
	// wake has the connection's reader look at it again: cut the frames
	// it stopped cutting at the queue's bound, and (gnet) look at the
	// outbound buffer. Never blocks.
	wake()
	// close closes the socket; the reader then cleans up (OnClose for
	// gnet, serveTLS's return for TLS). Never blocks.
	close()
}

// gnetTransport is a connection of the plaintext event loop.
type gnetTransport struct{ gc gnet.Conn }

func (t gnetTransport) writev(c *conn, bufs []outBuf, n int64) error {
	vec := make([][]byte, len(bufs))
	for i, b := range bufs {
		vec[i] = b.b
	}
	return t.gc.AsyncWritev(vec, func(gc gnet.Conn, err error) error {
		if err != nil {
			return nil // closed: OnClose released everything
		}
		c.written(bufs, n, gc.OutboundBuffered())
		return nil
	})
}

func (t gnetTransport) wake()  { _ = t.gc.Wake(nil) }
func (t gnetTransport) close() { _ = t.gc.Close() }

package server

// The TLS transport (transport.go has the design): a crypto/tls listener on
// each port, a reader goroutine per connection that performs the handshake
// and cuts frames, a writer goroutine per connection that writes what
// flushLocked hands over.

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/internal/tlsconf"
)

var (
	mTLSHandshakeFailed = metrics.NewCounter(`sluice_kafka_tls_handshakes_failed_total`)
	mTLSPrincipalFailed = metrics.NewCounter(`sluice_kafka_tls_principal_unmapped_total`)
)

// writePiece is how much of a response the TLS writer writes under one
// deadline of SlowClientTimeout: a client that takes longer than that to
// read this much is the slow client observeOutbound closes on gnet.
const writePiece = 256 << 10

// smallFrame: frames up to this size are read straight into their buffer;
// a larger one is allocated once an eighth of it has arrived, as on gnet
// (OnTraffic), so a client that only claims a large frame cannot make the
// agent allocate more than eight times what it sent.
const smallFrame = 64 << 10

// tlsTransport is one TLS connection.
type tlsTransport struct {
	nc     net.Conn  // the TCP connection: closing it stops both goroutines
	tc     *tls.Conn // over nc
	out    chan []outBuf
	wakeCh chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newTLSTransport(nc net.Conn, cfg *tls.Config) *tlsTransport {
	return &tlsTransport{nc: nc, tc: tls.Server(nc, cfg), out: make(chan []outBuf, 1),
		wakeCh: make(chan struct{}, 1), done: make(chan struct{})}
}

func (t *tlsTransport) writev(_ *conn, bufs []outBuf, _ int64) error {
	select {
	case t.out <- bufs:
		return nil
	case <-t.done:
		return net.ErrClosed
	default:
		// flushLocked hands over one chunk at a time; the writer took the
		// previous one off the channel before reporting it written.
		panic("BUG: server: a second TLS write handed over before the first was written")
	}
}

func (t *tlsTransport) wake() {
	select {
	case t.wakeCh <- struct{}{}:
	default:
	}
}

// close closes the TCP connection without a TLS close_notify: that alert
// is a write, which would wait behind a write blocked on a client that
// reads nothing; Kafka clients take a closed socket as the end.
func (t *tlsTransport) close() {
	t.once.Do(func() {
		close(t.done)
		_ = t.nc.Close()
	})
}

// startTLS listens on every address of the listener with TLS.
func (s *Server) startTLS(addrs []string) error {
	cfg, err := tlsconf.Server(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.cfg.TLS.ClientCAFile, "kafka", s.log)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if s.mapper, err = parsePrincipalRules(s.cfg.TLS.PrincipalMappingRules); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.tlsCfg = cfg
	for _, a := range addrs {
		ln, err := net.Listen("tcp", strings.TrimPrefix(a, "tcp://"))
		if err != nil {
			for _, l := range s.listeners {
				_ = l.Close()
			}
			return fmt.Errorf("server: listen on %s (flag --kafka-addr): %w", a, err)
		}
		s.listeners = append(s.listeners, ln)
	}
	s.addr = s.listeners[0].Addr()
	if s.cfg.AdvertisedAddr == "" {
		host, _, _ := net.SplitHostPort(s.cfg.Addr)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		s.cfg.AdvertisedAddr = net.JoinHostPort(host, strconv.Itoa(s.addr.(*net.TCPAddr).Port))
	}
	for _, ln := range s.listeners {
		s.acceptWG.Add(1)
		go s.acceptTLS(ln)
	}
	go func() {
		s.acceptWG.Wait()
		close(s.runDone)
	}()
	return nil
}

func (s *Server) acceptTLS(ln net.Listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait and try again, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("kafka listener: accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		t := newTLSTransport(nc, s.tlsCfg)
		c := newConn(s, t, nc.RemoteAddr())
		if !s.addConn(c) {
			_ = nc.Close()
			continue
		}
		s.connWG.Add(1)
		go s.serveTLS(c, t)
	}
}

// addConn registers a new connection unless MaxConnections are open (with
// a log line at most once a second): every connection may hold its
// bounded share of memory, so their number must be bounded too.
func (s *Server) addConn(c *conn) bool {
	s.connsMu.Lock()
	if len(s.conns) >= s.cfg.MaxConnections || s.closing.Load() {
		s.connsMu.Unlock()
		mConnsRefused.Inc()
		if s.refusedLog.Allow(time.Now(), time.Second) {
			s.log.Warn("refusing connection: too many connections",
				"remote", c.remote, "max", s.cfg.MaxConnections,
				"hint", "raise --max-connections if the agent has the memory for them")
		}
		return false
	}
	s.conns[c] = struct{}{}
	s.connsMu.Unlock()
	mConnsOpened.Inc()
	return true
}

// serveTLS is a TLS connection's reader: handshake, principal, then frames
// until the connection ends; then it cleans up as OnClose does.
func (s *Server) serveTLS(c *conn, t *tlsTransport) {
	defer s.connWG.Done()
	defer func() {
		c.close()
		s.uncountZone(c)
		s.connsMu.Lock()
		delete(s.conns, c)
		s.connsMu.Unlock()
		mConnsClosed.Inc()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
	err := t.tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		// A plaintext client, an unknown CA, no certificate where one is
		// required: the client sees the alert (or a closed socket).
		mTLSHandshakeFailed.Inc()
		s.log.Info("closing connection: TLS handshake failed", "remote", c.remote, "err", err)
		return
	}
	if certs := t.tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		p, err := s.mapper.certPrincipal(certs[0])
		if err != nil {
			mTLSPrincipalFailed.Inc()
			s.log.Warn("closing connection: client certificate maps to no principal", "remote", c.remote,
				"err", err, "setting", "--ssl-principal-mapping-rules")
			return
		}
		c.setPrincipal(p)
	}
	go t.writeLoop(c, s.cfg.SlowClientTimeout)
	s.readTLS(c, t)
}

// readTLS cuts frames out of the decrypted stream, as OnTraffic does.
func (s *Server) readTLS(c *conn, t *tlsTransport) {
	// No bufio: tls.Conn holds the decrypted record already, so a small
	// read is a copy out of it, and an idle connection keeps no buffer of
	// ours.
	br := noteReceived{r: t.tc, c: c}
	var hdr [6]byte
	for {
		for c.overBound() {
			// Not reading is the backpressure: the client's writes stop
			// at its socket. The worker wakes us when it has caught up.
			select {
			case <-t.wakeCh:
			case <-t.done:
				return
			}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return // closed by either side
		}
		size := int(int32(binary.BigEndian.Uint32(hdr[:])))
		if s.refuseFrameSize(c, size) {
			return
		}
		key := int16(binary.BigEndian.Uint16(hdr[4:]))
		var f *frameBuf
		if size <= smallFrame {
			f = newFrame(size, key)
			copy(f.b, hdr[4:])
			if _, err := io.ReadFull(br, f.b[2:]); err != nil {
				f.release()
				return
			}
		} else {
			head := make([]byte, size/8)
			copy(head, hdr[4:])
			if _, err := io.ReadFull(br, head[2:]); err != nil {
				return
			}
			f = newFrame(size, key)
			copy(f.b, head)
			if _, err := io.ReadFull(br, f.b[len(head):]); err != nil {
				f.release()
				return
			}
		}
		c.enqueue(f)
	}
}

// noteReceived tells the connection when bytes arrive (stall.go: a
// request still streaming in is not silence).
type noteReceived struct {
	r io.Reader
	c *conn
}

func (n noteReceived) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if k > 0 {
		n.c.received(time.Now())
	}
	return k, err
}

// coalesceMax: runs of pieces (small responses, a fetch response's
// framing between its partitions' records) up to this much in all are
// copied into one buffer and written with one Write, so they go out as
// one TLS record (a Write per piece would make a record, with its header,
// MAC and syscall, of each). One TLS record holds at most 16 KiB.
const coalesceMax = 16 << 10

// coalesceBufs are the buffers of that copy, shared by every connection:
// an idle TLS connection holds none.
var coalesceBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceMax); return &b }}

// writeLoop writes the chunks flushLocked hands over, in order, and reports
// each written; it ends when the connection closes.
func (t *tlsTransport) writeLoop(c *conn, timeout time.Duration) {
	for {
		var given []outBuf // released by written once the write returned
		select {
		case given = <-t.out:
		case <-t.done:
			return
		}
		if err := t.write(given, timeout); err != nil {
			t.writeFailed(c, err, timeout)
			return
		}
		c.written(given, outLen(given), 0)
	}
}

// write writes the pieces in order; runs of small ones go out coalesced
// (see coalesceMax), large ones as they are.
func (t *tlsTransport) write(bufs []outBuf, timeout time.Duration) error {
	var bp *[]byte
	defer func() {
		if bp != nil {
			*bp = (*bp)[:0]
			coalesceBufs.Put(bp)
		}
	}()
	flush := func() error {
		if bp == nil || len(*bp) == 0 {
			return nil
		}
		err := t.writeOne(*bp, timeout)
		*bp = (*bp)[:0]
		return err
	}
	for _, b := range bufs {
		if len(b.b) < coalesceMax {
			if bp == nil {
				bp = coalesceBufs.Get().(*[]byte)
			}
			if len(*bp)+len(b.b) > coalesceMax {
				if err := flush(); err != nil {
					return err
				}
			}
			*bp = append(*bp, b.b...)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := t.writeOne(b.b, timeout); err != nil {
			return err
		}
	}
	return flush()
}

// writeOne writes b, at most writePiece bytes under one deadline.
func (t *tlsTransport) writeOne(b []byte, timeout time.Duration) error {
	for len(b) > 0 {
		p := b[:min(len(b), writePiece)]
		b = b[len(p):]
		_ = t.nc.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := t.tc.Write(p); err != nil {
			return err
		}
	}
	return nil
}

func (t *tlsTransport) writeFailed(c *conn, err error, timeout time.Duration) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		mSlowClientsClosed.Inc()
		c.s.log.Warn("closing a client that read none of its responses", "remote", c.remote,
			"for", timeout, "setting", "--slow-client-timeout")
	}
	c.close()
}

// stopTLS closes the listeners and every connection, and waits for their
// goroutines until ctx ends.
func (s *Server) stopTLS(ctx context.Context) error {
	for _, ln := range s.listeners {
		_ = ln.Close()
	}
	s.connsMu.Lock()
	for c := range s.conns {
		c.tr.close()
	}
	s.connsMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.acceptWG.Wait()
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Package server owns the Kafka listener of an agent: the gnet event loop
// (plaintext) or crypto/tls connections (TLS; transport.go), framing,
// request headers, routing by API key, and per-connection ordered
// asynchronous responses. Handlers live one file per Kafka API.
//
// The event loop never blocks (DESIGN.md invariant 6): OnTraffic only reads
// frames out of the inbound buffer into buffers of their own (produce
// frames pooled, see frames.go) and queues complete ones on their
// connection. A per-connection worker goroutine (started on demand,
// exiting when idle) decodes and dispatches them in arrival order; handlers
// that wait (produce for its commit, fetch for data) complete later from
// other goroutines, and the connection's response sequencer writes responses
// strictly in request order.
package server

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"sluice.dev/cache"
	"sluice.dev/internal/lograte"
	"sluice.dev/meta"
	"sluice.dev/pipeline"
)

// Config configures the Kafka listener.
type Config struct {
	// Addr is host:port to listen on; port 0 picks a free port.
	Addr string
	// AdvertisedAddr is what Metadata tells clients to dial; defaults to the
	// bound listener address.
	AdvertisedAddr string
	// NodeID is this agent's broker id until meta assigns one
	// (SetNodeID).
	NodeID int32
	// AgentID names this agent in meta's registry (agents.go).
	AgentID string
	// BrokerIdentities is how many Kafka node ids this agent answers
	// under (agents.go; flag --broker-identities); 0 or 1: one. Identity
	// k listens on Addr's port + k and is advertised at AdvertisedAddr's
	// port + k, unless IdentitiesSharePort puts them all at the one
	// address (which librdkafka cannot use). Every agent of a cluster
	// must use the same values.
	BrokerIdentities    int
	IdentitiesSharePort bool
	// Zone, Group and Roles place this agent (zones.go).
	Zone  string
	Group string
	Roles []string
	// MaxRequestBytes bounds one request frame (flag --max-request-bytes).
	// A larger frame closes the connection: Kafka framing gives no way to
	// skip it without reading it, and reading it is what the bound forbids.
	MaxRequestBytes int
	// MaxConnPendingBytes bounds request bytes queued on one connection but
	// not yet dispatched. Past it the event loop stops cutting frames from
	// that connection until its worker catches up.
	MaxConnPendingBytes int
	// MaxInflightPerConn bounds the requests one connection has
	// dispatched and not yet answered (flag
	// --max-inflight-requests-per-conn): handlers running, long polls
	// and group waits parked, responses waiting for their turn. Past it
	// the connection's requests wait undispatched (conn.go).
	MaxInflightPerConn int
	// MaxConnUnsentBytes bounds response bytes one connection has not
	// yet put on its socket (flag --max-conn-unsent-bytes). Past it the
	// connection's requests wait undispatched until the client reads. It
	// is also the connection's share of MaxFetchBytesInflight.
	MaxConnUnsentBytes int
	// MaxFetchBytesInflight bounds fetch-response bytes built and not yet
	// on a socket, over all connections (flag --max-fetch-bytes-inflight).
	MaxFetchBytesInflight int64
	// MaxConnections bounds open client connections (flag
	// --max-connections); excess connections are closed on accept.
	MaxConnections int
	// ConnectionsMaxIdle closes a connection whose client has sent
	// nothing, with nothing in progress, for this long (Kafka's
	// connections.max.idle.ms; flag --connections-max-idle; idle.go).
	// Default 10 minutes, as Kafka's; negative: never.
	ConnectionsMaxIdle time.Duration
	// SlowClientTimeout closes a connection whose client has read none of
	// its unsent responses for this long (flag --slow-client-timeout):
	// such a client holds its share of MaxFetchBytesInflight, and a few of
	// them would otherwise starve every other fetch (nats-server closes
	// its slow consumers the same way). Default 30s.
	SlowClientTimeout time.Duration
	// AutoCreateTopics creates unknown topics named in Metadata requests
	// that allow it (flag --auto-create-topics).
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics requests that leave it at -1.
	DefaultPartitions int32
	// Multicore runs one event loop per CPU.
	Multicore bool
	// TLS, when its CertFile is set, serves every port of the listener
	// over TLS instead of plaintext (tls.go, transport.go).
	TLS TLSConfig
	// Authorization (issue 14, authz.go): Authorizer is --authorizer,
	// SuperUsers --super-users (allowed everything in acl and shadow
	// modes).
	Authorizer AuthorizerMode
	SuperUsers []Principal
	// SASL (issue 14): authentication on the listener (sasl.go); the
	// zero value is none.
	SASL   SASLConfig
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 100 << 20 // Kafka's socket.request.max.bytes default
	}
	if c.MaxConnPendingBytes <= 0 {
		c.MaxConnPendingBytes = 64 << 20
	}
	if c.MaxInflightPerConn <= 0 {
		// Far above what clients pipeline for throughput (the Java
		// client and franz-go keep 5 in flight), far below a flood.
		c.MaxInflightPerConn = 32
	}
	if c.MaxConnUnsentBytes <= 0 {
		c.MaxConnUnsentBytes = 64 << 20 // a full fetch (55 MiB) fits
	}
	if c.MaxFetchBytesInflight <= 0 {
		c.MaxFetchBytesInflight = 256 << 20
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 10000
	}
	if c.SlowClientTimeout <= 0 {
		c.SlowClientTimeout = 30 * time.Second
	}
	if c.ConnectionsMaxIdle == 0 {
		c.ConnectionsMaxIdle = 10 * time.Minute
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Deps are the parts of the agent the handlers use.
type Deps struct {
	Meta     meta.Client
	Pipeline *pipeline.Pipeline
	Index    *cache.Index
	// Blocks serves segment bytes: the agent's BlockCache, or its zone
	// cache (cache.Zone) when agents of a zone share theirs.
	Blocks RangeReader
}

// RangeReader reads a byte range of a segment object (cache.BlockCache's
// ReadRange contract: the result may alias cache memory, never modify
// it).
type RangeReader interface {
	ReadRange(ctx context.Context, key string, objectSize, off, length int64) ([]byte, error)
}

// Server is a running Kafka listener.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	topics  *topicCache
	waiters *fetchWaiters
	// fetchBudget bounds fetch-response bytes built and not yet on a
	// socket, over all connections (fetch.go, conn.go).
	fetchBudget *byteBudget
	// lent counts the cached blocks fetch responses refer to, against a
	// budget of MaxFetchBytesInflight of its own (fetch_records.go).
	lent *lentBlocks

	eng     gnet.Engine
	bootErr chan error
	runDone chan struct{}
	// idleStop ends closeIdleConns (idle.go), at Stop.
	idleStop chan struct{}
	addr     net.Addr
	closing  atomic.Bool
	connsMu  sync.Mutex
	conns    map[*conn]struct{} // guarded by connsMu
	// refusedLog limits the log line for connections refused over
	// MaxConnections to one a second.
	refusedLog lograte.Limiter
	clusterID  string
	nodeID     atomic.Int32
	view       agentView
	zoneConns  [2]atomic.Int64 // open connections whose client's zone matches / does not

	// The TLS transport (tls_conn.go), when Config.TLS is enabled.
	tlsCfg    *tls.Config
	mapper    *principalMapper
	listeners []net.Listener
	acceptWG  sync.WaitGroup // accept loops
	connWG    sync.WaitGroup // connection readers
	// authz is nil with --authorizer none: then no check runs
	// (authz.go).
	authz *authorizer
	// sasl is nil when no SASL mechanism is offered (sasl.go); set by
	// Start before the first connection.
	sasl *saslServer

	// console (issue 16): record batch bytes this server accepted and
	// returned, reported to meta with the agent's heartbeat (Traffic).
	// One atomic add per request, next to the process-wide counters.
	producedBytes, fetchedBytes atomic.Int64
}

// Traffic reports the record batch bytes this server accepted by Produce
// and returned by Fetch since it started (console, issue 16).
func (s *Server) Traffic() (produced, fetched int64) {
	return s.producedBytes.Load(), s.fetchedBytes.Load()
}

// New creates a server; Start begins listening.
func New(cfg Config, deps Deps) *Server {
	cfg.setDefaults()
	s := &Server{
		cfg:      cfg,
		deps:     deps,
		log:      cfg.Logger.With("component", "kafka"),
		bootErr:  make(chan error, 1),
		runDone:  make(chan struct{}),
		idleStop: make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.nodeID.Store(cfg.NodeID)
	s.topics = newTopicCache(deps.Meta)
	s.waiters = newFetchWaiters()
	s.fetchBudget = newByteBudget(cfg.MaxFetchBytesInflight)
	s.lent = newLentBlocks(newByteBudget(cfg.MaxFetchBytesInflight))
	if cfg.Authorizer != AuthorizerNone {
		s.authz = newAuthorizer(cfg.Authorizer, cfg.SuperUsers, deps.Meta, s.log)
	}
	return s
}

// Start listens and returns once the listener accepts connections.
func (s *Server) Start(ctx context.Context) error {
	id, err := s.deps.Meta.ClusterID(ctx)
	if err != nil {
		return fmt.Errorf("server: read cluster id: %w", err)
	}
	s.clusterID = id
	if s.sasl, err = newSASLServer(s.cfg.SASL); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if _, _, err := net.SplitHostPort(s.cfg.Addr); err != nil {
		return fmt.Errorf("server: bad --kafka-addr %q: %w", s.cfg.Addr, err)
	}
	addrs, err := s.listenAddrs()
	if err != nil {
		return err
	}
	// Listeners are registered before the first connection can arrive,
	// and the ACLs are read before it too.
	s.deps.Index.AddListener(s.onCommit)
	if s.authz != nil {
		s.authz.start(ctx)
	}
	if s.cfg.TLS.Enabled() {
		if err := s.startTLS(addrs); err != nil {
			return err
		}
		s.startIdleSweep()
		return nil
	}
	go func() {
		defer close(s.runDone)
		err := gnet.Rotate(s, addrs,
			gnet.WithMulticore(s.cfg.Multicore),
			// A restarted agent gets its port back at once, though the
			// killed process's connections linger in TIME_WAIT (Go's own
			// listeners set this too; found by sluice loadtest).
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReadBufferCap(256<<10),
			gnet.WithSocketRecvBuffer(1<<20),
			gnet.WithSocketSendBuffer(1<<20),
			gnet.WithLogger(gnetLogger{s.log}),
		)
		if err != nil {
			select {
			case s.bootErr <- err:
			default:
			}
			if !s.closing.Load() {
				s.log.Error("kafka listener stopped", "err", err)
			}
		}
	}()
	select {
	case err := <-s.bootErr:
		if err != nil {
			return fmt.Errorf("server: listen on %s (flag --kafka-addr): %w", s.cfg.Addr, err)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	s.startIdleSweep()
	return nil
}

// Addr is the bound listener address.
func (s *Server) Addr() net.Addr { return s.addr }

// AdvertisedAddr is the address Metadata hands to clients.
func (s *Server) AdvertisedAddr() string { return s.cfg.AdvertisedAddr }

// Stop closes the listener and every connection. In-flight requests whose
// completion arrives later find their connection closed and are dropped;
// the pipeline decides the fate of their data, never this package.
func (s *Server) Stop(ctx context.Context) error {
	if !s.closing.CompareAndSwap(false, true) {
		return nil
	}
	s.waiters.closeAll()
	close(s.idleStop)
	if s.authz != nil {
		s.authz.stop()
	}
	if s.cfg.TLS.Enabled() {
		return s.stopTLS(ctx)
	}
	err := s.eng.Stop(ctx)
	select {
	case <-s.runDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// OnBoot implements gnet.EventHandler.
//
// The bound address is learned here, before the engine accepts its first
// connection, so that Metadata never sees it unset.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	err := s.learnAddr()
	s.bootErr <- err
	if err != nil {
		return gnet.Shutdown
	}
	return gnet.None
}

func (s *Server) learnAddr() error {
	host, _, _ := net.SplitHostPort(s.cfg.Addr)
	fd, err := s.eng.DupListener("tcp", s.cfg.Addr) // identity 0's listener
	if err != nil {
		fd, err = s.eng.Dup() // the only one
	}
	if err != nil {
		return fmt.Errorf("server: find bound address: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("server: find bound address: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		s.addr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		s.addr = &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	default:
		return fmt.Errorf("server: unexpected listener address %T", sa)
	}
	if s.cfg.AdvertisedAddr == "" {
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		s.cfg.AdvertisedAddr = net.JoinHostPort(host, strconv.Itoa(s.addr.(*net.TCPAddr).Port))
	}
	return nil
}

// OnShutdown implements gnet.EventHandler.
func (s *Server) OnShutdown(gnet.Engine) {}

// OnOpen implements gnet.EventHandler.
//
// Past MaxConnections a new connection is closed at once (with a log line
// at most once a second): every connection may hold its bounded share of
// memory, so their number must be bounded too.
func (s *Server) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	s.connsMu.Lock()
	if len(s.conns) >= s.cfg.MaxConnections {
		s.connsMu.Unlock()
		mConnsRefused.Inc()
		if s.refusedLog.Allow(time.Now(), time.Second) {
			s.log.Warn("refusing connection: too many connections",
				"remote", addrString(gc.RemoteAddr()), "max", s.cfg.MaxConnections,
				"hint", "raise --max-connections if the agent has the memory for them")
		}
		return nil, gnet.Close
	}
	c := newConn(s, gnetTransport{gc}, gc.RemoteAddr())
	gc.SetContext(c)
	s.conns[c] = struct{}{}
	s.connsMu.Unlock()
	mConnsOpened.Inc()
	return nil, gnet.None
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.None
	}
	c.markClosed()
	if c.rd != nil {
		// A frame half read: only the loop ever held it.
		c.rd.release()
		c.rd = nil
	}
	s.uncountZone(c)
	s.connsMu.Lock()
	delete(s.conns, c)
	s.connsMu.Unlock()
	mConnsClosed.Inc()
	return gnet.None
}

// OnTick implements gnet.EventHandler.
func (s *Server) OnTick() (time.Duration, gnet.Action) { return time.Hour, gnet.None }

// OnTraffic cuts frames out of the inbound stream. It runs on the event
// loop and must never block.
//
// A frame is read straight into its own buffer (newFrame), in as many
// calls as its bytes take to arrive, instead of waiting for the whole
// frame in gnet's inbound ring and copying it out of there: gnet copies
// whatever one OnTraffic leaves unread from its read buffer into the
// ring, and Peek of a frame that wraps the ring copies it once more, so a
// 1 MiB frame arriving in 256 KiB reads was copied up to three times on
// the loop. Consuming every byte as it comes leaves one copy.
//
// The buffer is allocated once an eighth of the frame has arrived (or all
// of it): a client that only claims a large frame cannot make the agent
// allocate more than eight times what it sent, while a frame that is
// streaming in is copied out of the ring at most for its first eighth.
func (s *Server) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*conn)
	if c == nil {
		return gnet.Close
	}
	// gnet calls OnTraffic for reads and for Wake; either way this is the
	// loop, where the outbound buffer may be looked at (conn.go).
	c.observeOutbound(gc.OutboundBuffered())
	if gc.InboundBuffered() > 0 {
		c.received(time.Now()) // stall.go
	}
	for {
		if c.rd == nil {
			if c.overBound() {
				// The worker wakes this connection when it has caught up.
				// Not cutting frames does not stop gnet reading the socket
				// into its inbound buffer (eventloop_unix.go read(): every
				// readable event is read and appended; gnet v2 has no way to
				// pause one connection). Measured: with the connection
				// blocked on a parked request, a client wrote 20 MiB more in
				// 0.6 s. So TCP backpressure never reaches the client, and a
				// hard cap on the inbound buffer (one largest frame plus the
				// queue's bound) closes a client that keeps sending.
				if gc.InboundBuffered() > s.cfg.MaxRequestBytes+s.cfg.MaxConnPendingBytes {
					s.log.Warn("closing connection: client ignores backpressure",
						"remote", c.remote, "buffered", gc.InboundBuffered())
					mBadConns.Inc()
					return gnet.Close
				}
				return gnet.None
			}
			// The size is checked as soon as it is known: a client that
			// sends only a bad size must be closed, not waited for.
			hdr, err := gc.Peek(4)
			if err != nil || len(hdr) < 4 {
				return gnet.None
			}
			size := int(int32(binary.BigEndian.Uint32(hdr)))
			if s.refuseFrameSize(c, size) {
				return gnet.Close
			}
			if have := gc.InboundBuffered() - 4; have < size && have < size/8 {
				return gnet.None
			}
			// The API key, the first field of every request header,
			// picks the frame's buffer; a frame has at least 8 bytes.
			if hdr, err = gc.Peek(6); err != nil || len(hdr) < 6 {
				return gnet.None
			}
			key := int16(binary.BigEndian.Uint16(hdr[4:]))
			if _, err := gc.Discard(4); err != nil {
				return gnet.Close
			}
			c.rd = newFrame(size, key)
			c.rdN = 0
		}
		n, _ := gc.Read(c.rd.b[c.rdN:])
		c.rdN += n
		if c.rdN < len(c.rd.b) && len(c.rd.b)-c.rdN >= directReadMin && gc.InboundBuffered() == 0 {
			// gnet's buffer is drained: take the rest of a large frame
			// from the socket straight into the frame (see readDirect).
			m, err := readDirect(gc.Fd(), c.rd.b[c.rdN:])
			c.rdN += m
			if m > 0 {
				mDirectReadBytes.Add(m)
				c.received(time.Now())
			}
			if err != nil {
				s.log.Debug("closing connection: reading a request frame", "remote", c.remote, "err", err)
				return gnet.Close
			}
		}
		if c.rdN < len(c.rd.b) {
			return gnet.None // the rest comes with later reads
		}
		f := c.rd
		c.rd = nil
		c.enqueue(f)
	}
}

// onCommit wakes long-polling fetches when meta commits new data. A nil
// slice means the index lost its feed: wake everyone so no fetch sleeps
// through a commit it missed. It runs on the index's feed goroutine and
// must not block.
func (s *Server) onCommit(evs []meta.CommitEvent) {
	if evs == nil {
		s.waiters.notifyAll()
		s.authzChanged() // ACL changes may have been missed too
		return
	}
	for i := range evs {
		if evs[i].ACLs {
			s.authzChanged()
			continue
		}
		s.waiters.notify(meta.TopicPartition{TopicID: evs[i].Entry.TopicID, Partition: evs[i].Entry.Partition})
	}
}

type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }

// FlushResponses waits, up to max, until no connection has a completed
// response still waiting to be handed to the event loop and the event
// loops have written what they were handed.
func (s *Server) FlushResponses(ctx context.Context, max time.Duration) {
	s.waiters.closeAll() // parked fetches answer now
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := false
		s.connsMu.Lock()
		for c := range s.conns {
			if busy = c.busy(); busy {
				break
			}
		}
		s.connsMu.Unlock()
		if !busy {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// AsyncWritev hands bytes to the loop; give it a beat to write them.
	time.Sleep(20 * time.Millisecond)
}

// directReadMin: a frame with at least this much still to come is read
// from the socket by readDirect rather than through gnet's buffer.
const directReadMin = 64 << 10

// mDirectReadBytes counts request bytes readDirect read.
var mDirectReadBytes = metrics.NewCounter(`sluice_kafka_direct_read_bytes_total`)

// readDirect reads from the connection's socket into b until b is full
// or the socket has nothing more for now (EAGAIN; gnet's level-triggered
// poller calls OnTraffic again when more arrives). Why: gnet reads every
// readable event into its loop's read buffer (256 KiB) and OnTraffic then
// copies the bytes into the frame, so each byte of a large produce
// request was copied twice in user space and read in 256 KiB syscalls;
// read straight into the frame, it is copied once, by the kernel.
// Only called with gnet's inbound buffer empty, so the bytes stay in
// order. An error (the peer closed, a reset) closes the connection: the
// frame can never be whole.
func readDirect(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return n, nil
		case err != nil:
			return n, err
		case m == 0:
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// refuseFrameSize reports whether a frame announcing size bytes must not
// be read, and says why in a log line: both transports ask as soon as the
// size is known, so a client that sends only a bad size is closed, not
// waited for.
func (s *Server) refuseFrameSize(c *conn, size int) bool {
	if size < 8 || size > s.cfg.MaxRequestBytes {
		s.log.Warn("closing connection: bad frame size",
			"remote", c.remote, "size", size, "max", s.cfg.MaxRequestBytes,
			"hint", "raise --max-request-bytes if this client is legitimate")
		mBadConns.Inc()
		return true
	}
	// SASL (issue 14): before a connection authenticated, a frame is a
	// handshake or a token, and Kafka reads at most
	// sasl.server.max.receive.size (512 KiB) of one; without this a
	// client that never logs in could make the agent buffer
	// --max-request-bytes frames.
	if s.sasl != nil && size > saslMaxPreAuthFrame && c.principal.Load() == nil {
		s.log.Warn("closing connection: frame too large before SASL authentication",
			"remote", c.remote, "size", size, "max", saslMaxPreAuthFrame)
		mBadConns.Inc()
		return true
	}
	return false
}

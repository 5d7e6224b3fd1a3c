package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"golang.org/x/sync/errgroup"

	"sluice.dev/internal/lograte"
	"sluice.dev/internal/netlimit"
	"sluice.dev/internal/rendezvous"
)

// The zone cache: the agents of one zone share their BlockCaches.
//
// Each block of a segment object has one owner among the zone's live
// agents, chosen by rendezvous hashing (owner). The owner reads the block
// through its BlockCache (one object store read, shared by its own
// readers and every peer asking); the others ask it over the peer
// protocol (peer.go) and keep no copy, so the zone caches the sum of its
// agents' MaxBytes rather than each agent the same hot blocks. A freshly
// uploaded object is pushed to its owners (Uploaded), so tail reads need
// no GET at all.
//
// Failure: a peer that cannot be asked, or answers wrongly, costs a
// fallback: the reader reads the block through its own BlockCache, which
// then holds a copy until evicted. A peer that could not be reached is
// skipped for peerDownFor, so that a dead agent the registry still lists
// costs one failed dial per peerDownFor, not one per read. The ring
// re-forms when Peers stops listing the dead agent; the blocks it owned
// move to the others (about 1/n of all blocks, each to one agent), and
// nothing else moves.

// Package-level series, like blocks.go's. The get and push results count
// this agent's requests to owners; unauthorized counts requests this
// agent refused as an owner, by the method asked for; fallback counts
// reads that fell back to the object store path after a peer failure.
// Peer bytes are bytes on the wire (after lz4) this agent received, by
// whether the sending peer is in its zone.
var (
	mPeerBytesSameZone  = metrics.NewCounter(`sluice_cache_peer_bytes_total{scope="same_zone"}`)
	mPeerBytesCrossZone = metrics.NewCounter(`sluice_cache_peer_bytes_total{scope="cross_zone"}`)
	mGetOK              = metrics.NewCounter(`sluice_cache_peer_requests_total{op="get",result="ok"}`)
	mGetError           = metrics.NewCounter(`sluice_cache_peer_requests_total{op="get",result="error"}`)
	mGetUnauthorized    = metrics.NewCounter(`sluice_cache_peer_requests_total{op="get",result="unauthorized"}`)
	mGetFallback        = metrics.NewCounter(`sluice_cache_peer_requests_total{op="get",result="fallback"}`)
	mPushOK             = metrics.NewCounter(`sluice_cache_peer_requests_total{op="push",result="ok"}`)
	mPushError          = metrics.NewCounter(`sluice_cache_peer_requests_total{op="push",result="error"}`)
	mPushUnauthorized   = metrics.NewCounter(`sluice_cache_peer_requests_total{op="push",result="unauthorized"}`)
	mPushDropped        = metrics.NewCounter(`sluice_cache_peer_requests_total{op="push",result="dropped"}`)
	mPeerConnsOpen      = metrics.NewCounter(`sluice_cache_peer_connections_open`)
	mPeerConnsRefused   = metrics.NewCounter(`sluice_cache_peer_connections_refused_total`)
)

// Peer is one live agent of this agent's zone, as the registry lists it.
type Peer struct {
	ID   string // agent id (the rendezvous key)
	Addr string // its peer listener, host:port
	Zone string
}

// ZoneConfig configures a Zone.
type ZoneConfig struct {
	SelfID string
	Zone   string
	// Secret authenticates the peer protocol (HMAC-SHA256); every agent
	// of a cluster's zone shares it. Required, at least 16 bytes.
	Secret []byte
	// Listen is the peer listener address ("127.0.0.1:0" picks a port);
	// Advertise is what others dial (default: the bound address).
	Listen, Advertise string
	// Peers returns the live agents of this zone INCLUDING this one (the
	// caller caches the registry; calling it is cheap: it runs once per
	// ReadRange). An empty result or one without SelfID means: own
	// everything (no peers). Peers without an Addr are left out.
	Peers func() []Peer
	// PushQueue bounds pushed blocks waiting to be sent (bytes); default
	// 64 MiB (or one block, if larger): a few seconds of upload traffic.
	// Beyond it pushes are dropped (counted): a dropped push only costs
	// the owner one GET later.
	PushQueue int64
	Logger    *slog.Logger
	// TLS, when set, serves the peer listener over TLS, and ClientTLS
	// (required with it) dials peers over TLS (internal/tlsconf.Peer;
	// flags --peer-tls-cert, --peer-tls-key, --peer-tls-ca). Every agent
	// of a zone must agree: a TLS agent and a plaintext one cannot talk,
	// and each then reads the object store itself.
	TLS, ClientTLS *tls.Config
	// MaxConnections bounds the peer listener's open connections (the
	// agent's --peer-max-connections); more are closed on accept. Every
	// peer keeps at most 32 to this agent, so the default of 4096 serves
	// zones of over 100 agents, while a host that is no peer cannot pile
	// up goroutines and buffers here. 0 is the default.
	MaxConnections int
}

// DefaultPeerMaxConnections is ZoneConfig.MaxConnections's default.
const DefaultPeerMaxConnections = 4096

const (
	defaultPushQueue = 64 << 20
	// pushWorkers send pushes; in-zone bandwidth is ample, so a few are
	// enough to keep up with uploads, and they bound the pushes in flight.
	pushWorkers = 2
	// peerDownFor is how long a peer that could not be reached is skipped.
	peerDownFor = 2 * time.Second
	// spanParallel bounds the blocks of one ReadRange read at once.
	spanParallel = 4
	// warnEvery rate-limits fallback warnings.
	warnEvery = 10 * time.Second
)

// ZoneStats are one Zone's counters.
type ZoneStats struct {
	PeerGets, PeerGetBytes, PeerGetErrors      int64 // this agent asking owners; bytes raw
	ServedGets, ServedBytes                    int64 // this agent answering its peers as owner; bytes raw
	Pushes, PushBytes, PushDropped, PushErrors int64 // bytes raw
	Received                                   int64 // blocks pushed to this agent and inserted
	Fallbacks                                  int64 // peer failures that fell back to the object store path
	// SameZoneBytes and CrossZoneBytes are the bytes this agent received
	// from peers on the wire (answers to its GETs, and pushes), by the
	// sender's zone compared to this agent's.
	SameZoneBytes, CrossZoneBytes int64
	Unauthorized                  int64 // requests refused for a bad or missing signature
	// PushWaitTimeouts counts uploads whose pushes did not all land
	// within pushWait before the commit went ahead.
	PushWaitTimeouts int64
}

// zoneCounters is ZoneStats, counted atomically.
type zoneCounters struct {
	PeerGets, PeerGetBytes, PeerGetErrors      atomic.Int64
	ServedGets, ServedBytes                    atomic.Int64
	Pushes, PushBytes, PushDropped, PushErrors atomic.Int64
	Received, Fallbacks                        atomic.Int64
	SameZoneBytes, CrossZoneBytes              atomic.Int64
	Unauthorized                               atomic.Int64
	PushWaitTimeouts                           atomic.Int64
}

// Zone serves reads through the zone's distributed cache and runs this
// agent's peer listener.
//
// Stop order: Close the Zone before the BlockCache (Close waits for the
// peer handlers that read the BlockCache), and stop readers first.
type Zone struct {
	cfg      ZoneConfig
	secret   []byte
	blocks   *BlockCache
	bs       int64
	log      *slog.Logger
	addr     string
	scheme   string // "http://", or "https://" with ZoneConfig.TLS
	srv      *http.Server
	client   *http.Client
	lz4Slots chan *lz4Slot
	pushSem  chan struct{}
	queue    *pushQueue
	stats    zoneCounters
	ring     atomic.Pointer[ring] // the last ring built, reused while Peers answers the same
	lastWarn lograte.Limiter      // the fallback warning (logFallback)

	// ctx ends at Close: in-flight pushes and peer handlers stop.
	ctx     context.Context
	cancel  context.CancelFunc
	closed  atomic.Bool
	workers sync.WaitGroup // push workers and the server goroutine
	// pending counts pushes queued or being sent (tests wait for zero).
	pending atomic.Int64

	// hmu is held for reading by each peer handler and for writing by
	// Close, which so waits for them before the BlockCache may go.
	hmu            sync.RWMutex
	handlersClosed bool // guarded by hmu

	mu    sync.Mutex
	loads map[loadKey][]*peerLoad // guarded by mu; peer GETs in flight, by block
	down  map[string]time.Time    // guarded by mu; peer address → skipped until
}

// peerLoad is one peer GET of bytes [lo, hi) of a block, shared by every
// reader of this agent wanting a range inside it while it runs. data and
// err are written once, before done is closed.
type peerLoad struct {
	lo, hi int64
	done   chan struct{}
	data   []byte
	err    error
	gaveUp bool // the loader's own context ended: waiters try again
}

// StartZone starts the peer listener and the push workers.
func StartZone(cfg ZoneConfig, blocks *BlockCache) (*Zone, error) {
	switch {
	case blocks == nil:
		return nil, errors.New("cache: StartZone needs a BlockCache")
	case cfg.SelfID == "":
		return nil, errors.New("cache: ZoneConfig.SelfID is empty")
	case len(cfg.Secret) < 16:
		return nil, fmt.Errorf("cache: ZoneConfig.Secret has %d bytes; the peer protocol needs a secret of at least 16", len(cfg.Secret))
	case cfg.Peers == nil:
		return nil, errors.New("cache: ZoneConfig.Peers is nil")
	case cfg.Listen == "":
		return nil, errors.New("cache: ZoneConfig.Listen is empty")
	case (cfg.TLS == nil) != (cfg.ClientTLS == nil):
		return nil, errors.New("cache: ZoneConfig.TLS and ClientTLS must be set together")
	case cfg.PushQueue < 0:
		return nil, fmt.Errorf("cache: ZoneConfig.PushQueue %d is negative", cfg.PushQueue)
	case cfg.PushQueue > 0 && cfg.PushQueue < blocks.BlockSize():
		return nil, fmt.Errorf("cache: ZoneConfig.PushQueue %d is below the block size %d: no block could be pushed", cfg.PushQueue, blocks.BlockSize())
	}
	if cfg.PushQueue == 0 {
		cfg.PushQueue = max(defaultPushQueue, blocks.BlockSize())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultPeerMaxConnections
	}
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cache: peer listener: %w", err)
	}
	// Counted below TLS: a handshake holds a connection too.
	var refusedLog lograte.Limiter
	var ln net.Listener = netlimit.Listener(tcp, cfg.MaxConnections, netlimit.Hooks{
		Refused: func(c net.Conn) {
			mPeerConnsRefused.Inc()
			if refusedLog.Allow(time.Now(), time.Second) {
				cfg.Logger.Warn("zone cache: refusing a peer connection: too many open (logged at most once a second)",
					"remote", c.RemoteAddr().String(), "max", cfg.MaxConnections,
					"hint", "raise --peer-max-connections if the zone has that many agents")
			}
		},
		Opened: mPeerConnsOpen.Inc,
		Closed: mPeerConnsOpen.Dec,
	})
	scheme := "http://"
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
		scheme = "https://"
	}
	ctx, cancel := context.WithCancel(context.Background())
	z := &Zone{
		cfg:      cfg,
		secret:   append([]byte(nil), cfg.Secret...),
		blocks:   blocks,
		bs:       blocks.BlockSize(),
		log:      cfg.Logger.With("component", "zone-cache"),
		addr:     cfg.Advertise,
		scheme:   scheme,
		lz4Slots: make(chan *lz4Slot, lz4Slots),
		pushSem:  make(chan struct{}, maxPushHandlers),
		queue:    newPushQueue(cfg.PushQueue),
		ctx:      ctx,
		cancel:   cancel,
		loads:    make(map[loadKey][]*peerLoad),
		down:     make(map[string]time.Time),
	}
	for range lz4Slots {
		z.lz4Slots <- &lz4Slot{}
	}
	if z.addr == "" {
		z.addr = ln.Addr().String()
		if ap, err := net.ResolveTCPAddr("tcp", z.addr); err == nil && ap.IP.IsUnspecified() {
			z.log.Warn("peer listener bound to an unspecified address and no advertised address: peers cannot dial it", "addr", z.addr)
		}
	}
	z.client = &http.Client{Transport: &http.Transport{
		Proxy: nil, // agent-to-agent traffic never goes through a proxy
		DialContext: (&net.Dialer{
			// Agents of a zone answer a SYN in a millisecond; a
			// second means the peer is gone.
			Timeout:   time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 16,
		// A bounded pool per peer: beyond it requests wait for a
		// connection (within their timeout) instead of opening more.
		MaxConnsPerHost:       32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: getTimeout,
		DisableCompression:    true, // bodies are lz4 or incompressible
		// HTTP/1.1 over TLS too: ForceAttemptHTTP2 stays off, and the
		// listener's config offers no h2.
		TLSClientConfig:     cfg.ClientTLS,
		TLSHandshakeTimeout: 3 * time.Second,
	}}
	z.srv = &http.Server{
		Handler:           handler{z},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       pushTimeout + 5*time.Second,
		WriteTimeout:      pushTimeout + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(z.log.Handler(), slog.LevelDebug),
	}
	z.workers.Add(1 + pushWorkers)
	go func() {
		defer z.workers.Done()
		if err := z.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			z.log.Error("peer listener stopped", "err", err)
		}
	}()
	for range pushWorkers {
		go z.pushWorker()
	}
	return z, nil
}

// Addr returns the advertised peer address.
func (z *Zone) Addr() string { return z.addr }

// Stats returns this Zone's counters.
func (z *Zone) Stats() ZoneStats {
	s := &z.stats
	return ZoneStats{
		PeerGets: s.PeerGets.Load(), PeerGetBytes: s.PeerGetBytes.Load(), PeerGetErrors: s.PeerGetErrors.Load(),
		ServedGets: s.ServedGets.Load(), ServedBytes: s.ServedBytes.Load(),
		Pushes: s.Pushes.Load(), PushBytes: s.PushBytes.Load(), PushDropped: s.PushDropped.Load(), PushErrors: s.PushErrors.Load(),
		Received: s.Received.Load(), Fallbacks: s.Fallbacks.Load(),
		SameZoneBytes: s.SameZoneBytes.Load(), CrossZoneBytes: s.CrossZoneBytes.Load(),
		Unauthorized:     s.Unauthorized.Load(),
		PushWaitTimeouts: s.PushWaitTimeouts.Load(),
	}
}

// Close stops the listener and the push workers (pushes still queued are
// dropped) and waits for them and for running peer handlers. Reads after
// Close fail with ErrClosed.
func (z *Zone) Close() error {
	if z.closed.Swap(true) {
		return nil
	}
	start := time.Now()
	z.cancel() // handlers blocked on the store and pushes in flight end now
	z.queue.close()
	// Close, not Shutdown: the handlers are ending anyway (their readers
	// fall back to the store), and Shutdown would wait five seconds for
	// every connection a peer's transport dialed but never used.
	err := z.srv.Close()
	z.hmu.Lock()
	z.handlersClosed = true
	z.hmu.Unlock()
	z.workers.Wait()
	z.client.CloseIdleConnections()
	z.log.Debug("zone cache stopped", "took", time.Since(start))
	return err
}

// ReadRange is BlockCache.ReadRange's contract (same aliasing rules),
// served block by block: own blocks from the BlockCache (object store on
// a miss), others from their owner, falling back to the BlockCache on any
// peer failure. A range inside one block owned by a peer is a sub-slice
// of a buffer shared with this agent's concurrent readers of it: NEVER
// modify it.
func (z *Zone) ReadRange(ctx context.Context, key string, objectSize, off, length int64) ([]byte, error) {
	raw, _, err := z.ReadRangeBlock(ctx, key, objectSize, off, length)
	return raw, err
}

// ReadRangeBlock is BlockCache.ReadRangeBlock through the zone: a range
// in one block read from this agent's BlockCache (a block it owns, or
// one a peer failed to serve) comes with the block; a range from a peer,
// or over several blocks, comes with none.
func (z *Zone) ReadRangeBlock(ctx context.Context, key string, objectSize, off, length int64) (raw, block []byte, err error) {
	if z.closed.Load() {
		return nil, nil, ErrClosed
	}
	r := z.currentRing()
	if r.ownAll() {
		return z.blocks.ReadRangeBlock(ctx, key, objectSize, off, length)
	}
	if objectSize < 0 || off < 0 || length < 0 || off > objectSize || length > objectSize-off {
		return nil, nil, fmt.Errorf("cache: range [%d, +%d) outside %q of size %d", off, length, key, objectSize)
	}
	if length == 0 {
		return []byte{}, nil, nil
	}
	first, last := off/z.bs, (off+length-1)/z.bs
	if last > math.MaxUint32 {
		return nil, nil, fmt.Errorf("cache: %q of size %d has more blocks than a uint32 counts", key, objectSize)
	}
	kh := xxhash.Sum64String(key)
	if first == last {
		lo := off - first*z.bs
		return z.readPart(ctx, r, key, kh, uint32(first), objectSize, lo, lo+length)
	}
	mine := true
	for idx := first; idx <= last && mine; idx++ {
		mine = r.owner(z.unitHash(kh, uint32(idx), objectSize)) == r.self
	}
	if mine {
		return z.blocks.ReadRangeBlock(ctx, key, objectSize, off, length)
	}
	out := make([]byte, length)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(spanParallel)
	for idx := first; idx <= last; idx++ {
		start := idx * z.bs
		lo, hi := max(off, start)-start, min(off+length, start+z.bs)-start
		g.Go(func() error {
			data, _, err := z.readPart(gctx, r, key, kh, uint32(idx), objectSize, lo, hi)
			if err != nil {
				return err
			}
			copy(out[start+lo-off:], data)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return out, nil, nil
}

// readPart returns bytes [lo, hi) of block idx: from the BlockCache if this
// agent owns the block, else from the owner, else (on any peer failure)
// from the BlockCache after all. block is the BlockCache's block the
// bytes are a slice of, nil for a peer's.
func (z *Zone) readPart(ctx context.Context, r *ring, key string, kh uint64, idx uint32, size, lo, hi int64) (raw, block []byte, err error) {
	if o := r.owner(z.unitHash(kh, idx, size)); o != r.self {
		p := r.peers[o]
		data, err := z.peerGet(ctx, p, key, idx, size, lo, hi)
		if err == nil {
			return data, nil, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		z.stats.Fallbacks.Add(1)
		mGetFallback.Inc()
		z.logFallback(p, key, idx, err)
	}
	// An owner reads ahead through its extent (blocks.go); a fallback
	// reads its one block only: the others are the owner's to read.
	read := z.blocks.Block
	if o := r.owner(z.unitHash(kh, idx, size)); o != r.self {
		read = z.blocks.blockAlone
	}
	block, err = read(ctx, key, idx, size)
	if err != nil {
		return nil, nil, err
	}
	return block[lo:hi:hi], block, nil
}

var errPeerDown = errors.New("peer unreachable a moment ago")

// peerGet asks p for bytes [lo, hi) of block idx, coalescing this agent's
// readers: a reader whose range lies inside a GET in flight for the block
// waits for it and shares its result (so whole-block and repeated reads
// cost one transfer); others start their own. A GET that failed only
// because its reader gave up is retried by a waiter, as in
// BlockCache.load.
func (z *Zone) peerGet(ctx context.Context, p Peer, key string, idx uint32, size, lo, hi int64) ([]byte, error) {
	lk := loadKey{key, idx}
	for {
		z.mu.Lock()
		if until, ok := z.down[p.Addr]; ok {
			if time.Now().Before(until) {
				z.mu.Unlock()
				return nil, errPeerDown
			}
			delete(z.down, p.Addr)
		}
		var l *peerLoad
		for _, x := range z.loads[lk] {
			if x.lo <= lo && hi <= x.hi {
				l = x
				break
			}
		}
		if l == nil {
			l = &peerLoad{lo: lo, hi: hi, done: make(chan struct{})}
			z.loads[lk] = append(z.loads[lk], l)
			z.mu.Unlock()
			z.runPeerLoad(ctx, p, lk, size, l)
			return l.data, l.err
		}
		z.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if l.err == nil {
			return l.data[lo-l.lo : hi-l.lo : hi-l.lo], nil
		}
		if !l.gaveUp {
			return nil, l.err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// runPeerLoad is the loader's half of peerGet.
func (z *Zone) runPeerLoad(ctx context.Context, p Peer, lk loadKey, size int64, l *peerLoad) {
	data, wire, err := z.fetchRange(ctx, p.Addr, lk.key, lk.block, size, l.lo, l.hi-l.lo)
	z.stats.PeerGets.Add(1)
	if err != nil {
		l.err = fmt.Errorf("cache: block %d of %q from peer %s (%s): %w", lk.block, lk.key, p.ID, p.Addr, err)
		l.gaveUp = ctx.Err() != nil
		if !l.gaveUp {
			z.stats.PeerGetErrors.Add(1)
			mGetError.Inc()
			if _, ok := errors.AsType[*netError](err); ok {
				z.markDown(p.Addr)
			}
		}
	} else {
		l.data = data[:len(data):len(data)]
		z.stats.PeerGetBytes.Add(int64(len(data)))
		z.countPeerBytes(p.Zone, wire)
		mGetOK.Inc()
	}
	// Removed before done is closed, so that a retrying waiter finds no
	// stale load.
	z.mu.Lock()
	ls := z.loads[lk]
	for i, x := range ls {
		if x == l {
			ls = append(ls[:i], ls[i+1:]...)
			break
		}
	}
	if len(ls) == 0 {
		delete(z.loads, lk)
	} else {
		z.loads[lk] = ls
	}
	z.mu.Unlock()
	close(l.done)
}

func (z *Zone) markDown(addr string) {
	z.mu.Lock()
	z.down[addr] = time.Now().Add(peerDownFor)
	z.mu.Unlock()
}

func (z *Zone) isDown(addr string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	until, ok := z.down[addr]
	return ok && time.Now().Before(until)
}

// countPeerBytes counts wire bytes received from a peer of zone.
func (z *Zone) countPeerBytes(zone string, n int64) {
	if zone == z.cfg.Zone {
		z.stats.SameZoneBytes.Add(n)
		mPeerBytesSameZone.AddInt64(n)
	} else {
		z.stats.CrossZoneBytes.Add(n)
		mPeerBytesCrossZone.AddInt64(n)
	}
}

// logFallback warns at most once per warnEvery; the rest go to debug.
func (z *Zone) logFallback(p Peer, key string, idx uint32, err error) {
	if z.lastWarn.Allow(time.Now(), warnEvery) {
		z.log.Warn("peer read failed, reading the object store instead (further failures at debug for a while)", "peer", p.ID, "addr", p.Addr, "err", err)
		return
	}
	z.log.Debug("peer read failed, reading the object store instead", "peer", p.ID, "key", key, "block", idx, "err", err)
}

// Uploaded is the pipeline's OnUploaded hook: the blocks of object this
// agent owns are inserted into its BlockCache, the others queued for
// pushing to their owners. It never waits for the network. Like Insert,
// it TAKES OWNERSHIP of object: queued pushes hold sub-slices of it until
// sent.
func (z *Zone) Uploaded(key string, object []byte) {
	n := int64(len(object))
	if z.closed.Load() || n == 0 || (n-1)/z.bs > math.MaxUint32 {
		return
	}
	r := z.currentRing()
	if r.ownAll() {
		z.blocks.Insert(key, object)
		return
	}
	kh := xxhash.Sum64String(key)
	owners := make([]int, (n-1)/z.bs+1)
	for i := range owners {
		owners[i] = r.owner(z.unitHash(kh, uint32(i), n))
	}
	z.blocks.insert(key, object, func(idx uint32) bool { return owners[idx] == r.self })
	var done sync.WaitGroup
	for i, o := range owners {
		if o == r.self {
			continue
		}
		start := int64(i) * z.bs
		end := min(start+z.bs, n)
		it := pushItem{to: r.peers[o], key: key, idx: uint32(i), size: n, data: object[start:end:end], done: &done}
		done.Add(1)
		if !z.queue.put(it) {
			done.Done()
			z.stats.PushDropped.Add(1)
			mPushDropped.Inc()
			continue
		}
		z.pending.Add(1)
	}
	// Wait, briefly, for the pushes to land: the pipeline commits the
	// segment (and consumers learn of it) after this returns, and a read
	// that reaches an owner before its push costs that owner a GET. An
	// in-zone push takes about a millisecond; a slow or dead owner only
	// delays the commit by pushWait, and its block is then read once.
	waited := make(chan struct{})
	go func() { done.Wait(); close(waited) }()
	t := time.NewTimer(pushWait)
	select {
	case <-waited:
	case <-t.C:
		z.stats.PushWaitTimeouts.Add(1)
	}
	t.Stop()
}

// pushWait bounds how long Uploaded holds the commit of a segment for
// its pushes.
const pushWait = 100 * time.Millisecond

// pushWorker sends queued pushes until the queue closes.
func (z *Zone) pushWorker() {
	defer z.workers.Done()
	for {
		it, ok := z.queue.take()
		if !ok {
			return
		}
		z.push(it)
		it.done.Done()
		z.pending.Add(-1)
	}
}

func (z *Zone) push(it pushItem) {
	err := errPeerDown
	if !z.isDown(it.to.Addr) {
		err = z.sendPush(z.ctx, it.to.Addr, it)
	}
	if err != nil {
		if z.ctx.Err() != nil {
			return // closing
		}
		z.stats.PushErrors.Add(1)
		mPushError.Inc()
		if _, ok := errors.AsType[*netError](err); ok {
			z.markDown(it.to.Addr)
		}
		z.log.Debug("push block", "peer", it.to.ID, "key", it.key, "block", it.idx, "err", err)
		return
	}
	z.stats.Pushes.Add(1)
	z.stats.PushBytes.Add(int64(len(it.data)))
	mPushOK.Inc()
}

// pushItem is one block waiting to be pushed to its owner.
type pushItem struct {
	to   Peer
	key  string
	idx  uint32
	size int64  // the object's size
	data []byte // the block: a sub-slice of the uploaded object
	done *sync.WaitGroup
}

// pushQueue is a FIFO of blocks waiting for a push worker, bounded by the
// bytes they hold. put never blocks: a block that does not fit is refused
// (the caller counts it dropped); take waits for a block or for close.
//
//	open ──put (fits)──▶ open, holding more ──take──▶ open, holding less
//	  │      put (does not fit): refused, nothing changes
//	  └──close──▶ closed: held blocks dropped; put refuses; take returns false
type pushQueue struct {
	max    int64
	mu     sync.Mutex
	cond   sync.Cond  // signalled on put and close; L is &mu
	items  []pushItem // guarded by mu; FIFO
	bytes  int64      // guarded by mu; bytes held by items
	closed bool       // guarded by mu
}

func newPushQueue(max int64) *pushQueue {
	q := &pushQueue{max: max}
	q.cond.L = &q.mu
	return q
}

func (q *pushQueue) put(it pushItem) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := int64(len(it.data))
	if q.closed || q.bytes+n > q.max {
		return false
	}
	q.items = append(q.items, it)
	q.bytes += n
	q.cond.Signal()
	return true
}

func (q *pushQueue) take() (pushItem, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return pushItem{}, false
	}
	it := q.items[0]
	q.items[0] = pushItem{} // let the object go once sent
	q.items = q.items[1:]
	if len(q.items) == 0 {
		q.items = nil
	}
	q.bytes -= int64(len(it.data))
	return it, true
}

func (q *pushQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.bytes = nil, 0
	q.mu.Unlock()
	q.cond.Broadcast()
}

// ring is the zone's agents as one Peers answer listed them, with their
// rendezvous hashes. It is immutable.
type ring struct {
	src    []Peer   // the answer it was built from (a copy), to recognise it
	peers  []Peer   // those with an address, and self
	hashes []uint64 // xxhash of each peer's ID
	self   int      // index of SelfID in peers; -1: own everything
}

func (r *ring) ownAll() bool { return r.self < 0 || len(r.peers) == 1 }

// owner returns the index in r.peers of block bh's owner.
func (r *ring) owner(bh uint64) int { return pickOwner(bh, r.hashes, r.peers) }

// currentRing returns the ring of Peers' current answer, reusing the last
// one while the answer is the same (it is, between registry refreshes).
func (z *Zone) currentRing() *ring {
	ps := z.cfg.Peers()
	if r := z.ring.Load(); r != nil && samePeers(r.src, ps) {
		return r
	}
	r := newRing(ps, z.cfg.SelfID)
	z.ring.Store(r)
	return r
}

func samePeers(a, b []Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func newRing(ps []Peer, selfID string) *ring {
	r := &ring{src: append([]Peer(nil), ps...), self: -1}
	for _, p := range ps {
		if p.ID == selfID {
			if r.self >= 0 {
				continue // listed twice
			}
			r.self = len(r.peers)
		} else if p.Addr == "" {
			continue // cannot be asked: must not own anything
		}
		r.peers = append(r.peers, p)
		r.hashes = append(r.hashes, xxhash.Sum64String(p.ID))
	}
	return r
}

// unitHash is the rendezvous hash of the unit of ownership holding block
// idx of an object of size bytes whose key hashes to kh: the block's own,
// or, for an object read ahead, its extent's (ownerUnit, blocks.go), so
// that one agent owns every block of an extent and a read-ahead GET
// never reads another agent's blocks. Every agent of a zone must compute
// the same, as every caller of the ring does through this function.
func (z *Zone) unitHash(kh uint64, idx uint32, size int64) uint64 {
	return blockHash(kh, ownerUnit(idx, size, z.bs))
}

// blockHash names block idx of the object whose key hashes to kh, for
// rendezvous: a hash of (key, idx), computed from the key's xxhash (taken
// once per read) and the index.
func blockHash(kh uint64, idx uint32) uint64 {
	return rendezvous.Score(kh+(uint64(idx)+1)*0x9e3779b97f4a7c15, 0)
}

// pickOwner returns the index of the agent that owns block bh: the one
// with the highest score rendezvous.Score(bh, hash(agent id)), ties (only
// equal id hashes) broken by the smaller id so that every agent agrees.
// Removing an agent moves only the blocks it owned; adding one moves to it
// only the blocks it now wins, about 1/n of them.
func pickOwner(bh uint64, hashes []uint64, peers []Peer) int {
	best, bestScore := -1, uint64(0)
	for i, h := range hashes {
		s := rendezvous.Score(bh, h)
		if best < 0 || s > bestScore || (s == bestScore && peers[i].ID < peers[best].ID) {
			best, bestScore = i, s
		}
	}
	return best
}

package rpc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"sluice.dev/internal/lograte"
	"sluice.dev/internal/netlimit"
	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// Meta's gRPC listener faces every agent; in a bring-your-own-cloud
// deployment agents dial it from the user's account, so it is reachable
// by whoever can reach those. What a peer without a valid key or token
// may hold of meta is bounded here:
//
//   - calls: a call without valid credentials is refused when its headers
//     arrive (tapCall), before meta reads its request (up to
//     maxRequestBytes) or starts a goroutine for it;
//   - header blocks: at most maxHeaderBytes (gRPC's default is 16 MiB, and
//     a header block is held whole before any check);
//   - streams: at most maxStreams calls at once on one connection (gRPC's
//     default is unlimited), a backstop only (see maxStreams);
//   - connections: at most Limits.MaxConnections open (LimitListener), a
//     connection with no call for Limits.MaxIdle is closed (a refused
//     call leaves it idle), and one that has not finished its TLS
//     handshake and HTTP/2 preface within Limits.HandshakeTimeout is
//     closed.
const (
	maxHeaderBytes = 64 << 10
	// maxStreams is only a backstop against an unbounded number: an agent
	// multiplexes all its calls over one connection, its clients' group
	// waits among them (a JoinGroup waits up to the rebalance timeout,
	// minutes, on its stream), and a client at the limit queues new calls
	// behind those, its commits included. So the limit sits above what
	// an agent's --max-connections clients can hold open at once.
	maxStreams = 1 << 16
)

// Limits are the listener's settings (flags of `sluice meta`).
type Limits struct {
	// MaxConnections open at once; more are closed as they are accepted
	// (LimitListener). 0: DefaultMaxConnections.
	MaxConnections int
	// MaxIdle closes a connection with no call in progress for this long
	// (gRPC's MaxConnectionIdle; the client reconnects when it next calls).
	// An agent's Watch stream keeps its connection busy. 0: never.
	MaxIdle time.Duration
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2
	// preface. 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxConnections   = 10000
	DefaultMaxIdle          = 10 * time.Minute
	DefaultHandshakeTimeout = 20 * time.Second
)

var (
	mConnsOpen    = metrics.NewCounter("sluice_meta_rpc_connections_open")
	mConnsRefused = metrics.NewCounter("sluice_meta_rpc_connections_refused_total")
	mCallsRefused = metrics.NewCounter("sluice_meta_rpc_calls_refused_total")
)

// Options returns the options of a grpc.Server that serves s (Register):
// message size limits, keepalive, and the limits above. Add transport
// credentials (TLS) to them.
func (s *Server) Options(l Limits) []grpc.ServerOption {
	hs := l.HandshakeTimeout
	if hs <= 0 {
		hs = DefaultHandshakeTimeout
	}
	kp := keepalive.ServerParameters{Time: serverPingEvery, Timeout: serverPingWait}
	if l.MaxIdle > 0 {
		kp.MaxConnectionIdle = l.MaxIdle
	}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.MaxSendMsgSize(maxAnswerBytes),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: minPingInterval, PermitWithoutStream: true}),
		grpc.KeepaliveParams(kp),
		grpc.MaxConcurrentStreams(maxStreams),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.ConnectionTimeout(hs),
		grpc.InTapHandle(s.tapCall),
	}
}

var (
	metaPrefix  = "/" + pb.Meta_ServiceDesc.ServiceName + "/"
	adminPrefix = "/" + pb.Admin_ServiceDesc.ServiceName + "/"
)

// tapCall runs on the connection's reader when a call's headers arrive,
// before its request is read: it refuses a call with no credentials, an
// agent key Backend.CheckKey knows to be wrong, or a wrong admin token.
// The handlers check again (a key may be revoked in between) and give the
// full answer; this is only the cheap early refusal. It must not block:
// it holds up every call of the connection.
func (s *Server) tapCall(ctx context.Context, info *tap.Info) (context.Context, error) {
	var err error
	switch {
	case strings.HasPrefix(info.FullMethodName, metaPrefix):
		tok, ok := bearerOf(info.Header)
		switch {
		case !ok:
			err = status.Error(codes.Unauthenticated, "meta: no agent key in the call (authorization: Bearer <key>)")
		default:
			if kerr := s.b.CheckKey(tok); kerr != nil {
				err = statusErr(fmt.Errorf("%w: %w", meta.ErrUnauthenticated, kerr))
			}
		}
	case strings.HasPrefix(info.FullMethodName, adminPrefix):
		tok, ok := bearerOf(info.Header)
		switch {
		case !ok:
			err = status.Error(codes.Unauthenticated, "meta: no admin token in the call (authorization: Bearer <token>)")
		case s.b.AdminAuth(tok) != nil:
			err = status.Error(codes.PermissionDenied, "meta: admin token refused")
		}
	}
	if err != nil {
		mCallsRefused.Inc()
		if s.refusedLog.Allow(time.Now(), time.Second) {
			s.log.Info("meta/rpc: call refused before its request was read (logged at most once a second)",
				"method", info.FullMethodName, "peer", peerAddr(ctx), "err", err)
		}
		return ctx, err
	}
	return ctx, nil
}

// LimitListener returns ln closing every connection accepted while
// l.MaxConnections are open, with a log line at most once a second: each
// open connection holds buffers and a goroutine, so their number must be
// bounded, and closing at once (rather than leaving them in the backlog)
// tells a legitimate client to go elsewhere. Serve the Server made with
// the same l's Options on it.
func LimitListener(ln net.Listener, l Limits, log *slog.Logger) net.Listener {
	limit := l.MaxConnections
	if limit <= 0 {
		limit = DefaultMaxConnections
	}
	if log == nil {
		log = slog.Default()
	}
	var refused lograte.Limiter
	return netlimit.Listener(ln, limit, netlimit.Hooks{
		Refused: func(c net.Conn) {
			mConnsRefused.Inc()
			if refused.Allow(time.Now(), time.Second) {
				log.Warn("meta: refusing connection: too many connections (logged at most once a second)",
					"remote", c.RemoteAddr().String(), "max", limit,
					"hint", "raise --max-connections if meta has the memory for them")
			}
		},
		Opened: mConnsOpen.Inc,
		Closed: mConnsOpen.Dec,
	})
}

// bearerOf returns the token of an "authorization: Bearer" header.
func bearerOf(md metadata.MD) (string, bool) {
	vs := md.Get("authorization")
	if len(vs) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(vs[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

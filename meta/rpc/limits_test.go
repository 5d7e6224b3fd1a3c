package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "sluice.dev/meta/metapb"
)

// serveLimited starts a server of b with limits l behind LimitListener
// and returns its address.
func serveLimited(t *testing.T, b Backend, l Limits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(b, quietLog)
	g := grpc.NewServer(srv.Options(l)...)
	srv.Register(g)
	go func() { _ = g.Serve(LimitListener(ln, l, quietLog)) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

func rawClient(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// TestCallsRefusedBeforeRequestRead: a call without valid credentials is
// refused as soon as its headers arrive, so a peer without a key cannot
// make meta read (and hold) a request body of up to 16 MiB per call. The
// client here opens the call and sends no request at all: the refusal
// must come anyway. Without the tap the server waits for the request and
// the call ends by the client's deadline instead.
func TestCallsRefusedBeforeRequestRead(t *testing.T) {
	e := newEnv(t)
	e.backend.token = "admin-token-1"
	cc := rawClient(t, e.addr)
	const (
		metaMethod  = "/sluice.meta.v1.Meta/ClusterID"
		adminMethod = "/sluice.meta.v1.Admin/ListKeys"
	)
	cases := []struct {
		name, method, auth string
		want               codes.Code
	}{
		{"no key", metaMethod, "", codes.Unauthenticated},
		{"not bearer", metaMethod, "Basic " + testKey, codes.Unauthenticated},
		{"unknown key", metaMethod, "Bearer sk_nosuchkey", codes.Unauthenticated},
		{"no admin token", adminMethod, "", codes.Unauthenticated},
		{"wrong admin token", adminMethod, "Bearer wrong", codes.PermissionDenied},
		{"agent key as admin token", adminMethod, "Bearer " + testKey, codes.PermissionDenied},
		// A valid key passes the tap: the server then waits for the
		// request this client never sends.
		{"valid key", metaMethod, "Bearer " + testKey, codes.DeadlineExceeded},
		{"valid admin token", adminMethod, "Bearer admin-token-1", codes.DeadlineExceeded},
	}
	before := mCallsRefused.Get()
	refused := uint64(0)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if tc.auth != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.auth)
			}
			st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, tc.method)
			if err != nil {
				t.Fatal(err)
			}
			err = st.RecvMsg(&pb.ClusterIDResponse{})
			if got := status.Code(err); got != tc.want {
				t.Fatalf("got %v (%v), want %v", got, err, tc.want)
			}
			if tc.want != codes.DeadlineExceeded {
				refused++
			}
		})
	}
	if got := mCallsRefused.Get() - before; got != refused {
		t.Fatalf("sluice_meta_rpc_calls_refused_total grew by %d, want %d", got, refused)
	}
	// The connection is still good for a well-formed call.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+testKey)
	if _, err := pb.NewMetaClient(cc).ClusterID(ctx, &pb.ClusterIDRequest{}); err != nil {
		t.Fatalf("a valid call after the refusals: %v", err)
	}
}

// accepted reports whether the server took conn: gRPC's server sends its
// SETTINGS frame first thing; a refused connection is closed unread.
func accepted(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [9]byte // one frame header
	_, err := io.ReadFull(c, b[:])
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return false
	default:
		var ne net.Error
		if errors.As(err, &ne) && !ne.Timeout() {
			return false // reset
		}
		t.Fatalf("neither accepted nor closed: %v", err)
		return false
	}
}

// TestConnectionLimit: beyond MaxConnections a new connection is closed
// at once, and a slot freed by a closed connection is taken again.
func TestConnectionLimit(t *testing.T) {
	addr := serveLimited(t, newBackend(), Limits{MaxConnections: 2})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	before := mConnsRefused.Get()
	c1, c2 := dial(), dial()
	if !accepted(t, c1) || !accepted(t, c2) {
		t.Fatal("the first two connections were not accepted")
	}
	if accepted(t, dial()) {
		t.Fatal("a third connection was accepted with --max-connections 2")
	}
	if got := mConnsRefused.Get() - before; got != 1 {
		t.Fatalf("sluice_meta_rpc_connections_refused_total grew by %d, want 1", got)
	}
	_ = c1.Close()
	// The server notices the close on its reader; until then the slot is
	// still taken, and a new connection is refused.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if accepted(t, dial()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection accepted 10 s after one of two closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSilentConnectionClosed: a connection that never finishes its
// HTTP/2 preface is closed after HandshakeTimeout, so such sockets cannot
// pile up toward MaxConnections.
func TestSilentConnectionClosed(t *testing.T) {
	addr := serveLimited(t, newBackend(), Limits{HandshakeTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c) // the server's SETTINGS, then its close
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection silent for 10 s is still open with a 300 ms handshake timeout")
	}
}

// TestIdleConnectionClosed: a connection with no call in progress for
// MaxIdle is closed (GOAWAY); one whose calls were all refused is such a
// connection. An agent's Watch stream keeps its own connection busy.
func TestIdleConnectionClosed(t *testing.T) {
	addr := serveLimited(t, newBackend(), Limits{MaxIdle: 300 * time.Millisecond})
	cc := rawClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pb.NewMetaClient(cc).ClusterID(ctx, &pb.ClusterIDRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("call without a key: %v, want Unauthenticated", err)
	}
	if s := cc.GetState(); s != connectivity.Ready {
		t.Fatalf("state after the call %v, want READY", s)
	}
	if !cc.WaitForStateChange(ctx, connectivity.Ready) {
		t.Fatal("the connection was still open 10 s into a 300 ms idle limit")
	}
}

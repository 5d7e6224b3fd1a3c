package rpc

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// rawConn is a gRPC connection with no credentials of ours, for calls
// the Client would not make.
func rawConn(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestWrongKeyRefused(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)
	bad := dialT(t, ClientConfig{Addrs: []string{e.addr}, Key: "not-a-key"})
	start := time.Now()
	_, err := bad.ClusterID(ctx)
	if !errors.Is(err, meta.ErrUnauthenticated) || errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("ClusterID with a wrong key: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("a refused key was retried: %v", time.Since(start))
	}
	if !strings.Contains(err.Error(), "unknown or revoked key") {
		t.Fatalf("error %q lost the server's message", err)
	}
	if _, err := bad.Watch(ctx); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("Watch with a wrong key: %v", err)
	}
	if _, err := bad.CommitSegment(ctx, meta.SegmentCommit{}); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("CommitSegment with a wrong key: %v", err)
	}

	// No key, or not a bearer token.
	mc := pb.NewMetaClient(rawConn(t, e.addr))
	if _, err := mc.ClusterID(ctx, &pb.ClusterIDRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ClusterID without a key: %v", err)
	}
	for _, h := range []string{"Basic " + testKey, "Bearer", "Bearer ", testKey} {
		actx := withAuth(ctx, h)
		if _, err := mc.ClusterID(actx, &pb.ClusterIDRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("ClusterID with authorization %q: %v", h, err)
		}
	}
	if r, err := mc.ClusterID(withAuth(ctx, "Bearer "+testKey), &pb.ClusterIDRequest{}); err != nil || r.ClusterId == "" {
		t.Fatalf("ClusterID with the key: %v %v", r, err)
	}
}

// TestRevokedKeyEndsWatch: revoking a key through the Admin API ends its
// open Watch within seconds, and its next calls are refused.
func TestRevokedKeyEndsWatch(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)
	admin, err := DialAdmin(e.addr, e.backend.token, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	key, info, err := admin.CreateKey(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	rc := dialT(t, ClientConfig{Addrs: []string{e.addr}, Key: key})
	ch, err := rc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeKey(ctx, "c1", info.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("an event instead of the end of the watch")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("watch of a revoked key still open after 3s")
	}
	t.Logf("watch ended %v after the revocation", time.Since(start))
	if _, err := rc.ClusterID(ctx); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("ClusterID with a revoked key: %v", err)
	}
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)

	if _, err := DialAdmin(e.addr, "", nil, false); err == nil {
		t.Fatal("DialAdmin without a token")
	}
	wrong, err := DialAdmin(e.addr, "guess", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	if _, _, err := wrong.CreateKey(ctx, "c1"); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("CreateKey with a wrong token: %v", err)
	}
	if _, err := wrong.ListKeys(ctx, ""); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("ListKeys with a wrong token: %v", err)
	}
	ac := pb.NewAdminClient(rawConn(t, e.addr))
	if _, err := ac.ListKeys(ctx, &pb.ListKeysRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListKeys without a token: %v", err)
	}
	if _, err := ac.ListKeys(withAuth(ctx, "Bearer guess"), &pb.ListKeysRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListKeys with a wrong token: %v", err)
	}
	// The agent key is not an admin token, and the admin token is not an
	// agent key.
	if _, err := ac.ListKeys(withAuth(ctx, "Bearer "+testKey), &pb.ListKeysRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListKeys with an agent key: %v", err)
	}
	asAgent := dialT(t, ClientConfig{Addrs: []string{e.addr}, Key: e.backend.token})
	if _, err := asAgent.ClusterID(ctx); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("ClusterID with the admin token: %v", err)
	}

	admin, err := DialAdmin(e.addr, e.backend.token, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	key, info, err := admin.CreateKey(ctx, "c1")
	if err != nil || key == "" || info.ID == "" || info.Cluster != "c1" || info.Revoked || time.Since(info.Created) > time.Minute {
		t.Fatalf("CreateKey: %q %+v %v", key, info, err)
	}
	if _, _, err := admin.CreateKey(ctx, ""); !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("CreateKey without a cluster: %v", err)
	}
	rc := dialT(t, ClientConfig{Addrs: []string{e.addr}, Key: key})
	if _, err := rc.ClusterID(ctx); err != nil {
		t.Fatalf("ClusterID with a new key: %v", err)
	}
	keys, err := admin.ListKeys(ctx, "c1")
	direct, _ := e.backend.ListKeys(ctx, "c1")
	same(t, "ListKeys", []any{keys, err}, []any{direct, nil})
	if len(keys) != 2 {
		t.Fatalf("ListKeys: %+v", keys)
	}
	if err := admin.RevokeKey(ctx, "c1", info.ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if err := admin.RevokeKey(ctx, "c1", "no-such-id"); !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("RevokeKey of an unknown id: %v", err)
	}
	keys, err = admin.ListKeys(ctx, "")
	direct, _ = e.backend.ListKeys(ctx, "")
	same(t, "ListKeys after revoke", []any{keys, err}, []any{direct, nil})
	for _, k := range keys {
		if k.ID == info.ID && (!k.Revoked || k.RevokedAt.IsZero()) {
			t.Fatalf("revoked key listed as %+v", k)
		}
	}
	if _, err := rc.ClusterID(ctx); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("ClusterID with a revoked key: %v", err)
	}
}

func withAuth(ctx context.Context, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", v)
}

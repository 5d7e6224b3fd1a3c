package rpc

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// testBackend is a Backend with keys in a map, like meta/host keeps them.
type testBackend struct {
	mu      sync.Mutex
	keys    map[string]string      // key → cluster
	info    map[string]*KeyInfo    // key → info
	cluster map[string]meta.Client // cluster → service
	token   string
	// down makes Agent answer unavailable, like a standby replica.
	down   bool
	nextID int
}

func newBackend() *testBackend {
	return &testBackend{keys: map[string]string{}, info: map[string]*KeyInfo{}, cluster: map[string]meta.Client{}, token: "admin-secret"}
}

func (b *testBackend) addKey(key, cluster string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	b.keys[key] = cluster
	b.info[key] = &KeyInfo{ID: fmt.Sprintf("id%d", b.nextID), Cluster: cluster, Created: time.Now()}
}

func (b *testBackend) Agent(ctx context.Context, key string) (meta.Client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return nil, fmt.Errorf("%w (the leader is elsewhere)", meta.ErrNotLeader)
	}
	cl, ok := b.keys[key]
	if !ok {
		return nil, fmt.Errorf("%w: unknown or revoked key", meta.ErrUnauthenticated)
	}
	c := b.cluster[cl]
	if c == nil {
		return nil, fmt.Errorf("%w: cluster %q is not open here", meta.ErrUnavailable, cl)
	}
	return c, nil
}

func (b *testBackend) CheckKey(key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return nil // a standby cannot tell, as meta/host's
	}
	if _, ok := b.keys[key]; !ok {
		return errors.New("unknown or revoked key")
	}
	return nil
}

func (b *testBackend) AdminAuth(token string) error {
	if token != b.token {
		return errors.New("wrong admin token")
	}
	return nil
}

func (b *testBackend) CreateKey(ctx context.Context, cluster string) (string, KeyInfo, error) {
	if cluster == "" {
		return "", KeyInfo{}, fmt.Errorf("%w: no cluster named", meta.ErrInvalidRequest)
	}
	var raw [16]byte
	rand.Read(raw[:])
	key := "sk_" + hex.EncodeToString(raw[:])
	b.addKey(key, cluster)
	b.mu.Lock()
	defer b.mu.Unlock()
	return key, *b.info[key], nil
}

func (b *testBackend) ListKeys(ctx context.Context, cluster string) ([]KeyInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []KeyInfo
	for _, k := range b.info {
		if cluster == "" || k.Cluster == cluster {
			out = append(out, *k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (b *testBackend) RevokeKey(ctx context.Context, cluster, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for key, k := range b.info {
		if k.ID == id && k.Cluster == cluster {
			k.Revoked, k.RevokedAt = true, time.Now()
			delete(b.keys, key)
			return nil
		}
	}
	return fmt.Errorf("%w: no key %q in cluster %q", meta.ErrInvalidRequest, id, cluster)
}

// serve starts a gRPC server of b on addr ("" for a free loopback port)
// and returns it with its address. Cleanup stops it.
func serve(t testing.TB, b Backend, addr string) (*grpc.Server, string) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// A port just freed may take a moment to be bindable again.
	for deadline := time.Now().Add(5 * time.Second); ; {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := NewServer(b, quietLog)
	g := grpc.NewServer(srv.Options(Limits{})...)
	srv.Register(g)
	go g.Serve(ln)
	t.Cleanup(g.Stop)
	return g, ln.Addr().String()
}

// env is a Service behind a server and a client of it.
type env struct {
	svc     *controller.Service
	backend *testBackend
	addr    string
	rc      *Client
}

const testKey = "agent-key-1"

func newEnv(t testing.TB) *env {
	t.Helper()
	svc, err := controller.Open(controller.Config{Dir: t.TempDir(), Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	b := newBackend()
	b.cluster["c1"] = svc
	b.addKey(testKey, "c1")
	_, addr := serve(t, b, "")
	return &env{svc: svc, backend: b, addr: addr, rc: dialT(t, ClientConfig{Addrs: []string{addr}, Key: testKey})}
}

func dialT(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLog
	}
	c, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// canon turns a result into a tree that compares with reflect.DeepEqual
// across the wire: empty and nil slices and maps are the same, an error
// is its message and the wire codes of the sentinels it wraps, times are
// instants.
func canon(v any) any { return canonV(reflect.ValueOf(v)) }

func canonV(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if err, ok := v.Interface().(error); ok {
			return errKey(err)
		}
		return canonV(v.Elem())
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		if err, ok := v.Interface().(error); ok {
			return errKey(err)
		}
		return canonV(v.Elem())
	case reflect.Slice:
		if v.Len() == 0 {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "bytes:" + hex.EncodeToString(v.Bytes())
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canonV(v.Index(i))
		}
		return out
	case reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = canonV(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return nil
		}
		out := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = canonV(it.Value())
		}
		return out
	case reflect.Struct:
		if tm, ok := v.Interface().(time.Time); ok {
			if tm.IsZero() {
				return "time:zero"
			}
			return fmt.Sprintf("time:%d", tm.UnixNano())
		}
		out := map[string]any{}
		for i := 0; i < v.NumField(); i++ {
			out[v.Type().Field(i).Name] = canonV(v.Field(i))
		}
		return out
	}
	return v.Interface()
}

// errKey is an error's message and the codes of the sentinels it wraps.
func errKey(err error) string {
	if err == nil {
		return ""
	}
	var is []string
	for _, e := range codeTable {
		if errors.Is(err, e.err) {
			is = append(is, e.code.String())
		}
	}
	if errors.Is(err, meta.ErrClosed) {
		is = append(is, "CLOSED")
	}
	return "err:" + err.Error() + " is:" + strings.Join(is, ",")
}

// same fails unless the remote and direct answers are the same.
func same(t testing.TB, what string, remote, direct any) {
	t.Helper()
	if r, d := canon(remote), canon(direct); !reflect.DeepEqual(r, d) {
		t.Errorf("%s differs:\nover rpc %+v\ndirect   %+v", what, r, d)
	}
}

func newSegID() meta.SegmentID {
	var id meta.SegmentID
	binary.BigEndian.PutUint64(id[:], uint64(time.Now().UnixNano()))
	rand.Read(id[8:])
	return id
}

package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"sluice.dev/internal/pgtest"
	"sluice.dev/meta"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func openHost(t *testing.T, store string) *Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Open(ctx, Config{Store: store, AdminToken: "tok", Holder: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestKeysAndIsolation (embedded store): a key opens its own cluster
// only, keys survive a restart, only their hashes are stored, and a
// revoked key is refused at once.
func TestKeysAndIsolation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h := openHost(t, dir)
	keyA, infoA, err := h.CreateKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	keyB, _, err := h.CreateKey(ctx, "tenant-b")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.CreateKey(ctx, "Bad Name"); !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("bad cluster name: %v", err)
	}
	ca, err := h.Agent(ctx, keyA)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := h.Agent(ctx, keyB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.CreateTopics(ctx, []meta.TopicSpec{{Name: "only-in-a", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	if ts, err := cb.Topics(ctx, nil); err != nil || len(ts) != 0 {
		t.Fatalf("cluster b sees %v (%v)", ts, err)
	}
	idA, _ := ca.ClusterID(ctx)
	idB, _ := cb.ClusterID(ctx)
	if idA == idB {
		t.Fatal("two clusters share a cluster id")
	}
	for _, bad := range []string{"", "sk_nope", "not-a-key", keyA + "x"} {
		if _, err := h.Agent(ctx, bad); !errors.Is(err, meta.ErrUnauthenticated) {
			t.Errorf("key %q: %v, want ErrUnauthenticated", bad, err)
		}
		// CheckKey, the refusal before a call's request is read, refuses
		// what Agent refuses.
		if h.CheckKey(bad) == nil {
			t.Errorf("CheckKey(%q) passed a key Agent refuses", bad)
		}
	}
	for _, good := range []string{keyA, keyB} {
		if err := h.CheckKey(good); err != nil {
			t.Errorf("CheckKey refused a valid key: %v", err)
		}
	}
	if err := h.AdminAuth("tok"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "tok2", "to"} {
		if h.AdminAuth(bad) == nil {
			t.Errorf("admin token %q accepted", bad)
		}
	}
	if err := h.RevokeKey(ctx, "tenant-a", infoA.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Agent(ctx, keyA); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("revoked key: %v", err)
	}
	if h.CheckKey(keyA) == nil {
		t.Fatal("CheckKey passed a revoked key")
	}
	if err := h.RevokeKey(ctx, "tenant-b", infoA.ID); err == nil {
		t.Fatal("revoked a key through the wrong cluster")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: keys and their states are kept; only hashes are on disk.
	h = openHost(t, dir)
	defer h.Close()
	if _, err := h.Agent(ctx, keyA); !errors.Is(err, meta.ErrUnauthenticated) {
		t.Fatalf("revoked key after restart: %v", err)
	}
	cb, err = h.Agent(ctx, keyB)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := cb.ClusterID(ctx); id != idB {
		t.Fatalf("cluster b's id changed across a restart: %s, was %s", id, idB)
	}
	keys, err := h.ListKeys(ctx, "")
	if err != nil || len(keys) != 2 || !keys[0].Revoked || keys[1].Revoked {
		t.Fatalf("keys after restart: %+v (%v)", keys, err)
	}
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && (bytes.Contains(b, []byte(keyA)) || bytes.Contains(b, []byte(keyB[3:]))) {
			t.Errorf("an agent key is stored in clear in %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresLeadership: two hosts on one PostgreSQL; one leads, the
// other answers ErrNotLeader naming the leader; when the leader stops,
// the standby takes over with the keys and clusters the leader wrote.
func TestPostgresLeadership(t *testing.T) {
	url := pgtest.URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	open := func(holder string) (*Host, context.CancelFunc, chan error) {
		h, err := Open(ctx, Config{Store: url, AdminToken: "tok", Holder: holder, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.Run(rctx) }()
		return h, stop, done
	}
	h1, stop1, done1 := open("replica-1")
	defer h1.Close()
	waitLead := func(h *Host) {
		t.Helper()
		for !h.Leading() {
			if ctx.Err() != nil {
				t.Fatal("no leadership within the test's time")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitLead(h1)
	h2, stop2, done2 := open("replica-2")
	defer h2.Close()
	defer stop2()

	key, _, err := h1.CreateKey(ctx, "ha")
	if err != nil {
		t.Fatal(err)
	}
	c1, err := h1.Agent(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.CreateTopics(ctx, []meta.TopicSpec{{Name: "survives", Partitions: 3}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if h2.Leading() {
		t.Fatal("two replicas lead")
	}
	if _, err := h2.Agent(ctx, key); !errors.Is(err, meta.ErrNotLeader) || !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("standby answered %v, want ErrNotLeader", err)
	}
	// A standby cannot tell a key from memory: CheckKey lets the call
	// through to Agent's not-leader answer, which names the leader.
	if err := h2.CheckKey(key); err != nil {
		t.Fatalf("standby's CheckKey refused a valid key: %v", err)
	}

	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitLead(h2)
	t.Logf("standby leads %v after the leader stepped down", time.Since(start).Round(time.Millisecond))
	c2, err := h2.Agent(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := c2.Topics(ctx, []string{"survives"})
	if err != nil || len(ts) != 1 || ts[0].Partitions != 3 {
		t.Fatalf("new leader's topics: %v (%v)", ts, err)
	}
	if _, err := c1.CreateTopics(ctx, []meta.TopicSpec{{Name: "late", Partitions: 1}}); err == nil {
		t.Fatal("the old leader's cluster still accepts writes")
	}
	stop2()
	<-done2
}

// TestCheckKeyDoesNotWaitForTheHost: CheckKey runs on a gRPC connection's
// reader before each call (meta/rpc tapCall), so it must answer while
// h.mu is held, as it is while a cluster opens (reading its whole store)
// or while a standby asks the database who leads.
func TestCheckKeyDoesNotWaitForTheHost(t *testing.T) {
	ctx := context.Background()
	h := openHost(t, t.TempDir())
	defer h.Close()
	key, info, err := h.CreateKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	done := make(chan [2]error)
	go func() { done <- [2]error{h.CheckKey(key), h.CheckKey("sk_unknown")} }()
	select {
	case errs := <-done:
		h.mu.Unlock()
		if errs[0] != nil || errs[1] == nil {
			t.Fatalf("CheckKey of a valid and an unknown key: %v, %v", errs[0], errs[1])
		}
	case <-time.After(5 * time.Second):
		h.mu.Unlock()
		t.Fatal("CheckKey waited for h.mu")
	}
	// A revocation reaches CheckKey at once (the table is replaced).
	if err := h.RevokeKey(ctx, "tenant-a", info.ID); err != nil {
		t.Fatal(err)
	}
	if h.CheckKey(key) == nil {
		t.Fatal("CheckKey passed a key revoked a moment ago")
	}
}

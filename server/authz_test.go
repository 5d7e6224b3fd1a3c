package server

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice.dev/meta"
)

func binding(rt meta.ResourceType, name string, pt meta.PatternType, principal, host string, op meta.ACLOperation, perm meta.ACLPermission) meta.ACLBinding {
	return meta.ACLBinding{ResourceType: rt, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

// TestACLSnapshotSemantics checks the authorizer's rules against
// Kafka's: DENY wins, no binding denies, literal, "*" and prefixed
// patterns, principal and host wildcards, implied operations.
func TestACLSnapshotSemantics(t *testing.T) {
	const (
		T, G, C     = meta.ResourceTopic, meta.ResourceGroup, meta.ResourceCluster
		lit, prefix = meta.PatternLiteral, meta.PatternPrefixed
		allow, deny = meta.PermissionAllow, meta.PermissionDeny
	)
	snap := newACLSnapshot([]meta.ACLBinding{
		binding(T, "orders", lit, "User:alice", "*", meta.OpRead, allow),
		binding(T, "pay", prefix, "User:alice", "*", meta.OpWrite, allow),
		binding(T, "pay-secret", lit, "User:alice", "*", meta.OpWrite, deny),
		binding(T, "*", lit, "User:*", "*", meta.OpDescribe, allow),
		binding(T, "logs", lit, "User:bob", "10.0.0.7", meta.OpAll, allow),
		binding(T, "cfg", lit, "User:bob", "*", meta.OpAlterConfigs, allow),
		binding(G, "app-", prefix, "User:alice", "*", meta.OpRead, allow),
		binding(C, meta.ClusterResourceName, lit, "User:ops", "*", meta.OpAlter, allow),
		binding(T, "hidden", lit, "User:*", "*", meta.OpDescribe, deny),
	})
	alice, bob, ops := Principal{"User", "alice"}, Principal{"User", "bob"}, Principal{"User", "ops"}
	cases := []struct {
		p    Principal
		host string
		op   meta.ACLOperation
		rt   meta.ResourceType
		name string
		want bool
	}{
		{alice, "1.2.3.4", meta.OpRead, T, "orders", true},
		{alice, "1.2.3.4", meta.OpWrite, T, "orders", false},       // no binding
		{bob, "1.2.3.4", meta.OpRead, T, "orders", false},          // other principal
		{alice, "1.2.3.4", meta.OpWrite, T, "payments", true},      // prefixed
		{alice, "1.2.3.4", meta.OpWrite, T, "pay-secret", false},   // DENY wins over the prefixed ALLOW
		{alice, "1.2.3.4", meta.OpDescribe, T, "pay-secret", true}, // a DENY of WRITE implies nothing
		{alice, "1.2.3.4", meta.OpWrite, T, "pa", false},           // not the prefix
		{bob, "1.2.3.4", meta.OpDescribe, T, "anything", true},     // "*" resource, User:* principal
		{Principal{"Group", "x"}, "1.2.3.4", meta.OpDescribe, T, "anything", false},
		{bob, "10.0.0.7", meta.OpWrite, T, "logs", true}, // ALL, host
		{bob, "10.0.0.8", meta.OpWrite, T, "logs", false},
		{bob, "1.2.3.4", meta.OpDescribeConfigs, T, "cfg", true}, // implied by ALTER_CONFIGS
		{bob, "1.2.3.4", meta.OpAlter, T, "cfg", false},
		{alice, "1.2.3.4", meta.OpRead, G, "app-1", true},
		{alice, "1.2.3.4", meta.OpDescribe, G, "app-1", true}, // implied by READ
		{alice, "1.2.3.4", meta.OpDelete, G, "app-1", false},
		{alice, "1.2.3.4", meta.OpRead, T, "app-1", false}, // other resource type
		{ops, "1.2.3.4", meta.OpAlter, C, meta.ClusterResourceName, true},
		{ops, "1.2.3.4", meta.OpDescribe, C, meta.ClusterResourceName, true},
		{ops, "1.2.3.4", meta.OpCreate, C, meta.ClusterResourceName, false},
		{alice, "1.2.3.4", meta.OpDescribe, T, "hidden", false}, // DENY for User:* beats ALLOW of "*"
	}
	for _, c := range cases {
		if got := snap.allows(&c.p, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s from %s: %s on %s %q = %v, want %v", c.p, c.host, opName(c.op), resourceTypeName(c.rt), c.name, got, c.want)
		}
	}
	if !snap.allowsAny(&alice, "1.2.3.4", meta.OpWrite, T) || snap.allowsAny(&ops, "1.2.3.4", meta.OpWrite, T) {
		t.Error("allowsAny: alice may WRITE some topic, ops none")
	}
	// A prefixed ALLOW under a prefixed DENY of a shorter prefix allows
	// no name; a literal ALLOW denied by its literal DENY neither.
	covered := newACLSnapshot([]meta.ACLBinding{
		binding(T, "pay-eu", prefix, "User:alice", "*", meta.OpWrite, allow),
		binding(T, "pay", prefix, "User:alice", "*", meta.OpWrite, deny),
		binding(T, "x", lit, "User:alice", "*", meta.OpWrite, allow),
		binding(T, "x", lit, "User:alice", "*", meta.OpWrite, deny),
	})
	if covered.allowsAny(&alice, "1.2.3.4", meta.OpWrite, T) {
		t.Error("allowsAny: every ALLOW is covered by a DENY")
	}
}

func TestParseSuperUsersAndMode(t *testing.T) {
	got, err := ParseSuperUsers(" User:alice ;User:bob;")
	if err != nil || len(got) != 2 || got[0] != (Principal{"User", "alice"}) || got[1] != (Principal{"User", "bob"}) {
		t.Fatalf("ParseSuperUsers = %v, %v", got, err)
	}
	for _, bad := range []string{"alice", "User:", ":x"} {
		if _, err := ParseSuperUsers(bad); err == nil || !strings.Contains(err.Error(), "--super-users") {
			t.Errorf("ParseSuperUsers(%q) = %v, want an error naming the flag", bad, err)
		}
	}
	if _, err := ParseAuthorizerMode("allow"); err == nil || !strings.Contains(err.Error(), "--authorizer") {
		t.Errorf("ParseAuthorizerMode(allow) = %v", err)
	}
	for s, want := range map[string]AuthorizerMode{"": AuthorizerNone, "none": AuthorizerNone, "acl": AuthorizerACL, "shadow": AuthorizerShadow} {
		if m, err := ParseAuthorizerMode(s); err != nil || m != want {
			t.Errorf("ParseAuthorizerMode(%q) = %v, %v", s, m, err)
		}
	}
}

func TestClientHost(t *testing.T) {
	for in, want := range map[string]string{"10.1.2.3:9092": "10.1.2.3", "[::1]:5555": "::1", "weird": "weird"} {
		if got := clientHost(in); got != want {
			t.Errorf("clientHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// authzServer is a Server with only what authorize needs.
func authzServer(mode AuthorizerMode, supers []Principal, bs []meta.ACLBinding, log *slog.Logger) (*Server, *reqCtx) {
	a := newAuthorizer(mode, supers, nil, log)
	a.snap.Store(newACLSnapshot(bs))
	s := &Server{authz: a, log: log}
	c := &conn{s: s, remote: "127.0.0.1:40000"}
	return s, &reqCtx{c: c, key: 0}
}

// TestAuthorizeShadowAndSuperUsers: shadow mode logs a denial and
// allows; a super user passes with no binding; acl mode denies.
func TestAuthorizeShadowAndSuperUsers(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	s, rc := authzServer(AuthorizerShadow, nil, nil, log)
	before := mAuthzShadowDenied.Get()
	if !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") {
		t.Fatal("shadow mode denied")
	}
	if mAuthzShadowDenied.Get() != before+1 || !strings.Contains(buf.String(), "would deny") || !strings.Contains(buf.String(), "User:ANONYMOUS") {
		t.Fatalf("shadow denial not logged or counted: %q", buf.String())
	}
	s, rc = authzServer(AuthorizerACL, nil, nil, log)
	if s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") {
		t.Fatal("acl mode allowed with no binding")
	}
	s, rc = authzServer(AuthorizerACL, []Principal{Anonymous}, nil, log)
	if !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") {
		t.Fatal("a super user was denied")
	}
	none := &Server{}
	if !none.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") || none.authorizedOps(rc, meta.ResourceGroup, "g") != 1<<meta.OpRead|1<<meta.OpDescribe|1<<meta.OpDelete {
		t.Fatal("--authorizer none must allow everything and report every operation")
	}
}

// TestAuthorizeAllocs: a check on the hot path allocates nothing.
func TestAuthorizeAllocs(t *testing.T) {
	bs := []meta.ACLBinding{
		binding(meta.ResourceTopic, "orders", meta.PatternLiteral, "User:ANONYMOUS", "*", meta.OpWrite, meta.PermissionAllow),
		binding(meta.ResourceTopic, "ord", meta.PatternPrefixed, "User:ANONYMOUS", "*", meta.OpRead, meta.PermissionAllow),
	}
	s, rc := authzServer(AuthorizerACL, nil, bs, slog.New(slog.DiscardHandler))
	allocs := testing.AllocsPerRun(1000, func() {
		if !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") {
			t.Fatal("denied")
		}
	})
	if allocs != 0 {
		t.Fatalf("authorize allocates %.1f times per check, want 0", allocs)
	}
}

// BenchmarkAuthorize measures one check: with --authorizer none, and
// with acl against a snapshot of 1000 literal and 100 prefixed bindings.
func BenchmarkAuthorize(b *testing.B) {
	var bs []meta.ACLBinding
	for i := range 1000 {
		bs = append(bs, binding(meta.ResourceTopic, "topic-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), meta.PatternLiteral, "User:u"+string(rune('a'+i%26)), "*", meta.OpWrite, meta.PermissionAllow))
	}
	for i := range 100 {
		bs = append(bs, binding(meta.ResourceTopic, "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), meta.PatternPrefixed, "User:other", "*", meta.OpRead, meta.PermissionAllow))
	}
	bs = append(bs, binding(meta.ResourceTopic, "orders", meta.PatternLiteral, "User:ANONYMOUS", "*", meta.OpWrite, meta.PermissionAllow))
	b.Run("none", func(b *testing.B) {
		s := &Server{}
		_, rc := authzServer(AuthorizerACL, nil, nil, slog.New(slog.DiscardHandler))
		b.ReportAllocs()
		for b.Loop() {
			s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders")
		}
	})
	b.Run("acl", func(b *testing.B) {
		s, rc := authzServer(AuthorizerACL, nil, bs, slog.New(slog.DiscardHandler))
		b.ReportAllocs()
		for b.Loop() {
			if !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, "orders") {
				b.Fatal("denied")
			}
		}
	})
}

// fakeACLMeta serves ACLs from a list, failing the first fail reads.
type fakeACLMeta struct {
	meta.Client // nil: only ACLs is called
	mu          sync.Mutex
	bs          []meta.ACLBinding
	fail        int
	reads       int
}

func (f *fakeACLMeta) ACLs(ctx context.Context, _ meta.ACLFilter) ([]meta.ACLBinding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.fail > 0 {
		f.fail--
		return nil, meta.ErrUnavailable
	}
	return slices.Clone(f.bs), nil
}

// TestAuthorizerReload: until the first read succeeds only super users
// pass (fail closed); a failed read is retried; a change signal (what
// Server.onCommit sends for an ACL event, and for a lost watch) makes the
// loop re-read.
func TestAuthorizerReload(t *testing.T) {
	f := &fakeACLMeta{fail: 3, bs: []meta.ACLBinding{binding(meta.ResourceTopic, "t", meta.PatternLiteral, "User:ANONYMOUS", "*", meta.OpRead, meta.PermissionAllow)}}
	a := newAuthorizer(AuthorizerACL, nil, f, slog.New(slog.DiscardHandler))
	a.start(context.Background())
	defer a.stop()
	p := Anonymous
	if a.decide(&p, "1.2.3.4", meta.OpRead, meta.ResourceTopic, "t") && a.loads.Load() == 0 {
		t.Fatal("allowed before the ACLs were read")
	}
	waitUntil(t, "the retried first read", func() bool { return a.loads.Load() == 1 })
	if !a.decide(&p, "1.2.3.4", meta.OpRead, meta.ResourceTopic, "t") {
		t.Fatal("denied after the read")
	}
	f.mu.Lock()
	f.bs = nil
	f.mu.Unlock()
	a.changed()
	waitUntil(t, "the re-read after a change", func() bool { return a.snap.Load().n == 0 })
	if a.decide(&p, "1.2.3.4", meta.OpRead, meta.ResourceTopic, "t") {
		t.Fatal("allowed after the binding was removed")
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

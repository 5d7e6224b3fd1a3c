package server

// The authorizer (issue 14, docs/security.md): Kafka's ACL semantics over
// the cluster's bindings in meta.
//
// A request is allowed when the principal is a super user, or when some
// ALLOW binding matches and no DENY binding does (DENY wins; no binding
// at all denies, Kafka's allow.everyone.if.no.acl.found=false). A
// binding matches when its resource pattern does (LITERAL equal or "*",
// PREFIXED a prefix of the name), its principal is the connection's or
// User:*, its host is the client's IP or "*", and its operation is the
// one checked or ALL. An ALLOW of READ, WRITE, DELETE or ALTER also
// allows DESCRIBE, and one of ALTER_CONFIGS also DESCRIBE_CONFIGS
// (Kafka's implied operations); a DENY implies nothing.
//
// The hot path: the bindings live in an immutable snapshot, indexed by
// resource type and literal name, swapped whole with an atomic pointer
// when meta publishes an ACL change (Server.onCommit). A check is one
// atomic load, two map lookups for the literal name and "*", one per
// prefix length in use, and a scan of the few bindings found; it
// allocates nothing.
// With --authorizer none the Server has no authorizer and a check is one
// nil comparison.
//
// Propagation: every agent re-reads all bindings when a commit event
// says they changed, and when its watch of meta broke (it may have
// missed such an event); a failed read is retried with backoff. Until
// the first read succeeds the snapshot is empty: only super users pass,
// so a fresh agent fails closed.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/meta"
)

// AuthorizerMode is --authorizer.
type AuthorizerMode uint8

const (
	// AuthorizerNone allows everything and checks nothing (default).
	AuthorizerNone AuthorizerMode = iota
	// AuthorizerACL enforces the cluster's ACLs.
	AuthorizerACL
	// AuthorizerShadow evaluates the ACLs, logs and counts each denial,
	// and allows: a way to try ACLs on a running cluster.
	AuthorizerShadow
)

// ParseAuthorizerMode parses the value of --authorizer.
func ParseAuthorizerMode(s string) (AuthorizerMode, error) {
	switch s {
	case "", "none":
		return AuthorizerNone, nil
	case "acl":
		return AuthorizerACL, nil
	case "shadow":
		return AuthorizerShadow, nil
	}
	return 0, fmt.Errorf("--authorizer %q: want none, acl or shadow", s)
}

func (m AuthorizerMode) String() string {
	switch m {
	case AuthorizerACL:
		return "acl"
	case AuthorizerShadow:
		return "shadow"
	}
	return "none"
}

// ParseSuperUsers parses --super-users in Kafka's super.users syntax:
// principals separated by semicolons, "User:alice;User:bob".
func ParseSuperUsers(s string) ([]Principal, error) {
	var out []Principal
	for _, f := range strings.Split(s, ";") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := strings.IndexByte(f, ':')
		if i <= 0 || i == len(f)-1 {
			return nil, fmt.Errorf("--super-users: %q is not a principal of the form Type:Name (e.g. User:alice; separate several with ;)", f)
		}
		out = append(out, Principal{Type: f[:i], Name: f[i+1:]})
	}
	return out, nil
}

var (
	mAuthzDenied       = metrics.NewCounter(`sluice_authz_denied_total{mode="acl"}`)
	mAuthzShadowDenied = metrics.NewCounter(`sluice_authz_denied_total{mode="shadow"}`)
	mAuthzReloads      = metrics.NewCounter(`sluice_authz_acl_reloads_total`)
	mAuthzReloadErrors = metrics.NewCounter(`sluice_authz_acl_reload_errors_total`)
)

// aclRule is one binding as the snapshot holds it.
type aclRule struct {
	pType, pName string // principal; pName "*" with pType "User" is everyone
	host         string
	op           meta.ACLOperation
	deny         bool
}

// resourceRules are the bindings of one resource type. Prefixed
// patterns are found by looking up each prefix length in use: a name
// matches at most one prefix of each length, so a check costs one map
// lookup per distinct length rather than a scan of every prefix.
type resourceRules struct {
	literal  map[string][]aclRule // by name; "*" is the wildcard
	prefixed map[string][]aclRule // by prefix
	lens     []int                // the prefix lengths in prefixed, ascending
}

// aclSnapshot is an immutable view of a cluster's bindings.
type aclSnapshot struct {
	byType [meta.ResourceTransactionalID + 1]resourceRules
	n      int
}

func newACLSnapshot(bs []meta.ACLBinding) *aclSnapshot {
	s := &aclSnapshot{n: len(bs)}
	for _, b := range bs {
		if b.ResourceType < meta.ResourceTopic || b.ResourceType > meta.ResourceTransactionalID {
			continue
		}
		pt, pn, ok := strings.Cut(b.Principal, ":")
		if !ok {
			continue
		}
		r := aclRule{pType: pt, pName: pn, host: b.Host, op: b.Operation, deny: b.Permission == meta.PermissionDeny}
		rr := &s.byType[b.ResourceType]
		switch b.PatternType {
		case meta.PatternLiteral:
			if rr.literal == nil {
				rr.literal = map[string][]aclRule{}
			}
			rr.literal[b.ResourceName] = append(rr.literal[b.ResourceName], r)
		case meta.PatternPrefixed:
			if rr.prefixed == nil {
				rr.prefixed = map[string][]aclRule{}
			}
			if _, seen := rr.prefixed[b.ResourceName]; !seen {
				rr.lens = append(rr.lens, len(b.ResourceName))
			}
			rr.prefixed[b.ResourceName] = append(rr.prefixed[b.ResourceName], r)
		}
	}
	for i := range s.byType {
		slices.Sort(s.byType[i].lens)
		s.byType[i].lens = slices.Compact(s.byType[i].lens)
	}
	return s
}

// implies reports whether an ALLOW of granted allows op.
func implies(granted, op meta.ACLOperation) bool {
	if granted == op || granted == meta.OpAll {
		return true
	}
	switch op {
	case meta.OpDescribe:
		return granted == meta.OpRead || granted == meta.OpWrite || granted == meta.OpDelete || granted == meta.OpAlter
	case meta.OpDescribeConfigs:
		return granted == meta.OpAlterConfigs
	}
	return false
}

// scan folds rules into the verdict so far.
func scan(rules []aclRule, p *Principal, host string, op meta.ACLOperation, allow, deny bool) (bool, bool) {
	for i := range rules {
		r := &rules[i]
		if r.pType != p.Type || (r.pName != p.Name && r.pName != meta.WildcardName) {
			continue
		}
		if r.host != meta.WildcardHost && r.host != host {
			continue
		}
		if r.deny {
			if r.op == op || r.op == meta.OpAll {
				deny = true
			}
		} else if implies(r.op, op) {
			allow = true
		}
	}
	return allow, deny
}

// allows evaluates the ACLs (super users aside).
func (s *aclSnapshot) allows(p *Principal, host string, op meta.ACLOperation, rt meta.ResourceType, name string) bool {
	if rt < 0 || int(rt) >= len(s.byType) {
		return false
	}
	rr := &s.byType[rt]
	var allow, deny bool
	if rr.literal != nil {
		allow, deny = scan(rr.literal[name], p, host, op, allow, deny)
		allow, deny = scan(rr.literal[meta.WildcardName], p, host, op, allow, deny)
	}
	for _, l := range rr.lens {
		if l > len(name) {
			break
		}
		allow, deny = scan(rr.prefixed[name[:l]], p, host, op, allow, deny)
	}
	return allow && !deny
}

// authorizer holds a Server's snapshot and keeps it current.
type authorizer struct {
	mode   AuthorizerMode
	supers []Principal
	meta   meta.Client
	log    *slog.Logger
	snap   atomic.Pointer[aclSnapshot]
	loadMu sync.Mutex // serializes load
	// reload is signalled (never blocking) when the bindings may have
	// changed; the loop coalesces signals into one read.
	reload chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// loads counts successful reads (tests wait on it).
	loads atomic.Int64
}

func newAuthorizer(mode AuthorizerMode, supers []Principal, mc meta.Client, log *slog.Logger) *authorizer {
	a := &authorizer{mode: mode, supers: supers, meta: mc, log: log, reload: make(chan struct{}, 1), done: make(chan struct{})}
	a.snap.Store(newACLSnapshot(nil))
	return a
}

// start reads the bindings once (so that the listener opens with them
// when meta answers) and keeps them current until stop.
func (a *authorizer) start(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, metaTimeout)
	if err := a.load(rctx); err != nil {
		a.log.Warn("authorizer: first read of the ACLs failed; only super users pass until it succeeds", "err", err)
		a.changed()
	}
	cancel()
	lctx, lcancel := context.WithCancel(context.Background())
	a.cancel = lcancel
	go a.loop(lctx)
}

func (a *authorizer) stop() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
}

// changed asks for a re-read; it never blocks.
func (a *authorizer) changed() {
	select {
	case a.reload <- struct{}{}:
	default:
	}
}

func (a *authorizer) loop(ctx context.Context) {
	defer close(a.done)
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.reload:
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, metaTimeout)
			err := a.load(rctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				backoff = 50 * time.Millisecond
				break
			}
			mAuthzReloadErrors.Inc()
			a.log.Warn("authorizer: read the ACLs from meta", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
		}
	}
}

var aclFilterAll = meta.ACLFilter{ResourceType: meta.ResourceAny, PatternType: meta.PatternAny, Operation: meta.OpAny, Permission: meta.PermissionAny}

// load reads every binding and swaps the snapshot. Loads are
// serialized (loadMu): a read that began before a change must not store
// its older view after a later read stored the newer one (the loop and
// an ACL API's own reload can run at once).
func (a *authorizer) load(ctx context.Context) error {
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	bs, err := a.meta.ACLs(ctx, aclFilterAll)
	if err != nil {
		return err
	}
	a.snap.Store(newACLSnapshot(bs))
	a.loads.Add(1)
	mAuthzReloads.Inc()
	return nil
}

func (a *authorizer) isSuper(p *Principal) bool {
	for i := range a.supers {
		if a.supers[i] == *p {
			return true
		}
	}
	return false
}

// decide evaluates without logging.
func (a *authorizer) decide(p *Principal, host string, op meta.ACLOperation, rt meta.ResourceType, name string) bool {
	return a.isSuper(p) || a.snap.Load().allows(p, host, op, rt, name)
}

// clientHost is the IP of a connection's remote address, "ip:port" or
// "[ip]:port", without allocating.
func clientHost(remote string) string {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 {
		return remote
	}
	h := remote[:i]
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		h = h[1 : len(h)-1]
	}
	return h
}

// authorize reports whether rc's connection may do op on the resource.
// In shadow mode a denial is logged and counted, and allowed.
func (s *Server) authorize(rc *reqCtx, op meta.ACLOperation, rt meta.ResourceType, name string) bool {
	// Small enough to inline: with --authorizer none a handler's check
	// is this one comparison.
	if s.authz == nil {
		return true
	}
	return s.authorizeACL(rc, op, rt, name)
}

func (s *Server) authorizeACL(rc *reqCtx, op meta.ACLOperation, rt meta.ResourceType, name string) bool {
	a := s.authz
	p := rc.c.Principal()
	host := clientHost(rc.c.remote)
	if a.decide(&p, host, op, rt, name) {
		return true
	}
	if a.mode == AuthorizerShadow {
		mAuthzShadowDenied.Inc()
		s.log.Info("authorizer (shadow): would deny", "principal", p.String(), "host", host, "operation", opName(op),
			"resource_type", resourceTypeName(rt), "resource", name, "api", kmsg.NameForKey(rc.key))
		return true
	}
	mAuthzDenied.Inc()
	s.log.Debug("authorizer: denied", "principal", p.String(), "host", host, "operation", opName(op),
		"resource_type", resourceTypeName(rt), "resource", name, "api", kmsg.NameForKey(rc.key))
	return false
}

// allowedQuietly evaluates like authorize but neither logs nor counts,
// and in shadow mode answers what acl mode would: for a first choice
// that has a fallback checked with authorize (CREATE on the cluster,
// else on the topic), so that only the final denial is reported, as
// Kafka's logIfDenied=false does.
func (s *Server) allowedQuietly(rc *reqCtx, op meta.ACLOperation, rt meta.ResourceType, name string) bool {
	if s.authz == nil {
		return true
	}
	p := rc.c.Principal()
	return s.authz.decide(&p, clientHost(rc.c.remote), op, rt, name)
}

// authorizeCluster is authorize on the CLUSTER resource. The SCRAM
// credential APIs (the SASL handlers) use it as Kafka does:
// AlterUserScramCredentials needs ALTER, DescribeUserScramCredentials
// DESCRIBE, else CLUSTER_AUTHORIZATION_FAILED.
func (s *Server) authorizeCluster(rc *reqCtx, op meta.ACLOperation) bool {
	return s.authorize(rc, op, meta.ResourceCluster, meta.ClusterResourceName)
}

// authorizeAny reports whether rc may do op on at least one resource of
// type rt: Kafka's authorizeByResourceType (InitProducerId of an
// idempotent producer: WRITE on any topic). A DENY on a literal or
// prefixed name does not deny the type: another name may still be
// allowed, as in Kafka, unless a DENY covers every name ("*" literal or
// the empty prefix).
func (s *Server) authorizeAny(rc *reqCtx, op meta.ACLOperation, rt meta.ResourceType) bool {
	a := s.authz
	if a == nil {
		return true
	}
	p := rc.c.Principal()
	host := clientHost(rc.c.remote)
	ok := a.isSuper(&p) || a.snap.Load().allowsAny(&p, host, op, rt)
	if ok {
		return true
	}
	if a.mode == AuthorizerShadow {
		mAuthzShadowDenied.Inc()
		s.log.Info("authorizer (shadow): would deny", "principal", p.String(), "host", host, "operation", opName(op),
			"resource_type", resourceTypeName(rt), "resource", "(any)", "api", kmsg.NameForKey(rc.key))
		return true
	}
	mAuthzDenied.Inc()
	return false
}

func (s *aclSnapshot) allowsAny(p *Principal, host string, op meta.ACLOperation, rt meta.ResourceType) bool {
	if rt < 0 || int(rt) >= len(s.byType) {
		return false
	}
	rr := &s.byType[rt]
	// Denied everywhere?
	if _, deny := scan(rr.literal[meta.WildcardName], p, host, op, false, false); deny {
		return false
	}
	if _, deny := scan(rr.prefixed[""], p, host, op, false, false); deny {
		return false
	}
	for name, rules := range rr.literal {
		if allow, _ := scan(rules, p, host, op, false, false); allow && s.allows(p, host, op, rt, name) {
			return true
		}
	}
	for prefix, rules := range rr.prefixed {
		if allow, _ := scan(rules, p, host, op, false, false); !allow {
			continue
		}
		// Unless a DENY covers every name under the prefix: a DENY on
		// a prefix of it (itself included).
		denied := false
		for _, l := range rr.lens {
			if l > len(prefix) {
				break
			}
			if _, deny := scan(rr.prefixed[prefix[:l]], p, host, op, false, false); deny {
				denied = true
				break
			}
		}
		if !denied {
			return true
		}
	}
	return false
}

// authorizedOps is the authorizedOperations bit field (bit n for the
// operation of code n) of the resource for rc, over the operations
// Kafka lists for its type; every one of them without an authorizer,
// as Kafka answers.
func (s *Server) authorizedOps(rc *reqCtx, rt meta.ResourceType, name string) int32 {
	var ops []meta.ACLOperation
	switch rt {
	case meta.ResourceTopic:
		ops = topicOps[:]
	case meta.ResourceGroup:
		ops = groupOps[:]
	case meta.ResourceCluster:
		ops = clusterOps[:]
	}
	var bits int32
	a := s.authz
	var p Principal
	var host string
	if a != nil {
		p = rc.c.Principal()
		host = clientHost(rc.c.remote)
	}
	for _, op := range ops {
		if a == nil || a.decide(&p, host, op, rt, name) {
			bits |= 1 << op
		}
	}
	return bits
}

// The operations each resource type supports (Kafka's
// AclEntry.supportedOperations).
var (
	topicOps   = [...]meta.ACLOperation{meta.OpRead, meta.OpWrite, meta.OpCreate, meta.OpDescribe, meta.OpDelete, meta.OpAlter, meta.OpDescribeConfigs, meta.OpAlterConfigs}
	groupOps   = [...]meta.ACLOperation{meta.OpRead, meta.OpDescribe, meta.OpDelete}
	clusterOps = [...]meta.ACLOperation{meta.OpCreate, meta.OpClusterAction, meta.OpDescribeConfigs, meta.OpAlterConfigs, meta.OpIdempotentWrite, meta.OpAlter, meta.OpDescribe}
)

var opNames = [...]string{"UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"}

func opName(op meta.ACLOperation) string {
	if op >= 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return "UNKNOWN"
}

var resourceTypeNames = [...]string{"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"}

func resourceTypeName(rt meta.ResourceType) string {
	if rt >= 0 && int(rt) < len(resourceTypeNames) {
		return resourceTypeNames[rt]
	}
	return "UNKNOWN"
}

// authzChanged is called when meta says the ACLs changed, or the watch
// broke.
func (s *Server) authzChanged() {
	if s.authz != nil {
		s.authz.changed()
	}
}

// ACLBindings is how many ACL bindings this agent's authorizer holds
// now, -1 with --authorizer none: tests wait on it for a change to be in
// force here.
func (s *Server) ACLBindings() int {
	if s.authz == nil {
		return -1
	}
	return s.authz.snap.Load().n
}

package controller

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

func aclFor(name string, pt meta.PatternType, op meta.ACLOperation, perm meta.ACLPermission) meta.ACLBinding {
	return meta.ACLBinding{ResourceType: meta.ResourceTopic, ResourceName: name, PatternType: pt, Principal: "User:alice", Host: "*", Operation: op, Permission: perm}
}

var aclAll = meta.ACLFilter{ResourceType: meta.ResourceAny, PatternType: meta.PatternAny, Operation: meta.OpAny, Permission: meta.PermissionAny}

// testACLs runs the ACL contract on s: create (idempotent, invalid
// refused per binding), describe by filter, delete by filter, one watch
// event per change, and the bindings survive a reopen (reopen checks the
// whole state).
func testACLs(t *testing.T, s *Service, reopenFn func(*Service) *Service) {
	ctx := ctxT(t)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	ch, err := s.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	bs := []meta.ACLBinding{
		aclFor("orders", meta.PatternLiteral, meta.OpRead, meta.PermissionAllow),
		aclFor("ord", meta.PatternPrefixed, meta.OpWrite, meta.PermissionAllow),
		aclFor("*", meta.PatternLiteral, meta.OpDescribe, meta.PermissionDeny),
		{ResourceType: meta.ResourceAny, ResourceName: "x", PatternType: meta.PatternLiteral, Principal: "User:a", Host: "*", Operation: meta.OpRead, Permission: meta.PermissionAllow},
		aclFor("orders", meta.PatternLiteral, meta.OpRead, meta.PermissionAllow), // a repeat: stored once
	}
	errs, err := s.CreateACLs(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range errs {
		if (i == 3) != errors.Is(e, meta.ErrInvalidACL) {
			t.Fatalf("CreateACLs error %d: %v", i, e)
		}
	}
	select {
	case evs := <-ch:
		if len(evs) != 1 || !evs[0].ACLs {
			t.Fatalf("watch events after CreateACLs: %+v, want one ACLs event", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event for an ACL change")
	}
	got, err := s.ACLs(ctx, aclAll)
	if err != nil || len(got) != 3 {
		t.Fatalf("ACLs(all) = %+v, %v; want 3 bindings", got, err)
	}
	orders := "orders"
	match := aclAll
	match.ResourceName, match.PatternType = &orders, meta.PatternMatch
	got, _ = s.ACLs(ctx, match)
	if len(got) != 3 {
		t.Fatalf("ACLs(MATCH orders) = %+v, want the literal, the prefixed and the wildcard", got)
	}
	lit := aclAll
	lit.ResourceName, lit.PatternType = &orders, meta.PatternLiteral
	got, _ = s.ACLs(ctx, lit)
	if len(got) != 1 || got[0] != bs[0] {
		t.Fatalf("ACLs(LITERAL orders) = %+v, want %+v", got, bs[0])
	}
	if _, err := s.ACLs(ctx, meta.ACLFilter{}); !errors.Is(err, meta.ErrInvalidACL) {
		t.Fatalf("ACLs with a zero filter: %v, want ErrInvalidACL", err)
	}

	s = reopenFn(s)
	got, _ = s.ACLs(ctx, aclAll)
	if len(got) != 3 {
		t.Fatalf("after reopen: %+v", got)
	}

	// Two filters that both match the prefixed binding: it is reported
	// once, under the first.
	ord := "ord"
	f1 := aclAll
	f1.ResourceName, f1.PatternType = &orders, meta.PatternMatch
	f1.Operation = meta.OpWrite
	f2 := aclAll
	f2.ResourceName, f2.PatternType = &ord, meta.PatternPrefixed
	res, err := s.DeleteACLs(ctx, []meta.ACLFilter{f1, f2, {}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || len(res[0].Bindings) != 1 || res[0].Bindings[0] != bs[1] || len(res[1].Bindings) != 0 || !errors.Is(res[2].Err, meta.ErrInvalidACL) {
		t.Fatalf("DeleteACLs = %+v", res)
	}
	got, _ = s.ACLs(ctx, aclAll)
	want := []meta.ACLBinding{bs[2], bs[0]} // "*" sorts before "orders"
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete: %+v, want %+v", got, want)
	}
}

func TestACLs(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	testACLs(t, s, func(s *Service) *Service { return reopen(t, s) })
}

// TestPostgresACLs runs the same on PostgreSQL whatever
// SLUICE_META_STORE says, and checks that ACLs are per cluster.
func TestPostgresACLs(t *testing.T) {
	pool := newPool(t)
	open := func(cluster string) *Service {
		t.Helper()
		store, err := kv.OpenPostgres(ctxT(t), pool, cluster, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Store: store, Logger: quietLog, noJanitors: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	other := open("acl-two")
	defer other.Close()
	s := open("acl-one")
	var last *Service
	testACLs(t, s, func(s *Service) *Service {
		before := snapshot(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2 := open("acl-one")
		if after := snapshot(s2); !reflect.DeepEqual(before, after) {
			t.Fatalf("state after reopen differs:\nbefore %+v\nafter  %+v", before.ACLs, after.ACLs)
		}
		last = s2
		return s2
	})
	defer last.Close()
	if got, _ := other.ACLs(ctxT(t), aclAll); len(got) != 0 {
		t.Fatalf("the other cluster sees %d bindings", len(got))
	}
}

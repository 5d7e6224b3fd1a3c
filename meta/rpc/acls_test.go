package rpc

import (
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
)

// TestACLsOverRPC: the three ACL calls answer over gRPC what the Service
// answers directly, errors keep their sentinel, and an ACL change
// reaches a watcher over gRPC as an event with ACLs set.
func TestACLsOverRPC(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)
	rw, err := e.rc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := meta.ACLBinding{ResourceType: meta.ResourceTopic, ResourceName: "orders", PatternType: meta.PatternPrefixed, Principal: "User:alice", Host: "*", Operation: meta.OpRead, Permission: meta.PermissionAllow}
	bad := b
	bad.Permission = meta.PermissionAny
	errs, err := e.rc.CreateACLs(ctx, []meta.ACLBinding{b, bad})
	if err != nil || len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], meta.ErrInvalidACL) {
		t.Fatalf("CreateACLs = %v, %v", errs, err)
	}
	evs := recvT(t, rw, "rpc watch")
	if len(evs) != 1 || !evs[0].ACLs {
		t.Fatalf("watch over rpc: %+v, want one ACLs event", evs)
	}
	all := meta.ACLFilter{ResourceType: meta.ResourceAny, PatternType: meta.PatternAny, Operation: meta.OpAny, Permission: meta.PermissionAny}
	remote, err := e.rc.ACLs(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := e.svc.ACLs(ctx, all)
	same(t, "ACLs", remote, direct)
	if len(remote) != 1 || remote[0] != b {
		t.Fatalf("ACLs over rpc = %+v", remote)
	}
	name := "orders-eu"
	f := all
	f.ResourceName, f.PatternType = &name, meta.PatternMatch
	res, err := e.rc.DeleteACLs(ctx, []meta.ACLFilter{f, {ResourceType: 99}})
	if err != nil || len(res) != 2 || len(res[0].Bindings) != 1 || res[0].Bindings[0] != b || !errors.Is(res[1].Err, meta.ErrInvalidACL) {
		t.Fatalf("DeleteACLs over rpc = %+v, %v", res, err)
	}
}

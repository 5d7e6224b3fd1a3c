package groups

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"sluice.dev/meta"
)

// The coordinator's behaviour through the whole Service (offsets,
// limits, timers under synctest) is tested in meta/controller
// (groups_test.go, groups_abuse_test.go). These tests run it alone,
// against an in-memory Offsets, which is all it needs of the controller.

// Config validation names the flag.
func TestGroupConfigValidation(t *testing.T) {
	for _, c := range []Config{{MaxGroups: -1}, {MaxMembersPerGroup: -1}, {OffsetsRetention: time.Second}, {InitialRebalanceDelay: -time.Second}, {InitialRebalanceDelay: time.Hour}} {
		if _, err := c.WithDefaults(); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	c, err := Config{}.WithDefaults()
	if err != nil || c.OffsetsRetention != 7*24*time.Hour || c.MaxGroups != defaultMaxGroups || c.MaxMembersPerGroup != defaultMaxMembersPerGroup {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// fakeOffsets is an Offsets over a set of group names.
type fakeOffsets struct {
	mu     sync.Mutex
	groups map[string]bool
}

func (f *fakeOffsets) HasOffsets(group string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.groups[group]
}

func (f *fakeOffsets) CountNotIn(known func(string) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for g := range f.groups {
		if !known(g) {
			n++
		}
	}
	return n
}

func testCoordinator(t *testing.T, cfg Config, offs *fakeOffsets) *Coordinator {
	t.Helper()
	cfg, err := cfg.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg, offs)
}

// A lone member joins, leads, syncs its own assignment, heartbeats and
// leaves; the group is then dropped from memory and, having no offsets,
// is not found.
func TestCoordinatorAlone(t *testing.T) {
	c := testCoordinator(t, Config{}, &fakeOffsets{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := meta.JoinGroupRequest{Group: "g", ClientID: "c", ProtocolType: "consumer",
		Protocols:      []meta.GroupProtocol{{Name: "range", Metadata: []byte("m")}},
		SessionTimeout: 10 * time.Second}
	jr, err := c.Join(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if jr.LeaderID != jr.MemberID || jr.Generation != 1 || len(jr.Members) != 1 {
		t.Fatalf("join: %+v", jr)
	}
	sr, err := c.Sync(ctx, meta.SyncGroupRequest{Group: "g", MemberID: jr.MemberID, Generation: 1,
		Assignments: map[string][]byte{jr.MemberID: []byte("a")}})
	if err != nil || string(sr.Assignment) != "a" {
		t.Fatalf("sync: %+v %v", sr, err)
	}
	if err := c.Heartbeat("g", jr.MemberID, "", 1); err != nil {
		t.Fatalf("heartbeat: %v", err)
	}
	if d := c.Describe("g"); d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	if errs := c.Leave("g", []meta.LeavingMember{{MemberID: jr.MemberID}}); errs[0] != nil {
		t.Fatalf("leave: %v", errs[0])
	}
	if g, m, p := c.Counts(); g != 0 || m != 0 || p != 0 {
		t.Fatalf("after leave: %d groups, %d members, %d pending", g, m, p)
	}
	if err := c.Delete("g"); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("delete of a forgotten group without offsets: %v", err)
	}
}

// MaxGroups counts the groups that only have offsets, through Offsets,
// and a group with offsets may always be joined.
func TestCoordinatorMaxGroupsCountsOffsets(t *testing.T) {
	offs := &fakeOffsets{groups: map[string]bool{"o1": true, "o2": true}}
	c := testCoordinator(t, Config{MaxGroups: 3}, offs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	join := func(group string) error {
		_, err := c.Join(ctx, meta.JoinGroupRequest{Group: group, ProtocolType: "consumer",
			Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second})
		return err
	}
	if err := join("new1"); err != nil {
		t.Fatalf("third group: %v", err)
	}
	if err := join("new2"); !errors.Is(err, meta.ErrTooManyGroups) {
		t.Fatalf("fourth group: %v, want ErrTooManyGroups", err)
	}
	if err := join("o1"); err != nil {
		t.Fatalf("group with offsets: %v", err)
	}
	if err := c.AdmitNewGroup("new3", 2, offs.HasOffsets); !errors.Is(err, meta.ErrTooManyGroups) {
		t.Fatalf("offset commit creating a fourth group: %v", err)
	}
	if err := c.AdmitNewGroup("new1", 2, offs.HasOffsets); err != nil {
		t.Fatalf("offset commit to a joined group: %v", err)
	}
	if l := c.List([]string{"o1", "o2"}); len(l) != 3 || l[0].Group != "new1" || l[1].Group != "o1" || l[1].State != "CompletingRebalance" || l[2].State != "Empty" {
		t.Fatalf("list: %+v", l)
	}
}

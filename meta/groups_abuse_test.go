package meta

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Tests of issue 11 ("trust under abuse") for the group coordinator:
// what clients can make meta keep, and Kafka's timer rules. Time-driven
// tests run in a synctest bubble: the Service is opened inside it, so its
// timers and the offset expiry loop run on the bubble's clock, and a
// week passes in no time. They run on both stores (SLUICE_META_STORE).
//
// Contexts inside a bubble carry no deadline: a 30 s deadline (ctxT)
// would expire when the test sleeps through a week. A test that hangs
// is caught by synctest's deadlock detection instead.

// inBubble runs f in a synctest bubble. With PostgreSQL the stores of
// the bubble use a pool of its own, made and closed inside it: pgxpool's
// WaitGroups and timers may not be shared between bubbles, and its
// health-check goroutine must end with the bubble. (The meta tests do not
// run in parallel, so one override at a time is enough.)
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if storeMode != "postgres" {
		synctest.Test(t, f)
		return
	}
	// The server, the suite's database and its lease, outside the
	// bubble; the bubble's pool opens the same database.
	shared, _ := testPostgres(t)
	synctest.Test(t, func(t *testing.T) {
		pool, err := pgxpool.New(context.Background(), shared.Config().ConnString())
		if err != nil {
			t.Fatal(err)
		}
		testPG.mu.Lock()
		testPG.bubblePool = pool
		testPG.mu.Unlock()
		// Registered first, so it runs after openT's cleanups.
		t.Cleanup(func() {
			testPG.mu.Lock()
			testPG.bubblePool = nil
			testPG.mu.Unlock()
			pool.Close()
		})
		f(t)
	})
}

// groupCounts counts what the coordinator holds in memory.
func groupCounts(s *Service) (groups, members, pending int) {
	s.groups.mu.Lock()
	defer s.groups.mu.Unlock()
	for _, g := range s.groups.groups {
		g.mu.Lock()
		members += len(g.members)
		pending += len(g.pending)
		g.mu.Unlock()
	}
	return len(s.groups.groups), members, pending
}

// Issue 11: 20,000 JoinGroups with an empty member id left 20,000
// pending member ids in meta for ever. A pending id now goes after the
// session timeout, and a group left with nothing leaves memory.
func TestGroupPendingMembersExpire(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		ctx := context.Background()
		const n = 2000
		for i := range n {
			req := joinReq("g"+string(rune('a'+i%4)), "")
			req.RequireKnownMember = true
			req.SessionTimeout = 10 * time.Second
			if _, err := s.JoinGroup(ctx, req); !errors.Is(err, ErrMemberIDRequired) {
				t.Fatalf("join %d: %v", i, err)
			}
		}
		// One client comes back with its id in time and stays.
		req := joinReq("kept", "")
		req.RequireKnownMember = true
		req.SessionTimeout = 10 * time.Second
		r, err := s.JoinGroup(ctx, req)
		if !errors.Is(err, ErrMemberIDRequired) {
			t.Fatal(err)
		}
		req.MemberID = r.MemberID
		kept, err := s.JoinGroup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SyncGroup(ctx, SyncGroupRequest{Group: "kept", MemberID: kept.MemberID, Generation: kept.Generation,
			Assignments: map[string][]byte{kept.MemberID: []byte("all")}}); err != nil {
			t.Fatal(err)
		}
		if g, m, p := groupCounts(s); g != 5 || m != 1 || p != n {
			t.Fatalf("after the joins: %d groups, %d members, %d pending; want 5, 1, %d", g, m, p, n)
		}
		time.Sleep(9 * time.Second)
		if err := s.Heartbeat(ctx, "kept", kept.MemberID, "", kept.Generation); err != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if g, m, p := groupCounts(s); g != 1 || m != 1 || p != 0 {
			t.Fatalf("after the session timeout: %d groups, %d members, %d pending; want 1, 1, 0", g, m, p)
		}
		// An expired pending id is unknown.
		req = joinReq("ga", "")
		req.RequireKnownMember = true
		req.SessionTimeout = time.Second
		stale, _ := s.JoinGroup(ctx, req)
		time.Sleep(2 * time.Second)
		if _, err := s.JoinGroup(ctx, joinReq("ga", stale.MemberID)); !errors.Is(err, ErrUnknownMemberID) {
			t.Fatalf("join with an expired pending id: %v", err)
		}
		// The kept member leaves: nothing is left.
		if errs, err := s.LeaveGroup(ctx, "kept", []LeavingMember{{MemberID: kept.MemberID}}); err != nil || errs[0] != nil {
			t.Fatal(errs, err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if g, m, p := groupCounts(s); g != 0 || m != 0 || p != 0 {
			t.Fatalf("at the end: %d groups, %d members, %d pending; want none", g, m, p)
		}
	})
}

// A group whose members all left (or expired) is dropped from memory
// unless something is still going on; its committed offsets stay
// readable and it lists and describes as Empty.
func TestGroupEmptyDropped(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		ctx := context.Background()
		a := createTopic(t, s, "a", 1)
		for i := range 100 {
			name := "g" + strings.Repeat("x", i)
			r, err := s.JoinGroup(ctx, joinReq(name, ""))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SyncGroup(ctx, SyncGroupRequest{Group: name, MemberID: r.MemberID, Generation: r.Generation}); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: name, MemberID: r.MemberID, Generation: r.Generation,
					Offsets: []CommittedOffset{{TopicPartition: TopicPartition{a.ID, 0}, Offset: 5}}}); err != nil {
					t.Fatal(err)
				}
			}
			if i%2 == 0 {
				if _, err := s.LeaveGroup(ctx, name, []LeavingMember{{MemberID: r.MemberID}}); err != nil {
					t.Fatal(err)
				}
			} // the others just stop heartbeating
		}
		time.Sleep(3 * time.Second) // joinReq's session timeout is 2 s
		synctest.Wait()
		if g, m, p := groupCounts(s); g != 0 || m != 0 || p != 0 {
			t.Fatalf("%d groups, %d members, %d pending left in memory", g, m, p)
		}
		d, _ := s.DescribeGroup(ctx, "g")
		ls, _ := s.ListGroups(ctx)
		if d.State != "Empty" || len(ls) != 1 || ls[0].Group != "g" || ls[0].State != "Empty" {
			t.Fatalf("the group with offsets: describe %+v, list %+v", d, ls)
		}
		if offs, _ := s.FetchOffsets(ctx, "g", nil); len(offs) != 1 || offs[0].Offset != 5 {
			t.Fatalf("offsets: %+v", offs)
		}
	})
}

// Offsets of a group without members expire OffsetsRetention after the
// later of their commit and the group's last member leaving (KIP-211);
// a group with members keeps them however old; a restart restarts the
// count. Today's main kept every offset for ever.
func TestOffsetsExpire(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		const retention = 2 * time.Hour
		dir := t.TempDir()
		withRetention := func(c *Config) { c.Groups.OffsetsRetention = retention }
		s := openT(t, dir, withRetention)
		ctx := context.Background()
		a := createTopic(t, s, "a", 1)
		tp := TopicPartition{a.ID, 0}
		offsets := []CommittedOffset{{TopicPartition: tp, Offset: 7, Metadata: "m"}}
		has := func(group string) bool {
			offs, err := s.FetchOffsets(ctx, group, nil)
			if err != nil {
				t.Fatal(err)
			}
			return len(offs) == 1
		}
		member := func(group string) JoinGroupResult {
			req := joinReq(group, "")
			req.SessionTimeout = 30 * time.Minute
			r, err := s.JoinGroup(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SyncGroup(ctx, SyncGroupRequest{Group: group, MemberID: r.MemberID, Generation: r.Generation}); err != nil {
				t.Fatal(err)
			}
			if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: group, MemberID: r.MemberID, Generation: r.Generation, Offsets: offsets}); err != nil {
				t.Fatal(err)
			}
			return r
		}
		// solo: committed from outside the group protocol, never had
		// members. live: a member that commits once and heartbeats on.
		// left: its member leaves an hour after committing.
		if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: "solo", Generation: -1, Offsets: offsets}); err != nil {
			t.Fatal(err)
		}
		live, left := member("live"), member("left")
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Minute):
				}
				if err := s.Heartbeat(ctx, "live", live.MemberID, "", live.Generation); err != nil {
					t.Errorf("heartbeat: %v", err)
					return
				}
			}
		})
		time.Sleep(time.Hour)
		if _, err := s.LeaveGroup(ctx, "left", []LeavingMember{{MemberID: left.MemberID}}); err != nil {
			t.Fatal(err)
		}
		// The expiry runs every 10 minutes; give it one round past each
		// deadline.
		time.Sleep(retention - time.Hour - time.Minute)
		synctest.Wait()
		if !has("solo") || !has("left") || !has("live") {
			t.Fatalf("expired early: solo %v left %v live %v", has("solo"), has("left"), has("live"))
		}
		time.Sleep(time.Minute + offsetsCheckInterval)
		synctest.Wait()
		if has("solo") || !has("left") || !has("live") {
			t.Fatalf("at commit+retention: solo %v left %v live %v; want false true true", has("solo"), has("left"), has("live"))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if has("left") || !has("live") {
			t.Fatalf("at leave+retention: left %v live %v; want false true", has("left"), has("live"))
		}
		close(stop)
		wg.Wait()
		// The deletions are durable, and a restart restarts the count
		// for a group that is empty (its members had not come back).
		if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: "solo", Generation: -1, Offsets: offsets}); err != nil {
			t.Fatal(err)
		}
		// Restart before the old Service's expiry would take the new
		// commit (at +retention).
		time.Sleep(retention - 5*time.Minute)
		s = reopen(t, s, withRetention)
		if !has("solo") || has("left") || !has("live") {
			t.Fatalf("after restart: solo %v left %v live %v; want true false true", has("solo"), has("left"), has("live"))
		}
		time.Sleep(retention - time.Minute)
		synctest.Wait()
		if !has("solo") || !has("live") {
			t.Fatal("offsets expired before retention had passed since the restart")
		}
		time.Sleep(time.Minute + offsetsCheckInterval)
		synctest.Wait()
		if has("solo") || has("live") {
			t.Fatalf("retention after the restart: solo %v live %v; want both gone", has("solo"), has("live"))
		}
		if ls, _ := s.ListGroups(ctx); len(ls) != 0 {
			t.Fatalf("groups left: %+v", ls)
		}
	})
}

// Offset metadata is capped at Kafka's default offset.metadata.max.bytes.
func TestOffsetMetadataTooLarge(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	commit := func(n int) error {
		return s.CommitOffsets(ctx, OffsetCommitRequest{Group: "g", Generation: -1,
			Offsets: []CommittedOffset{{TopicPartition: TopicPartition{a.ID, 0}, Offset: 1, Metadata: strings.Repeat("m", n)}}})
	}
	if err := commit(MaxOffsetMetadataBytes); err != nil {
		t.Fatal(err)
	}
	if err := commit(MaxOffsetMetadataBytes + 1); !errors.Is(err, ErrOffsetMetadataTooLarge) {
		t.Fatalf("metadata of %d bytes: %v", MaxOffsetMetadataBytes+1, err)
	}
	offs, _ := s.FetchOffsets(ctx, "g", nil)
	if len(offs) != 1 || len(offs[0].Metadata) != MaxOffsetMetadataBytes {
		t.Fatalf("offsets after the refused commit: %d", len(offs))
	}
}

// MaxGroups bounds groups made by JoinGroup and by OffsetCommit alike;
// MaxMembersPerGroup bounds members plus pending member ids. Each refusal
// names the flag to change.
func TestGroupLimits(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) { c.Groups.MaxGroups, c.Groups.MaxMembersPerGroup = 3, 2 })
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	offsets := []CommittedOffset{{TopicPartition: TopicPartition{a.ID, 0}, Offset: 1}}
	// Long timeouts: nobody syncs or heartbeats here, and no timer may
	// remove a member while the test counts.
	joinReq := func(group, member string) JoinGroupRequest {
		r := joinReq(group, member)
		r.SessionTimeout, r.RebalanceTimeout = 5*time.Minute, 5*time.Minute
		return r
	}
	r1, err := s.JoinGroup(ctx, joinReq("g1", ""))
	if err != nil {
		t.Fatal(err)
	}
	req := joinReq("g1", "")
	req.RequireKnownMember = true
	if _, err := s.JoinGroup(ctx, req); !errors.Is(err, ErrMemberIDRequired) {
		t.Fatal(err)
	}
	// g1 has a member and a pending id: a third is refused, v4 or not.
	_, err = s.JoinGroup(ctx, req)
	if !errors.Is(err, ErrGroupMaxSizeReached) || !strings.Contains(err.Error(), "--max-members-per-group") {
		t.Fatalf("third member: %v", err)
	}
	if _, err := s.JoinGroup(ctx, joinReq("g1", "")); !errors.Is(err, ErrGroupMaxSizeReached) {
		t.Fatalf("third member, v3: %v", err)
	}
	// A known member rejoins as usual.
	if _, err := s.JoinGroup(ctx, joinReq("g1", r1.MemberID)); err != nil {
		t.Fatalf("known member rejoining a full group: %v", err)
	}
	if _, err := s.JoinGroup(ctx, joinReq("g2", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: "g3", Generation: -1, Offsets: offsets}); err != nil {
		t.Fatal(err)
	}
	_, err = s.JoinGroup(ctx, joinReq("g4", ""))
	if !errors.Is(err, ErrTooManyGroups) || !strings.Contains(err.Error(), "--max-groups") {
		t.Fatalf("fourth group by JoinGroup: %v", err)
	}
	err = s.CommitOffsets(ctx, OffsetCommitRequest{Group: "g5", Generation: -1, Offsets: offsets})
	if !errors.Is(err, ErrTooManyGroups) || !strings.Contains(err.Error(), "--max-groups") {
		t.Fatalf("fourth group by OffsetCommit: %v", err)
	}
	if offs, _ := s.FetchOffsets(ctx, "g5", nil); len(offs) != 0 {
		t.Fatalf("refused commit stored: %+v", offs)
	}
	// Groups that exist go on: g3 commits again, a member joins it.
	if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: "g3", Generation: -1, Offsets: offsets}); err != nil {
		t.Fatalf("commit to an existing offsets-only group: %v", err)
	}
	if _, err := s.JoinGroup(ctx, joinReq("g3", "")); err != nil {
		t.Fatalf("join of an existing offsets-only group: %v", err)
	}
	if g, _, _ := groupCounts(s); g != 3 {
		t.Fatalf("%d groups in memory", g)
	}
	// A group that goes away makes room.
	d, _ := s.DescribeGroup(ctx, "g2")
	if _, err := s.LeaveGroup(ctx, "g2", []LeavingMember{{MemberID: d.Members[0].MemberID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, OffsetCommitRequest{Group: "g5", Generation: -1, Offsets: offsets}); err != nil {
		t.Fatalf("commit after a group left: %v", err)
	}
}

// Config validation names the flag.
func TestGroupConfigValidation(t *testing.T) {
	for _, c := range []GroupConfig{{MaxGroups: -1}, {MaxMembersPerGroup: -1}, {OffsetsRetention: time.Second}} {
		if _, err := c.withDefaults(); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%+v: %v", c, err)
		}
	}
	c, err := GroupConfig{}.withDefaults()
	if err != nil || c.OffsetsRetention != 7*24*time.Hour || c.MaxGroups != defaultMaxGroups || c.MaxMembersPerGroup != defaultMaxMembersPerGroup {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

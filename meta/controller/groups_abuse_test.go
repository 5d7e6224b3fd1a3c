package controller

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/meta"
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
	return s.groups.Counts()
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
			if _, err := s.JoinGroup(ctx, req); !errors.Is(err, meta.ErrMemberIDRequired) {
				t.Fatalf("join %d: %v", i, err)
			}
		}
		// One client comes back with its id in time and stays.
		req := joinReq("kept", "")
		req.RequireKnownMember = true
		req.SessionTimeout = 10 * time.Second
		r, err := s.JoinGroup(ctx, req)
		if !errors.Is(err, meta.ErrMemberIDRequired) {
			t.Fatal(err)
		}
		req.MemberID = r.MemberID
		kept, err := s.JoinGroup(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "kept", MemberID: kept.MemberID, Generation: kept.Generation,
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
		if _, err := s.JoinGroup(ctx, joinReq("ga", stale.MemberID)); !errors.Is(err, meta.ErrUnknownMemberID) {
			t.Fatalf("join with an expired pending id: %v", err)
		}
		// The kept member leaves: nothing is left.
		if errs, err := s.LeaveGroup(ctx, "kept", []meta.LeavingMember{{MemberID: kept.MemberID}}); err != nil || errs[0] != nil {
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
			if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: name, MemberID: r.MemberID, Generation: r.Generation}); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: name, MemberID: r.MemberID, Generation: r.Generation,
					Offsets: []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 0}, Offset: 5}}}); err != nil {
					t.Fatal(err)
				}
			}
			if i%2 == 0 {
				if _, err := s.LeaveGroup(ctx, name, []meta.LeavingMember{{MemberID: r.MemberID}}); err != nil {
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
		// The janitors run here (openT turns them off): the expiry
		// loop is what is tested. Nothing else happens to the store.
		withRetention := func(c *Config) { c.Groups.OffsetsRetention, c.noJanitors = retention, false }
		s := openT(t, dir, withRetention)
		ctx := context.Background()
		a := createTopic(t, s, "a", 1)
		tp := meta.TopicPartition{TopicID: a.ID, Partition: 0}
		offsets := []meta.CommittedOffset{{TopicPartition: tp, Offset: 7, Metadata: "m"}}
		has := func(group string) bool {
			offs, err := s.FetchOffsets(ctx, group, nil)
			if err != nil {
				t.Fatal(err)
			}
			return len(offs) == 1
		}
		member := func(group string) meta.JoinGroupResult {
			req := joinReq(group, "")
			req.SessionTimeout = 30 * time.Minute
			r, err := s.JoinGroup(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: group, MemberID: r.MemberID, Generation: r.Generation}); err != nil {
				t.Fatal(err)
			}
			if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: group, MemberID: r.MemberID, Generation: r.Generation, Offsets: offsets}); err != nil {
				t.Fatal(err)
			}
			return r
		}
		// solo: committed from outside the group protocol, never had
		// members. live: a member that commits once and heartbeats on.
		// left: its member leaves an hour after committing.
		if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "solo", Generation: -1, Offsets: offsets}); err != nil {
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
		if _, err := s.LeaveGroup(ctx, "left", []meta.LeavingMember{{MemberID: left.MemberID}}); err != nil {
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
		if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "solo", Generation: -1, Offsets: offsets}); err != nil {
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
		return s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1,
			Offsets: []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 0}, Offset: 1, Metadata: strings.Repeat("m", n)}}})
	}
	if err := commit(meta.MaxOffsetMetadataBytes); err != nil {
		t.Fatal(err)
	}
	if err := commit(meta.MaxOffsetMetadataBytes + 1); !errors.Is(err, meta.ErrOffsetMetadataTooLarge) {
		t.Fatalf("metadata of %d bytes: %v", meta.MaxOffsetMetadataBytes+1, err)
	}
	offs, _ := s.FetchOffsets(ctx, "g", nil)
	if len(offs) != 1 || len(offs[0].Metadata) != meta.MaxOffsetMetadataBytes {
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
	offsets := []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 0}, Offset: 1}}
	// Long timeouts: nobody syncs or heartbeats here, and no timer may
	// remove a member while the test counts.
	joinReq := func(group, member string) meta.JoinGroupRequest {
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
	if _, err := s.JoinGroup(ctx, req); !errors.Is(err, meta.ErrMemberIDRequired) {
		t.Fatal(err)
	}
	// g1 has a member and a pending id: a third is refused, v4 or not.
	_, err = s.JoinGroup(ctx, req)
	if !errors.Is(err, meta.ErrGroupMaxSizeReached) || !strings.Contains(err.Error(), "--max-members-per-group") {
		t.Fatalf("third member: %v", err)
	}
	if _, err := s.JoinGroup(ctx, joinReq("g1", "")); !errors.Is(err, meta.ErrGroupMaxSizeReached) {
		t.Fatalf("third member, v3: %v", err)
	}
	// A known member rejoins as usual.
	if _, err := s.JoinGroup(ctx, joinReq("g1", r1.MemberID)); err != nil {
		t.Fatalf("known member rejoining a full group: %v", err)
	}
	if _, err := s.JoinGroup(ctx, joinReq("g2", "")); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g3", Generation: -1, Offsets: offsets}); err != nil {
		t.Fatal(err)
	}
	_, err = s.JoinGroup(ctx, joinReq("g4", ""))
	if !errors.Is(err, meta.ErrTooManyGroups) || !strings.Contains(err.Error(), "--max-groups") {
		t.Fatalf("fourth group by JoinGroup: %v", err)
	}
	err = s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g5", Generation: -1, Offsets: offsets})
	if !errors.Is(err, meta.ErrTooManyGroups) || !strings.Contains(err.Error(), "--max-groups") {
		t.Fatalf("fourth group by OffsetCommit: %v", err)
	}
	if offs, _ := s.FetchOffsets(ctx, "g5", nil); len(offs) != 0 {
		t.Fatalf("refused commit stored: %+v", offs)
	}
	// Groups that exist go on: g3 commits again, a member joins it.
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g3", Generation: -1, Offsets: offsets}); err != nil {
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
	if _, err := s.LeaveGroup(ctx, "g2", []meta.LeavingMember{{MemberID: d.Members[0].MemberID}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g5", Generation: -1, Offsets: offsets}); err != nil {
		t.Fatalf("commit after a group left: %v", err)
	}
}

// timedReq is a join with session 1 s and rebalance timeout 10 s, the
// issue's example.
func timedReq(group, member string) meta.JoinGroupRequest {
	r := joinReq(group, member)
	r.SessionTimeout, r.RebalanceTimeout = time.Second, 10*time.Second
	return r
}

type joined struct {
	res meta.JoinGroupResult
	err error
	at  time.Time
}

// joinAsync joins in a goroutine; the answer arrives on the channel.
func joinAsync(s *Service, req meta.JoinGroupRequest) chan joined {
	ch := make(chan joined, 1)
	go func() {
		r, err := s.JoinGroup(context.Background(), req)
		ch <- joined{r, err, time.Now()}
	}()
	return ch
}

// stableTwo makes a stable group of two members, a the leader.
func stableTwo(t *testing.T, s *Service, group string) (a, b meta.JoinGroupResult) {
	t.Helper()
	ctx := context.Background()
	a, err := s.JoinGroup(ctx, timedReq(group, ""))
	if err != nil {
		t.Fatal(err)
	}
	bch := joinAsync(s, timedReq(group, ""))
	synctest.Wait()
	if a, err = s.JoinGroup(ctx, timedReq(group, a.MemberID)); err != nil {
		t.Fatal(err)
	}
	bj := <-bch
	if bj.err != nil {
		t.Fatal(bj.err)
	}
	b = bj.res
	if a.LeaderID != a.MemberID || a.Generation != b.Generation {
		t.Fatalf("setup: %+v %+v", a, b)
	}
	sch := make(chan error, 1)
	go func() {
		_, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: group, MemberID: b.MemberID, Generation: b.Generation})
		sch <- err
	}()
	if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: group, MemberID: a.MemberID, Generation: a.Generation,
		Assignments: map[string][]byte{a.MemberID: []byte("a"), b.MemberID: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if err := <-sch; err != nil {
		t.Fatal(err)
	}
	return a, b
}

// heartbeatFor keeps a member's session for d (every 500 ms), as a
// client does while its revoke callback runs, and returns the last error.
func heartbeatFor(s *Service, group string, m meta.JoinGroupResult, d time.Duration) error {
	var err error
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
		err = s.Heartbeat(context.Background(), group, m.MemberID, "", m.Generation)
	}
	return err
}

// Issue 11, item 6: with session timeout 1 s and rebalance timeout 10 s,
// a member waiting in JoinGroup for a slower member was expelled with
// UNKNOWN_MEMBER_ID after 1.0 s, and so was a follower waiting in
// SyncGroup for a slow leader. Kafka keeps parked members: the session
// timer is paused while a join or sync waits.
func TestGroupRebalanceWaitsForSlowMember(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		ctx := context.Background()
		a, b := stableTwo(t, s, "g")
		start := time.Now()
		cch := joinAsync(s, timedReq("g", "")) // a new member starts a rebalance
		synctest.Wait()
		if err := s.Heartbeat(ctx, "g", a.MemberID, "", a.Generation); !errors.Is(err, meta.ErrRebalanceInProgress) {
			t.Fatalf("a's heartbeat: %v", err)
		}
		ach := joinAsync(s, timedReq("g", a.MemberID)) // a rejoins at once
		// b revokes for 3 s, heartbeating, then rejoins.
		if err := heartbeatFor(s, "g", b, 3*time.Second); !errors.Is(err, meta.ErrRebalanceInProgress) {
			t.Fatalf("b's heartbeat while revoking: %v", err)
		}
		bch := joinAsync(s, timedReq("g", b.MemberID))
		aj, bj, cj := <-ach, <-bch, <-cch
		for name, j := range map[string]joined{"a": aj, "b": bj, "c": cj} {
			if j.err != nil {
				t.Fatalf("%s's join after %v: %v", name, j.at.Sub(start), j.err)
			}
			if j.res.Generation != a.Generation+1 {
				t.Fatalf("%s: generation %d, want %d", name, j.res.Generation, a.Generation+1)
			}
		}
		if len(aj.res.Members) != 3 || aj.res.LeaderID != a.MemberID {
			t.Fatalf("leader's answer: %+v", aj.res)
		}
		if got := aj.at.Sub(start); got != 3*time.Second {
			t.Fatalf("join phase took %v, want 3s (when the slow member came)", got)
		}
		// The followers sync at once; the leader assigns after 3 s.
		type synced struct {
			res meta.SyncGroupResult
			err error
		}
		follow := func(m meta.JoinGroupResult) chan synced {
			ch := make(chan synced, 1)
			go func() {
				r, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: m.MemberID, Generation: m.Generation})
				ch <- synced{r, err}
			}()
			return ch
		}
		bs, cs := follow(bj.res), follow(cj.res)
		// The leader heartbeats while it computes (its session runs: it
		// is not parked).
		if err := heartbeatFor(s, "g", aj.res, 3*time.Second); err != nil {
			t.Fatalf("leader's heartbeat while assigning: %v", err)
		}
		if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: a.MemberID, Generation: aj.res.Generation,
			Assignments: map[string][]byte{a.MemberID: []byte("1"), b.MemberID: []byte("2"), cj.res.MemberID: []byte("3")}}); err != nil {
			t.Fatalf("leader's sync: %v", err)
		}
		for name, ch := range map[string]chan synced{"b": bs, "c": cs} {
			if r := <-ch; r.err != nil || len(r.res.Assignment) != 1 {
				t.Fatalf("%s's sync: %q %v", name, r.res.Assignment, r.err)
			}
		}
		// The sessions run again: a member that stops heartbeating goes.
		for _, m := range []meta.JoinGroupResult{aj.res, bj.res} {
			if err := s.Heartbeat(ctx, "g", m.MemberID, "", m.Generation); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if err := s.Heartbeat(ctx, "g", a.MemberID, "", aj.res.Generation); !errors.Is(err, meta.ErrUnknownMemberID) {
			t.Fatalf("heartbeat after the session ended: %v", err)
		}
	})
}

// The rebalance timeout bounds the join phase: a member that keeps
// heartbeating but does not rejoin is removed when it ends, and the
// others get a generation without it then, not before.
func TestGroupRebalanceTimeoutRemovesMissing(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		a, b := stableTwo(t, s, "g")
		start := time.Now()
		cch := joinAsync(s, timedReq("g", ""))
		synctest.Wait()
		ach := joinAsync(s, timedReq("g", a.MemberID))
		if err := heartbeatFor(s, "g", b, 9500*time.Millisecond); !errors.Is(err, meta.ErrRebalanceInProgress) {
			t.Fatalf("b's heartbeat during the rebalance: %v", err)
		}
		select {
		case j := <-ach:
			t.Fatalf("join answered before the rebalance timeout: %+v", j)
		default:
		}
		aj, cj := <-ach, <-cch
		if aj.err != nil || cj.err != nil {
			t.Fatalf("joins: %v %v", aj.err, cj.err)
		}
		if got := aj.at.Sub(start); got != 10*time.Second {
			t.Fatalf("join phase ended after %v, want the rebalance timeout (10s)", got)
		}
		if len(aj.res.Members) != 2 {
			t.Fatalf("members %+v, want a and c", aj.res.Members)
		}
		if err := s.Heartbeat(context.Background(), "g", b.MemberID, "", b.Generation); !errors.Is(err, meta.ErrUnknownMemberID) {
			t.Fatalf("b after the rebalance timeout: %v", err)
		}
	})
}

// Kafka's pending-sync timer: a leader that never sends SyncGroup is
// removed a rebalance timeout after the join phase, and its follower,
// parked in SyncGroup with its session paused, is told to rejoin.
func TestGroupSyncTimeout(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		ctx := context.Background()
		a, b := stableTwo(t, s, "g")
		// b rejoins with new metadata: a rebalance; a rejoins.
		req := timedReq("g", b.MemberID)
		req.Protocols = []meta.GroupProtocol{{Name: "range", Metadata: []byte("sub2")}}
		bch := joinAsync(s, req)
		synctest.Wait()
		aj, err := s.JoinGroup(ctx, timedReq("g", a.MemberID))
		if err != nil {
			t.Fatal(err)
		}
		bj := <-bch
		start := time.Now()
		sch := make(chan error, 1)
		go func() {
			_, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: bj.res.MemberID, Generation: bj.res.Generation})
			sch <- err
		}()
		// a heartbeats but never syncs.
		_ = heartbeatFor(s, "g", aj, 10500*time.Millisecond)
		select {
		case err := <-sch:
			if !errors.Is(err, meta.ErrRebalanceInProgress) {
				t.Fatalf("b's sync: %v", err)
			}
		default:
			t.Fatalf("b's sync still waits %v after the join phase", time.Since(start))
		}
		if err := s.Heartbeat(ctx, "g", a.MemberID, "", aj.Generation); !errors.Is(err, meta.ErrUnknownMemberID) {
			t.Fatalf("the leader that never synced: %v", err)
		}
		r, err := s.JoinGroup(ctx, timedReq("g", b.MemberID))
		if err != nil || r.LeaderID != b.MemberID || len(r.Members) != 1 {
			t.Fatalf("b rejoins alone: %+v %v", r, err)
		}
	})
}

// Meta stores offsets only for partitions that exist (main's topic
// delete fix skips the others), so a caller of its API cannot grow a
// group by made-up topic ids; here with the group limit's new-group path
// in front of it.
func TestOffsetCommitUnknownPartition(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	for _, tp := range []meta.TopicPartition{{TopicID: a.ID, Partition: 2}, {TopicID: a.ID, Partition: -1}, {TopicID: meta.TopicID{1, 2, 3}, Partition: 0}} {
		if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1,
			Offsets: []meta.CommittedOffset{{TopicPartition: tp, Offset: 1}}}); err != nil {
			t.Fatalf("commit for %v: %v", tp, err)
		}
	}
	if offs, _ := s.FetchOffsets(ctx, "g", nil); len(offs) != 0 {
		t.Fatalf("stored: %+v", offs)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1,
		Offsets: []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 1}, Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	if offs, _ := s.FetchOffsets(ctx, "g", nil); len(offs) != 1 {
		t.Fatalf("stored: %+v", offs)
	}
}

// A rebalance timeout far beyond any session (Kafka Streams asks for
// MaxInt32 ms) is served as the longest session, 30 min: a member that
// does not rejoin cannot keep the others parked for weeks.
func TestGroupRebalanceTimeoutBounded(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir())
		a, b := stableTwo(t, s, "g")
		start := time.Now()
		req := timedReq("g", "")
		req.SessionTimeout, req.RebalanceTimeout = 30*time.Minute, 24*24*time.Hour
		cch := joinAsync(s, req)
		synctest.Wait()
		ach := joinAsync(s, timedReq("g", a.MemberID))
		synctest.Wait()
		// b heartbeats on but never rejoins.
		_ = heartbeatFor(s, "g", b, time.Hour)
		aj, cj := <-ach, <-cch
		if aj.err != nil || cj.err != nil {
			t.Fatalf("joins: %v %v", aj.err, cj.err)
		}
		if got := aj.at.Sub(start); got != 30*time.Minute {
			t.Fatalf("join phase ended after %v, want %v (the session timeout bound of meta/groups)", got, 30*time.Minute)
		}
	})
}

// A refusal by a group limit is logged, naming the flag, once a minute
// however many clients are refused (Kafka's JoinGroup answer has no
// message).
func TestGroupLimitLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	s := openT(t, t.TempDir(), func(c *Config) { c.Groups.MaxGroups = 1; c.Logger = log })
	ctx := ctxT(t)
	if _, err := s.JoinGroup(ctx, joinReq("g1", "")); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if _, err := s.JoinGroup(ctx, joinReq("g2", "")); !errors.Is(err, meta.ErrTooManyGroups) {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(buf.String(), "group limit reached"); n != 1 || !strings.Contains(buf.String(), "--max-groups") {
		t.Fatalf("%d log lines:\n%s", n, buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The same class: a member's protocol metadata and assignment were kept
// whatever their size (up to a request, 100 MiB by default).
func TestGroupMemberMetadataBounded(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	req := joinReq("g", "")
	req.Protocols = []meta.GroupProtocol{{Name: "range", Metadata: make([]byte, meta.MaxMemberMetadataBytes)}}
	if _, err := s.JoinGroup(ctx, req); !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("JoinGroup over the bound: %v", err)
	}
	if g, _, _ := groupCounts(s); g != 0 {
		t.Fatal("a refused join left a group")
	}
	req.Protocols[0].Metadata = make([]byte, meta.MaxMemberMetadataBytes-len("range"))
	r, err := s.JoinGroup(ctx, req)
	if err != nil {
		t.Fatalf("JoinGroup at the bound: %v", err)
	}
	_, err = s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: r.MemberID, Generation: r.Generation,
		Assignments: map[string][]byte{r.MemberID: make([]byte, meta.MaxMemberMetadataBytes+1)}})
	if !errors.Is(err, meta.ErrInvalidRequest) {
		t.Fatalf("SyncGroup over the bound: %v", err)
	}
	if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: r.MemberID, Generation: r.Generation,
		Assignments: map[string][]byte{r.MemberID: make([]byte, meta.MaxMemberMetadataBytes)}}); err != nil {
		t.Fatalf("SyncGroup at the bound: %v", err)
	}
}

// Item 8's neighbour: OffsetDelete of a group that has neither members
// nor offsets answers GROUP_ID_NOT_FOUND as Kafka does (it answered
// success); one with only offsets deletes them.
func TestDeleteOffsetsUnknownGroup(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	tps := []meta.TopicPartition{{TopicID: a.ID, Partition: 0}}
	if err := s.DeleteOffsets(ctx, "nope", tps); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "admin", Generation: -1,
		Offsets: []meta.CommittedOffset{{TopicPartition: tps[0], Offset: 3}, {TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 1}, Offset: 4}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteOffsets(ctx, "admin", tps); err != nil {
		t.Fatalf("offsets-only group: %v", err)
	}
	if offs, _ := s.FetchOffsets(ctx, "admin", nil); len(offs) != 1 || offs[0].Partition != 1 {
		t.Fatalf("after OffsetDelete: %+v", offs)
	}
	if err := s.DeleteGroup(ctx, "admin"); err != nil {
		t.Fatalf("DeleteGroup of an offsets-only group: %v", err)
	}
	if offs, _ := s.FetchOffsets(ctx, "admin", nil); len(offs) != 0 {
		t.Fatalf("after DeleteGroup: %+v", offs)
	}
}

package controller

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"sluice.dev/meta"
)

// Kafka's group.initial.rebalance.delay.ms (groups.Config
// InitialRebalanceDelay), on the bubble's clock: the first rebalance of
// an empty group waits for the delay, each new member extends it by as
// much again within the first member's rebalance timeout, and then one
// generation holds everyone who came. Without it the first member gets a
// generation of its own and every late joiner one more rebalance.

type delayedJoin struct {
	res meta.JoinGroupResult
	err error
	at  time.Duration // since the test began, on the bubble's clock
}

// joinAt starts a JoinGroup of a new member of group g after wait and
// returns where its answer arrives.
func joinAt(s *Service, g string, wait, rebalance time.Duration, t0 time.Time) <-chan delayedJoin {
	ch := make(chan delayedJoin, 1)
	go func() {
		time.Sleep(wait)
		req := joinReq(g, "")
		req.RebalanceTimeout = rebalance
		res, err := s.JoinGroup(context.Background(), req)
		ch <- delayedJoin{res, err, time.Since(t0)}
	}()
	return ch
}

// answered reports whether a join's answer has arrived (after
// synctest.Wait, so that nothing is in flight).
func answered(ch <-chan delayedJoin) bool { return len(ch) > 0 }

func withInitialDelay(d time.Duration) func(*Config) {
	return func(c *Config) { c.Groups.InitialRebalanceDelay = d }
}

func TestGroupInitialRebalanceDelay(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir(), withInitialDelay(3*time.Second))
		t0 := time.Now()
		// Members at 0 s, 2 s and 5 s: the delay ends at 3 s with a new
		// member, again at 6 s with one, and at 9 s without.
		a := joinAt(s, "g", 0, time.Minute, t0)
		b := joinAt(s, "g", 2*time.Second, time.Minute, t0)
		c := joinAt(s, "g", 5*time.Second, time.Minute, t0)
		time.Sleep(8*time.Second + 900*time.Millisecond)
		synctest.Wait()
		if answered(a) || answered(b) || answered(c) {
			t.Fatal("a join was answered before the extended delay ended at 9 s")
		}
		ra, rb, rc := <-a, <-b, <-c
		for i, r := range []delayedJoin{ra, rb, rc} {
			if r.err != nil {
				t.Fatalf("member %d: %v", i, r.err)
			}
			if r.at != 9*time.Second || r.res.Generation != ra.res.Generation {
				t.Fatalf("member %d answered at %v in generation %d; want 9s and generation %d", i, r.at, r.res.Generation, ra.res.Generation)
			}
		}
		leader := ra.res
		for _, r := range []meta.JoinGroupResult{rb.res, rc.res} {
			if r.LeaderID == r.MemberID {
				leader = r
			}
		}
		if len(leader.Members) != 3 {
			t.Fatalf("the leader's join lists %d members, want all 3: %+v", len(leader.Members), leader)
		}

		// The delay is for a group without members only: once stable,
		// a new member's rebalance completes when everyone has rejoined.
		assign := map[string][]byte{}
		for _, m := range leader.Members {
			assign[m.MemberID] = []byte("p")
		}
		for _, r := range []delayedJoin{ra, rb, rc} {
			req := meta.SyncGroupRequest{Group: "g", MemberID: r.res.MemberID, Generation: r.res.Generation}
			if r.res.MemberID == leader.MemberID {
				req.Assignments = assign
			}
			go func() { _, _ = s.SyncGroup(context.Background(), req) }()
		}
		synctest.Wait()
		t1 := time.Now()
		d := joinAt(s, "g", 0, time.Minute, t1)
		synctest.Wait()
		errs := make(chan error, 3)
		for _, r := range []delayedJoin{ra, rb, rc} {
			go func() {
				req := joinReq("g", r.res.MemberID)
				req.RebalanceTimeout = time.Minute
				_, err := s.JoinGroup(context.Background(), req)
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatalf("rejoin: %v", err)
			}
		}
		rd := <-d
		if rd.err != nil || rd.at != 0 || rd.res.Generation != ra.res.Generation+1 {
			t.Fatalf("joining a stable group: %+v; want an answer at once in generation %d", rd, ra.res.Generation+1)
		}
	})
}

// The extensions stop at the first member's rebalance timeout: with a
// 3 s delay and a 7 s timeout, members arriving every 2 s end the join
// phase at 7 s (3 s, extended to 6 s, then by the 1 s left).
func TestGroupInitialRebalanceDelayBounded(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir(), withInitialDelay(3*time.Second))
		t0 := time.Now()
		var chs []<-chan delayedJoin
		for i := range 4 {
			chs = append(chs, joinAt(s, "g", time.Duration(2*i)*time.Second, 7*time.Second, t0))
		}
		for i, ch := range chs {
			r := <-ch
			if r.err != nil || r.at != 7*time.Second || r.res.Generation != 1 {
				t.Fatalf("member %d: answered at %v in generation %d (%v); want 7s and generation 1", i, r.at, r.res.Generation, r.err)
			}
		}
	})
}

// Members that leave while the delay runs: the group empties, nothing is
// left armed, and the next member starts a delay of its own.
func TestGroupInitialRebalanceDelayAllLeave(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		s := openT(t, t.TempDir(), withInitialDelay(3*time.Second))
		ctx := context.Background()
		req := joinReq("g", "")
		req.RequireKnownMember = true
		first, _ := s.JoinGroup(ctx, req) // MEMBER_ID_REQUIRED: an id to join and leave with
		a := make(chan error, 1)
		go func() {
			_, err := s.JoinGroup(ctx, joinReq("g", first.MemberID))
			a <- err
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if errs, err := s.LeaveGroup(ctx, "g", []meta.LeavingMember{{MemberID: first.MemberID}}); err != nil || errs[0] != nil {
			t.Fatalf("leave: %v %v", errs, err)
		}
		if err := <-a; err == nil {
			t.Fatal("the join of a member that left was answered without an error")
		}
		if g, m, p := groupCounts(s); g != 0 || m != 0 || p != 0 {
			t.Fatalf("after the only member left: %d groups, %d members, %d pending", g, m, p)
		}
		t1 := time.Now()
		r := <-joinAt(s, "g", 0, time.Minute, t1)
		if r.err != nil || r.at != 3*time.Second {
			t.Fatalf("a new first member: answered at %v (%v); want after the 3 s delay", r.at, r.err)
		}
	})
}

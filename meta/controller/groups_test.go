package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"sluice.dev/meta"
)

func joinReq(group, member string) meta.JoinGroupRequest {
	return meta.JoinGroupRequest{Group: group, MemberID: member, ClientID: "c", ProtocolType: "consumer",
		Protocols:      []meta.GroupProtocol{{Name: "range", Metadata: []byte("sub")}},
		SessionTimeout: 2 * time.Second, RebalanceTimeout: 2 * time.Second}
}

// Committed offsets are durable: they survive a restart, deletes too.
func TestOffsetsDurable(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 4)
	commit := func(p int32, off int64) {
		err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1,
			Offsets: []meta.CommittedOffset{{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: p}, Offset: off, LeaderEpoch: 3, Metadata: "m"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	commit(0, 10)
	commit(1, 20)
	commit(0, 11)
	s = reopen(t, s)
	got, err := s.FetchOffsets(ctx, "g", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Offset != 11 || got[1].Offset != 20 || got[0].Metadata != "m" || got[0].LeaderEpoch != 3 {
		t.Fatalf("after restart: %+v", got)
	}
	if err := s.DeleteOffsets(ctx, "g", []meta.TopicPartition{{TopicID: a.ID, Partition: 1}}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, _ = s.FetchOffsets(ctx, "g", nil)
	if len(got) != 1 || got[0].Partition != 0 {
		t.Fatalf("after delete and restart: %+v", got)
	}
	if err := s.DeleteGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	if got, _ = s.FetchOffsets(ctx, "g", nil); len(got) != 0 {
		t.Fatalf("after group delete: %+v", got)
	}
	if err := s.DeleteGroup(ctx, "g"); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("delete of a missing group: %v", err)
	}
}

// Two members: the first join completes alone; the second triggers a
// rebalance that the first learns of by heartbeat, both rejoin, one
// generation, the leader's assignment reaches the follower.
func TestGroupRebalance(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	r1, err := s.JoinGroup(ctx, joinReq("g", ""))
	if err != nil {
		t.Fatal(err)
	}
	if r1.LeaderID != r1.MemberID || len(r1.Members) != 1 {
		t.Fatalf("lone join: %+v", r1)
	}
	if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: r1.MemberID, Generation: r1.Generation,
		Assignments: map[string][]byte{r1.MemberID: []byte("all")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, "g", r1.MemberID, "", r1.Generation); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var r2 meta.JoinGroupResult
	var err2 error
	wg.Add(1)
	go func() { defer wg.Done(); r2, err2 = s.JoinGroup(ctx, joinReq("g", "")) }()
	waitFor(t, "rebalance", func() bool {
		return errors.Is(s.Heartbeat(ctx, "g", r1.MemberID, "", r1.Generation), meta.ErrRebalanceInProgress)
	})
	r1b, err := s.JoinGroup(ctx, joinReq("g", r1.MemberID))
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err2 != nil {
		t.Fatal(err2)
	}
	if r1b.Generation != r2.Generation || r1b.Generation != r1.Generation+1 {
		t.Fatalf("generations %d and %d after %d", r1b.Generation, r2.Generation, r1.Generation)
	}
	if r1b.LeaderID != r1.MemberID || len(r1b.Members) != 2 || len(r2.Members) != 0 {
		t.Fatalf("leader %s members %d/%d", r1b.LeaderID, len(r1b.Members), len(r2.Members))
	}
	// The follower's sync waits for the leader's.
	var s2 meta.SyncGroupResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		s2, err2 = s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: r2.MemberID, Generation: r2.Generation})
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: r1.MemberID, Generation: r1b.Generation,
		Assignments: map[string][]byte{r1.MemberID: []byte("half1"), r2.MemberID: []byte("half2")}}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err2 != nil || string(s2.Assignment) != "half2" {
		t.Fatalf("follower sync: %q %v", s2.Assignment, err2)
	}
	// A stale generation is refused; offsets commit under the current one.
	if err := s.Heartbeat(ctx, "g", r2.MemberID, "", r1.Generation); !errors.Is(err, meta.ErrIllegalGeneration) {
		t.Fatalf("stale heartbeat: %v", err)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", MemberID: r2.MemberID, Generation: r1.Generation}); !errors.Is(err, meta.ErrIllegalGeneration) {
		t.Fatalf("stale commit: %v", err)
	}
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1}); !errors.Is(err, meta.ErrUnknownMemberID) {
		t.Fatalf("outsider commit into a live group: %v", err)
	}
	// Leaving makes the other rebalance; a lone leave empties the group.
	if errs, err := s.LeaveGroup(ctx, "g", []meta.LeavingMember{{MemberID: r2.MemberID}}); err != nil || errs[0] != nil {
		t.Fatalf("leave: %v %v", errs, err)
	}
	if err := s.Heartbeat(ctx, "g", r1.MemberID, "", r1b.Generation); !errors.Is(err, meta.ErrRebalanceInProgress) {
		t.Fatalf("after a leave: %v", err)
	}
	d, _ := s.DescribeGroup(ctx, "g")
	if d.State != "PreparingRebalance" || len(d.Members) != 1 {
		t.Fatalf("describe: %+v", d)
	}
}

// A member that stops heartbeating is removed when its session ends.
func TestGroupSessionExpiry(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	req := joinReq("g", "")
	req.SessionTimeout = time.Second
	r, err := s.JoinGroup(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	// A group left without members or offsets is dropped (Dead), as
	// Kafka's cleanup does with an Empty group that has no offsets.
	waitFor(t, "session expiry", func() bool {
		d, _ := s.DescribeGroup(ctx, "g")
		return d.State == "Dead" && len(d.Members) == 0
	})
	if err := s.Heartbeat(ctx, "g", r.MemberID, "", r.Generation); !errors.Is(err, meta.ErrUnknownMemberID) {
		t.Fatalf("heartbeat after expiry: %v", err)
	}
}

// KIP-394: a v4+ first join gets a member id to come back with.
func TestGroupMemberIDRequired(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := ctxT(t)
	req := joinReq("g", "")
	req.RequireKnownMember = true
	r, err := s.JoinGroup(ctx, req)
	if !errors.Is(err, meta.ErrMemberIDRequired) || r.MemberID == "" {
		t.Fatalf("first join: %+v %v", r, err)
	}
	r2, err := s.JoinGroup(ctx, joinReq("g", r.MemberID))
	if err != nil || r2.MemberID != r.MemberID {
		t.Fatalf("second join: %+v %v", r2, err)
	}
	if _, err := s.JoinGroup(context.Background(), joinReq("g", "made-up")); !errors.Is(err, meta.ErrUnknownMemberID) {
		t.Fatalf("unknown member: %v", err)
	}
}

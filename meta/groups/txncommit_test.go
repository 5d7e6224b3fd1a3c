package groups

import (
	"context"
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
)

// TxnOffsetCommit's member fields are checked as Kafka 4 checks them
// (txncommit.go): each refusal with its code, and the requests without
// member fields that stay unchecked.
func TestCheckTxnCommit(t *testing.T) {
	c, _ := consumerCoordinator(t, Config{}, meta.Topic{Name: "a", ID: topicID(1), Partitions: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A classic group with one static member, stable at generation 1.
	jr, err := c.Join(ctx, meta.JoinGroupRequest{Group: "classic", InstanceID: "i1", ProtocolType: "consumer",
		Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(ctx, meta.SyncGroupRequest{Group: "classic", MemberID: jr.MemberID, InstanceID: "i1", Generation: jr.Generation}); err != nil {
		t.Fatal(err)
	}
	// A consumer group with one member.
	k := newSim(t, c, "k1", "a")
	k.group = "kip848"
	k.mustHB()
	if k.epoch <= 0 {
		t.Fatalf("consumer member epoch %d", k.epoch)
	}
	withOffsets := func(name string) bool { return name == "offsets-only" }
	for _, tc := range []struct {
		name     string
		group    string
		member   string
		instance string
		gen      int32
		want     error
	}{
		{"classic member", "classic", jr.MemberID, "i1", jr.Generation, nil},
		{"classic member without instance", "classic", jr.MemberID, "", jr.Generation, nil},
		{"classic stale generation", "classic", jr.MemberID, "i1", jr.Generation - 1, meta.ErrIllegalGeneration},
		{"classic future generation", "classic", jr.MemberID, "", jr.Generation + 1, meta.ErrIllegalGeneration},
		{"classic unknown member", "classic", "zombie", "", jr.Generation, meta.ErrUnknownMemberID},
		{"classic fenced instance", "classic", "zombie", "i1", jr.Generation, meta.ErrFencedInstanceID},
		{"classic unknown instance", "classic", jr.MemberID, "i2", jr.Generation, meta.ErrUnknownMemberID},
		{"classic no member fields (v0-v2)", "classic", "", "", -1, nil},
		{"classic member id, generation -1", "classic", jr.MemberID, "", -1, meta.ErrIllegalGeneration},
		{"consumer member", "kip848", "k1", "", k.epoch, nil},
		{"consumer stale epoch", "kip848", "k1", "", k.epoch - 1, meta.ErrIllegalGeneration},
		{"consumer future epoch", "kip848", "k1", "", k.epoch + 1, meta.ErrIllegalGeneration},
		{"consumer unknown member", "kip848", "zombie", "", k.epoch, meta.ErrUnknownMemberID},
		{"consumer no member fields (v0-v2)", "kip848", "", "", -1, nil},
		{"no such group, generation -1", "simple", "", "", -1, nil},
		{"no such group, member id and generation -1", "simple", "m", "", -1, nil},
		{"no such group, generation", "simple", "m", "", 3, meta.ErrIllegalGeneration},
		{"group with offsets only, generation", "offsets-only", "m", "", 3, meta.ErrUnknownMemberID},
		{"group with offsets only, generation -1", "offsets-only", "m", "", -1, nil},
	} {
		err := c.CheckTxnCommit(meta.OffsetCommitRequest{Group: tc.group, MemberID: tc.member, InstanceID: tc.instance, Generation: tc.gen}, withOffsets)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// After a rebalance (a second member joins) the first member's old
	// generation is a zombie's.
	ch := make(chan error, 1)
	go func() {
		_, err := c.Join(ctx, meta.JoinGroupRequest{Group: "classic", ProtocolType: "consumer",
			Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second})
		ch <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.Describe("classic").State != "PreparingRebalance" {
		if time.Now().After(deadline) {
			t.Fatal("the second join did not start a rebalance")
		}
		time.Sleep(time.Millisecond)
	}
	jr2, err := c.Join(ctx, meta.JoinGroupRequest{Group: "classic", MemberID: jr.MemberID, InstanceID: "i1", ProtocolType: "consumer",
		Protocols: []meta.GroupProtocol{{Name: "range"}}, SessionTimeout: 10 * time.Second})
	if err != nil || jr2.Generation != jr.Generation+1 {
		t.Fatalf("rejoin: %+v %v", jr2, err)
	}
	<-ch
	err = c.CheckTxnCommit(meta.OffsetCommitRequest{Group: "classic", MemberID: jr.MemberID, InstanceID: "i1", Generation: jr.Generation}, withOffsets)
	if !errors.Is(err, meta.ErrIllegalGeneration) {
		t.Fatalf("commit at the generation before the rebalance: %v, want ErrIllegalGeneration", err)
	}
	// A transactional commit is not held back by a rebalance in
	// progress (CompletingRebalance), unlike a plain OffsetCommit.
	if st := c.Describe("classic").State; st != "CompletingRebalance" {
		t.Fatalf("state %s, want CompletingRebalance", st)
	}
	if err := c.CheckTxnCommit(meta.OffsetCommitRequest{Group: "classic", MemberID: jr.MemberID, InstanceID: "i1", Generation: jr2.Generation}, withOffsets); err != nil {
		t.Fatalf("commit at the new generation while completing: %v", err)
	}
}

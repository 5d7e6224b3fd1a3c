package rpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
)

func recvT(t testing.TB, ch <-chan []meta.CommitEvent, what string) []meta.CommitEvent {
	t.Helper()
	select {
	case evs, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch channel closed", what)
		}
		return evs
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no commit events within 10s", what)
	}
	return nil
}

func strp(s string) *string { return &s }

// TestRoundTrip calls every topic, index, producer and registry method
// over gRPC and compares the answers with the Service's own, errors
// included. Writes go over gRPC and are checked through reads of both,
// or repeated directly where meta answers a repeat the same way.
func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, time.Minute)
	rc, svc := e.rc, e.svc

	id, err := rc.ClusterID(ctx)
	id2, err2 := svc.ClusterID(ctx)
	same(t, "ClusterID", []any{id, err}, []any{id2, err2})
	if id == "" {
		t.Fatal("empty cluster id")
	}

	// Watch before anything is committed, over gRPC and directly.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	rw, err := rc.Watch(wctx)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	dw, err := svc.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}

	// CreateTopics: per-item results and errors.
	res, err := rc.CreateTopics(ctx, []meta.TopicSpec{
		{Name: "t1", Partitions: 3, Configs: map[string]string{"retention.ms": "1000"}},
		{Name: "t2", Partitions: -1},
		{Name: "bad name!", Partitions: 1},
		{Name: "t3", Partitions: 0},
	})
	if err != nil || len(res) != 4 {
		t.Fatalf("CreateTopics: %v %+v", err, res)
	}
	if res[0].Err != nil || res[0].Topic.Name != "t1" || res[0].Topic.Partitions != 3 || res[0].Topic.Configs["retention.ms"] != "1000" {
		t.Fatalf("CreateTopics t1: %+v", res[0])
	}
	if res[1].Err != nil || res[1].Topic.Partitions != 1 {
		t.Fatalf("CreateTopics t2: %+v", res[1])
	}
	if !errors.Is(res[2].Err, meta.ErrInvalidTopic) || !errors.Is(res[3].Err, meta.ErrInvalidPartitions) {
		t.Fatalf("CreateTopics errors: %v, %v", res[2].Err, res[3].Err)
	}
	t1, t2 := res[0].Topic, res[1].Topic
	// Twice: ErrTopicExists, with meta's message.
	again, err := rc.CreateTopics(ctx, []meta.TopicSpec{{Name: "t1", Partitions: 3}})
	if err != nil || len(again) != 1 || !errors.Is(again[0].Err, meta.ErrTopicExists) {
		t.Fatalf("CreateTopics again: %v %+v", err, again)
	}
	direct, err := svc.CreateTopics(ctx, []meta.TopicSpec{{Name: "t1", Partitions: 3}})
	same(t, "CreateTopics again", []any{again, nil}, []any{direct, err})

	for _, names := range [][]string{nil, {}, {"t1", "nope", "t1"}, {"t2"}} {
		a, aerr := rc.Topics(ctx, names)
		b, berr := svc.Topics(ctx, names)
		same(t, "Topics", []any{a, aerr}, []any{b, berr})
	}
	if all, _ := rc.Topics(ctx, nil); len(all) != 2 {
		t.Fatalf("Topics(nil) = %+v, want both topics", all)
	}
	if none, _ := rc.Topics(ctx, []string{}); len(none) != 0 {
		t.Fatalf("Topics([]) = %+v, want none", none)
	}
	for _, ids := range [][]meta.TopicID{nil, {t1.ID, {}, t2.ID, t1.ID}} {
		a, aerr := rc.TopicsByID(ctx, ids)
		b, berr := svc.TopicsByID(ctx, ids)
		same(t, "TopicsByID", []any{a, aerr}, []any{b, berr})
	}

	tps := []meta.TopicPartition{{TopicID: t1.ID, Partition: 0}, {TopicID: t1.ID, Partition: 5}, {TopicID: meta.TopicID{}, Partition: 0}}
	ps, err := rc.PartitionStates(ctx, tps)
	ps2, err2 := svc.PartitionStates(ctx, tps)
	same(t, "PartitionStates", []any{ps, err}, []any{ps2, err2})
	if !errors.Is(ps[1].Err, meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("PartitionStates unknown: %+v", ps[1])
	}

	// CommitSegment: appended, unknown partition and invalid chunks.
	sc := meta.SegmentCommit{SegmentID: newSegID(), ObjectKey: "seg/1", Size: 1000, AgentID: "a1", Chunks: []meta.Chunk{
		{TopicID: t1.ID, Partition: 0, Start: 0, Length: 100, RecordCount: 3, FirstTimestamp: 1000, MaxTimestamp: 1002, ProducerID: -1},
		{TopicID: t1.ID, Partition: 0, Start: 100, Length: 100, RecordCount: 2, FirstTimestamp: 2000, MaxTimestamp: 2001, ProducerID: -1},
		{TopicID: t1.ID, Partition: 1, Start: 200, Length: 100, RecordCount: 4, FirstTimestamp: 1500, MaxTimestamp: 1600, ProducerID: -1},
		{TopicID: t1.ID, Partition: 9, Start: 300, Length: 100, RecordCount: 1, ProducerID: -1},
		{TopicID: t1.ID, Partition: 2, Start: 400, Length: 0, RecordCount: 1, ProducerID: -1},
	}}
	cr, err := rc.CommitSegment(ctx, sc)
	if err != nil {
		t.Fatalf("CommitSegment: %v", err)
	}
	want := []meta.ChunkStatus{meta.ChunkAppended, meta.ChunkAppended, meta.ChunkAppended, meta.ChunkUnknownPartition, meta.ChunkInvalid}
	for i, c := range cr.Chunks {
		if c.Status != want[i] {
			t.Fatalf("chunk %d: %+v, want status %d", i, c, want[i])
		}
	}
	// A repeat is answered with the first answer, over gRPC and directly.
	cr2, err := rc.CommitSegment(ctx, sc)
	same(t, "CommitSegment repeated", []any{cr2, err}, []any{cr, nil})
	cr3, err := svc.CommitSegment(ctx, sc)
	same(t, "CommitSegment direct", []any{cr, nil}, []any{cr3, err})

	// Both watchers see the same events.
	same(t, "Watch events", recvT(t, rw, "rpc watch"), recvT(t, dw, "direct watch"))

	tp0 := meta.TopicPartition{TopicID: t1.ID, Partition: 0}
	for _, q := range []struct {
		tp     meta.TopicPartition
		offset int64
		max    int
	}{{tp0, 0, 10}, {tp0, 3, 1}, {tp0, 4, 0}, {tp0, 5, 10}, {tp0, 6, 10}, {tp0, -1, 10}, {meta.TopicPartition{TopicID: t2.ID, Partition: 3}, 0, 1}} {
		a, aerr := rc.Lookup(ctx, q.tp, q.offset, q.max)
		b, berr := svc.Lookup(ctx, q.tp, q.offset, q.max)
		same(t, "Lookup", []any{a, aerr}, []any{b, berr})
	}
	// Out of range keeps the bounds.
	lr, err := rc.Lookup(ctx, tp0, 100, 10)
	if !errors.Is(err, meta.ErrOffsetOutOfRange) || lr.HighWatermark != 5 || lr.LogStartOffset != 0 {
		t.Fatalf("Lookup out of range: %+v, %v", lr, err)
	}
	if lr, err := rc.Lookup(ctx, tp0, 0, 10); err != nil || len(lr.Entries) == 0 || lr.Entries[0].ObjectKey != "seg/1" {
		t.Fatalf("Lookup: %+v, %v", lr, err)
	}
	ps, err = rc.PartitionStates(ctx, tps)
	ps2, err2 = svc.PartitionStates(ctx, tps)
	same(t, "PartitionStates after commit", []any{ps, err}, []any{ps2, err2})

	for _, q := range []struct {
		tp meta.TopicPartition
		q  meta.TimestampQuery
		ts int64
	}{{tp0, meta.FirstAtOrAfter, 0}, {tp0, meta.FirstAtOrAfter, 1500}, {tp0, meta.FirstAtOrAfter, 1 << 40}, {tp0, meta.MaxTimestamp, 0},
		{meta.TopicPartition{TopicID: t1.ID, Partition: 1}, meta.MaxTimestamp, 0}, {meta.TopicPartition{TopicID: t2.ID, Partition: 7}, meta.MaxTimestamp, 0}} {
		a, aerr := rc.FindTimestamp(ctx, q.tp, q.q, q.ts)
		b, berr := svc.FindTimestamp(ctx, q.tp, q.q, q.ts)
		same(t, "FindTimestamp", []any{a, aerr}, []any{b, berr})
	}

	// InitProducerID: a new id, then an epoch bump.
	p1, err := rc.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil || p1.ProducerID < 0 {
		t.Fatalf("InitProducerID: %+v %v", p1, err)
	}
	p2, err := rc.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: p1.ProducerID, ProducerEpoch: p1.ProducerEpoch})
	if err != nil || p2.ProducerID != p1.ProducerID || p2.ProducerEpoch != p1.ProducerEpoch+1 {
		t.Fatalf("InitProducerID bump: %+v after %+v, %v", p2, p1, err)
	}
	bad := meta.ProducerIDRequest{ProducerID: p1.ProducerID, ProducerEpoch: p1.ProducerEpoch}
	a, aerr := rc.InitProducerID(ctx, bad)
	b, berr := svc.InitProducerID(ctx, bad)
	same(t, "InitProducerID stale epoch", []any{a, aerr}, []any{b, berr})

	// Configs: set one, remove one; an unknown topic.
	if err := rc.AlterTopicConfigs(ctx, "t1", []meta.ConfigChange{{Name: "cleanup.policy", Value: strp("compact")}, {Name: "retention.ms"}}, false); err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	if ts, _ := rc.Topics(ctx, []string{"t1"}); len(ts) != 1 || len(ts[0].Configs) != 1 || ts[0].Configs["cleanup.policy"] != "compact" {
		t.Fatalf("configs after AlterTopicConfigs: %+v", ts)
	}
	aerr = rc.AlterTopicConfigs(ctx, "nope", nil, true)
	berr = svc.AlterTopicConfigs(ctx, "nope", nil, true)
	same(t, "AlterTopicConfigs unknown", aerr, berr)
	if !errors.Is(aerr, meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("AlterTopicConfigs unknown: %v", aerr)
	}

	errs, err := rc.CreatePartitions(ctx, []meta.PartitionsSpec{{Name: "t2", Count: 3}, {Name: "t1", Count: 2}, {Name: "nope", Count: 5}})
	if err != nil || len(errs) != 3 || errs[0] != nil || !errors.Is(errs[1], meta.ErrInvalidPartitions) || !errors.Is(errs[2], meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("CreatePartitions: %v %v", errs, err)
	}
	derrs, _ := svc.CreatePartitions(ctx, []meta.PartitionsSpec{{Name: "t2", Count: 3}, {Name: "t1", Count: 2}, {Name: "nope", Count: 5}})
	same(t, "CreatePartitions errors 2..3", errs[1:], derrs[1:])

	errs, err = rc.DeleteTopics(ctx, []string{"t2", "nope"})
	if err != nil || len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], meta.ErrUnknownTopicOrPartition) {
		t.Fatalf("DeleteTopics: %v %v", errs, err)
	}
	derrs, err = svc.DeleteTopics(ctx, []string{"nope"})
	same(t, "DeleteTopics unknown", []any{errs[1:], nil}, []any{derrs, err})
	a3, aerr := rc.Topics(ctx, nil)
	b3, berr := svc.Topics(ctx, nil)
	same(t, "Topics after admin", []any{a3, aerr}, []any{b3, berr})

	// The registry.
	reg, err := rc.RegisterAgent(ctx, meta.AgentInfo{ID: "agent-a", Zone: "z1", Group: "g", Roles: []string{"produce", "consume"}, Addr: "10.0.0.1:9092"})
	if err != nil || reg.TTL <= 0 {
		t.Fatalf("RegisterAgent: %+v %v", reg, err)
	}
	reg2, err := rc.RegisterAgent(ctx, meta.AgentInfo{ID: "agent-a", Zone: "z1", Group: "g", Roles: []string{"produce", "consume"}, Addr: "10.0.0.1:9092"})
	same(t, "RegisterAgent heartbeat", []any{reg2, err}, []any{reg, nil})
	if _, err := svc.RegisterAgent(ctx, meta.AgentInfo{ID: "agent-b", Addr: "10.0.0.2:9092"}); err != nil {
		t.Fatal(err)
	}
	_, aerr = rc.RegisterAgent(ctx, meta.AgentInfo{Addr: "x:1"})
	_, berr = svc.RegisterAgent(ctx, meta.AgentInfo{Addr: "x:1"})
	same(t, "RegisterAgent invalid", aerr, berr)
	if !errors.Is(aerr, meta.ErrInvalidRequest) {
		t.Fatalf("RegisterAgent invalid: %v", aerr)
	}
	as, aerr := rc.Agents(ctx)
	bs, berr := svc.Agents(ctx)
	same(t, "Agents", []any{as, aerr}, []any{bs, berr})
	if len(as) != 2 {
		t.Fatalf("Agents: %+v", as)
	}
	if err := rc.UnregisterAgent(ctx, "agent-b"); err != nil {
		t.Fatal(err)
	}
	as, aerr = rc.Agents(ctx)
	bs, berr = svc.Agents(ctx)
	same(t, "Agents after unregister", []any{as, aerr}, []any{bs, berr})
	if len(as) != 1 || as[0].ID != "agent-a" || len(as[0].Roles) != 2 {
		t.Fatalf("Agents after unregister: %+v", as)
	}

	// Watch ends with its ctx.
	wcancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-rw:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("watch channel not closed after its ctx ended")
		}
	}
}

// TestGroups runs a consumer group of two members over gRPC: join with
// a required member id, a rebalance when the second joins, sync with the
// leader's assignments, offsets, leave and delete, comparing what can be
// compared with the Service's own answers.
func TestGroups(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, time.Minute)
	rc, svc := e.rc, e.svc
	res, err := rc.CreateTopics(ctx, []meta.TopicSpec{{Name: "t", Partitions: 2}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	topic := res[0].Topic
	join := func(member string, sub []byte, requireKnown bool) meta.JoinGroupRequest {
		return meta.JoinGroupRequest{Group: "g", MemberID: member, ClientID: "c", ClientHost: "/10.0.0.9", ProtocolType: "consumer",
			Protocols:      []meta.GroupProtocol{{Name: "range", Metadata: sub}},
			SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second, RequireKnownMember: requireKnown}
	}

	// Errors compare with the Service's.
	bad := join("", []byte("x"), false)
	bad.SessionTimeout = time.Millisecond
	_, aerr := rc.JoinGroup(ctx, bad)
	_, berr := svc.JoinGroup(ctx, bad)
	same(t, "JoinGroup invalid session", aerr, berr)

	// A: member id required, then the join completes alone.
	ja, err := rc.JoinGroup(ctx, join("", []byte("sub-a"), true))
	if !errors.Is(err, meta.ErrMemberIDRequired) || ja.MemberID == "" || ja.Generation != -1 {
		t.Fatalf("JoinGroup first: %+v %v", ja, err)
	}
	a := ja.MemberID
	ja, err = rc.JoinGroup(ctx, join(a, []byte("sub-a"), true))
	if err != nil || ja.LeaderID != a || ja.Generation != 1 || len(ja.Members) != 1 || string(ja.Members[0].Metadata) != "sub-a" {
		t.Fatalf("JoinGroup A: %+v %v", ja, err)
	}
	sa, err := rc.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: a, Generation: 1, Assignments: map[string][]byte{a: []byte("all-a")}})
	if err != nil || string(sa.Assignment) != "all-a" || sa.Protocol != "range" {
		t.Fatalf("SyncGroup A: %+v %v", sa, err)
	}

	// B joins: a rebalance, which A learns from its heartbeat.
	type joined struct {
		res meta.JoinGroupResult
		err error
	}
	bc := make(chan joined, 1)
	go func() {
		r, err := rc.JoinGroup(ctx, join("", []byte("sub-b"), false))
		bc <- joined{r, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := rc.Heartbeat(ctx, "g", a, "", 1)
		if errors.Is(err, meta.ErrRebalanceInProgress) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Heartbeat A while B joins: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ja, err = rc.JoinGroup(ctx, join(a, []byte("sub-a"), false))
	if err != nil || ja.Generation != 2 || ja.LeaderID != a || len(ja.Members) != 2 {
		t.Fatalf("JoinGroup A again: %+v %v", ja, err)
	}
	jb := <-bc
	if jb.err != nil || jb.res.Generation != 2 || jb.res.LeaderID != a || len(jb.res.Members) != 0 {
		t.Fatalf("JoinGroup B: %+v %v", jb.res, jb.err)
	}
	b := jb.res.MemberID

	type synced struct {
		res meta.SyncGroupResult
		err error
	}
	sc := make(chan synced, 1)
	go func() {
		r, err := rc.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: b, Generation: 2})
		sc <- synced{r, err}
	}()
	// Let B's sync wait before the leader's arrives (either order works).
	time.Sleep(50 * time.Millisecond)
	sa, err = rc.SyncGroup(ctx, meta.SyncGroupRequest{Group: "g", MemberID: a, Generation: 2,
		Assignments: map[string][]byte{a: []byte("p0"), b: []byte("p1")}})
	if err != nil || string(sa.Assignment) != "p0" {
		t.Fatalf("SyncGroup A gen 2: %+v %v", sa, err)
	}
	sb := <-sc
	if sb.err != nil || string(sb.res.Assignment) != "p1" || sb.res.ProtocolType != "consumer" {
		t.Fatalf("SyncGroup B: %+v %v", sb.res, sb.err)
	}

	for _, m := range []string{a, b} {
		if err := rc.Heartbeat(ctx, "g", m, "", 2); err != nil {
			t.Fatalf("Heartbeat %s: %v", m, err)
		}
	}
	aerr = rc.Heartbeat(ctx, "g", "nobody", "", 2)
	berr = svc.Heartbeat(ctx, "g", "nobody", "", 2)
	same(t, "Heartbeat unknown member", aerr, berr)

	da, aerr := rc.DescribeGroup(ctx, "g")
	db, berr := svc.DescribeGroup(ctx, "g")
	same(t, "DescribeGroup", []any{da, aerr}, []any{db, berr})
	if da.State != "Stable" || len(da.Members) != 2 {
		t.Fatalf("DescribeGroup: %+v", da)
	}
	dn, aerr := rc.DescribeGroup(ctx, "nope")
	dn2, berr := svc.DescribeGroup(ctx, "nope")
	same(t, "DescribeGroup unknown", []any{dn, aerr}, []any{dn2, berr})

	// Offsets.
	tp0 := meta.TopicPartition{TopicID: topic.ID, Partition: 0}
	tp1 := meta.TopicPartition{TopicID: topic.ID, Partition: 1}
	if err := rc.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", MemberID: a, Generation: 2, Offsets: []meta.CommittedOffset{
		{TopicPartition: tp0, Offset: 5, LeaderEpoch: -1, Metadata: "m0"},
		{TopicPartition: tp1, Offset: 7, LeaderEpoch: 3},
	}}); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	stale := meta.OffsetCommitRequest{Group: "g", MemberID: a, Generation: 1, Offsets: []meta.CommittedOffset{{TopicPartition: tp0, Offset: 9}}}
	aerr = rc.CommitOffsets(ctx, stale)
	berr = svc.CommitOffsets(ctx, stale)
	same(t, "CommitOffsets stale", aerr, berr)
	if !errors.Is(aerr, meta.ErrIllegalGeneration) {
		t.Fatalf("CommitOffsets stale: %v", aerr)
	}
	for _, q := range [][]meta.TopicPartition{nil, {}, {tp1, {TopicID: topic.ID, Partition: 9}}} {
		oa, aerr := rc.FetchOffsets(ctx, "g", q)
		ob, berr := svc.FetchOffsets(ctx, "g", q)
		same(t, "FetchOffsets", []any{oa, aerr}, []any{ob, berr})
	}
	if all, _ := rc.FetchOffsets(ctx, "g", nil); len(all) != 2 || all[0].Metadata != "m0" || all[0].CommitTime == 0 {
		t.Fatalf("FetchOffsets(nil) = %+v", all)
	}
	if none, _ := rc.FetchOffsets(ctx, "g", []meta.TopicPartition{}); len(none) != 0 {
		t.Fatalf("FetchOffsets([]) = %+v, want none", none)
	}
	aerr = rc.DeleteOffsets(ctx, "g", []meta.TopicPartition{tp0})
	berr = svc.DeleteOffsets(ctx, "g", []meta.TopicPartition{tp0})
	same(t, "DeleteOffsets with members", aerr, berr)
	if !errors.Is(aerr, meta.ErrGroupSubscribedToTopic) {
		t.Fatalf("DeleteOffsets with members: %v", aerr)
	}
	la, aerr := rc.ListGroups(ctx)
	lb, berr := svc.ListGroups(ctx)
	same(t, "ListGroups", []any{la, aerr}, []any{lb, berr})

	// Leave: per-member errors.
	errs, err := rc.LeaveGroup(ctx, "g", []meta.LeavingMember{{MemberID: a}, {MemberID: "nobody"}})
	if err != nil || len(errs) != 2 || errs[0] != nil || !errors.Is(errs[1], meta.ErrUnknownMemberID) {
		t.Fatalf("LeaveGroup: %v %v", errs, err)
	}
	derrs, err := svc.LeaveGroup(ctx, "g", []meta.LeavingMember{{MemberID: b}, {MemberID: "nobody"}})
	same(t, "LeaveGroup", errs, derrs)
	if err != nil {
		t.Fatal(err)
	}
	aerr = rc.DeleteGroup(ctx, "nope")
	berr = svc.DeleteGroup(ctx, "nope")
	same(t, "DeleteGroup unknown", aerr, berr)
	if err := rc.DeleteOffsets(ctx, "g", []meta.TopicPartition{tp0}); err != nil {
		t.Fatalf("DeleteOffsets: %v", err)
	}
	oa, aerr := rc.FetchOffsets(ctx, "g", nil)
	ob, berr := svc.FetchOffsets(ctx, "g", nil)
	same(t, "FetchOffsets after delete", []any{oa, aerr}, []any{ob, berr})
	if len(oa) != 1 || oa[0].TopicPartition != tp1 {
		t.Fatalf("FetchOffsets after delete: %+v", oa)
	}
	if err := rc.DeleteGroup(ctx, "g"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	if err := rc.DeleteGroup(ctx, "g"); !errors.Is(err, meta.ErrGroupIDNotFound) {
		t.Fatalf("DeleteGroup again: %v", err)
	}
	la, aerr = rc.ListGroups(ctx)
	lb, berr = svc.ListGroups(ctx)
	same(t, "ListGroups after delete", []any{la, aerr}, []any{lb, berr})
}

// TestDeleteRecordsOverRPC: DeleteRecords crosses the wire with its
// per-partition answers, and watchers hear the trim.
func TestDeleteRecordsOverRPC(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)
	res, err := e.rc.CreateTopics(ctx, []meta.TopicSpec{{Name: "drpc", Partitions: 1}})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	id := res[0].Topic.ID
	events, err := e.rc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh id: meta refuses commits of ids older than half the GC
	// grace (meta.ErrSegmentExpired), which a constant id would be.
	if _, err := e.rc.CommitSegment(ctx, meta.SegmentCommit{SegmentID: newSegID(), ObjectKey: "k", Size: 100, AgentID: "a",
		Chunks: []meta.Chunk{{TopicID: id, Partition: 0, Length: 100, RecordCount: 10, ProducerID: -1}}}); err != nil {
		t.Fatal(err)
	}
	<-events
	tp := meta.TopicPartition{TopicID: id, Partition: 0}
	got, err := e.rc.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: tp, Offset: 4}, {TopicPartition: tp, Offset: 99}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Err != nil || got[0].LogStartOffset != 4 || got[0].HighWatermark != 10 || !errors.Is(got[1].Err, meta.ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecords answered %+v", got)
	}
	select {
	case evs := <-events:
		if len(evs) != 1 || !evs[0].Trim || evs[0].LogStartOffset != 4 {
			t.Fatalf("watch got %+v", evs)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no trim event over the stream")
	}
}

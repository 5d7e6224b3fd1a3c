package compat_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	"sluice.dev/meta/groups"
)

// KIP-848 with franz-go (v1.22, kgo.ServerSideBalancer): members join and
// leave a group while a producer keeps writing; the coordinator in meta
// assigns. Checked: no partition is ever owned by two members at once (as
// the members' own assign/revoke callbacks see it, and for every record
// polled), nothing acknowledged is missed, and the group really is a
// consumer-protocol group. The same churn with the classic protocol
// (cooperative-sticky) runs beside it; both report rebalance times and
// records consumed twice (BENCHMARKS.md).

// churnResult is what one churn run measured.
type churnResult struct {
	rebalances []time.Duration // one per membership change
	produced   int
	consumed   int
	duplicates int // records delivered more than once
}

// owners tracks which member owns each partition, from the members'
// callbacks, and fails the test on a double owner.
type owners struct {
	t     *testing.T
	mu    sync.Mutex
	owner map[int32]string
	bad   atomic.Int32
}

func (o *owners) assign(member string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if cur, ok := o.owner[p]; ok && cur != member {
			o.bad.Add(1)
			o.t.Errorf("partition %d assigned to %s while %s owns it", p, member, cur)
		}
		o.owner[p] = member
	}
}

func (o *owners) revoke(member string, ps []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, p := range ps {
		if o.owner[p] == member {
			delete(o.owner, p)
		}
	}
}

// check reports whether member owns p (a record it polled must be from a
// partition it owns).
func (o *owners) check(member string, p int32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.owner[p] == member
}

// settled reports whether all n partitions are owned, each by one of members.
func (o *owners) settled(n int, members map[string]bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.owner) != n {
		return false
	}
	per := map[string]int{}
	for _, m := range o.owner {
		if !members[m] {
			return false
		}
		per[m]++
	}
	return len(per) == len(members) || len(members) > n
}

// runChurn produces to topic from one client while members of group join
// and leave by the script, and returns what it measured. kip848 selects
// the protocol.
func runChurn(t *testing.T, c *cluster, topic, group string, partitions int, kip848 bool) churnResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
	ct.Topics = append(ct.Topics, rt)
	if resp, err := ct.RequestWith(ctx, adm); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, resp)
	}

	// The producer: keys are sequence numbers; acknowledged ones are kept.
	var acked sync.Map // key → struct{}
	var nacked atomic.Int64
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pstop := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			k := strconv.Itoa(i)
			prod.Produce(pctx, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(k)}, func(r *kgo.Record, err error) {
				if err == nil {
					acked.Store(string(r.Key), struct{}{})
					nacked.Add(1)
				}
			})
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond) // a steady few thousand records a second
			}
		}
	}()

	own := &owners{t: t, owner: map[int32]string{}}
	var seenMu sync.Mutex
	seen := map[string]int{}
	type member struct {
		name string
		cl   *kgo.Client
		done chan struct{}
	}
	live := map[string]*member{}
	start := func(name string) {
		opts := []kgo.Opt{kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.assign(name, m[topic]) }),
			kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
				// As franz-go does by default: commit what was
				// consumed before giving the partitions up.
				_ = cl.CommitUncommittedOffsets(context.Background())
				own.revoke(name, m[topic])
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.revoke(name, m[topic]) }),
			kgo.ClientID(name),
		}
		if kip848 {
			opts = append(opts, kgo.ServerSideBalancer())
		} else {
			opts = append(opts, kgo.HeartbeatInterval(200*time.Millisecond))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		m := &member{name: name, cl: cl, done: make(chan struct{})}
		live[name] = m
		go func() {
			defer close(m.done)
			for {
				fs := cl.PollFetches(ctx)
				if fs.IsClientClosed() || ctx.Err() != nil {
					return
				}
				fs.EachRecord(func(r *kgo.Record) {
					if !own.check(name, r.Partition) {
						t.Errorf("%s polled %s[%d]@%d, a partition it does not own", name, r.Topic, r.Partition, r.Offset)
					}
					seenMu.Lock()
					seen[fmt.Sprintf("%d/%d", r.Partition, r.Offset)]++
					seenMu.Unlock()
				})
			}
		}()
	}
	stop := func(name string) {
		m := live[name]
		delete(live, name)
		m.cl.Close() // leaves the group, committing on revoke
		<-m.done
	}
	names := func() map[string]bool {
		out := map[string]bool{}
		for n := range live {
			out[n] = true
		}
		return out
	}
	var res churnResult
	settle := func(what string, began time.Time) {
		want := names()
		for !own.settled(partitions, want) {
			if ctx.Err() != nil {
				t.Fatalf("%s: group did not settle: owners %v, members %v", what, own.owner, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		res.rebalances = append(res.rebalances, time.Since(began))
	}
	script := []struct {
		join, leave string
	}{{join: "m1"}, {join: "m2"}, {join: "m3"}, {leave: "m1"}, {join: "m4"}, {leave: "m2"}, {leave: "m3"}}
	for i, step := range script {
		time.Sleep(300 * time.Millisecond) // let records flow between changes
		began := time.Now()
		if step.join != "" {
			start(step.join)
		} else {
			stop(step.leave)
		}
		settle(fmt.Sprintf("step %d %+v", i, step), began)
		if i == 1 && kip848 {
			// The group is a consumer-protocol group, listed and
			// described as one.
			lr := kmsg.NewPtrListGroupsRequest()
			lr.TypesFilter = []string{"consumer"}
			resp, err := lr.RequestWith(ctx, adm)
			if err != nil || len(resp.Groups) != 1 || resp.Groups[0].Group != group || resp.Groups[0].GroupType != "consumer" {
				t.Fatalf("ListGroups by type consumer: %v %+v", err, resp)
			}
			dr := kmsg.NewPtrConsumerGroupDescribeRequest()
			dr.Groups = []string{group, "no-such-group"}
			dresp, err := dr.RequestWith(ctx, adm)
			if err != nil || len(dresp.Groups) != 2 || dresp.Groups[0].ErrorCode != 0 || len(dresp.Groups[0].Members) != 2 ||
				dresp.Groups[0].AssignorName != "uniform" || dresp.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
				t.Fatalf("ConsumerGroupDescribe: %v %+v", err, dresp)
			}
		}
	}
	// Stop producing, let the last member read to the end, then compare.
	pstop()
	pwg.Wait()
	prod.Flush(context.Background())
	prod.Close()
	res.produced = int(nacked.Load())
	last := live["m4"]
	deadline := time.Now().Add(time.Minute)
	for {
		seenMu.Lock()
		n := len(seen)
		seenMu.Unlock()
		if n >= res.produced || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop(last.name)
	seenMu.Lock()
	defer seenMu.Unlock()
	for _, k := range seen {
		res.consumed += k
		if k > 1 {
			res.duplicates += k - 1
		}
	}
	// No gap: every acknowledged record was consumed (offsets are
	// dense per partition, so the count of distinct offsets consumed
	// equals the count acknowledged when none is missing).
	if len(seen) != res.produced {
		t.Errorf("consumed %d distinct records, %d acknowledged", len(seen), res.produced)
	}
	n := 0
	acked.Range(func(_, _ any) bool { n++; return true })
	if n != res.produced {
		t.Errorf("acked map %d, counter %d", n, res.produced)
	}
	return res
}

func TestFranzGoKIP848ChurnUnderLoad(t *testing.T) {
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{
		// Partitions move at heartbeats; 200 ms keeps the test short
		// (Kafka's default is 5 s). The classic run below heartbeats
		// at 200 ms too.
		ConsumerHeartbeatInterval: 200 * time.Millisecond,
		ConsumerSessionTimeout:    10 * time.Second,
	}})
	for _, kip848 := range []bool{true, false} {
		name := map[bool]string{true: "consumer", false: "classic"}[kip848]
		t.Run(name, func(t *testing.T) {
			res := runChurn(t, c, "churn-"+name, "g-"+name, 6, kip848)
			sorted := append([]time.Duration(nil), res.rebalances...)
			sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
			t.Logf("%s protocol: %d records produced, %d consumed, %d duplicates; rebalances %v (median %v, max %v)",
				name, res.produced, res.consumed, res.duplicates, res.rebalances, sorted[len(sorted)/2], sorted[len(sorted)-1])
			if res.produced == 0 {
				t.Fatal("nothing produced")
			}
		})
	}
	if gs, err := c.Meta.ListGroups(context.Background()); err == nil {
		for _, g := range gs {
			if g.Group == "g-classic" && g.Type != meta.GroupTypeClassic {
				t.Errorf("classic group listed as %q", g.Type)
			}
		}
	}
}

// createTopics creates topics of n partitions through franz-go.
func createTopics(ctx context.Context, t *testing.T, cl *kgo.Client, n int32, names ...string) {
	t.Helper()
	ct := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, n, 1
		ct.Topics = append(ct.Topics, rt)
	}
	resp, err := ct.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		if rt.ErrorCode != 0 {
			t.Fatalf("create %s: %v", rt.Topic, kerr.ErrorForCode(rt.ErrorCode))
		}
	}
}

// A franz-go KIP-848 member subscribing by regular expression: the
// coordinator resolves it (whole names), and a matching topic created
// later is assigned and consumed without the member doing anything.
func TestFranzGoKIP848Regex(t *testing.T) {
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{ConsumerHeartbeatInterval: 200 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopics(ctx, t, cl, 2, "rx-a", "rx-b", "other-rx-a")
	produce := func(topics ...string) {
		for _, topic := range topics {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(topic)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce("rx-a", "rx-b", "other-rx-a")
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup("rx"), kgo.ConsumeRegex(), kgo.ConsumeTopics("^rx-.*"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Balancers(kgo.RangeBalancer()), kgo.ServerSideBalancer(),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]int{}
	want := func(topics ...string) {
		for {
			ok := true
			for _, tp := range topics {
				ok = ok && got[tp] > 0
			}
			if ok {
				return
			}
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("waiting for %v: consumed %v", topics, got)
			}
			fs.EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
		}
	}
	want("rx-a", "rx-b")
	createTopics(ctx, t, cl, 1, "rx-c")
	produce("rx-c")
	want("rx-c")
	// New partitions of a subscribed topic bump the group epoch and are
	// assigned: a record in rx-a's new partition 2 is consumed.
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "rx-a", 3
	cp.Topics = append(cp.Topics, cpt)
	if r, err := cp.RequestWith(ctx, cl); err != nil || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create partitions: %v %+v", err, r)
	}
	manual, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer manual.Close()
	if err := manual.ProduceSync(ctx, &kgo.Record{Topic: "rx-a", Partition: 2, Value: []byte("p2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for {
		if got["rx-a/2"] > 0 {
			break
		}
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("the new partition rx-a[2] was not consumed: %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Topic]++
			if r.Partition == 2 {
				got[r.Topic+"/2"]++
			}
		})
	}
	if got["other-rx-a"] != 0 {
		t.Fatalf("consumed a topic the regex does not match: %v", got)
	}
	d, err := c.Meta.DescribeConsumerGroup(ctx, "rx")
	if err != nil || len(d.Members) != 1 || d.Members[0].Regex == "" || d.Assignor != "range" {
		t.Fatalf("describe: %+v %v", d, err)
	}
}

// franz-go KIP-848 static members (kgo.InstanceID): one closes (a static
// leave, epoch -2) and comes back as a new client with the same instance
// id, and gets the same partitions back while the other member never
// took them.
func TestFranzGoKIP848StaticMember(t *testing.T) {
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{ConsumerHeartbeatInterval: 200 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	createTopics(ctx, t, adm, 4, "static")
	own := &owners{t: t, owner: map[int32]string{}}
	member := func(name, instance string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup("static-g"), kgo.ConsumeTopics("static"),
			kgo.InstanceID(instance), kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.ServerSideBalancer(),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.assign(name, m["static"]) }),
			kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.revoke(name, m["static"]) }),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { own.revoke(name, m["static"]) }))
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if fs := cl.PollFetches(ctx); fs.IsClientClosed() || ctx.Err() != nil {
					return
				}
			}
		}()
		return cl
	}
	a := member("a", "inst-a")
	b := member("b", "inst-b")
	defer b.Close()
	for !own.settled(4, map[string]bool{"a": true, "b": true}) {
		if ctx.Err() != nil {
			t.Fatalf("did not settle: %v", own.owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
	own.mu.Lock()
	var held []int32
	for p, m := range own.owner {
		if m == "a" {
			held = append(held, p)
		}
	}
	own.mu.Unlock()
	before, err := c.Meta.DescribeConsumerGroup(ctx, "static-g")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()               // a static leave: its partitions stay reserved for inst-a
	time.Sleep(time.Second) // five heartbeat intervals: b would have taken them by now
	for _, p := range held {
		if own.check("b", p) {
			t.Fatalf("b took partition %d of the departed static member", p)
		}
	}
	a2 := member("a2", "inst-a")
	defer a2.Close()
	for !own.settled(4, map[string]bool{"a2": true, "b": true}) {
		if ctx.Err() != nil {
			t.Fatalf("did not settle after the static member came back: %v", own.owner)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, p := range held {
		if !own.check("a2", p) {
			t.Fatalf("returning static member does not own %d (had %v): %v", p, held, own.owner)
		}
	}
	after, err := c.Meta.DescribeConsumerGroup(ctx, "static-g")
	if err != nil || after.GroupEpoch != before.GroupEpoch {
		t.Fatalf("group epoch %d → %d (%v): a static rejoin should not rebalance", before.GroupEpoch, after.GroupEpoch, err)
	}
}

// ConsumerGroupHeartbeat refusals reach a real client with Kafka's exact
// error codes, through the agent.
func TestKIP848ErrorCodes(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopics(ctx, t, cl, 2, "codes")
	hb := func(f func(*kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
		t.Helper()
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.RebalanceTimeoutMillis = "codes-g", "member-1", 30_000
		req.SubscribedTopicNames, req.Topics = []string{"codes"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		f(req)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	str := func(s string) *string { return &s }
	// A join (v1) works and is answered with the assignment.
	if r := hb(func(*kmsg.ConsumerGroupHeartbeatRequest) {}); r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment == nil ||
		len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 2 || r.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("join: %+v", r)
	}
	// v0 (a client capped at it): the coordinator names the member.
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.ConsumerGroupHeartbeat), 0)
	cl0, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.MaxVersions(vs))
	if err != nil {
		t.Fatal(err)
	}
	defer cl0.Close()
	j0 := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	j0.Group, j0.RebalanceTimeoutMillis = "codes-g", 30_000
	j0.SubscribedTopicNames, j0.Topics = []string{"codes"}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	if r, err := j0.RequestWith(ctx, cl0); err != nil || r.Version != 0 || r.ErrorCode != 0 || r.MemberID == nil || *r.MemberID == "" {
		t.Fatalf("v0 join: %v %+v", err, r)
	}
	for _, tc := range []struct {
		name string
		f    func(*kmsg.ConsumerGroupHeartbeatRequest)
		want *kerr.Error
	}{
		{"v1 without member id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		{"epoch ahead", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 9 }, kerr.FencedMemberEpoch},
		{"unknown member", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "ghost", 1 }, kerr.UnknownMemberID},
		{"bad regex", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.SubscribedTopicNames, r.SubscribedTopicRegex = "m2", nil, str("([")
		}, kerr.InvalidRegularExpression},
		{"unknown assignor", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.ServerAssignor = "m3", str("cooperative") }, kerr.UnsupportedAssignor},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID = "m4"
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}, kerr.InvalidRequest},
	} {
		if r := hb(tc.f); r.ErrorCode != tc.want.Code {
			t.Errorf("%s: %v, want %v", tc.name, kerr.ErrorForCode(r.ErrorCode), tc.want)
		}
	}
	// A classic member whose metadata is not the consumer protocol's
	// Subscription cannot join a consumer group (mixed groups, and the
	// policy that refuses them: TestMixedGroupCodes).
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group, jg.ProtocolType, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis = "codes-g", "consumer", 10_000, 10_000
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	if r, err := jg.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("classic join of a consumer group: %v %v", err, r)
	}
	// An OffsetCommit at a stale epoch.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Version = 9
	oc.Group, oc.MemberID, oc.Generation = "codes-g", "member-1", 0
	ot := kmsg.NewOffsetCommitRequestTopic()
	ot.Topic = "codes"
	op := kmsg.NewOffsetCommitRequestTopicPartition()
	op.Partition, op.Offset = 0, 1
	ot.Partitions = append(ot.Partitions, op)
	oc.Topics = append(oc.Topics, ot)
	if r, err := oc.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != kerr.StaleMemberEpoch.Code {
		t.Fatalf("stale commit: %v %+v", err, r)
	}
	oc.Generation = 1
	if r, err := oc.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit at the member epoch: %v %+v", err, r)
	}
	// Leaving answers epoch -1; the member is then unknown.
	if r := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -1 }); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	if r := hb(func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 1 }); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("after leaving: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// TestFranzGoOwnKIP848Tests runs franz-go's own group tests against an
// agent: TestGroupETL, whose KIP-848 variants (range/848, sticky/848 and
// sticky/848/static: three chained consume-produce groups moving 20,000
// records, every record checked) run beside its classic ones, and
// TestGroupSimple (classic and 848). franz-go switches to KIP-848 only
// when ApiVersions advertises ConsumerGroupHeartbeat v1. Not run:
// Test848RegexBrokerResolves, which expects the broker to assign the
// internal topic __consumer_offsets, which Sluice does not have.
func TestFranzGoOwnKIP848Tests(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go not on PATH")
	}
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{ConsumerHeartbeatInterval: 500 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "github.com/twmb/franz-go/pkg/kgo",
		"-run", "^(TestGroupETL|TestGroupSimple)$", "-count=1", "-v")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+c.addr(), "KGO_TEST_RF=1", "KGO_TEST_RECORDS=20000")
	out, err := cmd.CombinedOutput()
	for _, want := range []string{"--- PASS: TestGroupETL/range/848 ", "--- PASS: TestGroupETL/sticky/848 ",
		"--- PASS: TestGroupETL/sticky/848/static ", "--- PASS: TestGroupETL/cooperative-sticky ", "--- PASS: TestGroupSimple/848 "} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("franz-go's group tests: %v; no %q in\n%s", err, want, tail(string(out), 8192))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

package agent_test

// Transactions (issue 15) with franz-go: commit and abort seen through
// read_committed and read_uncommitted consumers, the last stable offset
// of an open transaction, fencing by a second instance, the timeout
// abort, and a GroupTransactSession across two agents.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/server"
)

func txnClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produceTxn runs one transaction of n records valued prefix-i and
// commits or aborts it.
func produceTxn(ctx context.Context, t *testing.T, cl *kgo.Client, topic, prefix string, n int, commit bool) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %s-%d: %v", prefix, i, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("EndTransaction(commit=%v): %v", commit, err)
	}
}

// consumeValues reads topic from the start until it has want records or
// ctx ends, and returns the values in partition-then-offset order per
// partition as seen.
func consumeValues(ctx context.Context, t *testing.T, addr, topic string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := txnClient(t, addr, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline: %v", len(got), want, got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func countPrefix(vs []string, prefix string) int {
	n := 0
	for _, v := range vs {
		if strings.HasPrefix(v, prefix+"-") {
			n++
		}
	}
	return n
}

// TestTxnCommitAbortFranz: committed transactions are read by a
// read_committed consumer, an aborted one is not (its records sit
// between two committed ones, so reading past it proves they were
// dropped), and read_uncommitted sees everything; markers take their
// offsets (dense offsets across the control batches). An open
// transaction holds the last stable offset back until it commits.
func TestTxnCommitAbortFranz(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(txnClient(t, c.addr()))
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "txn"); err != nil {
		t.Fatal(err)
	}
	prod := txnClient(t, c.addr(), kgo.TransactionalID("txn-commit-abort"), kgo.DefaultProduceTopic("txn"))
	produceTxn(ctx, t, prod, "txn", "c1", 10, true)
	produceTxn(ctx, t, prod, "txn", "ab", 7, false)
	produceTxn(ctx, t, prod, "txn", "c2", 5, true)

	got := consumeValues(ctx, t, c.addr(), "txn", 15, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if countPrefix(got, "c1") != 10 || countPrefix(got, "c2") != 5 || countPrefix(got, "ab") != 0 || len(got) != 15 {
		t.Fatalf("read_committed got %d records %v; want c1 ×10 then c2 ×5, no ab", len(got), got)
	}
	all := consumeValues(ctx, t, c.addr(), "txn", 22)
	if countPrefix(all, "ab") != 7 || len(all) != 22 {
		t.Fatalf("read_uncommitted got %v; want all 22 records, the aborted ones included", all)
	}
	// 22 records and 3 markers: offsets 0..24.
	ends, err := adm.ListEndOffsets(ctx, "txn")
	if o, _ := ends.Lookup("txn", 0); err != nil || o.Offset != 25 {
		t.Fatalf("high watermark %+v %v, want 25 (22 records, 3 markers)", o, err)
	}

	// An open transaction: its records are past the LSO.
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("open-0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, "txn")
	if o, _ := lso.Lookup("txn", 0); err != nil || o.Offset != 25 {
		t.Fatalf("LSO with a transaction open at 25: %+v %v", o, err)
	}
	hwm, err := adm.ListEndOffsets(ctx, "txn")
	if o, _ := hwm.Lookup("txn", 0); err != nil || o.Offset != 26 {
		t.Fatalf("high watermark %+v %v, want 26", o, err)
	}
	ds, err := adm.DescribeTransactions(ctx, "txn-commit-abort")
	if d, ok := ds["txn-commit-abort"]; err != nil || !ok || d.State != "Ongoing" || len(d.Topics) != 1 {
		t.Fatalf("DescribeTransactions: %+v %v", ds, err)
	}
	// DescribeProducers: the transactional producer, its open
	// transaction starting at 25.
	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"txn": {0: {}}})
	if ps := dp.SortedProducers(); err != nil || len(ps) != 1 || ps[0].CurrentTxnStartOffset != 25 || ps[0].ProducerEpoch != 0 {
		t.Fatalf("DescribeProducers: %+v %v, want one producer with a transaction open at 25", ps, err)
	}
	if err := prod.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	dp, err = adm.DescribeProducers(ctx, kadm.TopicsSet{"txn": {0: {}}})
	if ps := dp.SortedProducers(); err != nil || len(ps) != 1 || ps[0].CurrentTxnStartOffset != -1 {
		t.Fatalf("DescribeProducers after the commit: %+v %v", ps, err)
	}
	lso, err = adm.ListCommittedOffsets(ctx, "txn")
	if o, _ := lso.Lookup("txn", 0); err != nil || o.Offset != 27 {
		t.Fatalf("LSO after the commit: %+v %v, want 27", o, err)
	}
	got = consumeValues(ctx, t, c.addr(), "txn", 16, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if got[15] != "open-0" {
		t.Fatalf("read_committed after the last commit: %v", got)
	}
	lt, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil || len(lt) != 1 {
		t.Fatalf("ListTransactions: %+v %v", lt, err)
	}
}

// TestTxnFencingFranz: a second producer with the same transactional id
// fences the first, whose open transaction is aborted.
func TestTxnFencingFranz(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(txnClient(t, c.addr()))
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "fence"); err != nil {
		t.Fatal(err)
	}
	first := txnClient(t, c.addr(), kgo.TransactionalID("fenced"), kgo.DefaultProduceTopic("fence"))
	if err := first.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := first.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie-0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	second := txnClient(t, c.addr(), kgo.TransactionalID("fenced"), kgo.DefaultProduceTopic("fence"))
	produceTxn(ctx, t, second, "fence", "new", 2, true)

	err := first.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("the fenced producer's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	got := consumeValues(ctx, t, c.addr(), "fence", 2, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if countPrefix(got, "new") != 2 || countPrefix(got, "zombie") != 0 {
		t.Fatalf("read_committed: %v, want the new instance's 2 records only", got)
	}
}

// TestTxnTimeoutFranz: meta aborts a transaction past its timeout; the
// producer's commit is then refused as fenced.
func TestTxnTimeoutFranz(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(txnClient(t, c.addr()))
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "slow"); err != nil {
		t.Fatal(err)
	}
	prod := txnClient(t, c.addr(), kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("slow"), kgo.TransactionTimeout(time.Second))
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("late-0")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// The janitor checks every second: poll the coordinator's state.
	for {
		ds, err := adm.DescribeTransactions(ctx, "slow")
		if d, ok := ds["slow"]; err == nil && ok && d.State == "Empty" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the transaction was not aborted by its timeout: %+v %v", ds, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	err := prod.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("commit after the timeout abort: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, "slow")
	if o, _ := lso.Lookup("slow", 0); err != nil || o.Offset != 2 {
		t.Fatalf("LSO after the timeout abort: %+v %v, want 2 (record and marker)", o, err)
	}
}

// TestTxnGroupTransactSessionTwoAgents: consume-transform-produce with
// franz-go's GroupTransactSession, one member on each of two agents
// (read_committed; franz-go group consumers always fetch offsets with
// require_stable).
// The first member dies in the middle of a transaction (records
// produced, offsets not committed); the second takes its partitions
// over. The output, read with read_committed, holds every input record
// exactly once: duplicates would sit before the end markers written
// last, which the reader waits for.
func TestTxnGroupTransactSessionTwoAgents(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	b := startSecondAgent(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(txnClient(t, c.addr()))
	for _, topic := range []string{"eos-in", "eos-out"} {
		if _, err := adm.CreateTopic(ctx, 4, -1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	const n = 400
	produceN(t, c.addr(), "eos-in", 0, n)
	var died atomic.Int64 // records the dying member left in its open transaction

	// member runs one GroupTransactSession on the agent at addr. With
	// die set it dies after its first committed transaction, with the
	// next one's records produced and flushed but not ended.
	member := func(ctx context.Context, id, addr string, die bool, committedOnce chan<- struct{}) error {
		sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("eos-"+id),
			kgo.ConsumerGroup("eos"), kgo.ConsumeTopics("eos-in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.TransactionTimeout(2*time.Second), // (franz-go always asks for stable offsets: require_stable)
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			return err
		}
		defer sess.Close()
		commits := 0
		for ctx.Err() == nil {
			fs := sess.PollRecords(ctx, 25)
			if ctx.Err() != nil {
				return nil
			}
			if err := sess.Begin(); err != nil {
				return fmt.Errorf("%s: Begin: %w", id, err)
			}
			fs.EachRecord(func(r *kgo.Record) {
				sess.Produce(ctx, &kgo.Record{Topic: "eos-out", Key: r.Key, Value: r.Value}, nil)
			})
			if die && commits > 0 && fs.NumRecords() > 0 {
				if err := sess.Client().Flush(ctx); err != nil {
					return err
				}
				died.Store(int64(fs.NumRecords()))
				return nil // dies: the deferred Close leaves, the transaction stays open
			}
			committed, err := sess.End(ctx, kgo.TryCommit)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("%s: End: %w", id, err)
			}
			if committed && fs.NumRecords() > 0 {
				if commits++; commits == 1 && committedOnce != nil {
					close(committedOnce)
				}
			}
		}
		return nil
	}

	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	errs := make(chan error, 2)
	firstCommitted := make(chan struct{})
	go func() { errs <- member(workCtx, "a", c.addr(), true, firstCommitted) }()
	select {
	case <-firstCommitted:
	case err := <-errs:
		t.Fatalf("member a ended before its first commit: %v", err)
	case <-ctx.Done():
		t.Fatal("member a never committed")
	}
	go func() { errs <- member(workCtx, "b", b.AdvertisedAddr(), false, nil) }()

	// Read the output until every input key is there.
	reader := txnClient(t, c.addr(), kgo.ConsumeTopics("eos-out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	read := func(until func() bool) {
		for !until() {
			fs := reader.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("output has %d of %d keys at the deadline", len(seen), n)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)]++ })
		}
	}
	read(func() bool { return len(seen) >= n })
	stopWork()
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	// End markers: one committed record per partition, written after
	// everything else; once all four are read, nothing is left unread.
	end := txnClient(t, c.addr(), kgo.TransactionalID("eos-end"))
	if err := end.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for p := range int32(4) {
		if err := end.ProduceSync(ctx, &kgo.Record{Topic: "eos-out", Partition: p, Key: []byte(fmt.Sprintf("end-%d", p))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := end.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	read(func() bool { return seen["end-0"]+seen["end-1"]+seen["end-2"]+seen["end-3"] == 4 })
	for i := range n {
		if k := fmt.Sprint(i); seen[k] != 1 {
			t.Errorf("input %s is in the output %d times, want exactly once", k, seen[k])
		}
	}
	if len(seen) != n+4 {
		t.Errorf("output has %d distinct keys, want %d inputs and 4 end markers", len(seen), n)
	}
	// The dead member's records are in the log, aborted: read_uncommitted
	// sees them as extra copies.
	if died.Load() == 0 {
		t.Fatal("member a never died in the middle of a transaction")
	}
	// (consumeValues fails the test unless it gets that many.)
	consumeValues(ctx, t, c.addr(), "eos-out", n+4+int(died.Load()))
}

// TestTxnACLs: with the ACL authorizer, a transactional producer needs
// WRITE on its transactional id (Kafka's rule): without it FindCoordinator
// and InitProducerId answer TRANSACTIONAL_ID_AUTHORIZATION_FAILED; with
// it (and WRITE on the topic) a transaction commits. DescribeTransactions
// needs DESCRIBE on the id.
func TestTxnACLs(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Authorizer: server.AuthorizerACL, DefaultPartitions: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.meta.CreateTopics(ctx, []meta.TopicSpec{{Name: "acl-txn", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	topicW := allowACL(meta.ResourceTopic, "acl-txn", meta.OpWrite)
	topicR := allowACL(meta.ResourceTopic, "acl-txn", meta.OpDescribe)
	setACLs(t, c, topicW, topicR)

	raw := txnClient(t, c.addr())
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey, fc.CoordinatorKeys = 1, "acl-tx", []string{"acl-tx"}
	fr, err := fc.RequestWith(ctx, raw)
	if err != nil || len(fr.Coordinators) != 1 || fr.Coordinators[0].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("FindCoordinator(txn) without DESCRIBE on the id: %+v %v", fr, err)
	}
	ip := kmsg.NewPtrInitProducerIDRequest()
	id := "acl-tx"
	ip.TransactionalID, ip.TransactionTimeoutMillis = &id, 10000
	// kgo turns this response's error code into the call's error.
	ir, err := ip.RequestWith(ctx, raw)
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) && (err != nil || ir.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code) {
		t.Fatalf("InitProducerId without WRITE on the id: %+v %v", ir, err)
	}

	setACLs(t, c, topicW, topicR, allowACL(meta.ResourceTransactionalID, "acl-tx", meta.OpWrite),
		allowACL(meta.ResourceTransactionalID, "acl-tx", meta.OpDescribe))
	prod := txnClient(t, c.addr(), kgo.TransactionalID("acl-tx"), kgo.DefaultProduceTopic("acl-txn"))
	produceTxn(ctx, t, prod, "acl-txn", "ok", 3, true)
	d := kmsg.NewPtrDescribeTransactionsRequest()
	d.TransactionalIDs = []string{"acl-tx"}
	dr, err := d.RequestWith(ctx, raw)
	if err != nil || len(dr.TransactionStates) != 1 || dr.TransactionStates[0].ErrorCode != 0 || dr.TransactionStates[0].State != "CompleteCommit" {
		t.Fatalf("DescribeTransactions: %+v %v", dr, err)
	}
	// Another id: kgo first looks its coordinator up, which needs
	// DESCRIBE on it.
	d.TransactionalIDs = []string{"other-tx"}
	if _, err := d.RequestWith(ctx, raw); !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("DescribeTransactions of an id without DESCRIBE: %v", err)
	}
}

// BenchmarkTxnCommit: one franz-go transaction of 10 records per
// iteration (Begin, produce, EndTransaction commit) against one agent
// with a 20 ms flush interval: the produce waits for its segment's
// commit, EndTxn is one more meta write.
func BenchmarkTxnCommit(b *testing.B) {
	c := startCluster(b, b.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.TransactionalID("bench-txn"), kgo.DefaultProduceTopic("bench-txn"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	b.ResetTimer()
	for range b.N {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for i := range 10 {
			cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
}

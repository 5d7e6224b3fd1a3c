package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	"sluice.dev/meta/planner"
	"sluice.dev/objstore"
)

// lifecycleMeta is meta tuned so that a test sees compaction and GC in
// seconds: objects are candidates at once, a level waits 100 ms for its
// job to fill, the grace is 4 s and entries are cut at 64 KiB.
func lifecycleMeta(c *controller.Config) {
	c.GCGrace = 4 * time.Second
	c.JobLeaseTTL = time.Second
	c.OrphanInterval = time.Second
	c.CompactEntryBytes = 64 << 10
	c.Compaction = planner.Config{MinAge: time.Millisecond, MaxWait: 100 * time.Millisecond}
}

// startJobsCluster starts a cluster whose agent runs no job on its own:
// the test runs them (runJobs), with meta's lifecycle settings.
func startJobsCluster(t *testing.T) *testCluster {
	t.Helper()
	return startClusterMeta(t, t.TempDir(), agent.Config{
		FlushInterval:      20 * time.Millisecond,
		CompactionInterval: time.Hour,
		GCInterval:         time.Hour,
	}, nil, lifecycleMeta)
}

// runJobs runs jobs of kind until meta has none due.
func runJobs(t *testing.T, a *agent.Agent, kind meta.JobKind) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for ; n < 1000; n++ {
		ran, err := a.Jobs().RunOne(ctx, kind)
		if err != nil {
			t.Fatalf("%s job: %v", kind, err)
		}
		if !ran {
			break
		}
	}
	return n
}

// bucketObjects lists the object keys in the bucket.
func bucketObjects(t *testing.T, store objstore.Store) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	err := store.List(context.Background(), meta.ObjectPrefix, func(o objstore.ObjectInfo) error {
		keys[o.Key] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// indexedObjects asks meta for every entry of the topic's partitions
// and returns the objects they point into and the entry count.
func indexedObjects(t *testing.T, m meta.Client, topic string) (map[string]bool, int) {
	t.Helper()
	ctx := context.Background()
	ts, err := m.Topics(ctx, []string{topic})
	if err != nil || len(ts) != 1 {
		t.Fatalf("Topics: %v %v", ts, err)
	}
	keys := map[string]bool{}
	n := 0
	for p := range ts[0].Partitions {
		tp := meta.TopicPartition{TopicID: ts[0].ID, Partition: p}
		st, err := m.PartitionStates(ctx, []meta.TopicPartition{tp})
		if err != nil {
			t.Fatal(err)
		}
		for off := st[0].LogStartOffset; off < st[0].HighWatermark; {
			res, err := m.Lookup(ctx, tp, off, 1000)
			if err != nil || len(res.Entries) == 0 {
				t.Fatalf("Lookup %d: %v", off, err)
			}
			for _, e := range res.Entries {
				keys[e.ObjectKey] = true
				n++
				off = e.LastOffset + 1
			}
		}
	}
	return keys, n
}

// TestCompactionAndGCUnderReaders: records produced in many small
// segments are compacted (twice, so that level 1 objects merge into
// level 2) while a consumer reads them; the consumer gets every record
// exactly once, in order. Then the garbage collector deletes exactly the
// objects nothing references, a fresh consumer still reads everything,
// an orphan is collected, and deleting the topic empties the bucket.
func TestCompactionAndGCUnderReaders(t *testing.T) {
	c := startJobsCluster(t)
	const topic, parts = "life", 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	sent := 0
	produce := func(n int) {
		t.Helper()
		for range n / 50 {
			var rs []*kgo.Record
			for range 50 {
				r := makeRecord(topic, sent)
				r.Partition = int32(sent % parts)
				rs = append(rs, r)
				sent++
			}
			if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
	produce(1000)

	// The consumer reads throughout: before, during and after the swaps.
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxPartitionBytes(16<<10), kgo.FetchMaxBytes(32<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var (
		mu   sync.Mutex
		got  = map[int32][]*kgo.Record{}
		nGot int
	)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ctx.Err() == nil {
			fs := cons.PollFetches(ctx)
			fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
			mu.Lock()
			fs.EachRecord(func(r *kgo.Record) {
				got[r.Partition] = append(got[r.Partition], r)
				nGot++
			})
			done := nGot >= 2000
			mu.Unlock()
			if done {
				return
			}
		}
	}()

	_, before := indexedObjects(t, c.meta, topic)
	time.Sleep(150 * time.Millisecond) // past MaxWait
	if n := runJobs(t, c.agent, meta.JobCompact); n == 0 {
		t.Fatal("no compaction job ran")
	}
	objs1, after := indexedObjects(t, c.meta, topic)
	t.Logf("first pass: %d index entries -> %d, in %d objects", before, after, len(objs1))
	if after >= before {
		t.Fatalf("compaction left %d entries of %d", after, before)
	}
	produce(1000)
	time.Sleep(250 * time.Millisecond) // level 1 waits twice as long
	runJobs(t, c.agent, meta.JobCompact)
	objs2, entries2 := indexedObjects(t, c.meta, topic)
	t.Logf("second pass: %d entries in %d objects: %v", entries2, len(objs2), c.meta.JobsStats())

	select {
	case <-consumed:
	case <-ctx.Done():
		t.Fatalf("consumer got %d of %d records", nGot, sent)
	}
	checkExactlyOnce(t, topic, parts, sent, got)

	// GC: after the grace, the dead objects go and the referenced stay.
	inBucket := bucketObjects(t, c.store)
	time.Sleep(4*time.Second + 100*time.Millisecond)
	deleted := runJobs(t, c.agent, meta.JobDelete)
	indexed, _ := indexedObjects(t, c.meta, topic)
	left := bucketObjects(t, c.store)
	for k := range indexed {
		if !left[k] {
			t.Fatalf("object %s is referenced by the index but was deleted", k)
		}
	}
	for k := range left {
		if !indexed[k] {
			t.Errorf("object %s is referenced by nothing and survived GC", k)
		}
	}
	t.Logf("GC: %d delete jobs, bucket %d -> %d objects, index references %d", deleted, len(inBucket), len(left), len(indexed))
	if len(left) >= len(inBucket) {
		t.Fatalf("GC deleted nothing: %d objects before, %d after", len(inBucket), len(left))
	}

	// A fresh consumer reads everything again, from compacted objects.
	fresh := consumeN(t, c.addr(), topic, sent)
	checkExactlyOnce(t, topic, parts, sent, fresh)

	// An orphan (an upload whose commit never happened) older than the
	// grace goes; a young one and a file that is not ours stay.
	old := meta.ObjectKey(meta.NewSegmentID(time.Now().Add(-time.Hour), [8]byte{1}))
	young := meta.ObjectKey(meta.NewSegmentID(time.Now(), [8]byte{2}))
	for _, k := range []string{old, young, meta.ObjectPrefix + "notes.txt"} {
		if err := c.store.Put(ctx, k, []byte("orphan")); err != nil {
			t.Fatal(err)
		}
	}
	// The old orphan was written when its id says: the collector also
	// wants the store's clock to agree that it is old.
	hourAgo := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(c.dir, "bucket", old), hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	if n := runJobs(t, c.agent, meta.JobOrphans); n != 1 {
		t.Fatalf("%d orphan passes, want 1", n)
	}
	left = bucketObjects(t, c.store)
	if left[old] || !left[young] || !left[meta.ObjectPrefix+"notes.txt"] {
		t.Fatalf("after the orphan pass: old %v (want gone), young %v, foreign %v (want kept)", left[old], left[young], left[meta.ObjectPrefix+"notes.txt"])
	}

	// Deleting the topic empties the bucket of its objects within the
	// grace and one pass of each job.
	if errs, err := c.meta.DeleteTopics(ctx, []string{topic}); err != nil || errs[0] != nil {
		t.Fatalf("DeleteTopics: %v %v", err, errs)
	}
	time.Sleep(4*time.Second + 100*time.Millisecond)
	runJobs(t, c.agent, meta.JobDelete)
	runJobs(t, c.agent, meta.JobOrphans)
	for k := range bucketObjects(t, c.store) {
		if k != young && k != meta.ObjectPrefix+"notes.txt" {
			t.Errorf("object %s left after the topic was deleted", k)
		}
	}
}

// consumeN reads n records of topic from the start with a new client.
func consumeN(t *testing.T, addr, topic string, n int) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int32][]*kgo.Record{}
	for total := 0; total < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records", total, n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			total++
		})
	}
	return got
}

// checkExactlyOnce checks that got holds records 0..sent-1 of topic,
// record i in partition i%parts at offset i/parts: each once, in order,
// byte for byte.
func checkExactlyOnce(t *testing.T, topic string, parts, sent int, got map[int32][]*kgo.Record) {
	t.Helper()
	total := 0
	for p := range int32(parts) {
		rs := got[p]
		total += len(rs)
		for k, r := range rs {
			i := k*parts + int(p)
			if r.Offset != int64(k) {
				t.Fatalf("partition %d record %d has offset %d", p, k, r.Offset)
			}
			if err := sameRecord(r, makeRecord(topic, i)); err != nil {
				t.Fatalf("partition %d offset %d: %v", p, k, err)
			}
		}
	}
	if total != sent {
		var b strings.Builder
		for p := range int32(parts) {
			fmt.Fprintf(&b, " p%d=%d", p, len(got[p]))
		}
		t.Fatalf("got %d records, sent %d:%s", total, sent, b.String())
	}
}

// TestCompactionTakesMarkers: compaction of a topic written in
// transactions takes the transaction markers that follow its sources
// into its output as control batches (issue 15), so meta's index stops
// holding an entry per marker, and read_committed and read_uncommitted
// consumers read exactly what they read before.
func TestCompactionTakesMarkers(t *testing.T) {
	c := startJobsCluster(t)
	const topic, txns, per = "txc", 20, 3
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(c.addr())))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create: %v", err)
	}
	markers := func() int { return markerEntries(t, c, topic) }
	cl := mustClient(t, kgo.SeedBrokers(c.addr()), kgo.TransactionalID("txc"), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	for i := range txns {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var rs []*kgo.Record
		for r := range per {
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "t%02d-r%d", i, r), Value: []byte("v")})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(i%2 == 0)); err != nil { // even: commit
			t.Fatal(err)
		}
	}
	// A plain record last: readCompacted reads up to the end offset, and
	// a client never shows a marker.
	if err := mustClient(t, kgo.SeedBrokers(c.addr())).ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("end"), Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n := markers(); n != txns {
		t.Fatalf("%d marker entries before compaction, want %d", n, txns)
	}
	time.Sleep(200 * time.Millisecond) // past the planner's max wait
	if runJobs(t, c.agent, meta.JobCompact) == 0 {
		t.Fatal("no compaction ran")
	}
	if n := markers(); n > 1 {
		t.Fatalf("%d marker entries after compaction, want the markers taken into the output", n)
	}
	for _, rc := range []bool{false, true} {
		var opts []kgo.Opt
		if rc {
			opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
		}
		_, byKey := readCompacted(t, c.addr(), topic, opts...)
		for i := range txns {
			for r := range per {
				key := fmt.Sprintf("t%02d-r%d", i, r)
				if want := !rc || i%2 == 0; (len(byKey[key]) == 1) != want || len(byKey[key]) > 1 {
					t.Fatalf("read_committed %v: %s seen %d times, want visible %v", rc, key, len(byKey[key]), want)
				}
			}
		}
	}
}

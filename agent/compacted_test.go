package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/meta/controller"
)

// kvRecord is what a consumer of a compacted topic sees of one record.
type kvRecord struct {
	offset int64
	value  *string // nil: a tombstone
}

// readCompacted reads the whole topic from the start with a new client
// and returns, per partition, the records in offset order by key.
func readCompacted(t *testing.T, addr, topic string, opts ...kgo.Opt) (map[int32][]string, map[string][]kvRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	order := map[int32][]string{}
	byKey := map[string][]kvRecord{}
	last := map[int32]int64{}
	done := func() bool {
		ok := true
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && last[o.Partition] < o.Offset-1 {
				ok = false
			}
		})
		return ok
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("did not reach the end offsets %v (at %v)", ends, last)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
			}
			last[r.Partition] = r.Offset
			k := string(r.Key)
			var v *string
			if r.Value != nil {
				s := string(r.Value)
				v = &s
			}
			order[r.Partition] = append(order[r.Partition], k)
			byKey[k] = append(byKey[k], kvRecord{offset: r.Offset, value: v})
		})
	}
	return order, byKey
}

// TestCompactedTopic: a topic created with cleanup.policy=compact (by
// kadm) refuses records without keys, and after its partitions are
// cleaned a consumer reading from the start sees, for every key, its
// latest value only, in offset order, with offsets no longer dense. A
// key whose last record is a tombstone shows the tombstone until a later
// cleaning, past delete.retention.ms, removes it.
func TestCompactedTopic(t *testing.T) {
	c := startJobsCluster(t)
	const topic, parts, keys = "kv", 2, 50
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ProducerLinger(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// max.compaction.lag.ms=1: dirty data is due for cleaning at once.
	policy, delRet, maxLag := "compact", "1000", "1"
	if _, err := adm.CreateTopic(ctx, parts, 1, map[string]*string{"cleanup.policy": &policy, "delete.retention.ms": &delRet, "max.compaction.lag.ms": &maxLag}, topic); err != nil {
		t.Fatalf("create: %v", err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On(topic, nil); err != nil || !hasConfig(v.Configs, "cleanup.policy", "compact") {
		t.Fatalf("describe: cleanup.policy is not compact: %v %v", v, err)
	}

	// A record without a key cannot be compacted: INVALID_RECORD.
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr()
	if !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("keyless record: %v, want INVALID_RECORD", err)
	}

	// Five rounds over 50 keys; in the last, keys 0-9 get tombstones.
	produce := func(round int) {
		var rs []*kgo.Record
		for k := range keys {
			r := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%02d", k), Value: fmt.Appendf(nil, "v%d-k%02d", round, k)}
			if round == 4 && k < 10 {
				r.Value = nil
			}
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", round, err)
		}
	}
	for round := range 5 {
		produce(round)
	}
	cleanDue(t, c.agent)
	// Each committed cleaning observes its compaction lag.
	var prom bytes.Buffer
	metrics.WritePrometheus(&prom, false)
	if !regexp.MustCompile(`(?m)^sluice_meta_key_cleaning_lag_seconds_count [1-9]`).Match(prom.Bytes()) {
		t.Fatalf("no key cleaning lag observed:\n%s", prom.String())
	}
	order, byKey := readCompacted(t, c.addr(), topic)
	total := 0
	for _, o := range order {
		total += len(o)
	}
	if total != keys {
		t.Fatalf("after cleaning: %d records, want one per key (%d)", total, keys)
	}
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		rs := byKey[key]
		if len(rs) != 1 {
			t.Fatalf("key %s: %d records after cleaning", key, len(rs))
		}
		switch {
		case k < 10 && rs[0].value != nil:
			t.Fatalf("key %s: %q, want its tombstone", key, *rs[0].value)
		case k >= 10 && (rs[0].value == nil || *rs[0].value != fmt.Sprintf("v4-k%02d", k)):
			t.Fatalf("key %s: %v, want its latest value", key, rs[0].value)
		}
	}

	// Later: a new round for keys 10-19 and a cleaning past the
	// tombstones' delete.retention.ms removes them; the rest stays.
	time.Sleep(1100 * time.Millisecond)
	var rs []*kgo.Record
	for k := 10; k < 20; k++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%02d", k), Value: fmt.Appendf(nil, "v5-k%02d", k)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cleanDue(t, c.agent)
	_, byKey = readCompacted(t, c.addr(), topic)
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		rs := byKey[key]
		want := fmt.Sprintf("v4-k%02d", k)
		if k >= 10 && k < 20 {
			want = fmt.Sprintf("v5-k%02d", k)
		}
		switch {
		case k < 10 && len(rs) != 0:
			t.Fatalf("key %s: tombstone still there after delete.retention.ms: %v", key, rs)
		case k >= 10 && (len(rs) != 1 || rs[0].value == nil || *rs[0].value != want):
			t.Fatalf("key %s: %v, want only %s", key, rs, want)
		}
	}
}

// TestCompactedTopicTransactions: a compacted topic written in
// transactions (Kafka Streams' changelogs under exactly_once_v2) is
// cleaned like Kafka's cleaner does it: aborted records are removed (an
// aborted value never survives as a key's latest), nothing at or past the
// last stable offset is touched, meta's marker entries become control
// batches in the cleaned object, and the commit marker of a transaction
// whose records were all superseded goes after delete.retention.ms.
func TestCompactedTopicTransactions(t *testing.T) {
	c := startJobsCluster(t)
	const topic, keys = "changelog", 50
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adm := kadm.NewClient(mustClient(t, kgo.SeedBrokers(c.addr())))
	policy, delRet, maxLag := "compact", "1000", "1"
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &policy, "delete.retention.ms": &delRet, "max.compaction.lag.ms": &maxLag}, topic); err != nil {
		t.Fatalf("create: %v", err)
	}
	markers := func() int { return markerEntries(t, c, topic) }
	txn := func(id string) *kgo.Client {
		return mustClient(t, kgo.SeedBrokers(c.addr()), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond))
	}
	write := func(cl *kgo.Client, from, to int, value string) {
		var rs []*kgo.Record
		for k := from; k < to; k++ {
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%02d", k), Value: []byte(value)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", value, err)
		}
	}
	inTxn := func(cl *kgo.Client, from, to int, value string, commit kgo.TransactionEndTry) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		write(cl, from, to, value)
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatalf("end %s: %v", value, err)
		}
	}
	a, b := txn("app-a"), txn("app-b")
	inTxn(a, 0, 10, "a", kgo.TryCommit)   // superseded below: its marker goes later
	inTxn(a, 0, keys, "x", kgo.TryAbort)  // aborted: never a latest value
	inTxn(a, 0, keys, "b", kgo.TryCommit) // the committed values
	if err := b.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	write(b, 0, 5, "o") // open: the last stable offset stops the cleaning here
	if n := markers(); n != 3 {
		t.Fatalf("%d marker entries before cleaning, want 3", n)
	}

	aborted := metrics.GetOrCreateCounter(`sluice_jobs_clean_aborted_records_dropped_total`)
	dropped := metrics.GetOrCreateCounter(`sluice_jobs_clean_markers_dropped_total`)
	aborted0, dropped0 := aborted.Get(), dropped.Get()
	cleanDue(t, c.agent)
	if got := aborted.Get() - aborted0; got != keys {
		t.Fatalf("%d aborted records dropped, want %d", got, keys)
	}
	if n := markers(); n != 0 {
		t.Fatalf("%d marker entries left below the last stable offset, want 0 (rendered into the cleaned object)", n)
	}
	// read_uncommitted sees the open transaction's records beside the
	// committed ones they would supersede: the cleaning stopped below
	// them. No aborted record is left to see.
	_, byKey := readCompacted(t, c.addr(), topic)
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		want := []string{"b"}
		if k < 5 {
			want = []string{"b", "o"}
		}
		if got := values(byKey[key]); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("key %s after the first cleaning: %v, want %v", key, got, want)
		}
	}

	// b commits; past delete.retention.ms a second cleaning drops the
	// commit marker of "a", whose records were all superseded, and keeps
	// the others (the abort marker, "b" and "o" keep records).
	if err := b.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	inTxn(a, 40, keys, "c", kgo.TryCommit)
	// A plain record last: readCompacted reads up to the end offset,
	// and a client never shows a marker.
	if err := mustClient(t, kgo.SeedBrokers(c.addr())).ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cleanDue(t, c.agent)
	if got := dropped.Get() - dropped0; got != 1 {
		t.Fatalf("%d commit markers dropped, want 1", got)
	}
	for _, opts := range [][]kgo.Opt{nil, {kgo.FetchIsolationLevel(kgo.ReadCommitted())}} {
		_, byKey = readCompacted(t, c.addr(), topic, opts...)
		for k := range keys {
			key := fmt.Sprintf("k%02d", k)
			want := "b"
			switch {
			case k < 5:
				want = "o"
			case k >= 40:
				want = "c"
			}
			if got := values(byKey[key]); fmt.Sprint(got) != fmt.Sprint([]string{want}) {
				t.Fatalf("key %s after the second cleaning: %v, want [%s]", key, got, want)
			}
		}
	}
}

func values(rs []kvRecord) []string {
	var out []string
	for _, r := range rs {
		if r.value == nil {
			out = append(out, "<nil>")
		} else {
			out = append(out, *r.value)
		}
	}
	return out
}

// cleanDue runs key cleanings until at least one ran. Data is due
// max.compaction.lag.ms (1 ms here) after its commit, and meta's clock
// has millisecond resolution: a cleaning asked for in the millisecond of
// the last commit finds nothing due (this test failed that way about one
// run in three on a quiet machine).
func cleanDue(t *testing.T, a *agent.Agent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runJobs(t, a, meta.JobCleanKeys) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no key cleaning ran within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasConfig(cs []kadm.Config, name, value string) bool {
	for _, c := range cs {
		if c.Key == name && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// mustClient returns a client closed when the test ends.
func mustClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// markerEntries counts the transaction markers that are index entries of
// their own in partition 0 of topic (not rendered into an object).
func markerEntries(t *testing.T, c *testCluster, topic string) (n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	topics, err := c.meta.Topics(ctx, []string{topic})
	if err != nil || len(topics) != 1 {
		t.Fatalf("topic %s: %v %v", topic, topics, err)
	}
	res, err := c.meta.Lookup(ctx, meta.TopicPartition{TopicID: topics[0].ID}, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Entries {
		if e.IsMarker() {
			n++
		}
	}
	return n
}

// TestCompactedTopicLargerThanAWindow: a compacted partition whose log is
// larger than one cleaning job's window (here 16 KiB, in production 256
// MiB) is still cleaned, in passes of several jobs: every key ends with
// its latest value once, and tombstones go after delete.retention.ms.
// Before passes, a log whose clean part filled the window was never
// cleaned again.
func TestCompactedTopicLargerThanAWindow(t *testing.T) {
	c := startClusterMeta(t, t.TempDir(), agent.Config{
		FlushInterval:      20 * time.Millisecond,
		CompactionInterval: time.Hour,
		GCInterval:         time.Hour,
	}, nil, func(mc *controller.Config) {
		lifecycleMeta(mc)
		mc.CleanWindowBytes = 16 << 10
		mc.CompactEntryBytes = 4 << 10
	})
	const topic, keys = "big", 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := mustClient(t, kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	policy, delRet, maxLag := "compact", "1000", "1"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &policy, "delete.retention.ms": &delRet, "max.compaction.lag.ms": &maxLag}, topic); err != nil {
		t.Fatalf("create: %v", err)
	}
	pad := strings.Repeat("x", 100)
	produce := func(round int, from, to int, tombstone bool) {
		var rs []*kgo.Record
		for k := from; k < to; k++ {
			r := &kgo.Record{Key: fmt.Appendf(nil, "k%03d", k), Value: fmt.Appendf(nil, "v%d-%s", round, pad)}
			if tombstone {
				r.Value = nil
			}
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", round, err)
		}
	}
	passes := metrics.GetOrCreateCounter(`sluice_meta_key_cleaning_windowed_passes_total`)
	passes0 := passes.Get()
	cleanAll := func() int {
		n := 0
		for range 50 {
			time.Sleep(5 * time.Millisecond) // max.compaction.lag.ms
			ran := runJobs(t, c.agent, meta.JobCleanKeys)
			if ran == 0 {
				return n
			}
			n += ran
		}
		t.Fatal("key cleanings still due after 50 rounds")
		return n
	}
	for round := range 4 {
		produce(round, 0, keys, false)
		t.Logf("round %d: %d cleanings, passes %d", round, cleanAll(), passes.Get()-passes0)
	}
	produce(4, 0, 50, true)
	produce(4, 50, keys, false)
	if n := cleanAll(); n < 3 {
		t.Fatalf("%d cleaning jobs for a log of several windows", n)
	}
	if passes.Get() == passes0 {
		t.Fatal("no windowed pass was started")
	}
	check := func(tombstones bool) {
		t.Helper()
		_, byKey := readCompacted(t, c.addr(), topic)
		for k := range keys {
			key := fmt.Sprintf("k%03d", k)
			want := []string{fmt.Sprintf("v4-%s", pad)}
			if k < 50 {
				want = []string{"<nil>"}
				if !tombstones {
					want = nil
				}
			}
			if got := values(byKey[key]); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("key %s: %d records %.40v, want %.40v", key, len(got), got, want)
			}
		}
	}
	check(true)
	// Updates of the last keys only: once a pass has laid the clean
	// part out (the empty batches a window leaves at its edges fold into
	// their neighbours in the next pass, whose windows differ), the
	// windows before the one holding those keys keep everything and are
	// not rewritten.
	unchanged := metrics.GetOrCreateCounter(`sluice_meta_key_cleaning_windows_unchanged_total`)
	unchanged0 := unchanged.Get()
	// (Up to four passes: on a slow machine delete.retention.ms may
	// pass meanwhile, and a pass that drops the tombstones rewrites.)
	for i := 0; unchanged.Get() == unchanged0; i++ {
		if i == 4 {
			t.Fatal("no window of four passes came back unchanged")
		}
		produce(4, keys-10, keys, false)
		cleanAll()
	}
	check(true)
	// Past delete.retention.ms, the next pass drops the tombstones.
	time.Sleep(1100 * time.Millisecond)
	produce(5, 50, 51, false)
	produce(4, 50, 51, false)
	cleanAll()
	check(false)
}

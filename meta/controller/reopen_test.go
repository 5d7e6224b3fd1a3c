package controller

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// Issue 11 finding 1: a topic delete left the topic's producer states
// (and its groups' committed offsets) in the store, and Open refused
// the store ("key ... names no partition"): one DeleteTopics made the
// whole cluster unable to restart. A delete now removes every record
// naming the topic, and Open drops such records instead of refusing.

// TestDeleteTopicThenReopen is the reproduction from the issue: an
// idempotent producer writes to a topic, a group commits offsets for it,
// the topic is deleted, and the store must reopen with nothing of it.
func TestDeleteTopicThenReopen(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 2)
	keep := createTopic(t, s, "keep", 1)
	pid, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, newSegment().addP(a.ID, 0, 3, 100, pid.ProducerID, 0, 0).addP(a.ID, 1, 2, 50, pid.ProducerID, 0, 0).addP(keep.ID, 0, 1, 10, pid.ProducerID, 0, 0))
	if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: "g", Generation: -1, Offsets: []meta.CommittedOffset{
		{TopicPartition: meta.TopicPartition{TopicID: a.ID, Partition: 0}, Offset: 2}, {TopicPartition: meta.TopicPartition{TopicID: keep.ID, Partition: 0}, Offset: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	errs, err := s.DeleteTopics(ctx, []string{"a"})
	if err != nil || errs[0] != nil {
		t.Fatalf("DeleteTopics: %v %v", err, errs)
	}
	// Nothing of a is left in memory...
	s.mu.RLock()
	for k := range s.st.prodParts {
		if k.tp.topic == a.ID {
			t.Errorf("producer state of the deleted topic kept: %+v", k)
		}
	}
	s.mu.RUnlock()
	offs, _ := s.FetchOffsets(ctx, "g", nil)
	if len(offs) != 1 || offs[0].TopicID != keep.ID {
		t.Errorf("offsets after delete: %+v", offs)
	}
	// ...nor in the store (reopen compares the two), and a topic of the
	// same name starts empty.
	s = reopen(t, s)
	a2 := createTopic(t, s, "a", 1)
	if hwm(t, s, a2.ID, 0) != 0 {
		t.Fatal("re-created topic is not empty")
	}
	commit(t, s, newSegment().addP(a2.ID, 0, 1, 10, pid.ProducerID, 0, 1))
	reopen(t, s)
}

// TestOpenDropsRecordsOfDeletedTopics: a store written by an older
// version, holding producer states, offsets, partition and index records
// of a topic that no longer exists, opens; the records are dropped with
// one warning line and removed from the store.
func TestOpenDropsRecordsOfDeletedTopics(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	a := createTopic(t, s, "a", 1)
	commit(t, s, newSegment().add(a.ID, 0, 1, 10))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	store := testStore(t, dir)
	if store == nil {
		var err error
		if store, err = kv.OpenBolt(dir); err != nil {
			t.Fatal(err)
		}
	}
	gone := meta.TopicID{0xde, 0xad}
	tp := appendTPKey(nil, tpKey{topic: gone, part: 0})
	err := store.Update(func(tx kv.KVTx) error {
		pp := prodPart{epoch: 0, n: 1}
		pp.win[0] = seqBatch{first: 0, last: 2, baseOffset: 0}
		puts := []struct{ b, k, v []byte }{
			{bucketProducers, append(be.AppendUint64(nil, 0), tp...), appendProdPart(nil, &pp)},
			{bucketOffsets, offsetKey(nil, "g", meta.TopicPartition{TopicID: gone}), append([]byte{recFormat}, make([]byte, 20)...)},
			{bucketOffsets, offsetKey(nil, "g", meta.TopicPartition{TopicID: a.ID, Partition: 7}), append([]byte{recFormat}, make([]byte, 20)...)},
			{bucketPartitions, tp, append([]byte{recFormat}, make([]byte, 16)...)},
			{bucketIndex, be.AppendUint64(slicesClone(tp), 0), appendIndexValue(nil, &meta.IndexEntry{LastOffset: 2, ObjectKey: "k"}, 0)},
		}
		for _, p := range puts {
			if err := tx.Put(p.b, p.k, p.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	s = openT(t, dir, func(c *Config) { c.Logger = log })
	if n := strings.Count(logBuf.String(), "level=WARN"); n != 1 {
		t.Fatalf("want one warning line, got %d:\n%s", n, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), "records=5") {
		t.Fatalf("warning does not count 5 records:\n%s", logBuf.String())
	}
	if got := hwm(t, s, a.ID, 0); got != 1 {
		t.Fatalf("surviving topic's high watermark %d", got)
	}
	// The records are gone from the store: the next open says nothing.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	logBuf.Reset()
	s = openT(t, dir, func(c *Config) { c.Logger = log })
	if strings.Contains(logBuf.String(), "level=WARN") {
		t.Fatalf("second open still warns:\n%s", logBuf.String())
	}
	// A partition beyond an existing topic's count is still corruption.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	store = testStore(t, dir)
	if store == nil {
		store, _ = kv.OpenBolt(dir)
	}
	bad := appendTPKey(nil, tpKey{topic: a.ID, part: 5})
	if err := store.Update(func(tx kv.KVTx) error {
		return tx.Put(bucketPartitions, bad, append([]byte{recFormat}, make([]byte, 16)...))
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	if s, err := Open(Config{Dir: dir, Store: testStore(t, dir), Logger: quietLog}); err == nil {
		s.Close()
		t.Fatal("a partition beyond the topic's count opened")
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b.Reset()
}

// The reopen property: whatever sequence of writes meta takes, closing
// and reopening its store gives exactly the state it had in memory. The
// driver applies random sequences of every write operation, sometimes
// several at once so that they share a commit group, and reopens after
// every step. -reopen.steps and -reopen.seed make longer or repeated
// runs (make test-reopen); FuzzReopen lets the fuzzer choose the ops.

var (
	reopenSteps = flag.Int("reopen.steps", 0, "steps of TestReopenProperty (default 150)")
	reopenSeed  = flag.Uint64("reopen.seed", 0, "seed of TestReopenProperty (default: time)")
)

func TestReopenProperty(t *testing.T) {
	steps := *reopenSteps
	if steps == 0 {
		steps = 150
		if testing.Short() {
			steps = 30
		}
	}
	seed := *reopenSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun: go test ./meta -run TestReopenProperty -reopen.seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	d := newReopenDriver(t, t.TempDir(), func(n int) int { return rng.IntN(n) })
	for i := range steps {
		d.step()
		if t.Failed() {
			t.Fatalf("step %d failed (seed %d); ops so far:\n%s", i, seed, strings.Join(d.log, "\n"))
		}
	}
	t.Logf("%d steps: %s swapped=%d txnended=%d", steps, d.summary(), d.swapped.Load(), d.txnEnded.Load())
}

// markers counts the transaction markers in the index (issue 15); the
// summary reports the most seen after any step (retention and deletes
// take them away again).
func (d *reopenDriver) markers() int {
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	n := 0
	for _, t := range d.s.st.topicsByID {
		for _, ps := range t.parts {
			for k := range ps.entries.len() {
				if ps.entries.at(k).IsMarker() {
					n++
				}
			}
		}
	}
	d.counts["txnmarkers"] = max(d.counts["txnmarkers"], n)
	return n
}

// FuzzReopen drives the same operations from the fuzzer's bytes (one or
// two bytes choose each op and its arguments) on the embedded store.
func FuzzReopen(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 3, 0, 2, 1})
	f.Add([]byte{0, 1, 2, 2, 2, 3, 0, 0, 0, 9, 9, 4, 4, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if storeMode != "bolt" || len(b) > 256 {
			t.Skip()
		}
		pos := 0
		exhausted := false
		choose := func(n int) int {
			if pos >= len(b) {
				exhausted = true
				return 0
			}
			v := int(b[pos]) % n
			pos++
			return v
		}
		d := newReopenDriver(t, t.TempDir(), choose)
		for !exhausted && !t.Failed() {
			d.step()
		}
		if t.Failed() {
			t.Fatalf("ops:\n%s", strings.Join(d.log, "\n"))
		}
	})
}

type reopenDriver struct {
	t      testing.TB
	dir    string
	s      *Service
	choose func(n int) int
	log    []string
	counts map[string]int

	// Producers handed out, their epochs as the driver knows them, and
	// the next sequence per partition (by topic id, so that a re-created
	// topic starts over).
	pids []int64
	pidE map[int64]int16
	seqs map[pidTP]int32
	// swapped counts compaction results that swapped entries in.
	swapped atomic.Int64
	// txnEnded counts EndTxn calls that succeeded (issue 15).
	txnEnded atomic.Int64
	// dead holds ids of deleted topics, to aim ops at them too.
	dead []meta.TopicID
	clk  *fakeClock
}

// reopenExp is the producer id expiration of the driver's service; its
// clock moves by up to half of it per expiry op.
const reopenExp = time.Hour

func newReopenDriver(t testing.TB, dir string, choose func(int) int) *reopenDriver {
	d := &reopenDriver{
		t: t, dir: dir, choose: choose,
		s:      openT(t, dir, withReopenExp),
		counts: map[string]int{},
		pidE:   map[int64]int16{},
		seqs:   map[pidTP]int32{},
		clk:    &fakeClock{t: time.Now()},
	}
	d.s.now = d.clk.now
	return d
}

// withReopenExp also sets a GC grace longer than the clock moves within
// a burst (segments are made before a burst's clock jumps): the age
// limit on commits has tests of its own.
func withReopenExp(c *Config) {
	c.ProducerIDExpiration = reopenExp
	c.GCGrace = 4 * reopenExp
	c.SegmentResultTTL = 4 * reopenExp
}

var reopenNames = []string{"a", "b", "c"}
var reopenGroups = []string{"g1", "g2"}

func (d *reopenDriver) logf(format string, args ...any) {
	d.log = append(d.log, fmt.Sprintf(format, args...))
	if len(d.log) > 400 {
		d.log = d.log[len(d.log)-400:]
	}
}

func (d *reopenDriver) summary() string {
	var b strings.Builder
	for _, k := range []string{"create", "plain", "idem", "delete", "partitions", "records", "offsets", "deloffsets", "delgroup", "pid", "bump", "fenced", "config", "expire", "retention", "swap", "burst",
		"txn", "txnmarkers"} { // transactions (issue 15)
		b.WriteString(k + "=" + strconv.Itoa(d.counts[k]) + " ")
	}
	return b.String()
}

// topics returns the live topics.
func (d *reopenDriver) topics() []meta.Topic {
	ts, err := d.s.Topics(ctxT(d.t), nil)
	if err != nil {
		d.t.Fatalf("Topics: %v", err)
	}
	return ts
}

// tp picks a partition of a live topic, or of a deleted one now and then.
func (d *reopenDriver) tp(ts []meta.Topic) (meta.TopicPartition, bool) {
	if len(d.dead) > 0 && d.choose(8) == 0 {
		return meta.TopicPartition{TopicID: d.dead[d.choose(len(d.dead))], Partition: 0}, true
	}
	if len(ts) == 0 {
		return meta.TopicPartition{}, false
	}
	t := ts[d.choose(len(ts))]
	return meta.TopicPartition{TopicID: t.ID, Partition: int32(d.choose(int(t.Partitions)))}, true
}

// step applies one op, or a burst of up to four at once, then reopens.
func (d *reopenDriver) step() {
	if d.choose(6) == 0 {
		d.counts["burst"]++
		n := 2 + d.choose(3)
		ops := make([]func(), n)
		for i := range ops {
			ops[i] = d.pick()
		}
		var wg sync.WaitGroup
		for _, op := range ops {
			wg.Add(1)
			go func() { defer wg.Done(); op() }()
		}
		wg.Wait()
	} else {
		d.pick()()
	}
	d.s = reopen(d.t, d.s, withReopenExp)
	d.s.now = d.clk.now
	checkInvariants(d.t, d.s)
	d.markers()
}

// pick chooses an op and its arguments now (so that the choices do not
// depend on goroutine order) and returns it. Ops only report errors
// that no sequence of operations may produce.
func (d *reopenDriver) pick() func() {
	t, s := d.t, d.s
	ctx := ctxT(t)
	ts := d.topics()
	switch d.choose(21) {
	case 19, 20: // transactions (issue 15): one coordinator step
		return d.pickTxn(ts)
	case 17, 18: // ACLs (issue 14): create a binding, or delete by a filter
		return d.pickACL()
	case 15, 16: // a compaction result for a run of a partition's entries
		return d.pickSwap(ts)
	case 14: // a retention check (topics get retention configs below)
		d.counts["retention"]++
		d.logf("retention")
		return func() {
			if _, err := s.EnforceRetention(ctx); err != nil {
				t.Errorf("EnforceRetention: %v", err)
			}
		}
	case 13: // time passes; idle producer ids expire
		step := time.Duration(d.choose(30)) * reopenExp / 60
		d.counts["expire"]++
		d.logf("expire after %v", step)
		return func() {
			d.clk.add(step)
			if _, err := s.ExpireProducers(ctx); err != nil {
				t.Errorf("ExpireProducers: %v", err)
			}
		}
	case 0: // create (or re-create) a topic
		name := reopenNames[d.choose(len(reopenNames))]
		n := int32(1 + d.choose(3))
		d.counts["create"]++
		d.logf("create %s %d", name, n)
		return func() {
			if _, err := s.CreateTopics(ctx, []meta.TopicSpec{{Name: name, Partitions: n}}); err != nil {
				t.Errorf("CreateTopics: %v", err)
			}
		}
	case 1, 2: // a plain segment over 1-3 partitions
		sg := newSegmentAt(d.clk.now())
		for range 1 + d.choose(3) {
			if tp, ok := d.tp(ts); ok {
				sg.add(tp.TopicID, tp.Partition, int32(1+d.choose(5)), int32(10+d.choose(100)))
			}
		}
		if len(sg.Chunks) == 0 {
			return func() {}
		}
		d.counts["plain"]++
		d.logf("plain segment %d chunks", len(sg.Chunks))
		return func() {
			if _, err := s.CommitSegment(ctx, sg.SegmentCommit); err != nil {
				t.Errorf("CommitSegment: %v", err)
			}
		}
	case 3, 4: // an idempotent segment, sometimes a retry or a stale epoch
		if len(d.pids) == 0 {
			return d.initPID(ctx)
		}
		pid := d.pids[d.choose(len(d.pids))]
		sg := newSegmentAt(d.clk.now())
		for range 1 + d.choose(2) {
			tp, ok := d.tp(ts)
			if !ok {
				break
			}
			k := pidTP{pid: pid, tp: tpKey{topic: tp.TopicID, part: tp.Partition}}
			n := int32(1 + d.choose(4))
			epoch := d.pidE[pid]
			seq := d.seqs[k]
			switch d.choose(6) {
			case 0:
				seq = max(0, seq-n) // a retry (or a gap): meta decides
			case 1:
				if epoch > 0 {
					epoch-- // fenced
					d.counts["fenced"]++
				}
			default:
				d.seqs[k] = seq + n
			}
			sg.addP(tp.TopicID, tp.Partition, n, int32(10+d.choose(50)), pid, epoch, seq)
		}
		if len(sg.Chunks) == 0 {
			return func() {}
		}
		d.counts["idem"]++
		d.logf("idempotent segment pid %d %d chunks", pid, len(sg.Chunks))
		return func() {
			if _, err := s.CommitSegment(ctx, sg.SegmentCommit); err != nil {
				t.Errorf("CommitSegment: %v", err)
			}
		}
	case 5: // delete a topic
		if len(ts) == 0 {
			return func() {}
		}
		tt := ts[d.choose(len(ts))]
		d.dead = append(d.dead, tt.ID)
		d.counts["delete"]++
		d.logf("delete %s", tt.Name)
		return func() {
			if _, err := s.DeleteTopics(ctx, []string{tt.Name}); err != nil {
				t.Errorf("DeleteTopics: %v", err)
			}
		}
	case 6: // grow a topic
		if len(ts) == 0 {
			return func() {}
		}
		tt := ts[d.choose(len(ts))]
		n := tt.Partitions + int32(1+d.choose(2))
		d.counts["partitions"]++
		d.logf("partitions %s -> %d", tt.Name, n)
		return func() {
			if _, err := s.CreatePartitions(ctx, []meta.PartitionsSpec{{Name: tt.Name, Count: n}}); err != nil {
				t.Errorf("CreatePartitions: %v", err)
			}
		}
	case 7: // delete records
		tp, ok := d.tp(ts)
		if !ok {
			return func() {}
		}
		off := int64(d.choose(12)) - 1 // -1 = everything
		d.counts["records"]++
		d.logf("delete records %s/%d below %d", tp.TopicID, tp.Partition, off)
		return func() {
			if _, err := s.DeleteRecords(ctx, []meta.DeleteRecordsSpec{{TopicPartition: tp, Offset: off}}); err != nil {
				t.Errorf("DeleteRecords: %v", err)
			}
		}
	case 8: // commit offsets (sometimes for a deleted topic)
		grp := reopenGroups[d.choose(len(reopenGroups))]
		var offs []meta.CommittedOffset
		for range 1 + d.choose(3) {
			if tp, ok := d.tp(ts); ok {
				offs = append(offs, meta.CommittedOffset{TopicPartition: tp, Offset: int64(d.choose(100)), LeaderEpoch: -1, Metadata: "m"})
			}
		}
		if len(offs) == 0 {
			return func() {}
		}
		d.counts["offsets"]++
		d.logf("commit offsets %s %d", grp, len(offs))
		return func() {
			if err := s.CommitOffsets(ctx, meta.OffsetCommitRequest{Group: grp, Generation: -1, Offsets: offs}); err != nil {
				t.Errorf("CommitOffsets: %v", err)
			}
		}
	case 9: // delete offsets
		grp := reopenGroups[d.choose(len(reopenGroups))]
		tp, ok := d.tp(ts)
		if !ok {
			return func() {}
		}
		d.counts["deloffsets"]++
		d.logf("delete offsets %s", grp)
		return func() {
			// GROUP_ID_NOT_FOUND is Kafka's answer for a group with
			// neither members nor offsets.
			if err := s.DeleteOffsets(ctx, grp, []meta.TopicPartition{tp}); err != nil && !errors.Is(err, meta.ErrGroupIDNotFound) {
				t.Errorf("DeleteOffsets: %v", err)
			}
		}
	case 10: // delete a group
		grp := reopenGroups[d.choose(len(reopenGroups))]
		d.counts["delgroup"]++
		d.logf("delete group %s", grp)
		return func() {
			// GROUP_ID_NOT_FOUND is a fine answer for a group with nothing.
			_ = s.DeleteGroup(ctx, grp)
		}
	case 11: // allocate a producer id, or bump one's epoch (fencing)
		if len(d.pids) > 0 && d.choose(2) == 0 {
			pid := d.pids[d.choose(len(d.pids))]
			epoch := d.pidE[pid]
			d.pidE[pid] = epoch + 1
			for k := range d.seqs {
				if k.pid == pid {
					delete(d.seqs, k) // a new epoch starts at sequence 0
				}
			}
			d.counts["bump"]++
			d.logf("bump pid %d epoch %d", pid, epoch)
			return func() {
				// Two bumps of one id in a burst may run in either order;
				// the later-numbered one first is refused, rightly.
				if _, err := s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: pid, ProducerEpoch: epoch}); err != nil && !errors.Is(err, meta.ErrInvalidProducerEpoch) {
					t.Errorf("InitProducerID bump: %v", err)
				}
			}
		}
		return d.initPID(ctx)
	default: // change a topic's configs
		if len(ts) == 0 {
			return func() {}
		}
		tt := ts[d.choose(len(ts))]
		// Chunks carry 1970 timestamps: any retention.ms >= 0 expires
		// them; retention.bytes keeps some.
		name := []string{"retention.ms", "retention.bytes", "retention.ms"}[d.choose(3)]
		v := strconv.Itoa(d.choose(400) - 1)
		replace := d.choose(2) == 0
		d.counts["config"]++
		d.logf("config %s %s=%s replace=%v", tt.Name, name, v, replace)
		return func() {
			err := s.AlterTopicConfigs(ctx, tt.Name, []meta.ConfigChange{{Name: name, Value: &v}}, replace)
			if err != nil && !strings.Contains(err.Error(), "unknown topic") {
				t.Errorf("AlterTopicConfigs: %v", err)
			}
		}
	}
}

// initPID allocates a producer id now: later picks need to know it.
func (d *reopenDriver) initPID(ctx context.Context) func() {
	r, err := d.s.InitProducerID(ctx, meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		d.t.Fatalf("InitProducerID: %v", err)
	}
	d.pids = append(d.pids, r.ProducerID)
	d.pidE[r.ProducerID] = r.ProducerEpoch
	d.counts["pid"]++
	d.logf("pid %d", r.ProducerID)
	return func() {}
}

// pickSwap makes a compaction result for 1-4 consecutive entries of a
// partition, as a jobs agent would: one output object whose entries
// cover exactly their offsets. Now and then the result lacks one of the
// sources (meta must refuse the run) or is sent twice (the second is
// refused). Concurrent ops of a burst may change the range first; meta
// must then refuse it and leave the index as it was.
func (d *reopenDriver) pickSwap(ts []meta.Topic) func() {
	t, s := d.t, d.s
	tp, ok := d.tp(ts)
	if !ok {
		return func() {}
	}
	snap := snapshot(s)
	es := snap.Parts[tpKey{topic: tp.TopicID, part: tp.Partition}].Entries
	if len(es) == 0 {
		return func() {}
	}
	i := d.choose(len(es))
	j := min(len(es), i+1+d.choose(4))
	run := es[i:j]
	id := newSegIDAt(d.clk.now())
	key := meta.ObjectKey(id)
	var size int64 = 24
	for _, e := range run {
		size += e.Length
	}
	size += 36
	src := map[meta.SegmentID]bool{}
	for _, e := range run {
		src[e.SegmentID] = true
	}
	if d.choose(5) == 0 {
		delete(src, run[d.choose(len(run))].SegmentID)
	}
	// One or two output entries over the run's offsets.
	first, last := run[0].BaseOffset, run[len(run)-1].LastOffset
	cut := last
	if last > first && d.choose(2) == 0 {
		cut = first + int64(d.choose(int(last-first)))
	}
	var outs []meta.IndexEntry
	pos := int64(24)
	for _, r := range [][2]int64{{first, cut}, {cut + 1, last}} {
		if r[1] < r[0] {
			continue
		}
		n := max((size-60)*(r[1]-r[0]+1)/(last-first+1), 1)
		outs = append(outs, meta.IndexEntry{TopicID: tp.TopicID, Partition: tp.Partition, BaseOffset: r[0], LastOffset: r[1],
			SegmentID: id, ObjectKey: key, ObjectSize: size, Start: pos, Length: n, MaxTimestamp: run[len(run)-1].MaxTimestamp})
		pos += n
	}
	level := int8(1 + d.choose(3))
	twice := d.choose(4) == 0
	d.counts["swap"]++
	d.logf("swap %s/%d [%d, %d] (%d entries -> %d, %d sources) level %d twice %v", tp.TopicID, tp.Partition, first, last, len(run), len(outs), len(src), level, twice)
	return func() {
		ctx := ctxT(t)
		for k := range 1 + btoi(twice) {
			o := &op{kind: opSwap, swap: &swapReq{res: meta.CompactResult{Output: id, ObjectKey: key, Size: size, Entries: outs}, sources: src, level: level}}
			if err := s.submit(ctx, o); err != nil || o.err != nil {
				t.Errorf("swap: %v %v", err, o.err)
				return
			}
			if o.swapOutcome.Swapped > 0 {
				d.swapped.Add(1)
			}
			if k > 0 && o.swapOutcome.Swapped != 0 {
				t.Errorf("a repeated compaction result swapped %d entries", o.swapOutcome.Swapped)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pickACL creates an ACL binding or deletes those a filter matches
// (issue 14): a few names, principals and both pattern types, so that
// creates repeat and filters match several.
func (d *reopenDriver) pickACL() func() {
	t, s := d.t, d.s
	ctx := ctxT(t)
	names := []string{"a", "ab", "*"}
	b := meta.ACLBinding{
		ResourceType: []meta.ResourceType{meta.ResourceTopic, meta.ResourceGroup}[d.choose(2)],
		ResourceName: names[d.choose(len(names))],
		PatternType:  []meta.PatternType{meta.PatternLiteral, meta.PatternPrefixed}[d.choose(2)],
		Principal:    []string{"User:x", "User:y"}[d.choose(2)],
		Host:         "*",
		Operation:    []meta.ACLOperation{meta.OpRead, meta.OpWrite}[d.choose(2)],
		Permission:   []meta.ACLPermission{meta.PermissionAllow, meta.PermissionDeny}[d.choose(2)],
	}
	if d.choose(3) > 0 {
		d.counts["acl"]++
		d.logf("create acl %+v", b)
		return func() {
			if errs, err := s.CreateACLs(ctx, []meta.ACLBinding{b}); err != nil || errs[0] != nil {
				t.Errorf("CreateACLs: %v %v", err, errs)
			}
		}
	}
	name := b.ResourceName
	f := meta.ACLFilter{ResourceType: meta.ResourceAny, ResourceName: &name, PatternType: meta.PatternMatch, Operation: meta.OpAny, Permission: meta.PermissionAny}
	d.counts["delacl"]++
	d.logf("delete acls matching %q", name)
	return func() {
		if res, err := s.DeleteACLs(ctx, []meta.ACLFilter{f}); err != nil || res[0].Err != nil {
			t.Errorf("DeleteACLs: %v %+v", err, res)
		}
	}
}

// Transactions (issue 15).

var reopenTxnIDs = []string{"ta", "tb"}

// pickTxn makes one step of a transactional id's life: InitProducerID
// (which fences and aborts), AddPartitionsToTxn, a transactional write
// (sometimes of a stale epoch or to a partition not added), an offset
// commit in the transaction, EndTxn commit or abort, or time passing
// beyond the timeout and the janitor's pass. The producer's id and
// epoch are read now from DescribeTransactions; a burst may change them
// first, so the coordinator's refusals (fenced, wrong state, wrong id)
// are fine answers, any other error is not.
func (d *reopenDriver) pickTxn(ts []meta.Topic) func() {
	t, s := d.t, d.s
	ctx := ctxT(t)
	id := reopenTxnIDs[d.choose(len(reopenTxnIDs))]
	ds, err := s.DescribeTransactions(ctx, []string{id})
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	p := meta.TxnProducer{TransactionalID: id, ProducerID: ds[0].ProducerID, ProducerEpoch: ds[0].ProducerEpoch}
	fine := func(what string, err error) {
		if err != nil && !errors.Is(err, meta.ErrProducerFenced) && !errors.Is(err, meta.ErrInvalidTxnState) &&
			!errors.Is(err, meta.ErrInvalidProducerIDMapping) && !errors.Is(err, meta.ErrUnknownTopicOrPartition) &&
			!errors.Is(err, meta.ErrOperationNotAttempted) {
			t.Errorf("%s: %v", what, err)
		}
	}
	d.counts["txn"]++
	tp, haveTP := d.tp(ts)
	k := d.choose(8)
	if ds[0].State != meta.TxnStateOngoing && k >= 5 {
		k = 1 // nothing to end or time out yet: start one (mostly)
	}
	switch {
	case ds[0].Err != nil || k == 0:
		d.logf("txn %s init", id)
		return func() {
			_, err := s.InitProducerID(ctx, meta.ProducerIDRequest{TransactionalID: id, ProducerID: -1, ProducerEpoch: -1, TransactionTimeoutMs: 60_000})
			fine("InitProducerID(txn)", err)
		}
	case k <= 2 && haveTP:
		d.logf("txn %s add %x/%d", id, tp.TopicID[:2], tp.Partition)
		return func() {
			errs, err := s.AddPartitionsToTxn(ctx, p, []meta.TopicPartition{tp})
			fine("AddPartitionsToTxn", err)
			for _, e := range errs {
				fine("AddPartitionsToTxn", e)
			}
		}
	case k == 3 && haveTP:
		epoch := p.ProducerEpoch - int16(d.choose(2)) // sometimes stale
		sg := newSegmentAt(d.clk.now()).addP(tp.TopicID, tp.Partition, int32(1+d.choose(3)), 50, p.ProducerID, max(epoch, 0), int32(d.choose(4)))
		sg.Chunks[0].Transactional = true
		d.logf("txn %s write %x/%d epoch %d", id, tp.TopicID[:2], tp.Partition, epoch)
		return func() {
			if _, err := s.CommitSegment(ctx, sg.SegmentCommit); err != nil {
				t.Errorf("CommitSegment(txn): %v", err)
			}
		}
	case k == 4 && haveTP:
		grp := reopenGroups[d.choose(len(reopenGroups))]
		off := int64(d.choose(100))
		d.logf("txn %s offsets %s %x/%d=%d", id, grp, tp.TopicID[:2], tp.Partition, off)
		return func() {
			fine("AddOffsetsToTxn", s.AddOffsetsToTxn(ctx, p, grp))
			errs, err := s.TxnOffsetCommit(ctx, p, meta.OffsetCommitRequest{Group: grp, Generation: -1, Offsets: []meta.CommittedOffset{{TopicPartition: tp, Offset: off}}})
			fine("TxnOffsetCommit", err)
			for _, e := range errs {
				fine("TxnOffsetCommit", e)
			}
		}
	case k == 5:
		d.logf("txn %s timeouts", id)
		return func() {
			d.clk.add(2 * time.Minute) // past the 60 s timeout
			if _, err := s.AbortTimedOutTxns(ctx); err != nil {
				t.Errorf("AbortTimedOutTxns: %v", err)
			}
		}
	default:
		commit := d.choose(2) == 0
		d.logf("txn %s end commit=%v", id, commit)
		return func() {
			err := s.EndTxn(ctx, p, commit)
			if err == nil {
				d.txnEnded.Add(1)
			}
			fine("EndTxn", err)
		}
	}
}

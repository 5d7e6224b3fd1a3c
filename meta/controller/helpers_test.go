package controller

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"log/slog"
	"maps"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/internal/pgtest"
	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// The suite runs against the store SLUICE_META_STORE names: the embedded
// bbolt file (unset or "bolt") or PostgreSQL ("postgres", the make target
// test-postgres). Tests name a store by a directory either way (openT,
// testStore); in PostgreSQL it is the cluster name, so that reopening a
// directory reopens the same data.
var storeMode = os.Getenv("SLUICE_META_STORE")

func init() {
	switch storeMode {
	case "", "bolt":
		storeMode = "bolt"
	case "postgres":
	default:
		panic("SLUICE_META_STORE=" + storeMode + ": want bolt or postgres")
	}
}

// testPG is the PostgreSQL of the suite: one database per test binary
// (pgtest), one pool, and one leadership that every store is opened
// with, so that every group also runs the leader fence as in production.
// TestMain closes it.
var testPG struct {
	mu    sync.Mutex
	pool  *pgxpool.Pool
	lease *kv.Lease
	// bubblePool, while set, replaces pool for stores opened by a test
	// running in a synctest bubble (inBubble).
	bubblePool *pgxpool.Pool
}

func testPostgres(t testing.TB) (*pgxpool.Pool, *kv.Lease) {
	t.Helper()
	testPG.mu.Lock()
	defer testPG.mu.Unlock()
	if testPG.pool == nil {
		pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		lease, err := kv.AcquireLeadership(ctxT(t), pool, "meta-test", quietLog)
		if err != nil {
			pool.Close()
			t.Fatal(err)
		}
		testPG.pool, testPG.lease = pool, lease
	}
	return testPG.pool, testPG.lease
}

func closeTestPostgres() {
	testPG.mu.Lock()
	defer testPG.mu.Unlock()
	if testPG.lease != nil {
		testPG.lease.Release()
	}
	if testPG.pool != nil {
		testPG.pool.Close()
	}
}

// testStore returns the store a test's Service in dir opens: nil (Open
// then opens the bbolt file in dir) or the PostgreSQL cluster named dir.
func testStore(t testing.TB, dir string) kv.KV {
	t.Helper()
	if storeMode != "postgres" {
		return nil
	}
	pool, lease := testPostgres(t)
	testPG.mu.Lock()
	if testPG.bubblePool != nil {
		pool = testPG.bubblePool
	}
	testPG.mu.Unlock()
	store, err := kv.OpenPostgres(ctxT(t), pool, dir, lease)
	if err != nil {
		t.Fatal(err)
	}
	return store
}

// openT opens a Service in dir. At cleanup it closes it and, unless the
// test failed, verifies the store: it reopens dir, checks the invariants
// Open checks, and compares the reopened state with the in-memory state
// the service had just before Close (a restart gives exactly the
// committed state).
func openT(t testing.TB, dir string, mods ...func(*Config)) *Service {
	t.Helper()
	cfg := Config{Dir: dir, Logger: quietLog, noJanitors: true}
	for _, m := range mods {
		m(&cfg)
	}
	if cfg.Store == nil {
		cfg.Store = testStore(t, dir)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if s.closed.Load() {
			return // the test closed it and checks for itself
		}
		before := snapshot(s)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			return
		}
		s2, err := Open(Config{Dir: dir, Store: testStore(t, dir), Logger: quietLog, noJanitors: true})
		if err != nil {
			t.Errorf("verify: reopen: %v", err)
			return
		}
		defer s2.Close()
		if after := snapshot(s2); !reflect.DeepEqual(before, after) {
			t.Errorf("verify: state after reopen differs:\nbefore %+v\nafter  %+v", before, after)
		}
	})
	return s
}

// reopen closes s and opens its directory again, checking that the
// state survived exactly.
func reopen(t testing.TB, s *Service, mods ...func(*Config)) *Service {
	t.Helper()
	before := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := openT(t, s.cfg.Dir, mods...)
	if after := snapshot(s2); !reflect.DeepEqual(before, after) {
		t.Fatalf("state after reopen differs:\nbefore %+v\nafter  %+v", before, after)
	}
	return s2
}

// stateSnap is a deep copy of a Service's state, for comparisons.
type stateSnap struct {
	ClusterID string
	NextPID   int64
	Topics    []meta.Topic
	Parts     map[tpKey]partSnap
	Epochs    map[int64]int16
	ProdParts map[pidTP]prodPart
	Segs      map[meta.SegmentID][]byte
	SegOrder  []segKey
	Offsets   map[string]map[meta.TopicPartition]meta.CommittedOffset
	PIDUse    map[int64]int64
	// Objects: the live objects (dead ones are not kept across a
	// restart: the orphan pass finds them).
	Objects map[meta.SegmentID]objSnap
	// ACLs: the ACL bindings by key (issue 14).
	ACLs map[string]meta.ACLBinding
	// SASL (issue 14): SCRAM credentials.
	Scram map[scramKey]meta.ScramCredential
	// Transactions (issue 15): coordinator state, the derived open
	// first offsets and the aborted index.
	Txns     map[string]txnState
	OpenTxns map[tpKey]map[int64]int64
	Aborted  map[tpKey][]meta.AbortedTxn
}

type objSnap struct {
	Key   string
	Size  int64
	Level int8
	Refs  int32
	Live  int64
}

type partSnap struct {
	LogStart, Next int64
	CleanEnd       int64
	Entries        []meta.IndexEntry
}

func snapshot(s *Service) stateSnap {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	sn := stateSnap{
		ClusterID: st.clusterID,
		NextPID:   st.nextPID,
		Parts:     make(map[tpKey]partSnap),
		Epochs:    make(map[int64]int16),
		ProdParts: make(map[pidTP]prodPart),
		Segs:      make(map[meta.SegmentID][]byte),
		Offsets:   make(map[string]map[meta.TopicPartition]meta.CommittedOffset),
	}
	sn.PIDUse = maps.Clone(st.pidUse)
	sn.ACLs = maps.Clone(st.acls)
	for g, m := range st.offsets {
		sn.Offsets[g] = maps.Clone(m)
	}
	if st.segLen() > 0 {
		sn.SegOrder = slices.Clone(st.segOrder[st.segHead:])
	}
	for _, name := range st.names {
		t := st.topicsByName[name]
		sn.Topics = append(sn.Topics, copyTopic(t.topic))
		for _, ps := range t.parts {
			sn.Parts[ps.tp] = partSnap{
				LogStart: ps.logStart,
				CleanEnd: ps.cleanEnd,
				Next:     ps.next,
				Entries:  ps.entries.copyRange(nil, 0, ps.entries.len()),
			}
		}
	}
	for k, v := range st.epochs {
		sn.Epochs[k] = v
	}
	for k, v := range st.prodParts {
		sn.ProdParts[k] = v
	}
	for k, v := range st.segs {
		sn.Segs[k] = slices.Clone(v)
	}
	sn.Scram = make(map[scramKey]meta.ScramCredential)
	for k, c := range st.scram {
		sn.Scram[k] = *c
	}
	// Transactions (issue 15)
	sn.Txns = make(map[string]txnState)
	for id, t := range st.txns {
		sn.Txns[id] = *t.clone()
	}
	sn.OpenTxns = make(map[tpKey]map[int64]int64)
	for tp, m := range st.openTxns {
		sn.OpenTxns[tp] = maps.Clone(m)
	}
	sn.Aborted = make(map[tpKey][]meta.AbortedTxn)
	for tp, as := range st.aborted {
		sn.Aborted[tp] = slices.Clone(as)
	}
	sn.Objects = make(map[meta.SegmentID]objSnap)
	for id, ob := range st.objs.byID {
		if ob.refs > 0 {
			sn.Objects[id] = objSnap{Key: ob.key, Size: ob.size, Level: ob.level, Refs: ob.refs, Live: ob.live}
		}
	}
	return sn
}

// checkInvariants checks invariant 3 of doc.go on the live state.
func checkInvariants(t testing.TB, s *Service) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.st.verify(); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func createTopic(t testing.TB, s *Service, name string, parts int32) meta.Topic {
	t.Helper()
	res, err := s.CreateTopics(ctxT(t), []meta.TopicSpec{{Name: name, Partitions: parts}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("CreateTopics %s: %v", name, res[0].Err)
	}
	return res[0].Topic
}

var segCounter atomic.Uint64

// newSegIDAt makes an id at t: tests whose committer runs on a fake clock
// make ids on that clock, as an agent's ids follow real time (meta
// refuses ids older than half the GC grace).
func newSegIDAt(t time.Time) meta.SegmentID {
	var id meta.SegmentID
	binary.BigEndian.PutUint64(id[:8], uint64(t.UnixNano())+segCounter.Add(1))
	rand.Read(id[8:])
	return id
}

// segment builds a SegmentCommit whose chunks are laid out back to back
// in the object.
type segment struct {
	meta.SegmentCommit
	pos int64
}

func newSegment() *segment { return newSegmentAt(time.Now()) }

func newSegmentAt(t time.Time) *segment {
	id := newSegIDAt(t)
	return &segment{SegmentCommit: meta.SegmentCommit{SegmentID: id, ObjectKey: "segments/" + id.String(), AgentID: "agent-1"}}
}

// add appends a chunk of n records and size bytes.
func (sg *segment) add(tp meta.TopicID, part int32, n int32, size int32) *segment {
	return sg.addP(tp, part, n, size, -1, 0, 0)
}

// addP appends a chunk of an idempotent producer.
func (sg *segment) addP(tp meta.TopicID, part int32, n, size int32, pid int64, epoch int16, seq int32) *segment {
	sg.Chunks = append(sg.Chunks, meta.Chunk{
		TopicID: tp, Partition: part, Start: sg.pos, Length: size, RecordCount: n,
		FirstTimestamp: 1000, MaxTimestamp: 1000 + int64(len(sg.Chunks)),
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
	})
	sg.pos += int64(size)
	sg.Size = sg.pos
	return sg
}

// gap leaves n bytes between the previous chunk and the next one.
func (sg *segment) gap(n int64) *segment {
	sg.pos += n
	sg.Size = sg.pos
	return sg
}

func commit(t testing.TB, s *Service, sg *segment) meta.CommitResult {
	t.Helper()
	r, err := s.CommitSegment(ctxT(t), sg.SegmentCommit)
	if err != nil {
		t.Fatalf("CommitSegment: %v", err)
	}
	if len(r.Chunks) != len(sg.Chunks) {
		t.Fatalf("CommitSegment: %d results for %d chunks", len(r.Chunks), len(sg.Chunks))
	}
	return r
}

func hwm(t testing.TB, s *Service, id meta.TopicID, part int32) int64 {
	t.Helper()
	st, err := s.PartitionStates(ctxT(t), []meta.TopicPartition{{TopicID: id, Partition: part}})
	if err != nil || st[0].Err != nil {
		t.Fatalf("PartitionStates: %v %v", err, st[0].Err)
	}
	return st[0].HighWatermark
}

// allEntries returns a partition's whole index through Lookup.
func allEntries(t testing.TB, s *Service, id meta.TopicID, part int32) []meta.IndexEntry {
	t.Helper()
	tp := meta.TopicPartition{TopicID: id, Partition: part}
	var out []meta.IndexEntry
	var off int64
	for {
		r, err := s.Lookup(ctxT(t), tp, off, 7)
		if err != nil {
			t.Fatalf("Lookup %d: %v", off, err)
		}
		if len(r.Entries) == 0 {
			if off != r.HighWatermark {
				t.Fatalf("Lookup %d: no entries below high watermark %d", off, r.HighWatermark)
			}
			return out
		}
		out = append(out, r.Entries...)
		off = r.Entries[len(r.Entries)-1].LastOffset + 1
	}
}

// setWriteHook installs fn in every group's transaction until cleanup.
func setWriteHook(t testing.TB, s *Service, fn func() error) {
	s.writeHook.Store(&fn)
	t.Cleanup(func() { s.writeHook.Store(nil) })
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// newGate returns a channel and the function that closes it; cleanup
// closes it too, so that a test failing while a hook waits on it does
// not leave the committer stuck (Close would hang).
func newGate(t testing.TB) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

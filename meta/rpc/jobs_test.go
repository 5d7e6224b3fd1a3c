package rpc

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"sluice.dev/meta"
	"sluice.dev/meta/controller"
	pb "sluice.dev/meta/metapb"
)

// fakeJobs is a cluster's service as the jobs RPCs see it: a meta.Client
// (only Watch is served; the embedded nil Client stands for the rest) and
// a meta.JobsClient that records what it was called with and answers
// what the test set. The tests compare both ends with reflect.DeepEqual
// on values whose every field is set, so a field the wire forgets fails.
type fakeJobs struct {
	meta.Client

	mu sync.Mutex
	// answers
	job      meta.Job
	jobOK    bool
	outcome  meta.CompactOutcome
	orphans  []string
	err      error // every method answers it
	failOnce error // answered by the next call only, then cleared
	events   chan []meta.CommitEvent
	// calls
	calls      int
	agentID    string
	kinds      []meta.JobKind
	compacted  meta.CompactResult
	deleted    meta.DeleteResult
	checkJob   uint64
	checkKeys  []string
	orphanRes  meta.OrphansResult
	abandonJob uint64
	abandonWhy string
}

var _ meta.JobsClient = (*fakeJobs)(nil)

// enter counts a call and returns the error it must answer.
func (f *fakeJobs) enter() error {
	f.calls++
	if err := f.failOnce; err != nil {
		f.failOnce = nil
		return err
	}
	return f.err
}

func (f *fakeJobs) AcquireJob(_ context.Context, agentID string, kinds []meta.JobKind) (meta.Job, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return meta.Job{}, false, err
	}
	f.agentID, f.kinds = agentID, kinds
	return f.job, f.jobOK, nil
}

func (f *fakeJobs) CompleteCompaction(_ context.Context, r meta.CompactResult) (meta.CompactOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return meta.CompactOutcome{}, err
	}
	f.compacted = r
	return f.outcome, nil
}

func (f *fakeJobs) CompleteDelete(_ context.Context, r meta.DeleteResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = r
	return f.enter()
}

func (f *fakeJobs) CheckOrphans(_ context.Context, jobID uint64, keys []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter(); err != nil {
		return nil, err
	}
	f.checkJob, f.checkKeys = jobID, keys
	return f.orphans, nil
}

func (f *fakeJobs) CompleteOrphans(_ context.Context, r meta.OrphansResult) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orphanRes = r
	return f.enter()
}

func (f *fakeJobs) AbandonJob(_ context.Context, jobID uint64, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.abandonJob, f.abandonWhy = jobID, reason
	return f.enter()
}

func (f *fakeJobs) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	return f.events, nil
}

func (f *fakeJobs) set(fn func(*fakeJobs)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeJobs) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// plainClient hides the fake's JobsClient: a cluster whose service does
// not run jobs.
type plainClient struct{ meta.Client }

// jobsEnv serves fake behind key testKey of cluster "c1" and returns a
// client of it.
func jobsEnv(t testing.TB, fake meta.Client) (*testBackend, string, *Client) {
	t.Helper()
	b := newBackend()
	b.cluster["c1"] = fake
	b.addKey(testKey, "c1")
	_, addr := serve(t, b, "")
	return b, addr, dialT(t, ClientConfig{Addrs: []string{addr}, Key: testKey})
}

// allSet fails for any zero field, nil pointer, or empty slice or map in
// v (walked recursively), except the pointer fields named in nilOK: it
// keeps the test values complete when a field is added to a type.
func allSet(t testing.TB, what string, v any, nilOK ...string) {
	t.Helper()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				for _, n := range nilOK {
					if strings.HasSuffix(path, "."+n) {
						return
					}
				}
				t.Errorf("%s%s is nil: set it so the round trip checks it", what, path)
				return
			}
			walk(path, v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				walk(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		case reflect.Slice, reflect.Map:
			if v.Len() == 0 {
				t.Errorf("%s%s is empty: set it so the round trip checks it", what, path)
			}
			if v.Kind() == reflect.Slice {
				for i := range v.Len() {
					walk(fmt.Sprintf("%s[%d]", path, i), v.Index(i))
				}
			}
		default:
			if v.IsZero() {
				t.Errorf("%s%s is zero: set it so the round trip checks it", what, path)
			}
		}
	}
	walk("", reflect.ValueOf(v))
}

func testEntry(n int64) meta.IndexEntry {
	return meta.IndexEntry{TopicID: meta.TopicID{1, 2, byte(n)}, Partition: int32(n) + 3, BaseOffset: 100 * n, LastOffset: 100*n + 99,
		SegmentID: meta.SegmentID{9, byte(n)}, ObjectKey: fmt.Sprintf("objects/%02d/k%d.seg", n, n), ObjectSize: 1 << 20,
		Start: 4096 * n, Length: 4000 + n, MaxTimestamp: 1_700_000_000_000 + n,
		// Transactions (issue 15): the marker fields, so that the round
		// trip checks them (a real entry has either an object or these).
		Control: meta.ControlCommit, ProducerID: 7000 + n, ProducerEpoch: int16(n)}
}

// testJobs returns one job of each kind, every field set.
func testJobs(t testing.TB) []meta.Job {
	jobs := []meta.Job{
		{ID: 11, Kind: meta.JobCompact, LeaseTTL: 90 * time.Second, Compact: &meta.CompactJob{Level: -2, Output: meta.SegmentID{7, 7, 7},
			MaxEntryBytes: 1 << 20, Sources: []meta.IndexEntry{testEntry(1), testEntry(2), testEntry(3)}}},
		{ID: 13, Kind: meta.JobCleanKeys, LeaseTTL: 30 * time.Second, Compact: &meta.CompactJob{Level: meta.LevelCleaned, Output: meta.SegmentID{8, 8},
			MaxEntryBytes: 1 << 20, Sources: []meta.IndexEntry{testEntry(6)}, Clean: &meta.CleanSpec{DirtyStart: 17, TombstoneHorizon: 1_700_000_000_000,
				Aborted: []meta.AbortedTxn{{ProducerID: 5, FirstOffset: 20, LastOffset: 30}, {ProducerID: 6, FirstOffset: 21, LastOffset: 31}},
				KeyEnd:  40, KeySources: []meta.IndexEntry{testEntry(7)}, FromLogStart: true}}},
		{ID: 12, Kind: meta.JobDelete, LeaseTTL: time.Minute, Delete: &meta.DeleteJob{Objects: []meta.ObjectRef{
			{ID: meta.SegmentID{1}, Key: "objects/01/a.seg", Size: 123}, {ID: meta.SegmentID{2, 2}, Key: "objects/02/b.seg", Size: 456}}}},
		{ID: 1<<63 + 5, Kind: meta.JobOrphans, LeaseTTL: 5 * time.Minute, Orphans: &meta.OrphansJob{Prefix: "objects/", MinAge: 10 * time.Minute}},
	}
	for _, j := range jobs {
		allSet(t, fmt.Sprintf("%s job", j.Kind), j, "Compact", "Delete", "Orphans", "Clean")
	}
	return jobs
}

// TestJobsRoundTrip calls every meta.JobsClient method through a real
// gRPC server and compares what the service got and what the agent got
// with what was sent, field for field.
func TestJobsRoundTrip(t *testing.T) {
	fake := &fakeJobs{}
	_, _, rc := jobsEnv(t, fake)
	ctx := ctxT(t, 30*time.Second)

	kinds := []meta.JobKind{meta.JobCompact, meta.JobDelete, meta.JobOrphans, meta.JobCleanKeys}
	for _, want := range testJobs(t) {
		fake.set(func(f *fakeJobs) { f.job, f.jobOK = want, true })
		got, ok, err := rc.AcquireJob(ctx, "agent-7", kinds)
		if err != nil || !ok {
			t.Fatalf("AcquireJob %s: ok %v, %v", want.Kind, ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("AcquireJob %s:\ngot  %+v\nwant %+v", want.Kind, got, want)
		}
		if fake.agentID != "agent-7" || !reflect.DeepEqual(fake.kinds, kinds) {
			t.Errorf("AcquireJob reached meta as %q %v", fake.agentID, fake.kinds)
		}
	}
	// None due.
	fake.set(func(f *fakeJobs) { f.job, f.jobOK = meta.Job{}, false })
	if got, ok, err := rc.AcquireJob(ctx, "agent-7", kinds[:1]); err != nil || ok || !reflect.DeepEqual(got, meta.Job{}) {
		t.Errorf("AcquireJob with none due: %+v %v %v", got, ok, err)
	}

	res := meta.CompactResult{JobID: 11, Output: meta.SegmentID{7, 7, 7}, ObjectKey: "objects/aa/out.seg", Size: 64 << 20,
		Entries: []meta.IndexEntry{testEntry(4), testEntry(5)}, BytesRead: 70 << 20, CleanedUpTo: 99, Unchanged: true}
	allSet(t, "CompactResult", res)
	outcome := meta.CompactOutcome{Swapped: 2, Refused: 1}
	allSet(t, "CompactOutcome", outcome)
	fake.set(func(f *fakeJobs) { f.outcome = outcome })
	gotOut, err := rc.CompleteCompaction(ctx, res)
	if err != nil || !reflect.DeepEqual(gotOut, outcome) {
		t.Errorf("CompleteCompaction: %+v %v, want %+v", gotOut, err, outcome)
	}
	if !reflect.DeepEqual(fake.compacted, res) {
		t.Errorf("CompleteCompaction reached meta as\n%+v\nwant %+v", fake.compacted, res)
	}

	del := meta.DeleteResult{JobID: 12, Deleted: []meta.SegmentID{{1}, {2, 2}}}
	allSet(t, "DeleteResult", del)
	if err := rc.CompleteDelete(ctx, del); err != nil || !reflect.DeepEqual(fake.deleted, del) {
		t.Errorf("CompleteDelete: %v; reached meta as %+v", err, fake.deleted)
	}

	offered := []string{"objects/01/a.seg", "objects/02/b.seg", "not-an-object"}
	fake.set(func(f *fakeJobs) { f.orphans = offered[1:2] })
	orphans, err := rc.CheckOrphans(ctx, 13, offered)
	if err != nil || !reflect.DeepEqual(orphans, offered[1:2]) {
		t.Errorf("CheckOrphans: %q %v", orphans, err)
	}
	if fake.checkJob != 13 || !reflect.DeepEqual(fake.checkKeys, offered) {
		t.Errorf("CheckOrphans reached meta as %d %q", fake.checkJob, fake.checkKeys)
	}
	fake.set(func(f *fakeJobs) { f.orphans = nil })
	if orphans, err := rc.CheckOrphans(ctx, 13, offered); err != nil || orphans != nil {
		t.Errorf("CheckOrphans with none: %q %v", orphans, err)
	}

	or := meta.OrphansResult{JobID: 13, Listed: 1000, Deleted: 3, DeletedBytes: 3 << 20}
	allSet(t, "OrphansResult", or)
	if err := rc.CompleteOrphans(ctx, or); err != nil || !reflect.DeepEqual(fake.orphanRes, or) {
		t.Errorf("CompleteOrphans: %v; reached meta as %+v", err, fake.orphanRes)
	}

	if err := rc.AbandonJob(ctx, 14, "agent stopping"); err != nil || fake.abandonJob != 14 || fake.abandonWhy != "agent stopping" {
		t.Errorf("AbandonJob: %v; reached meta as %d %q", err, fake.abandonJob, fake.abandonWhy)
	}
}

// TestJobsErrors: meta's errors come back from every jobs call with
// errors.Is intact and meta's message, and only "not leader" is retried.
func TestJobsErrors(t *testing.T) {
	fake := &fakeJobs{}
	_, _, rc := jobsEnv(t, fake)
	ctx := ctxT(t, 30*time.Second)
	calls := jobCalls(rc)
	for _, sentinel := range []error{meta.ErrJobLost, meta.ErrSegmentExpired, meta.ErrInvalidRequest} {
		want := fmt.Errorf("%w: job 42 (detail)", sentinel)
		fake.set(func(f *fakeJobs) { f.err = want })
		for name, call := range calls {
			before := fake.callCount()
			err := call(ctx)
			if !errors.Is(err, sentinel) || err.Error() != want.Error() {
				t.Errorf("%s answering %v: got %v", name, want, err)
			}
			if n := fake.callCount() - before; n != 1 {
				t.Errorf("%s answering %v reached meta %d times, want once", name, want, n)
			}
		}
	}
	// A "not leader" answered in band is retried (each jobs call is safe
	// to repeat), and the retry's answer is the call's.
	fake.set(func(f *fakeJobs) { f.err = nil; f.job, f.jobOK = testJobs(t)[2], true })
	for name, call := range calls {
		fake.set(func(f *fakeJobs) { f.failOnce = fmt.Errorf("%w: lease lost under it", meta.ErrNotLeader) })
		before := fake.callCount()
		if err := call(ctx); err != nil {
			t.Errorf("%s after one not-leader answer: %v", name, err)
		}
		if n := fake.callCount() - before; n != 2 {
			t.Errorf("%s reached meta %d times, want 2 (not leader, then the retry)", name, n)
		}
	}
}

// jobCalls calls each jobs method of c with valid arguments.
func jobCalls(c meta.JobsClient) map[string]func(context.Context) error {
	return map[string]func(context.Context) error{
		"AcquireJob": func(ctx context.Context) error {
			_, _, err := c.AcquireJob(ctx, "a", []meta.JobKind{meta.JobOrphans})
			return err
		},
		"CompleteCompaction": func(ctx context.Context) error {
			_, err := c.CompleteCompaction(ctx, meta.CompactResult{JobID: 1, Output: meta.SegmentID{1}, Entries: []meta.IndexEntry{testEntry(1)}})
			return err
		},
		"CompleteDelete": func(ctx context.Context) error {
			return c.CompleteDelete(ctx, meta.DeleteResult{JobID: 1, Deleted: []meta.SegmentID{{1}}})
		},
		"CheckOrphans": func(ctx context.Context) error {
			_, err := c.CheckOrphans(ctx, 1, []string{"k"})
			return err
		},
		"CompleteOrphans": func(ctx context.Context) error {
			return c.CompleteOrphans(ctx, meta.OrphansResult{JobID: 1})
		},
		"AbandonJob": func(ctx context.Context) error { return c.AbandonJob(ctx, 1, "why") },
	}
}

// TestJobsUnimplemented: a cluster whose service is no meta.JobsClient
// answers every jobs call UNIMPLEMENTED, which the agent sees as
// meta.ErrUnsupported and does not retry.
func TestJobsUnimplemented(t *testing.T) {
	fake := &fakeJobs{}
	_, addr, rc := jobsEnv(t, plainClient{fake})
	ctx := ctxT(t, 30*time.Second)
	for name, call := range jobCalls(rc) {
		err := call(ctx)
		if !errors.Is(err, meta.ErrUnsupported) || errors.Is(err, meta.ErrUnavailable) || !strings.Contains(err.Error(), "does not run background jobs") {
			t.Errorf("%s of a cluster without jobs: %v", name, err)
		}
	}
	if n := fake.callCount(); n != 0 {
		t.Errorf("the hidden JobsClient was called %d times", n)
	}
	mc := pb.NewMetaClient(rawConn(t, addr))
	if _, err := mc.AbandonJob(withAuth(ctx, "Bearer "+testKey), &pb.AbandonJobRequest{JobId: 1}); status.Code(err) != codes.Unimplemented {
		t.Errorf("AbandonJob status: %v", err)
	}
}

// TestJobsNeedAnAgentKey: the jobs calls are agent calls: without a key,
// with a wrong key, and with a key revoked through the Admin API they are
// refused as unauthenticated before meta's service sees them.
func TestJobsNeedAnAgentKey(t *testing.T) {
	fake := &fakeJobs{jobOK: true}
	fake.job = testJobs(t)[2]
	b, addr, _ := jobsEnv(t, fake)
	ctx := ctxT(t, 30*time.Second)

	wrong := dialT(t, ClientConfig{Addrs: []string{addr}, Key: "not-a-key"})
	for name, call := range jobCalls(wrong) {
		if err := call(ctx); !errors.Is(err, meta.ErrUnauthenticated) || errors.Is(err, meta.ErrUnavailable) {
			t.Errorf("%s with a wrong key: %v", name, err)
		}
	}
	mc := pb.NewMetaClient(rawConn(t, addr))
	if _, err := mc.AcquireJob(ctx, &pb.AcquireJobRequest{Kinds: []pb.JobKind{pb.JobKind_JOB_ORPHANS}}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("AcquireJob without a key: %v", err)
	}
	if _, err := mc.CompleteCompaction(withAuth(ctx, "Bearer "+b.token), &pb.CompleteCompactionRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("CompleteCompaction with the admin token: %v", err)
	}
	if n := fake.callCount(); n != 0 {
		t.Fatalf("meta's service was called %d times without a valid key", n)
	}

	admin, err := DialAdmin(addr, b.token, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	key, info, err := admin.CreateKey(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	rc := dialT(t, ClientConfig{Addrs: []string{addr}, Key: key})
	calls := jobCalls(rc)
	for name, call := range calls {
		if err := call(ctx); err != nil {
			t.Fatalf("%s with a new key: %v", name, err)
		}
	}
	if err := admin.RevokeKey(ctx, "c1", info.ID); err != nil {
		t.Fatal(err)
	}
	before := fake.callCount()
	for name, call := range calls {
		if err := call(ctx); !errors.Is(err, meta.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("%s with a revoked key: %v", name, err)
		}
	}
	if n := fake.callCount() - before; n != 0 {
		t.Errorf("meta's service was called %d times with a revoked key", n)
	}
}

// TestWatchCarriesSwap: a commit event with every field set, Swap
// included, arrives over Watch as the service sent it.
func TestWatchCarriesSwap(t *testing.T) {
	fake := &fakeJobs{events: make(chan []meta.CommitEvent, 1)}
	_, _, rc := jobsEnv(t, fake)
	ctx := ctxT(t, 30*time.Second)
	ch, err := rc.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	swap := meta.CommitEvent{Entry: testEntry(6), HighWatermark: 1000, LogStartOffset: 10, Trim: true, Swap: true,
		// read_committed from the agent's index cache (issue 15/13).
		Stable: meta.StableState{Known: true, LastStableOffset: 990, LastAbortOffset: 980}, AbortFirstOffset: 970}
	// An ACL change (issue 14) is an event of its own, with no entry:
	// every field is checked across the two.
	acls := meta.CommitEvent{ACLs: true}
	all := swap
	all.ACLs = true
	allSet(t, "CommitEvent", all)
	plain := meta.CommitEvent{Entry: testEntry(7), HighWatermark: 1001, LogStartOffset: 10}
	want := []meta.CommitEvent{swap, acls, plain}
	fake.events <- want
	if got := recvT(t, ch, "swap"); !reflect.DeepEqual(got, want) {
		t.Errorf("Watch:\ngot  %+v\nwant %+v", got, want)
	}
}

// TestJobsMalformed: what the Client never sends is refused as an
// invalid request before meta's service sees it, and an answer that
// breaks meta.Job's promise is refused by the client, not acted on.
func TestJobsMalformed(t *testing.T) {
	fake := &fakeJobs{}
	_, addr, rc := jobsEnv(t, fake)
	ctx := withAuth(ctxT(t, 30*time.Second), "Bearer "+testKey)
	mc := pb.NewMetaClient(rawConn(t, addr))
	id16 := make([]byte, 16)
	entry := encEntry(testEntry(1))
	bad := map[string]func() (*pb.Error, error){
		"CompleteCompaction 15-byte output": func() (*pb.Error, error) {
			r, err := mc.CompleteCompaction(ctx, &pb.CompleteCompactionRequest{JobId: 1, Output: id16[:15], Entries: []*pb.IndexEntry{entry}})
			return r.GetError(), err
		},
		"CompleteCompaction no output": func() (*pb.Error, error) {
			r, err := mc.CompleteCompaction(ctx, &pb.CompleteCompactionRequest{JobId: 1, Entries: []*pb.IndexEntry{entry}})
			return r.GetError(), err
		},
		"CompleteCompaction entry with a 3-byte topic id": func() (*pb.Error, error) {
			r, err := mc.CompleteCompaction(ctx, &pb.CompleteCompactionRequest{JobId: 1, Output: id16,
				Entries: []*pb.IndexEntry{{TopicId: []byte{1, 2, 3}, SegmentId: id16}}})
			return r.GetError(), err
		},
		"CompleteCompaction nil entry": func() (*pb.Error, error) {
			r, err := mc.CompleteCompaction(ctx, &pb.CompleteCompactionRequest{JobId: 1, Output: id16, Entries: []*pb.IndexEntry{entry, nil}})
			return r.GetError(), err
		},
		"CompleteDelete 17-byte id": func() (*pb.Error, error) {
			r, err := mc.CompleteDelete(ctx, &pb.CompleteDeleteRequest{JobId: 1, Deleted: [][]byte{id16, make([]byte, 17)}})
			return r.GetError(), err
		},
	}
	for name, call := range bad {
		perr, err := call()
		if err != nil {
			t.Errorf("%s: RPC failed: %v", name, err)
			continue
		}
		if perr.GetCode() != pb.ErrorCode_ERR_INVALID_REQUEST {
			t.Errorf("%s: answered %v, want ERR_INVALID_REQUEST", name, perr)
		}
	}
	if n := fake.callCount(); n != 0 {
		t.Fatalf("meta's service saw %d malformed requests", n)
	}

	// Kinds reach the service as sent, known or not, so that it answers
	// them as it would in process; a value that does not fit meta.JobKind
	// is refused here.
	fake.set(func(f *fakeJobs) { f.job, f.jobOK = testJobs(t)[1], true })
	r, err := mc.AcquireJob(ctx, &pb.AcquireJobRequest{AgentId: "a", Kinds: []pb.JobKind{99, pb.JobKind_JOB_DELETE, pb.JobKind_JOB_NONE}})
	if err != nil || !r.Ok || r.Error != nil || !reflect.DeepEqual(fake.kinds, []meta.JobKind{99, meta.JobDelete, 0}) {
		t.Errorf("AcquireJob with unknown kinds: %v %v; reached meta with %v", r, err, fake.kinds)
	}
	before := fake.callCount()
	r, err = mc.AcquireJob(ctx, &pb.AcquireJobRequest{AgentId: "a", Kinds: []pb.JobKind{pb.JobKind_JOB_DELETE, 300}})
	if err != nil || r.Ok || r.GetError().GetCode() != pb.ErrorCode_ERR_INVALID_REQUEST || fake.callCount() != before {
		t.Errorf("AcquireJob with kind 300: %v %v (service calls %d)", r, err, fake.callCount()-before)
	}

	// Answers that break meta.Job's promise: the agent refuses them as
	// malformed (not retried, not unavailable) instead of doing work.
	for name, job := range map[string]meta.Job{
		"kind without its part":  {ID: 1, Kind: meta.JobCompact, Delete: &meta.DeleteJob{}},
		"no kind":                {ID: 2, Orphans: &meta.OrphansJob{Prefix: "p"}},
		"unknown kind":           {ID: 3, Kind: 9},
		"nil part of right kind": {ID: 5, Kind: meta.JobOrphans},
	} {
		fake.set(func(f *fakeJobs) { f.job, f.jobOK = job, true })
		before := fake.callCount()
		_, ok, err := rc.AcquireJob(ctxT(t, 30*time.Second), "a", []meta.JobKind{meta.JobCompact})
		if err == nil || ok || !strings.Contains(err.Error(), "malformed answer") || errors.Is(err, meta.ErrUnavailable) {
			t.Errorf("AcquireJob answered a job with %s: ok %v, %v", name, ok, err)
		}
		if n := fake.callCount() - before; n != 1 {
			t.Errorf("AcquireJob answered a job with %s: asked meta %d times", name, n)
		}
	}
	// A level that does not fit meta's int8 cannot be sent from Go; the
	// decoder refuses it from a meta of another build.
	var d decoder
	d.job(&pb.Job{Id: 6, Kind: pb.JobKind_JOB_COMPACT, Work: &pb.Job_Compact{Compact: &pb.CompactJob{Level: 300, Output: id16}}})
	if d.err == nil || !strings.Contains(d.err.Error(), "8 bits") {
		t.Errorf("compaction level 300 decoded: %v", d.err)
	}
}

// TestJobsFailover: a jobs call that meets a standby (it refuses with
// "not leader" before any service runs) moves to the next replica, as
// every other call does.
func TestJobsFailover(t *testing.T) {
	fake := &fakeJobs{jobOK: true}
	fake.job = testJobs(t)[0]
	_, addr, _ := jobsEnv(t, fake)
	standby := newBackend()
	standby.down = true
	_, sAddr := serve(t, standby, "")
	rc := dialT(t, ClientConfig{Addrs: []string{sAddr, addr}, Key: testKey})
	ctx := ctxT(t, 30*time.Second)
	for name, call := range jobCalls(rc) {
		if err := call(ctx); err != nil {
			t.Errorf("%s with a standby first: %v", name, err)
		}
	}
	if got, ok, err := rc.AcquireJob(ctx, "a", []meta.JobKind{meta.JobCompact}); err != nil || !ok || !reflect.DeepEqual(got, fake.job) {
		t.Errorf("AcquireJob after failover: %+v %v %v", got, ok, err)
	}
}

// TestJobsWithService runs the jobs calls against the control plane's
// own Service through gRPC: its answers, errors included, are the same
// over the network as in process, and an orphan pass goes through its
// whole lease (acquire, check, complete) over the wire.
func TestJobsWithService(t *testing.T) {
	const grace = 4 * time.Second // the smallest --gc-grace meta accepts
	svc, err := controller.Open(controller.Config{Dir: t.TempDir(), Logger: quietLog, GCGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	_, _, rc := jobsEnv(t, svc)
	ctx := ctxT(t, 60*time.Second)

	// Refusals and "lost" answers, over gRPC and in process.
	all := []meta.JobKind{meta.JobCompact, meta.JobDelete}
	for _, c := range []struct {
		agent string
		kinds []meta.JobKind
	}{{"agent-1", all}, {"", all}, {"agent-1", []meta.JobKind{meta.JobDelete, 99}}} {
		job, ok, err := rc.AcquireJob(ctx, c.agent, c.kinds)
		djob, dok, derr := svc.AcquireJob(ctx, c.agent, c.kinds)
		same(t, fmt.Sprintf("AcquireJob(%q, %v)", c.agent, c.kinds), []any{job, ok, err}, []any{djob, dok, derr})
	}
	const unknown = 12345
	out, err := rc.CompleteCompaction(ctx, meta.CompactResult{JobID: unknown, Output: newSegID(), Entries: []meta.IndexEntry{testEntry(1)}})
	dout, derr := svc.CompleteCompaction(ctx, meta.CompactResult{JobID: unknown, Output: newSegID(), Entries: []meta.IndexEntry{testEntry(1)}})
	same(t, "CompleteCompaction of an unknown job", []any{out, err}, []any{dout, derr})
	keys, err := rc.CheckOrphans(ctx, unknown, []string{"k"})
	dkeys, derr := svc.CheckOrphans(ctx, unknown, []string{"k"})
	same(t, "CheckOrphans of an unknown job", []any{keys, err}, []any{dkeys, derr})
	same(t, "CompleteDelete of an unknown job", rc.CompleteDelete(ctx, meta.DeleteResult{JobID: unknown}),
		svc.CompleteDelete(ctx, meta.DeleteResult{JobID: unknown}))
	same(t, "CompleteOrphans of an unknown job", rc.CompleteOrphans(ctx, meta.OrphansResult{JobID: unknown}),
		svc.CompleteOrphans(ctx, meta.OrphansResult{JobID: unknown}))
	err = rc.AbandonJob(ctx, unknown, "test")
	same(t, "AbandonJob of an unknown job", err, svc.AbandonJob(ctx, unknown, "test"))
	if !errors.Is(err, meta.ErrJobLost) {
		t.Errorf("AbandonJob of an unknown job: %v, want ErrJobLost", err)
	}

	// An orphan pass is due once the grace has passed since meta opened.
	var job meta.Job
	for {
		j, ok, err := rc.AcquireJob(ctx, "agent-1", []meta.JobKind{meta.JobOrphans})
		if err != nil {
			t.Fatalf("AcquireJob orphans: %v", err)
		}
		if ok {
			job = j
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no orphan pass leased within the test's deadline (grace %v)", grace)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if job.Kind != meta.JobOrphans || job.Orphans == nil || job.Orphans.MinAge != grace || job.Orphans.Prefix != meta.ObjectPrefix || job.LeaseTTL <= 0 {
		t.Fatalf("orphan job: %+v %+v", job, job.Orphans)
	}
	old := meta.ObjectKey(meta.NewSegmentID(time.Now().Add(-time.Hour), [8]byte{1}))
	fresh := meta.ObjectKey(meta.NewSegmentID(time.Now(), [8]byte{2}))
	orphans, err := rc.CheckOrphans(ctx, job.ID, []string{old, fresh, "not/an/object"})
	if err != nil || !reflect.DeepEqual(orphans, []string{old}) {
		t.Fatalf("CheckOrphans: %q %v, want only %q", orphans, err, old)
	}
	if err := rc.CompleteOrphans(ctx, meta.OrphansResult{JobID: job.ID, Listed: 3, Deleted: 1, DeletedBytes: 10}); err != nil {
		t.Fatalf("CompleteOrphans: %v", err)
	}
	// The pass is over: its lease is gone.
	if err := rc.AbandonJob(ctx, job.ID, "test"); !errors.Is(err, meta.ErrJobLost) {
		t.Fatalf("AbandonJob after CompleteOrphans: %v, want ErrJobLost", err)
	}
}

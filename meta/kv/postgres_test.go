package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/internal/pgtest"
	"sluice.dev/meta"
)

// Tests of the PostgreSQL store itself. They run in either store mode
// (each on a database of its own); SLUICE_META_STORE=postgres runs the
// rest of the suite on PostgreSQL too.

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func openPG(t testing.TB, pool *pgxpool.Pool, cluster string, lease *Lease) *pgKV {
	t.Helper()
	kv, err := OpenPostgres(ctxT(t), pool, cluster, lease)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	return kv.(*pgKV)
}

// dump returns every bucket's pairs, in ForEach order.
func dump(t testing.TB, kv KV) map[string][][2]string {
	t.Helper()
	out := make(map[string][][2]string)
	err := kv.View(func(tx KVTx) error {
		for _, b := range allBuckets {
			err := tx.ForEach(b, func(k, v []byte) error {
				out[string(b)] = append(out[string(b)], [2]string{string(k), string(v)})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View: %v", err)
	}
	return out
}

// TestPostgresMatchesBolt runs random groups of Put, Delete, DeletePrefix
// and Get on both stores and compares every Get inside the groups and the
// whole contents after each. Keys are drawn from bytes around the
// ordering's edges (0x00, 0x7f/0x80, 0xff) and are short, so prefixes
// collide, prefix deletes cover buffered writes, and some prefixes are
// all 0xff (no upper bound). The key buffer handed to the PostgreSQL
// store is overwritten after every call, as the committer's is.
func TestPostgresMatchesBolt(t *testing.T) {
	pg := openPG(t, newPool(t), "diff", nil)
	bolt, err := OpenBolt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	defer func() {
		if t.Failed() {
			t.Logf("seed %d", seed)
		}
	}()
	alphabet := []byte{0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff}
	key := func(minLen int) []byte {
		k := make([]byte, minLen+rng.IntN(4-minLen))
		for i := range k {
			k[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return k
	}
	buckets := [][]byte{BucketMeta, BucketOffsets, BucketIndex}
	type op struct {
		kind    int // 0 put, 1 delete, 2 delete prefix, 3 get
		b, k, v []byte
	}
	kbuf := make([]byte, 0, 8)
	run := func(kv KV, ops []op, reuse bool) ([]string, error) {
		var gets []string
		err := kv.Update(func(tx KVTx) error {
			for _, o := range ops {
				k := o.k
				if reuse {
					k = append(kbuf[:0], o.k...)
				}
				var err error
				switch o.kind {
				case 0:
					err = tx.Put(o.b, k, o.v)
				case 1:
					err = tx.Delete(o.b, k)
				case 2:
					err = tx.DeletePrefix(o.b, k)
				case 3:
					var v []byte
					v, err = tx.Get(o.b, k)
					gets = append(gets, fmt.Sprintf("%x %v", v, v == nil))
				}
				if reuse {
					for i := range k {
						k[i] = 0x55
					}
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		return gets, err
	}
	for round := range 40 {
		var ops []op
		for range 1 + rng.IntN(80) {
			o := op{b: buckets[rng.IntN(len(buckets))]}
			switch r := rng.IntN(100); {
			case r < 50:
				o.kind, o.k = 0, key(1)
				o.v = []byte(fmt.Sprintf("v%d", rng.IntN(1000)))
				if rng.IntN(10) == 0 {
					o.v = []byte{}
				}
			case r < 65:
				o.kind, o.k = 1, key(1)
			case r < 70:
				o.kind, o.k = 2, key(1)
				o.k = o.k[:min(len(o.k), rng.IntN(3))]
			default:
				o.kind, o.k = 3, key(1)
			}
			ops = append(ops, o)
		}
		want, err := run(bolt, ops, false)
		if err != nil {
			t.Fatal(err)
		}
		got, err := run(pg, ops, true)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: Gets inside the group differ:\n got %v\nwant %v\nops %v", round, got, want, ops)
		}
		if g, w := dump(t, pg), dump(t, bolt); !reflect.DeepEqual(g, w) {
			t.Fatalf("round %d: contents differ:\n got %q\nwant %q\nops %v", round, g, w, ops)
		}
	}
	// And a fresh KV reads the same.
	if g, w := dump(t, openPG(t, pg.pool, "diff", nil)), dump(t, bolt); !reflect.DeepEqual(g, w) {
		t.Fatalf("reopened: contents differ:\n got %q\nwant %q", g, w)
	}
}

// TestPostgresOrder: ForEach walks keys in byte order, 0x00 and 0xff
// included, shorter before longer; and DeletePrefix of an all-0xff
// prefix deletes up to the end.
func TestPostgresOrder(t *testing.T) {
	kv := openPG(t, newPool(t), "order", nil)
	keys := [][]byte{{0x00}, {0x00, 0x00}, {0x00, 0xff}, {0x01}, {0x7f}, {0x80}, {0xfe, 0xff}, {0xff}, {0xff, 0x00}, {0xff, 0xff}, {0xff, 0xff, 0xff}}
	shuffled := slices.Clone(keys)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	err := kv.Update(func(tx KVTx) error {
		for _, k := range shuffled {
			if err := tx.Put(BucketIndex, k, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for _, p := range dump(t, kv)[string(BucketIndex)] {
		got = append(got, []byte(p[0]))
	}
	if !reflect.DeepEqual(got, keys) {
		t.Fatalf("order:\n got %x\nwant %x", got, keys)
	}
	err = kv.Update(func(tx KVTx) error {
		if err := tx.DeletePrefix(BucketIndex, []byte{0xff, 0xff}); err != nil {
			return err
		}
		return tx.DeletePrefix(BucketIndex, []byte{0x00})
	})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, p := range dump(t, kv)[string(BucketIndex)] {
		got = append(got, []byte(p[0]))
	}
	want := [][]byte{{0x01}, {0x7f}, {0x80}, {0xfe, 0xff}, {0xff}, {0xff, 0x00}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after prefix deletes:\n got %x\nwant %x", got, want)
	}
	for _, c := range []struct{ in, want []byte }{
		{nil, nil}, {[]byte{0xff}, nil}, {[]byte{0xff, 0xff}, nil},
		{[]byte{0x00}, []byte{0x01}}, {[]byte{0x01, 0xff}, []byte{0x02}}, {[]byte{0x7f, 0xff, 0xff}, []byte{0x80}},
	} {
		if got := prefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("prefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
}

// TestPostgresGetSeesBuffered: Get inside an Update answers from the
// group's own writes, then from the database.
func TestPostgresGetSeesBuffered(t *testing.T) {
	kv := openPG(t, newPool(t), "get", nil)
	put := func(k, v string) {
		t.Helper()
		if err := kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put("a1", "old")
	put("b", "old")
	err := kv.Update(func(tx KVTx) error {
		get := func(k, want string, present bool) {
			t.Helper()
			v, err := tx.Get(BucketMeta, []byte(k))
			if err != nil || (v != nil) != present || string(v) != want {
				t.Errorf("Get %s = %q (nil %v) %v, want %q present %v", k, v, v == nil, err, want, present)
			}
		}
		get("a1", "old", true) // from the database
		tx.Put(BucketMeta, []byte("a1"), []byte("new"))
		get("a1", "new", true)
		tx.Delete(BucketMeta, []byte("a1"))
		get("a1", "", false)
		tx.Put(BucketMeta, []byte("a2"), []byte("x"))
		tx.DeletePrefix(BucketMeta, []byte("a"))
		get("a2", "", false)
		get("a1", "", false)
		tx.Put(BucketMeta, []byte("a3"), []byte{})
		get("a3", "", true) // empty, not missing
		get("b", "old", true)
		get("c", "", false)
		if _, err := tx.Get([]byte("nope"), []byte("x")); err == nil {
			t.Error("Get in an unknown bucket: no error")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, kv)[string(BucketMeta)]
	want := [][2]string{{"a3", ""}, {"b", "old"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after: %q, want %q", got, want)
	}
}

// TestPostgresLargeGroup: a group of thousands of writes, many to the
// same keys, commits as one batch with the last write of each key.
func TestPostgresLargeGroup(t *testing.T) {
	kv := openPG(t, newPool(t), "large", nil)
	want := make(map[string]string)
	err := kv.Update(func(tx KVTx) error {
		for i := range 20000 {
			k := fmt.Appendf(nil, "key-%05d", i%7000)
			v := fmt.Appendf(nil, "value-%d", i)
			if i%9 == 0 {
				delete(want, string(k))
				if err := tx.Delete(BucketSegments, k); err != nil {
					return err
				}
				continue
			}
			want[string(k)] = string(v)
			if err := tx.Put(BucketSegments, k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, kv)[string(BucketSegments)]
	if len(got) != len(want) {
		t.Fatalf("%d keys, want %d", len(got), len(want))
	}
	for _, p := range got {
		if want[p[0]] != p[1] {
			t.Fatalf("%s = %s, want %s", p[0], p[1], want[p[0]])
		}
	}
}

// TestPostgresSecondWriter: two KVs on one cluster without a lease (two
// processes misconfigured onto one cluster): once one has written, the
// other's writes fail instead of building on what it loaded before.
func TestPostgresSecondWriter(t *testing.T) {
	pool := newPool(t)
	a := openPG(t, pool, "c", nil)
	b := openPG(t, pool, "c", nil)
	dump(t, a)
	dump(t, b)
	put := func(kv KV, v string) error {
		return kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte("k"), []byte(v)) })
	}
	if err := put(a, "a"); err != nil {
		t.Fatal(err)
	}
	if err := put(b, "b"); !errors.Is(err, meta.ErrUnavailable) || !errors.Is(err, errStoreBehind) {
		t.Fatalf("second writer: %v", err)
	}
	if err := put(a, "a2"); err != nil {
		t.Fatal(err)
	}
	// b stays refused: what it holds is stale for good.
	if err := put(b, "b"); !errors.Is(err, errStoreBehind) {
		t.Fatalf("second writer again: %v", err)
	}
	if got := dump(t, openPG(t, pool, "c", nil))[string(BucketMeta)]; !reflect.DeepEqual(got, [][2]string{{"k", "a2"}}) {
		t.Fatalf("contents: %q", got)
	}
}

var errLost = errors.New("connection reset (test)")

// TestPostgresUnknownOutcome: a group whose answer was lost is settled
// through the commit sequence: committed, Update returns nil after all;
// not committed, it fails and the lost transaction can never commit; not
// known yet, the next Update settles it first.
func TestPostgresUnknownOutcome(t *testing.T) {
	pool := newPool(t)
	kv := openPG(t, pool, "c", nil)
	put := func(k string) error {
		return kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte(k), []byte("v")) })
	}
	keys := func() []string {
		var ks []string
		for _, p := range dump(t, openPG(t, pool, "c", nil))[string(BucketMeta)] {
			ks = append(ks, p[0])
		}
		return ks
	}

	// Committed, answer lost.
	kv.testAfterSend = func(err error) error {
		if err != nil {
			t.Errorf("send: %v", err)
		}
		return errLost
	}
	if err := put("committed"); err != nil {
		t.Fatalf("committed group: %v", err)
	}

	kv.testAfterSend = nil
	if err := put("second"); err != nil {
		t.Fatal(err)
	}

	// A group that failed before commit, reported as lost: settled as
	// not committed.
	pgErrOnce := true
	origSeq := kv.seq
	kv.seq = origSeq - 1 // the fence fails on the server...
	kv.testAfterSend = func(err error) error {
		if pgErrOnce {
			pgErrOnce = false
			if err == nil {
				t.Error("send with a stale sequence succeeded")
			}
			kv.seq = origSeq // ...and the test pretends the answer was lost
			return errLost
		}
		return err
	}
	if err := put("lost"); err == nil || errors.Is(err, errStoreBehind) {
		t.Fatalf("lost group: %v", err)
	}
	kv.testAfterSend = nil
	if err := put("after-lost"); err != nil {
		t.Fatalf("after a lost group: %v", err)
	}

	// Unknown, and the database cannot be asked at first: the next
	// Update settles it (not committed) and goes on.
	kv.seq--
	kv.testAfterSend = func(err error) error {
		kv.seq++
		return errLost
	}
	kv.testSettle = func() error { return errors.New("database unreachable (test)") }
	if err := put("unsettled"); err == nil {
		t.Fatal("unsettled group: no error")
	}
	kv.testAfterSend, kv.testSettle = nil, nil
	if err := put("after-unsettled"); err != nil {
		t.Fatalf("after an unsettled group: %v", err)
	}

	// Unknown, cannot be asked, and it did commit: the caller's state is
	// behind; the KV refuses writes from then on.
	kv.testAfterSend = func(err error) error { return errLost }
	kv.testSettle = func() error { return errors.New("database unreachable (test)") }
	if err := put("committed-unsettled"); err == nil {
		t.Fatal("unsettled group: no error")
	}
	kv.testAfterSend, kv.testSettle = nil, nil
	if err := put("refused"); !errors.Is(err, errStoreBehind) || !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("after a group that committed unseen: %v", err)
	}
	want := []string{"after-lost", "after-unsettled", "committed", "committed-unsettled", "second"}
	if got := keys(); !reflect.DeepEqual(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
}

// TestPostgresInFlight: the connection gives up on a group the server is
// still running (its upsert waits for a row lock); settling waits for the
// server's transaction and reaches a verdict consistent with the data.
func TestPostgresInFlight(t *testing.T) {
	pool := newPool(t)
	kv := openPG(t, pool, "c", nil)
	put := func(v string) error {
		return kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte("k"), []byte(v)) })
	}
	if err := put("1"); err != nil {
		t.Fatal(err)
	}
	blocker, err := pool.Begin(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.Exec(ctxT(t), `SELECT 1 FROM sluice_kv WHERE cluster = 'c' AND key = 'k' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	kv.timeout = 300 * time.Millisecond
	err = put("2")
	t.Logf("group in flight: %v", err)
	if err == nil {
		t.Fatal("a group blocked past its timeout succeeded")
	}
	blocker.Rollback(ctxT(t))
	kv.timeout = pgTimeout
	err = put("3")
	t.Logf("next group: %v", err)
	got := dump(t, openPG(t, pool, "c", nil))[string(BucketMeta)][0][1]
	switch {
	case err == nil && got == "3":
	case errors.Is(err, errStoreBehind) && got == "2":
	default:
		t.Fatalf("next group %v, value %q", err, got)
	}
}

// manualLease is a lease with no lock behind it, for fence tests.
func manualLease(epoch int64) *Lease {
	l := &Lease{epoch: epoch, lost: make(chan struct{}), quit: make(chan struct{}), release: make(chan struct{}), done: make(chan struct{})}
	close(l.done)
	return l
}

// TestPostgresFence: the epoch check runs in the group's transaction. A
// group of a superseded epoch fails; a group in flight when the epoch is
// bumped commits before the bump or fails after it, never after it.
func TestPostgresFence(t *testing.T) {
	pool := newPool(t)
	ctx := ctxT(t)
	l, err := AcquireLeadership(ctx, pool, "a", quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	stale := openPG(t, pool, "c", manualLease(l.Epoch()-1))
	put := func(kv KV, k string) error {
		return kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte(k), []byte("v")) })
	}
	if err := put(stale, "x"); !errors.Is(err, meta.ErrNotLeader) || !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("stale epoch: %v", err)
	}

	// Hold a bump of the epoch open; a group in flight waits for it and
	// then fails.
	kv := openPG(t, pool, "c", manualLease(l.Epoch()))
	if err := put(kv, "before"); err != nil {
		t.Fatal(err)
	}
	bump, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer bump.Rollback(ctx)
	if _, err := bump.Exec(ctx, `UPDATE sluice_leader SET epoch = epoch + 1`); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- put(kv, "during") }()
	select {
	case err := <-errc:
		t.Fatalf("a group went past an uncommitted epoch bump: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := bump.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, meta.ErrNotLeader) {
		t.Fatalf("group in flight across the bump: %v", err)
	}
	if got := dump(t, openPG(t, pool, "c", nil))[string(BucketMeta)]; !reflect.DeepEqual(got, [][2]string{{"before", "v"}}) {
		t.Fatalf("contents %q", got)
	}
}

// acquireAsync starts AcquireLeadership and returns the channel of its
// result.
func acquireAsync(ctx context.Context, pool *pgxpool.Pool, holder string) <-chan *Lease {
	ch := make(chan *Lease, 1)
	go func() {
		l, err := AcquireLeadership(ctx, pool, holder, quietLog)
		if err != nil {
			l = nil
		}
		ch <- l
	}()
	return ch
}

func leader(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	h, err := CurrentLeader(ctxT(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestPostgresLeadershipRelease: of two candidates one wins; the other
// wins soon after the first steps down.
func TestPostgresLeadershipRelease(t *testing.T) {
	pool := newPool(t)
	ctx := ctxT(t)
	if h := leader(t, pool); h != "" {
		t.Fatalf("leader of an empty database: %q", h)
	}
	a, err := AcquireLeadership(ctx, pool, "a:1", quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	if h := leader(t, pool); h != "a:1" {
		t.Fatalf("leader %q", h)
	}
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bc := acquireAsync(bctx, pool, "b:1")
	select {
	case b := <-bc:
		t.Fatalf("second candidate won while the first leads (%v)", b)
	case <-time.After(1500 * time.Millisecond):
	}
	start := time.Now()
	a.Release()
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost open after Release")
	}
	var b *Lease
	select {
	case b = <-bc:
	case <-time.After(5 * time.Second):
		t.Fatal("second candidate did not win after Release")
	}
	if b == nil {
		t.Fatal("second candidate failed")
	}
	defer b.Release()
	t.Logf("took over in %v", time.Since(start))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took over in %v, want about leaderPoll", d)
	}
	if b.Epoch() != a.Epoch()+1 {
		t.Fatalf("epochs %d then %d", a.Epoch(), b.Epoch())
	}
	if h := leader(t, pool); h != "b:1" {
		t.Fatalf("leader %q", h)
	}
	b.Release()
	if h := leader(t, pool); h != "" {
		t.Fatalf("leader after the last Release: %q", h)
	}
	// A cancelled candidate returns.
	cctx, cancel2 := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel2()
	<-cctx.Done()
	if _, err := AcquireLeadership(cctx, pool, "c", quietLog); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestPostgresLeadershipKilled: the leader's lock connection is killed
// from another session. The standby takes over, the old lease's Lost
// closes, and the old leader's store refuses to write.
func TestPostgresLeadershipKilled(t *testing.T) {
	pool := newPool(t)
	ctx := ctxT(t)
	a, err := AcquireLeadership(ctx, pool, "a", quietLog)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	akv := openPG(t, pool, "c", a)
	put := func(kv KV, k string) error {
		return kv.Update(func(tx KVTx) error { return tx.Put(BucketMeta, []byte(k), []byte("v")) })
	}
	if err := put(akv, "a"); err != nil {
		t.Fatal(err)
	}
	bc := acquireAsync(ctx, pool, "b")

	var pid int32
	// Advisory locks are per database; other tests' databases on the
	// same server have leaders too.
	err = pool.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1`,
		leaderLockKey>>32, leaderLockKey&0xffffffff).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatal(ok, err)
	}
	start := time.Now()
	var b *Lease
	select {
	case b = <-bc:
	case <-time.After(5 * time.Second):
		t.Fatal("standby did not take over")
	}
	if b == nil {
		t.Fatal("standby failed")
	}
	defer b.Release()
	t.Logf("took over in %v", time.Since(start))
	select {
	case <-a.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("old lease not lost")
	}
	t.Logf("old lease lost after %v", time.Since(start))
	if err := put(akv, "a2"); !errors.Is(err, meta.ErrNotLeader) || !errors.Is(err, meta.ErrUnavailable) {
		t.Fatalf("old leader's write: %v", err)
	}
	bkv := openPG(t, pool, "c", b)
	dump(t, bkv)
	if err := put(bkv, "b"); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, bkv)[string(BucketMeta)]; !reflect.DeepEqual(got, [][2]string{{"a", "v"}, {"b", "v"}}) {
		t.Fatalf("contents %q", got)
	}
	if h := leader(t, pool); h != "b" {
		t.Fatalf("leader %q", h)
	}
}

// TestPostgresLeadershipRace: many candidates at once, one leader at a
// time, each epoch won once.
func TestPostgresLeadershipRace(t *testing.T) {
	pool := newPool(t)
	ctx := ctxT(t)
	var (
		mu      sync.Mutex
		holding int
		epochs  []int64
		wg      sync.WaitGroup
	)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := AcquireLeadership(ctx, pool, fmt.Sprint(i), quietLog)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			holding++
			if holding != 1 {
				t.Errorf("%d leaders at once", holding)
			}
			epochs = append(epochs, l.Epoch())
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			holding--
			mu.Unlock()
			l.Release()
		}()
	}
	wg.Wait()
	slices.Sort(epochs)
	if !reflect.DeepEqual(epochs, []int64{1, 2, 3, 4}) {
		t.Fatalf("epochs %v", epochs)
	}
}

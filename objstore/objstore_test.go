package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// testStore is the one suite every Store implementation must pass; it pins
// down the semantics written on the interface. newStore returns an empty
// store, which the suite closes.
func testStore(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	open := func(t *testing.T) Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	mustPut := func(t *testing.T, s Store, key string, data []byte) {
		t.Helper()
		if err := s.Put(ctx, key, data); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
	mustGet := func(t *testing.T, s Store, key string, off, length int64) []byte {
		t.Helper()
		b, err := s.GetRange(ctx, key, off, length)
		if err != nil {
			t.Fatalf("GetRange(%q, %d, %d): %v", key, off, length, err)
		}
		return b
	}
	listAll := func(t *testing.T, s Store, prefix string) []ObjectInfo {
		t.Helper()
		var got []ObjectInfo
		if err := s.List(ctx, prefix, func(info ObjectInfo) error {
			got = append(got, info)
			return nil
		}); err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		return got
	}

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		data := randBytes(1, 1000)
		mustPut(t, s, "seg/0001", data)
		if got := mustGet(t, s, "seg/0001", 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("whole object: got %d bytes, want %d", len(got), len(data))
		}
		info, err := s.Head(ctx, "seg/0001")
		if err != nil || info.Key != "seg/0001" || info.Size != 1000 {
			t.Fatalf("Head = %+v, %v", info, err)
		}
		for _, r := range []struct{ off, length int64 }{
			{0, 1}, {0, 1000}, {10, 100}, {999, 1}, {990, 10}, {500, -1}, {999, -1},
			{1000, 0}, {1000, -1}, {0, 0}, {123, 0},
		} {
			want := data[r.off:]
			if r.length >= 0 {
				want = want[:r.length]
			}
			got := mustGet(t, s, "seg/0001", r.off, r.length)
			if !bytes.Equal(got, want) || len(got) != len(want) {
				t.Errorf("GetRange(%d, %d): got %d bytes, want %d (equal=%v)", r.off, r.length, len(got), len(want), bytes.Equal(got, want))
			}
		}
	})

	t.Run("PutReader", func(t *testing.T) {
		s := open(t)
		// Pieces of uneven sizes, as a compaction job gathers them.
		var pieces [][]byte
		var readers []io.Reader
		var whole []byte
		for i, n := range []int{1, 0, 4093, 70000, 3, 12345} {
			p := randBytes(uint64(100+i), n)
			pieces = append(pieces, p)
			readers = append(readers, bytes.NewReader(p))
			whole = append(whole, p...)
		}
		if err := s.PutReader(ctx, "pr/whole", io.MultiReader(readers...), int64(len(whole))); err != nil {
			t.Fatalf("PutReader: %v", err)
		}
		pieces[3][0] ^= 0xff // the caller reuses its buffers
		if got := mustGet(t, s, "pr/whole", 0, -1); !bytes.Equal(got, whole) {
			t.Fatalf("PutReader stored %d bytes, want the %d of its pieces in order", len(got), len(whole))
		}
		if info, err := s.Head(ctx, "pr/whole"); err != nil || info.Size != int64(len(whole)) {
			t.Fatalf("Head = %+v, %v", info, err)
		}
		if err := s.PutReader(ctx, "pr/empty", bytes.NewReader(nil), 0); err != nil {
			t.Fatalf("PutReader of nothing: %v", err)
		}
		if got := mustGet(t, s, "pr/empty", 0, -1); len(got) != 0 {
			t.Fatalf("empty object holds %d bytes", len(got))
		}

		// A reader that yields the wrong length or fails leaves no new
		// object: neither a new key nor a changed old one.
		mustPut(t, s, "pr/old", []byte("old"))
		errRead := errors.New("source range unreadable")
		for _, tc := range []struct {
			name string
			r    io.Reader
			size int64
			want error // nil: any error
		}{
			{"Short", bytes.NewReader(whole[:100]), 101, io.ErrUnexpectedEOF},
			{"ShortEmpty", bytes.NewReader(nil), 1, io.ErrUnexpectedEOF},
			{"Long", bytes.NewReader(whole[:100]), 99, nil},
			{"ReadError", io.MultiReader(bytes.NewReader(whole[:10]), iotest.ErrReader(errRead)), 100, errRead},
		} {
			for _, key := range []string{"pr/new-" + tc.name, "pr/old"} {
				r := tc.r
				if key == "pr/old" {
					// A fresh reader of the same shape.
					switch tc.name {
					case "Short":
						r = bytes.NewReader(whole[:100])
					case "ShortEmpty":
						r = bytes.NewReader(nil)
					case "Long":
						r = bytes.NewReader(whole[:100])
					case "ReadError":
						r = io.MultiReader(bytes.NewReader(whole[:10]), iotest.ErrReader(errRead))
					}
				}
				err := s.PutReader(ctx, key, r, tc.size)
				if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
					t.Errorf("%s: PutReader(%q) = %v, want an error wrapping %v", tc.name, key, err, tc.want)
				}
			}
			if _, err := s.Head(ctx, "pr/new-"+tc.name); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s: a failed PutReader left an object: Head = %v", tc.name, err)
			}
			if got := mustGet(t, s, "pr/old", 0, -1); string(got) != "old" {
				t.Errorf("%s: a failed PutReader changed the old object to %d bytes", tc.name, len(got))
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.PutReader(cctx, "pr/cancelled", bytes.NewReader(whole), int64(len(whole))); !errors.Is(err, context.Canceled) {
			t.Errorf("PutReader with a cancelled context: %v", err)
		}
	})

	t.Run("PutParts", func(t *testing.T) {
		// A vector of slices (what compaction writes, objstore.Parts):
		// stored as their concatenation, and a size that is not the
		// vector's leaves no object.
		s := open(t)
		var bufs [][]byte
		var whole []byte
		for i, n := range []int{24, 0, 70000, 1, 4093, 66 * 3} {
			b := randBytes(uint64(200+i), n)
			bufs = append(bufs, b)
			whole = append(whole, b...)
		}
		if err := s.PutReader(ctx, "pp/whole", NewParts(slices.Clone(bufs)), int64(len(whole))); err != nil {
			t.Fatalf("PutReader(Parts): %v", err)
		}
		bufs[2][0] ^= 0xff // the caller reuses its buffers
		if got := mustGet(t, s, "pp/whole", 0, -1); !bytes.Equal(got, whole) {
			t.Fatalf("Parts stored %d bytes, want the %d of its slices in order", len(got), len(whole))
		}
		for _, size := range []int64{int64(len(whole)) - 1, int64(len(whole)) + 1} {
			if err := s.PutReader(ctx, "pp/bad", NewParts(slices.Clone(bufs)), size); err == nil {
				t.Errorf("PutReader(Parts of %d bytes, size %d) succeeded", len(whole), size)
			}
			if _, err := s.Head(ctx, "pp/bad"); !errors.Is(err, ErrNotFound) {
				t.Errorf("a failed PutReader(Parts) left an object: Head = %v", err)
			}
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.PutReader(cctx, "pp/cancelled", NewParts(slices.Clone(bufs)), int64(len(whole))); !errors.Is(err, context.Canceled) {
			t.Errorf("PutReader(Parts) with a cancelled context: %v", err)
		}
	})

	t.Run("ModTime", func(t *testing.T) {
		s := open(t)
		// The store's clock is this machine's for every implementation
		// under test; S3 reports whole seconds from HEAD (Last-Modified
		// is an HTTP date) and milliseconds from a listing, hence the
		// slack.
		const slack = 2 * time.Second
		inWindow := func(t *testing.T, what string, mt, before, after time.Time) {
			t.Helper()
			if mt.IsZero() || mt.Before(before.Add(-slack)) || mt.After(after.Add(slack)) {
				t.Errorf("%s ModTime = %v, want within %v of [%v, %v]", what, mt, slack, before, after)
			}
		}
		before := time.Now()
		mustPut(t, s, "mt/a", []byte("first"))
		after := time.Now()
		head, err := s.Head(ctx, "mt/a")
		if err != nil {
			t.Fatal(err)
		}
		inWindow(t, "Head", head.ModTime, before, after)
		listed := listAll(t, s, "mt/")
		if len(listed) != 1 {
			t.Fatalf("List = %v", listed)
		}
		inWindow(t, "List", listed[0].ModTime, before, after)
		if d := listed[0].ModTime.Sub(head.ModTime).Abs(); d >= time.Second {
			t.Errorf("List ModTime %v and Head ModTime %v differ by %v", listed[0].ModTime, head.ModTime, d)
		}
		// An overwrite is a new write: its time does not go back.
		before = time.Now()
		mustPut(t, s, "mt/a", []byte("second"))
		after = time.Now()
		again, err := s.Head(ctx, "mt/a")
		if err != nil {
			t.Fatal(err)
		}
		inWindow(t, "Head after overwrite", again.ModTime, before, after)
		if again.ModTime.Before(head.ModTime) {
			t.Errorf("ModTime went back on overwrite: %v, then %v", head.ModTime, again.ModTime)
		}
	})

	t.Run("RangePastEnd", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "k", randBytes(2, 100))
		for _, r := range []struct{ off, length int64 }{
			{0, 101}, {99, 2}, {100, 1}, {101, 0}, {101, -1}, {1 << 40, 1}, {50, 1 << 62},
		} {
			b, err := s.GetRange(ctx, "k", r.off, r.length)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("GetRange(%d, %d) = %d bytes, %v; want an error wrapping io.ErrUnexpectedEOF", r.off, r.length, len(b), err)
			}
			if b != nil {
				t.Errorf("GetRange(%d, %d) returned data with its error", r.off, r.length)
			}
		}
		if _, err := s.GetRange(ctx, "k", -1, 1); err == nil {
			t.Error("GetRange with a negative offset succeeded")
		}
	})

	t.Run("NoAliasing", func(t *testing.T) {
		s := open(t)
		data := []byte("immutable")
		mustPut(t, s, "k", data)
		data[0] = 'X' // the caller reuses its buffer
		got := mustGet(t, s, "k", 0, -1)
		got[1] = 'Y' // and scribbles on what it read
		if again := mustGet(t, s, "k", 0, -1); string(again) != "immutable" {
			t.Fatalf("object changed through a caller's slice: %q", again)
		}
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "a/k", randBytes(3, 500))
		second := randBytes(4, 20)
		mustPut(t, s, "a/k", second)
		if got := mustGet(t, s, "a/k", 0, -1); !bytes.Equal(got, second) {
			t.Fatalf("after overwrite got %d bytes, want the 20 new ones", len(got))
		}
		if info, err := s.Head(ctx, "a/k"); err != nil || info.Size != 20 {
			t.Fatalf("Head after overwrite = %+v, %v", info, err)
		}
		if got := listAll(t, s, ""); len(got) != 1 {
			t.Fatalf("List after overwrite = %v, want one key", got)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "present/x", []byte("x"))
		for _, key := range []string{"missing", "present/y", "present/x/deeper", "present"} {
			if _, err := s.GetRange(ctx, key, 0, -1); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetRange(%q) error = %v, want ErrNotFound", key, err)
			}
			if _, err := s.Head(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("Head(%q) error = %v, want ErrNotFound", key, err)
			}
		}
	})

	t.Run("DeleteIdempotent", func(t *testing.T) {
		s := open(t)
		if err := s.Delete(ctx, "never/existed"); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
		mustPut(t, s, "d/k", []byte("v"))
		mustPut(t, s, "d/keep", []byte("w"))
		for i := range 2 {
			if err := s.Delete(ctx, "d/k"); err != nil {
				t.Fatalf("Delete #%d: %v", i+1, err)
			}
		}
		if _, err := s.GetRange(ctx, "d/k", 0, -1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRange after Delete: %v, want ErrNotFound", err)
		}
		if _, err := s.Head(ctx, "d/k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Head after Delete: %v, want ErrNotFound", err)
		}
		if got := listAll(t, s, ""); len(got) != 1 || got[0].Key != "d/keep" {
			t.Fatalf("List after Delete = %v, want only d/keep", got)
		}
		// A prefix of a key is not an object: deleting it touches nothing.
		if err := s.Delete(ctx, "d"); err != nil {
			t.Fatalf("Delete of a prefix: %v", err)
		}
		if got := mustGet(t, s, "d/keep", 0, -1); string(got) != "w" {
			t.Fatalf("d/keep = %q after deleting its prefix", got)
		}
	})

	t.Run("ListPrefixOrder", func(t *testing.T) {
		s := open(t)
		// Chosen so that key order differs from a naive directory walk:
		// '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), '0' after.
		keys := []string{
			"list/a/b", "list/a-c", "list/a.c", "list/a0", "list/a/c/d",
			"list/ab", "list/b", "lis", "lisu", "list0", "z",
		}
		sizes := map[string]int64{}
		for i, k := range keys {
			mustPut(t, s, k, randBytes(uint64(i), i*7))
			sizes[k] = int64(i * 7)
		}
		for _, prefix := range []string{"", "list/", "list/a", "list/a/", "list/a/c", "lis", "list", "z", "nomatch", "list/a/b"} {
			var want []string
			for _, k := range keys {
				if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
					want = append(want, k)
				}
			}
			slices.Sort(want)
			var gotKeys []string
			for _, info := range listAll(t, s, prefix) {
				gotKeys = append(gotKeys, info.Key)
				if info.Size != sizes[info.Key] {
					t.Errorf("List(%q): %q has size %d, want %d", prefix, info.Key, info.Size, sizes[info.Key])
				}
			}
			if !slices.Equal(gotKeys, want) {
				t.Errorf("List(%q) = %q, want %q", prefix, gotKeys, want)
			}
		}
		// An error from fn stops the walk and comes back unchanged.
		errStop := errors.New("stop")
		calls := 0
		err := s.List(ctx, "list/", func(ObjectInfo) error { calls++; return errStop })
		if !errors.Is(err, errStop) || calls != 1 {
			t.Fatalf("List with a failing fn = %v after %d calls, want errStop after 1", err, calls)
		}
	})

	// Orphan GC lists the bucket and deletes as it goes: every key is
	// still visited once, and a bucket emptied that way lists nothing
	// (no directory left behind shows up as a key).
	t.Run("ListWhileDeleting", func(t *testing.T) {
		s := open(t)
		keys := []string{"gc/a/1", "gc/a/2", "gc/a/b/3", "gc/a/b/c/4", "gc/b", "gc/c/5", "gc/c/6", "gc/d"}
		for _, k := range keys {
			mustPut(t, s, k, []byte(k))
		}
		var visited []string
		if err := s.List(ctx, "gc/", func(info ObjectInfo) error {
			visited = append(visited, info.Key)
			return s.Delete(ctx, info.Key)
		}); err != nil {
			t.Fatalf("List deleting each key: %v", err)
		}
		if !slices.Equal(visited, keys) {
			t.Fatalf("visited %q, want %q", visited, keys)
		}
		if got := listAll(t, s, ""); len(got) != 0 {
			t.Fatalf("List after deleting everything = %v", got)
		}
		// The emptied prefixes take new objects again.
		mustPut(t, s, "gc/a/b/c/4", []byte("again"))
		if got := listAll(t, s, "gc/"); len(got) != 1 || got[0].Key != "gc/a/b/c/4" {
			t.Fatalf("List after a new Put = %v", got)
		}
	})

	t.Run("ConcurrentPuts", func(t *testing.T) {
		s := open(t)
		const n = 32
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				// Half the keys race to create the same new directory,
				// half get a new directory each.
				for _, key := range []string{fmt.Sprintf("conc/shared/%02d", i), fmt.Sprintf("conc/own%02d/obj", i)} {
					if err := s.Put(ctx, key, randBytes(uint64(i), 100+i)); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range n {
			want := randBytes(uint64(i), 100+i)
			for _, key := range []string{fmt.Sprintf("conc/shared/%02d", i), fmt.Sprintf("conc/own%02d/obj", i)} {
				if got := mustGet(t, s, key, 0, -1); !bytes.Equal(got, want) {
					t.Errorf("%s: wrong content", key)
				}
			}
		}
		if got := listAll(t, s, "conc/"); len(got) != 2*n {
			t.Fatalf("List found %d keys, want %d", len(got), 2*n)
		}
	})

	t.Run("ZeroLength", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "empty", nil)
		if info, err := s.Head(ctx, "empty"); err != nil || info.Size != 0 {
			t.Fatalf("Head = %+v, %v", info, err)
		}
		for _, length := range []int64{-1, 0} {
			if got := mustGet(t, s, "empty", 0, length); len(got) != 0 {
				t.Fatalf("GetRange(0, %d) = %d bytes", length, len(got))
			}
		}
		if _, err := s.GetRange(ctx, "empty", 0, 1); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("GetRange(0, 1) of an empty object: %v", err)
		}
		if got := listAll(t, s, "empty"); len(got) != 1 || got[0].Size != 0 {
			t.Fatalf("List = %v", got)
		}
	})

	t.Run("ContextCanceled", func(t *testing.T) {
		s := open(t)
		mustPut(t, s, "c/k", []byte("v"))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Put(cctx, "c/new", []byte("v")); !errors.Is(err, context.Canceled) {
			t.Errorf("Put: %v, want context.Canceled", err)
		}
		if _, err := s.Head(ctx, "c/new"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a cancelled Put left an object: Head = %v", err)
		}
		if err := s.Put(cctx, "c/k", []byte("overwritten")); !errors.Is(err, context.Canceled) {
			t.Errorf("Put over an object: %v, want context.Canceled", err)
		}
		if _, err := s.GetRange(cctx, "c/k", 0, -1); !errors.Is(err, context.Canceled) {
			t.Errorf("GetRange: %v, want context.Canceled", err)
		}
		if _, err := s.Head(cctx, "c/k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Head: %v, want context.Canceled", err)
		}
		if err := s.Delete(cctx, "c/k"); !errors.Is(err, context.Canceled) {
			t.Errorf("Delete: %v, want context.Canceled", err)
		}
		called := false
		if err := s.List(cctx, "", func(ObjectInfo) error { called = true; return nil }); !errors.Is(err, context.Canceled) || called {
			t.Errorf("List: %v (fn called: %v), want context.Canceled", err, called)
		}
		if got := mustGet(t, s, "c/k", 0, -1); string(got) != "v" {
			t.Errorf("object changed by cancelled calls: %q", got)
		}
	})
}

// randBytes returns n bytes that depend only on seed and n.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMemory(t *testing.T) {
	testStore(t, func(*testing.T) Store { return NewMemory() })
}

func TestLocal(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		s, err := NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The wrappers must keep every promise of the store they wrap.
func TestWrappersKeepSemantics(t *testing.T) {
	t.Run("Instrument", func(t *testing.T) {
		testStore(t, func(*testing.T) Store { return Instrument(NewMemory()) })
	})
	t.Run("Faulty", func(t *testing.T) {
		testStore(t, func(*testing.T) Store { return NewFaulty(NewMemory(), 1) })
	})
}

func TestMemoryClock(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	m.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	if err := m.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if err := m.Put(ctx, "b", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if info, err := m.Head(ctx, "a"); err != nil || !info.ModTime.Equal(t0) {
		t.Fatalf("Head(a) = %+v, %v; want ModTime %v", info, err, t0)
	}
	var got []time.Time
	if err := m.List(ctx, "", func(info ObjectInfo) error { got = append(got, info.ModTime); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(t0) || !got[1].Equal(t0.Add(time.Hour)) {
		t.Fatalf("List ModTimes = %v, want %v and an hour later", got, t0)
	}
}

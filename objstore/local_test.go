package objstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newTestLocal(t *testing.T, dir string) *Local {
	t.Helper()
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A crash between writing the temp file and renaming it leaves the temp
// file behind. It must never show up as an object, and the next NewLocal
// must remove it once it is stale, but not a fresh one: another process
// sharing the directory may be writing it.
func TestLocalTempFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestLocal(t, dir)
	if err := s.Put(ctx, "seg/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	leftovers := []string{
		filepath.Join(dir, "seg", tempPrefix+"123"),
		filepath.Join(dir, tempPrefix+"456"),
	}
	old := time.Now().Add(-staleTempAge - time.Minute)
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("torn"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	inFlight := filepath.Join(dir, "seg", tempPrefix+"789") // another process's Put
	if err := os.WriteFile(inFlight, []byte("writing"), 0o600); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(info ObjectInfo) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "seg/a" {
		t.Fatalf("List = %q, want only seg/a", keys)
	}
	if _, err := s.Head(ctx, "seg/"+tempPrefix+"123"); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("Head of a temp file's name: %v, want ErrInvalidKey", err)
	}

	s2 := newTestLocal(t, dir) // "reopen after the crash"
	for _, p := range leftovers {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temp file %s survived reopening: %v", p, err)
		}
	}
	if _, err := os.Stat(inFlight); err != nil {
		t.Errorf("a fresh temp file was removed at reopening: %v", err)
	}
	if got, err := s2.GetRange(ctx, "seg/a", 0, -1); err != nil || string(got) != "a" {
		t.Fatalf("object after reopening: %q, %v", got, err)
	}
}

// Put must not leave its temp file behind when it fails.
func TestLocalFailedPutLeavesNoTempFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := newTestLocal(t, dir)
	if err := s.Put(ctx, "x/y", []byte("1")); err != nil {
		t.Fatal(err)
	}
	// "x" is a directory now, so an object "x" cannot exist (see Local's
	// limits); the rename fails after the temp file was written.
	if err := s.Put(ctx, "x", []byte("2")); err == nil {
		t.Fatal("Put of a key that is a directory succeeded")
	}
	// And the other way round: a key under an object.
	if err := s.Put(ctx, "x/y/z", []byte("3")); err == nil {
		t.Fatal("Put of a key under an object succeeded")
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tempPrefix) {
			t.Errorf("temp file left behind: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLocalBadKeys(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	dir := filepath.Join(parent, "bucket")
	s := newTestLocal(t, dir)
	bad := []string{
		"", "/abs", "a//b", "a/", "../escape", "a/../../escape", "..", ".", "a/./b",
		tempPrefix + "x", "a/" + tempPrefix + "1", "nul\x00byte",
	}
	for _, key := range bad {
		if err := s.Put(ctx, key, []byte("x")); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.GetRange(ctx, key, 0, -1); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("GetRange(%q): %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Head(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Head(%q): %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q): %v, want ErrInvalidKey", key, err)
		}
	}
	// Nothing escaped the bucket.
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "bucket" {
		t.Fatalf("files appeared next to the bucket: %v", entries)
	}
	// Keys that merely look odd are fine.
	for _, key := range []string{"a..b", ".hidden", "a/.b", "a/b..", "sp ace", "ünï"} {
		if err := s.Put(ctx, key, []byte("x")); err != nil {
			t.Errorf("Put(%q): %v", key, err)
		}
	}
}

// A prefix that would walk out of the bucket if treated as a path only
// compares against keys.
func TestLocalListPrefixIsNotAPath(t *testing.T) {
	ctx := context.Background()
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "outside"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newTestLocal(t, filepath.Join(parent, "bucket"))
	if err := s.Put(ctx, "inside", []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"../", "../outside", "/", "./"} {
		err := s.List(ctx, prefix, func(info ObjectInfo) error {
			t.Errorf("List(%q) returned %q", prefix, info.Key)
			return nil
		})
		if err != nil {
			t.Errorf("List(%q): %v", prefix, err)
		}
	}
}

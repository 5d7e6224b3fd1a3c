package objstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"sluice.dev/internal/uninit"
)

// ErrInvalidKey is returned (wrapped) by Local for a key it cannot map
// safely onto a file path.
var ErrInvalidKey = errors.New("objstore: invalid key")

// tempPrefix starts the name of every temp file Put writes. Keys may not
// have a segment starting with it, so a temp file can never be mistaken
// for an object, and NewLocal may delete the stale files named like it.
const tempPrefix = ".sluice-tmp-"

// staleTempAge is how long a temp file goes unmodified before NewLocal
// takes it for a crash's leftover. Several processes may share one
// directory (a playground's agents, a loadtest cluster): a temp file
// another process is writing right now must survive our start, and no Put
// leaves its temp file untouched for an hour.
const staleTempAge = time.Hour

// Local is a Store kept in a directory on a local file system: the object
// with key "a/b/c" is the file <dir>/a/b/c. It backs the playground and
// single-node setups.
//
// # Durability
//
// Put writes a temp file next to the target, fsyncs it, renames it over
// the target and fsyncs the directory. A crash at any point leaves the old
// object or the new one, never a torn one, plus perhaps a temp file, which
// a later NewLocal deletes once it is an hour old (staleTempAge). Directories a Put creates have their parent fsynced
// before the Put returns, so an acknowledged object cannot vanish with a
// directory entry that never reached the disk.
//
// # Keys
//
// A key is '/'-separated segments. Rejected with ErrInvalidKey: an empty
// key, a leading '/', empty segments ("a//b", "a/"), "." and "..", a
// segment starting with the temp-file prefix, and NUL bytes.
//
// # Limits
//
//   - A key cannot be both an object and a directory prefix of another
//     key ("a" and "a/b"), which S3 allows and a file system does not;
//     such a Put fails. Sluice's key scheme never does this.
//   - Delete leaves empty directories behind. Removing them would race
//     with a Put creating a file in the same directory (it would have to
//     retry on a directory vanishing under it); directories are key
//     prefixes, so there are few of them.
//   - One Local per directory at a time: NewLocal deletes every temp file
//     it finds, including one a live Put in another process is writing.
type Local struct {
	root string // absolute, cleaned

	// synced holds the directories (absolute paths) whose entry in their
	// parent this process has fsynced. A directory that merely exists is
	// not enough: a concurrent Put may have created it and not yet
	// fsynced its parent, or a process may have crashed in between, and
	// a Put that skipped the fsync then could acknowledge an object whose
	// directory is not durable. Each directory costs one fsync of its
	// parent once per process; then Puts into it skip the work.
	synced sync.Map // string → struct{}

	direct localDirect // O_DIRECT writes of large objects (local_direct_linux.go)
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating it if needed) the directory dir as a bucket and
// deletes temp files left behind by a crash.
func NewLocal(dir string) (*Local, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("objstore: local dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("objstore: local dir: %w", err)
	}
	if err := syncDir(filepath.Dir(root)); err != nil {
		return nil, fmt.Errorf("objstore: local dir: %w", err)
	}
	l := &Local{root: root}
	l.synced.Store(root, struct{}{})
	if err := l.removeTempFiles(); err != nil {
		return nil, fmt.Errorf("objstore: local dir %q: removing temp files: %w", root, err)
	}
	return l, nil
}

// Dir returns the directory the bucket lives in.
func (l *Local) Dir() string { return l.root }

func (l *Local) removeTempFiles() error {
	cutoff := time.Now().Add(-staleTempAge)
	return filepath.WalkDir(l.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tempPrefix) {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed or removed by its writer meanwhile
		}
		if err != nil {
			return err
		}
		if info.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// path maps a key to its file, or says why the key is refused.
func (l *Local) path(key string) (string, error) {
	if key == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if strings.IndexByte(key, 0) >= 0 || (filepath.Separator != '/' && strings.ContainsRune(key, filepath.Separator)) {
		return "", fmt.Errorf("%w: %q has a forbidden character", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			// Covers a leading '/', a trailing '/' and "//".
			return "", fmt.Errorf("%w: %q has an empty segment", ErrInvalidKey, key)
		case seg == "." || seg == "..":
			return "", fmt.Errorf("%w: %q has a %q segment", ErrInvalidKey, key, seg)
		case strings.HasPrefix(seg, tempPrefix):
			return "", fmt.Errorf("%w: %q looks like a temp file", ErrInvalidKey, key)
		}
	}
	return filepath.Join(l.root, filepath.FromSlash(key)), nil
}

// notFound reports whether err from opening a key's path means there is no
// such object: ENOTDIR comes up when a prefix of the key is a file.
func notFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, data []byte) error {
	return l.put(ctx, key, func(f *os.File) error { return l.writeObject(f, data) })
}

// PutReader implements Store. It copies r into the temp file as it reads,
// so it holds one copy buffer whatever size is.
func (l *Local) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	if size < 0 {
		return fmt.Errorf("objstore: put %q: negative size %d", key, size)
	}
	if v, ok := r.(*Parts); ok {
		// A vector of known size: each slice is written straight into the
		// file, with no copy through a buffer of our own.
		if v.Len() != size {
			return fmt.Errorf("objstore: put %q: %w: %d bytes given for size %d", key, errSizeMismatch, v.Len(), size)
		}
		return l.put(ctx, key, func(f *os.File) error {
			_, err := v.WriteTo(f)
			return err
		})
	}
	return l.put(ctx, key, func(f *os.File) error {
		cr := ctxReader{ctx, r}
		n, err := io.Copy(f, io.LimitReader(cr, size))
		if err != nil {
			return shortRead(n, err)
		}
		if n < size {
			return shortRead(n, io.EOF)
		}
		return checkDrained(cr, n)
	})
}

// put writes a new object through write, atomically: see Local.
func (l *Local) put(ctx context.Context, key string, write func(*os.File) error) (err error) {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := l.ensureDir(dir); err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = os.Remove(tmp)
		}
		if err != nil {
			err = fmt.Errorf("objstore: put %q: %w", key, err)
		}
	}()
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// The last moment at which cancelling still means "nothing changed".
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		return err
	}
	renamed = true
	// Without this the rename may not survive a crash even though Put
	// returned nil.
	return syncDir(dir)
}

// ensureDir creates dir and its missing ancestors below the root, and
// makes each one's directory entry durable (see Local.synced).
func (l *Local) ensureDir(dir string) error {
	if _, ok := l.synced.Load(dir); ok {
		return nil
	}
	parent := filepath.Dir(dir)
	if dir == l.root || parent == dir || !strings.HasPrefix(dir, l.root) {
		// Never reached for paths built by l.path; it keeps a bug from
		// walking up to the file system root.
		panic(fmt.Sprintf("BUG: objstore: ensureDir(%q) outside root %q", dir, l.root))
	}
	if err := l.ensureDir(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		if fi, err := os.Stat(dir); err != nil {
			return err
		} else if !fi.IsDir() {
			return fmt.Errorf("%q is an object, not a directory", dir)
		}
	}
	// Fsync the parent even when the directory already existed: whoever
	// created it may not have done so yet.
	if err := syncDir(parent); err != nil {
		return err
	}
	l.synced.Store(dir, struct{}{})
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// GetRange implements Store. It reads with pread (File.ReadAt). Objects
// are replaced by rename, so an open file never changes under a reader: a
// GetRange racing an overwrite reads the old object or the new one whole.
func (l *Local) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	p, err := l.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		if notFound(err) {
			return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
		}
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("objstore: get %q: %w", key, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	n, err := resolveRange(key, fi.Size(), off, length)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []byte{}, nil
	}
	// ReadAt returns a non-nil error whenever it reads less than asked,
	// so a nil error means exactly n bytes: buf is not cleared first
	// (internal/uninit), and is dropped on any error.
	buf := uninit.Bytes(int(n))[:n]
	if _, err := f.ReadAt(buf, off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("objstore: get %q [%d, +%d): %w", key, off, n, err)
	}
	return buf, nil
}

// Head implements Store.
func (l *Local) Head(ctx context.Context, key string) (ObjectInfo, error) {
	p, err := l.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if notFound(err) {
			return ObjectInfo{}, fmt.Errorf("%w: %q", ErrNotFound, key)
		}
		return ObjectInfo{}, fmt.Errorf("objstore: head %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return ObjectInfo{}, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements Store. The directory is fsynced afterwards so that a
// deleted object does not come back after a crash.
func (l *Local) Delete(ctx context.Context, key string) error {
	p, err := l.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	if fi.IsDir() {
		// A key prefix, not an object: there is no object to delete, and
		// os.Remove would remove an empty directory.
		return nil
	}
	if err := os.Remove(p); err != nil && !notFound(err) {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("objstore: delete %q: %w", key, err)
	}
	return nil
}

// List implements Store. It streams: a directory is read only when keys
// under it can match prefix, and entries are visited in key order without
// collecting the whole listing first.
func (l *Local) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := l.list(ctx, l.root, "", prefix, fn)
	return err
}

// list walks the directory dir, whose keys all start with rel ("" or
// "a/b/"), and reports done once it met a key sorting after every possible
// match, so the caller can stop too.
//
// Lexical key order is not file-name order: for "a-c" and the directory
// "a" holding "a/b", the key "a-c" sorts first because '-' < '/'. So each
// directory's entries are sorted by the key they stand for, a directory by
// the prefix of its keys ("a/"); then a depth-first walk emits keys in
// order. Keys are unique, and "a" and "a/" cannot both exist, so the sort
// has no ties.
func (l *Local) list(ctx context.Context, dir, rel, prefix string, fn func(ObjectInfo) error) (done bool, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if rel != "" && notFound(err) {
			return false, nil // removed by hand under us; nothing to list
		}
		return false, fmt.Errorf("objstore: list %q: %w", prefix, err)
	}
	type entry struct {
		key string // the object's key, or for a directory its keys' prefix
		de  fs.DirEntry
	}
	sorted := make([]entry, 0, len(entries))
	for _, de := range entries {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			continue
		case de.IsDir():
			sorted = append(sorted, entry{rel + name + "/", de})
		case de.Type().IsRegular():
			sorted = append(sorted, entry{rel + name, de})
		}
	}
	slices.SortFunc(sorted, func(a, b entry) int { return cmp.Compare(a.key, b.key) })
	for _, e := range sorted {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		switch {
		case e.de.IsDir() && (strings.HasPrefix(e.key, prefix) || strings.HasPrefix(prefix, e.key)):
			if done, err := l.list(ctx, filepath.Join(dir, e.de.Name()), e.key, prefix, fn); done || err != nil {
				return done, err
			}
		case !e.de.IsDir() && strings.HasPrefix(e.key, prefix):
			info, err := e.de.Info()
			if err != nil {
				if notFound(err) {
					continue // deleted since ReadDir
				}
				return false, fmt.Errorf("objstore: list %q: %w", prefix, err)
			}
			if err := fn(ObjectInfo{Key: e.key, Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return false, err
			}
		case e.key > prefix:
			// No match and past the prefix: nothing after it matches.
			return true, nil
		}
	}
	return false, nil
}

// Close implements Store. Local holds no open files between calls.
func (l *Local) Close() error { return nil }

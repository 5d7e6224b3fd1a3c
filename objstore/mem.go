package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// errEmptyKey is returned by Memory for an empty key, which no real bucket
// accepts either.
var errEmptyKey = errors.New("objstore: empty key")

// Memory is a Store held in a map, for unit tests. It copies data in and
// out, so a test that reuses its buffers sees the same behaviour as with a
// real bucket. Any non-empty key is accepted; see Local for the stricter
// rules of a directory. An object's ModTime is the store's clock at its
// Put (time.Now unless SetClock replaced it).
type Memory struct {
	mu      sync.RWMutex
	objects map[string]memObject // guarded by mu; values are never modified, only replaced
	now     func() time.Time     // guarded by mu
}

// memObject is one stored object; data is private and immutable.
type memObject struct {
	data    []byte
	modTime time.Time
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{objects: make(map[string]memObject), now: time.Now}
}

// SetClock makes later Puts stamp objects with now() instead of
// time.Now, so that a test of age-based logic (orphan GC's grace) can move
// time without waiting. now must be safe to call from any goroutine.
func (m *Memory) SetClock(now func() time.Time) {
	m.mu.Lock()
	m.now = now
	m.mu.Unlock()
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errEmptyKey
	}
	// Copy before taking the lock: the map holds only private, immutable
	// slices, which is what lets GetRange copy out under a read lock.
	v := slices.Clone(data)
	if v == nil {
		v = []byte{}
	}
	m.mu.Lock()
	m.objects[key] = memObject{data: v, modTime: m.now()}
	m.mu.Unlock()
	return nil
}

// PutReader implements Store; it reads the whole object into memory
// first, which a test store may.
func (m *Memory) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return errEmptyKey
	}
	v, err := readSized(ctxReader{ctx, r}, size)
	if err != nil {
		return fmt.Errorf("objstore: put %q: %w", key, err)
	}
	m.mu.Lock()
	m.objects[key] = memObject{data: v, modTime: m.now()}
	m.mu.Unlock()
	return nil
}

// GetRange implements Store.
func (m *Memory) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	v := obj.data
	n, err := resolveRange(key, int64(len(v)), off, length)
	if err != nil {
		return nil, err
	}
	// v is immutable once stored, so copying outside the lock is safe.
	return slices.Clone(v[off : off+n : off+n]), nil
}

// Head implements Store.
func (m *Memory) Head(ctx context.Context, key string) (ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.RLock()
	obj, ok := m.objects[key]
	m.mu.RUnlock()
	if !ok {
		return ObjectInfo{}, fmt.Errorf("%w: %q", ErrNotFound, key)
	}
	return ObjectInfo{Key: key, Size: int64(len(obj.data)), ModTime: obj.modTime}, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objects, key)
	m.mu.Unlock()
	return nil
}

// List implements Store. It takes a snapshot first and calls fn with no
// lock held, so fn may call back into the store.
func (m *Memory) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var infos []ObjectInfo
	m.mu.RLock()
	for k, obj := range m.objects {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, ObjectInfo{Key: k, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Close implements Store; the objects stay readable, which tests that
// "reopen" a store by reusing the value rely on.
func (m *Memory) Close() error { return nil }

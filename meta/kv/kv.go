package kv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// KV is the durable store under a Service: named buckets of byte keys
// kept in byte order. A Service reads all of it once, at Open (View), and
// afterwards only writes it, one Update per commit group. Two stores
// implement it: the embedded bbolt file (OpenBolt) and PostgreSQL
// (OpenPostgres); the same test suite runs against both.
//
// An Update is atomic and durable when it returns nil: all of its writes
// or none of them. The keys and values handed to Put must stay unchanged
// until Update returns (the committer builds them in one arena).
type KV interface {
	View(fn func(KVTx) error) error
	Update(fn func(KVTx) error) error
	Close() error
	// String names the store for log lines (a path, or a database and
	// cluster); it never includes a password.
	String() string
}

// KVTx is one transaction of a KV. Get returns nil for a missing key;
// the returned slice is only valid inside the transaction. ForEach walks
// a bucket in key order. In an Update, Get sees the transaction's own
// earlier writes; ForEach is only used by View.
type KVTx interface {
	Get(bucket, key []byte) ([]byte, error)
	Put(bucket, key, value []byte) error
	Delete(bucket, key []byte) error
	DeletePrefix(bucket, prefix []byte) error
	ForEach(bucket []byte, fn func(k, v []byte) error) error
}

// boltKV is the embedded store: one bbolt file.
type boltKV struct{ db *bbolt.DB }

// OpenBolt opens (creating if needed) the embedded store, the file
// meta.db in dir.
func OpenBolt(dir string) (KV, error) {
	if dir == "" {
		return nil, errors.New("meta: no store directory: name the directory for the embedded store (--data-dir or --store)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("meta: create store directory: %w", err)
	}
	path := filepath.Join(dir, boltFile)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		// Another process holding the file lock is an operator error;
		// say so instead of hanging.
		Timeout: 2 * time.Second,
		// The map freelist and not syncing it make each commit write
		// fewer pages; the price is a freelist scan at Open. etcd runs
		// bbolt this way.
		FreelistType:   bbolt.FreelistMapType,
		NoFreelistSync: true,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("meta: open %s: another process holds it (is a second sluice running on this directory?)", path)
		}
		return nil, fmt.Errorf("meta: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("meta: init %s: %w", path, err)
	}
	return &boltKV{db: db}, nil
}

func (b *boltKV) String() string { return b.db.Path() }
func (b *boltKV) Close() error   { return b.db.Close() }

func (b *boltKV) View(fn func(KVTx) error) error {
	return b.db.View(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

func (b *boltKV) Update(fn func(KVTx) error) error {
	return b.db.Update(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

type boltTx struct{ tx *bbolt.Tx }

func (t boltTx) bucket(name []byte) (*bbolt.Bucket, error) {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("meta: no bucket %q", name)
	}
	if string(name) == string(BucketSegments) || string(name) == string(BucketIndex) {
		// Keys of these buckets mostly grow, so pages fill from the
		// left; fill them up instead of splitting them in half.
		b.FillPercent = 0.9
	}
	return b, nil
}

func (t boltTx) Get(bucket, key []byte) ([]byte, error) {
	b, err := t.bucket(bucket)
	if err != nil {
		return nil, err
	}
	return b.Get(key), nil
}

func (t boltTx) Put(bucket, key, value []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

func (t boltTx) Delete(bucket, key []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

func (t boltTx) DeletePrefix(bucket, prefix []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	var keys [][]byte
	cur := b.Cursor()
	for k, _ := cur.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix); k, _ = cur.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.ForEach(fn)
}

// Package objstore puts object storage behind one small interface.
//
// Semantics every implementation keeps (the shared suite in
// objstore_test.go checks them against each one):
//
//   - Put (and PutReader) is atomic: after it returns nil the whole object is readable; a
//     failed or cancelled Put leaves either no object or the previous one,
//     never a partial one. (A failure reported after the store applied the
//     write, like a lost reply from S3, leaves the new object: callers that
//     retry must be ready to find it. Faulty can inject exactly this.)
//   - GetRange never returns a partial read: it returns exactly the bytes
//     asked for, or an error. A range past the end is an error wrapping
//     io.ErrUnexpectedEOF (an empty range ending exactly at the end is
//     fine); a missing key is an error wrapping ErrNotFound.
//   - Data passed to Put and returned by GetRange is never shared with the
//     store: the caller may reuse or modify it.
//   - Delete of a missing key is not an error (deletes are retried).
//   - List walks keys with a prefix in lexical order.
//
// Keys that are portable across every store: '/'-separated non-empty
// segments, and never a key that is also a directory prefix of another
// ("a" and "a/b"). S3 allows the latter; file-system-backed stores refuse
// the second Put: Local, and S3 gateways on a POSIX file system such as
// versitygw (409 ObjectParentIsFile or ExistingObjectIsDirectory), which
// is what a BYOC user may well run. Sluice's key scheme never makes one.
//
// Only agents hold an objstore.Store; the control plane never does.
//
// # Files
//
//	objstore.go  Store, ObjectInfo, ErrNotFound: the contract
//	range.go     range checking shared by the implementations
//	sized.go     PutReader's "exactly size bytes" checks, shared
//	local.go     Local, a directory as a bucket (playground, single node)
//	mem.go       Memory, a map, for unit tests
//	s3.go        S3, an S3 bucket through aws-sdk-go-v2 (multipart, retries, timeouts)
//	url.go       Open, the bucket URL of --bucket: file://, s3://, mem://
//	faulty.go    Faulty, a fault- and latency-injecting wrapper for tests
//	metrics.go   Instrument, a wrapper counting requests, errors, bytes, latency
package objstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (possibly wrapped) when a key does not exist.
var ErrNotFound = errors.New("objstore: object not found")

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key  string
	Size int64
	// ModTime is when the object was last written, as the store reports
	// it: S3's LastModified (whole seconds from HeadObject, milliseconds
	// from a listing), a file's mtime, Memory's clock at Put. It comes
	// from the store's clock, not the caller's, so an age computed from
	// it against the caller's clock is off by their skew; orphan GC uses
	// it as one of two age checks for that reason, with a grace far
	// above any plausible skew.
	ModTime time.Time
}

// Store is the object storage boundary.
type Store interface {
	// Put stores data under key, replacing any previous object.
	Put(ctx context.Context, key string, data []byte) error
	// PutReader stores the size bytes r yields under key, atomically
	// like Put, for an object assembled from many pieces (a compacted
	// object from many source ranges: io.MultiReader of bytes.Readers,
	// or readers that fetch each range when reached) without
	// concatenating them first. r must yield exactly size bytes and then
	// io.EOF: fewer is an error wrapping io.ErrUnexpectedEOF, more is an
	// error, and a read error is returned wrapped; each leaves no new
	// object. r is read once, in order, and not after PutReader returns.
	// The store's memory for it is bounded whatever size is (S3: one
	// part per part in flight; Memory, for tests, holds the object).
	PutReader(ctx context.Context, key string, r io.Reader, size int64) error
	// GetRange reads length bytes starting at off. length < 0 reads to
	// the end of the object.
	GetRange(ctx context.Context, key string, off, length int64) ([]byte, error)
	// Head returns the object's size and modification time.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for each key starting with prefix, in lexical order,
	// stopping at the first error fn returns.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Close releases resources.
	Close() error
}

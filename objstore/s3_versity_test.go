package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"sluice.dev/internal/s3test"
)

// These tests run objstore.S3 against versitygw, an S3 gateway used in
// production (internal/s3test), where s3_test.go uses gofakes3: real S3
// behaviour that gofakes3 does not reproduce shows up here.

func versityConfig(gw *s3test.Server, bucket, prefix string) S3Config {
	return S3Config{
		Bucket:         bucket,
		Prefix:         prefix,
		Region:         gw.Region,
		Endpoint:       gw.Endpoint,
		PathStyle:      true,
		RequestTimeout: 30 * time.Second, // a loaded CI machine, -race, multipart
		MaxAttempts:    3,
		MaxBackoff:     50 * time.Millisecond,
		Credentials:    gw.Credentials(),
	}
}

// openVersityScheme runs versitygw over scheme ("http" or "https") and
// returns a store on its bucket under prefix, closed when the test ends.
// Over HTTPS the SDK trusts the gateway's test CA through AWS_CA_BUNDLE,
// which NewS3's AWS chain reads.
func openVersityScheme(tb testing.TB, scheme, prefix string) *S3 {
	tb.Helper()
	gw := s3test.Start
	if scheme == "https" {
		gw = s3test.StartTLS
	}
	srv := gw(tb)
	if srv.CAFile != "" {
		tb.Setenv("AWS_CA_BUNDLE", srv.CAFile)
	}
	s, err := NewS3(context.Background(), versityConfig(srv, srv.Bucket, prefix))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func openVersity(t *testing.T, cfg S3Config) *S3 {
	t.Helper()
	s, err := NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3Versity(t *testing.T) {
	gw := s3test.Start(t)
	var n atomic.Int64
	t.Run("Prefixed", func(t *testing.T) {
		testStore(t, func(t *testing.T) Store {
			return openVersity(t, versityConfig(gw, gw.Bucket, fmt.Sprintf("run%d/", n.Add(1))))
		})
	})
	// No prefix and two keys a page, so that every List paginates, in a
	// bucket of its own per store.
	t.Run("PagedListing", func(t *testing.T) {
		testStore(t, func(t *testing.T) Store {
			bucket := fmt.Sprintf("paged-%d", n.Add(1))
			gw.CreateBucket(t, bucket)
			cfg := versityConfig(gw, bucket, "")
			cfg.ListPageSize = 2
			return openVersity(t, cfg)
		})
	})
}

// TestS3VersityListPages lists more keys than S3's own page of 1,000, with
// the default page size, across a prefix boundary.
func TestS3VersityListPages(t *testing.T) {
	if testing.Short() {
		t.Skip("1,100 PUTs")
	}
	gw := s3test.Start(t)
	s := openVersity(t, versityConfig(gw, gw.Bucket, "pages/"))
	defer s.Close()
	ctx := context.Background()
	const n = 1100
	// Puts in parallel, bounded, to keep the test short.
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- s.Put(ctx, fmt.Sprintf("k/%05d", i), []byte{byte(i)})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "l", []byte("outside k/")); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := s.List(ctx, "k/", func(info ObjectInfo) error {
		if info.Size != 1 || info.ModTime.IsZero() {
			return fmt.Errorf("%q: size %d, ModTime %v", info.Key, info.Size, info.ModTime)
		}
		got = append(got, info.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("listed %d keys, want %d", len(got), n)
	}
	for i, k := range got {
		if want := fmt.Sprintf("k/%05d", i); k != want {
			t.Fatalf("key %d = %q, want %q", i, k, want)
		}
	}
}

// TestS3VersityMultipart puts objects over the multipart threshold: parts
// of S3's minimum size with a short last part, read back whole and across
// part boundaries.
func TestS3VersityMultipart(t *testing.T) {
	gw := s3test.Start(t)
	cfg := versityConfig(gw, gw.Bucket, "mp/")
	cfg.MultipartThreshold = 5 << 20
	cfg.PartSize = 5 << 20
	s := openVersity(t, cfg)
	defer s.Close()
	ctx := context.Background()
	data := randBytes(11, 3*(5<<20)+12345)
	start := time.Now()
	if err := s.Put(ctx, "big", data); err != nil {
		t.Fatal(err)
	}
	t.Logf("multipart put of %d bytes in %v", len(data), time.Since(start).Round(time.Millisecond))
	got, err := s.GetRange(ctx, "big", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (equal=%v), %v", len(got), bytes.Equal(got, data), err)
	}
	for _, off := range []int64{5<<20 - 10, 2*(5<<20) - 1, int64(len(data)) - 20} {
		if got, err := s.GetRange(ctx, "big", off, 20); err != nil || !bytes.Equal(got, data[off:off+20]) {
			t.Fatalf("range at %d: %v", off, err)
		}
	}
	if info, err := s.Head(ctx, "big"); err != nil || info.Size != int64(len(data)) || info.ModTime.IsZero() {
		t.Fatalf("Head = %+v, %v", info, err)
	}
	// PutReader from pieces that straddle part boundaries.
	var readers []io.Reader
	for off := 0; off < len(data); off += 1_000_003 {
		readers = append(readers, bytes.NewReader(data[off:min(off+1_000_003, len(data))]))
	}
	if err := s.PutReader(ctx, "assembled", io.MultiReader(readers...), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRange(ctx, "assembled", 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("PutReader read back %d bytes (equal=%v), %v", len(got), bytes.Equal(got, data), err)
	}
	// A reader one byte short fails after parts went up; the upload is
	// aborted.
	if err := s.PutReader(ctx, "short", bytes.NewReader(data[1:]), int64(len(data))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short PutReader = %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := s.Head(ctx, "short"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head after a short PutReader = %v", err)
	}
	// No upload left open.
	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &cfg.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
	}
}

// TestS3VersityPutMemory checks that a large Put sends its parts from the
// caller's slice and that PutReader holds at most PartConcurrency part
// buffers, whatever the object's size. The figures are this process's
// allocations during the call (versitygw is another process); the SDK's
// own per-request garbage is small next to a part.
//
// Before putMultipart replaced the SDK's transfer manager, a Put of
// 64 MiB or 256 MiB allocated about 75 MiB: (Concurrency+1) part buffers
// plus the first 16 MiB read with io.ReadAll.
func TestS3VersityPutMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB uploads")
	}
	gw := s3test.Start(t)
	cfg := versityConfig(gw, gw.Bucket, "mem/")
	s := openVersity(t, cfg)
	defer s.Close()
	ctx := context.Background()
	const size = 64 << 20
	data := randBytes(5, size)
	allocated := func(f func() error) uint64 {
		t.Helper()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := f(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	part := uint64(DefaultPartSize)
	put := allocated(func() error { return s.Put(ctx, "put", data) })
	t.Logf("Put of %d MiB allocated %.1f MiB", size>>20, float64(put)/(1<<20))
	if put > part {
		t.Errorf("Put of %d MiB allocated %d bytes, more than one part (%d): it copies the caller's data", size>>20, put, part)
	}
	var readers []io.Reader
	for off := 0; off < size; off += 3 << 20 {
		readers = append(readers, bytes.NewReader(data[off:min(off+3<<20, size)]))
	}
	pr := allocated(func() error { return s.PutReader(ctx, "putreader", io.MultiReader(readers...), size) })
	t.Logf("PutReader of %d MiB allocated %.1f MiB", size>>20, float64(pr)/(1<<20))
	if limit := (DefaultPartConcurrency + 1) * part; pr > limit {
		t.Errorf("PutReader of %d MiB allocated %d bytes, more than PartConcurrency+1 parts (%d)", size>>20, pr, limit)
	}
	// The next upload reuses those buffers. The first upload holds as
	// many at once as its parts' timing asks, up to PartConcurrency: in
	// one CI run under -race it allocated 24.8 MiB (three parts), and
	// the second upload, needing a fourth at once, 8.8 MiB. So an upload
	// over the bound is given one more try: buffers not reused would cost
	// parts on every upload.
	var again uint64
	for try := range 2 {
		readers = readers[:0]
		for off := 0; off < size; off += 3 << 20 {
			readers = append(readers, bytes.NewReader(data[off:min(off+3<<20, size)]))
		}
		again = allocated(func() error { return s.PutReader(ctx, "putreader", io.MultiReader(readers...), size) })
		t.Logf("PutReader %d after the first, of %d MiB, allocated %.1f MiB", try+1, size>>20, float64(again)/(1<<20))
		if again <= part {
			break
		}
	}
	if again > part {
		t.Errorf("PutReaders after the first allocated %d bytes, more than one part (%d): part buffers are not reused", again, part)
	}
	for _, key := range []string{"put", "putreader"} {
		if got, err := s.GetRange(ctx, key, size-100, 100); err != nil || !bytes.Equal(got, data[size-100:]) {
			t.Fatalf("%s: tail read back: %v", key, err)
		}
	}
}

// TestS3VersityFailedUploadIsAborted fails parts of a multipart upload at
// the HTTP layer (faultProxy in front of versitygw): the upload is aborted
// and the gateway holds no open upload and no object afterwards, and a
// transient part failure is retried into a whole object.
func TestS3VersityFailedUploadIsAborted(t *testing.T) {
	gw := s3test.Start(t)
	proxy := newFaultProxy(gw.Endpoint, 5*time.Second)
	psrv := httptest.NewServer(proxy)
	defer psrv.Close()
	cfg := versityConfig(gw, gw.Bucket, "abort/")
	cfg.Endpoint = psrv.URL
	cfg.MultipartThreshold = 5 << 20
	cfg.PartSize = 5 << 20
	s := openVersity(t, cfg)
	defer s.Close()
	ctx := context.Background()
	data := randBytes(12, 3*(5<<20)+1)

	proxy.add(faultRule{kind: "PART", fault: fault500, n: -1})
	err := s.Put(ctx, "doomed", data)
	proxy.clear()
	if err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("Put with every part failing = %v", err)
	}
	if got := proxy.count("ABORT-MPU"); got != 1 {
		t.Errorf("%d aborts, want 1 (%s)", got, proxy.summary())
	}
	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &cfg.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open on the gateway", len(uploads.Uploads))
	}
	if _, err := s.Head(ctx, "doomed"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head of a failed upload = %v, want ErrNotFound", err)
	}

	proxy.resetCounts()
	proxy.add(faultRule{kind: "PART", fault: faultSlowDown, n: 1}, faultRule{kind: "PART", fault: faultDrop, n: 1})
	defer proxy.clear()
	if err := s.Put(ctx, "retried", data); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRange(ctx, "retried", 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back after retried parts: %d bytes, %v", len(got), err)
	}
	t.Logf("requests: %s", proxy.summary())
}

// TestOpenVersity opens the gateway by the URL s3test hands out, with
// credentials from the environment, as `sluice agent --bucket` would.
func TestOpenVersity(t *testing.T) {
	gw := s3test.Start(t)
	gw.SetEnv(t)
	ctx := context.Background()
	st, err := Open(ctx, gw.URL("sluice/dev"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Put(ctx, "segments/ab/01.seg", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := gw.Objects(t, gw.Bucket); len(got) != 1 || got[0] != "sluice/dev/segments/ab/01.seg" {
		t.Fatalf("bucket holds %q, want the object under the URL's prefix", got)
	}
}

// TestS3VersityTLS: the store against a gateway serving HTTPS, as S3 is in
// production. Over TLS the SDK sends bodies unsigned with a trailing
// CRC32 in aws-chunked encoding, a different request shape from plain
// HTTP's signed payload: the whole Store contract, a multipart upload and
// a PutReader must hold with it too.
func TestS3VersityTLS(t *testing.T) {
	gw := s3test.StartTLS(t)
	t.Setenv("AWS_CA_BUNDLE", gw.CAFile) // how NewS3's AWS chain trusts a private CA
	var n atomic.Int64
	testStore(t, func(t *testing.T) Store {
		return openVersity(t, versityConfig(gw, gw.Bucket, fmt.Sprintf("tls%d/", n.Add(1))))
	})

	cfg := versityConfig(gw, gw.Bucket, "tls-mp/")
	cfg.MultipartThreshold, cfg.PartSize = 5<<20, 5<<20
	s := openVersity(t, cfg)
	defer s.Close()
	ctx := context.Background()
	data := randBytes(12, 2*(5<<20)+777)
	if err := s.Put(ctx, "big", data); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReader(ctx, "small", bytes.NewReader(data[:4321]), 4321); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][]byte{"big": data, "small": data[:4321]} {
		if got, err := s.GetRange(ctx, key, 0, -1); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s read back %d bytes (equal=%v), %v", key, len(got), bytes.Equal(got, want), err)
		}
	}

	// Without the CA the gateway's certificate is refused: the test
	// really is talking TLS.
	t.Setenv("AWS_CA_BUNDLE", "")
	untrusted := openVersity(t, versityConfig(gw, gw.Bucket, "tls-untrusted/"))
	defer untrusted.Close()
	if err := untrusted.Put(ctx, "x", []byte("x")); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Put without the CA = %v, want a certificate error", err)
	}
}

package objstore

import (
	"bytes"
	"context"
	"fmt"
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
	// No upload left open.
	uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &cfg.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
	}
}

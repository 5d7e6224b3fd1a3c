package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// These tests run the real SDK, signing with SigV4, against gofakes3 (an
// S3 protocol server with an in-memory backend) on 127.0.0.1, through
// faultProxy, which injects faults at the HTTP layer.

const testBucket = "sluice-test"

// fakeS3 is one gofakes3 server and the fault proxy in front of it.
type fakeS3 struct {
	backend *s3mem.Backend
	proxy   *faultProxy
	url     string // the proxy's; stores talk to it
}

func startFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	proxy := newFaultProxy(srv.URL, 5*time.Second)
	psrv := httptest.NewServer(proxy)
	t.Cleanup(psrv.Close)
	return &fakeS3{backend: backend, proxy: proxy, url: psrv.URL}
}

// config returns a store configuration for the fake with test-sized
// backoff and a timeout generous enough for a loaded machine running
// -race; TestS3Faults shortens it to stall requests quickly.
func (f *fakeS3) config(prefix string) S3Config {
	return S3Config{
		Bucket:         testBucket,
		Prefix:         prefix,
		Region:         "us-east-1",
		Endpoint:       f.url,
		PathStyle:      true,
		RequestTimeout: 5 * time.Second,
		MaxAttempts:    4,
		MaxBackoff:     10 * time.Millisecond,
		Credentials:    credentials.NewStaticCredentialsProvider("AKIDSLUICETEST", "secret", ""),
	}
}

func (f *fakeS3) open(t *testing.T, cfg S3Config) *S3 {
	t.Helper()
	s, err := NewS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3(t *testing.T) {
	f := startFakeS3(t)
	var n atomic.Int64
	t.Run("Prefixed", func(t *testing.T) {
		testStore(t, func(t *testing.T) Store {
			return f.open(t, f.config(fmt.Sprintf("run%d/", n.Add(1))))
		})
	})
	// No prefix and two keys a page, so that every List paginates. Each
	// store gets an empty bucket of its own.
	t.Run("PagedListing", func(t *testing.T) {
		testStore(t, func(t *testing.T) Store {
			bucket := fmt.Sprintf("paged-%d", n.Add(1))
			if err := f.backend.CreateBucket(bucket); err != nil {
				t.Fatal(err)
			}
			cfg := f.config("")
			cfg.Bucket = bucket
			cfg.ListPageSize = 2
			return f.open(t, cfg)
		})
	})
	t.Run("Instrumented", func(t *testing.T) {
		testStore(t, func(t *testing.T) Store {
			return Instrument(f.open(t, f.config(fmt.Sprintf("run%d/", n.Add(1)))))
		})
	})
	t.Logf("requests for three runs of the suite: %s", f.proxy.summary())
}

func TestS3Requests(t *testing.T) {
	// What each operation costs in requests, which the cost figures in
	// BENCHMARKS.md build on.
	f := startFakeS3(t)
	s := f.open(t, f.config("p/"))
	defer s.Close()
	ctx := context.Background()
	data := randBytes(7, 4096)
	steps := []struct {
		name string
		do   func() error
		want map[string]int
	}{
		{"Put", func() error { return s.Put(ctx, "k", data) }, map[string]int{"PUT": 1}},
		{"GetRange", func() error { _, err := s.GetRange(ctx, "k", 100, 200); return err }, map[string]int{"GET": 1}},
		{"GetWhole", func() error { _, err := s.GetRange(ctx, "k", 0, -1); return err }, map[string]int{"GET": 1}},
		{"GetTail", func() error { _, err := s.GetRange(ctx, "k", 4000, -1); return err }, map[string]int{"GET": 1}},
		{"GetEmptyAtEnd", func() error { _, err := s.GetRange(ctx, "k", 4096, -1); return err }, map[string]int{"GET": 1, "HEAD": 1}},
		{"Head", func() error { _, err := s.Head(ctx, "k"); return err }, map[string]int{"HEAD": 1}},
		{"List", func() error { return s.List(ctx, "", func(ObjectInfo) error { return nil }) }, map[string]int{"LIST": 1}},
		{"Delete", func() error { return s.Delete(ctx, "k") }, map[string]int{"DELETE": 1}},
	}
	for _, st := range steps {
		f.proxy.resetCounts()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for kind, want := range st.want {
			if got := f.proxy.count(kind); got != want {
				t.Errorf("%s: %d %s requests, want %d (%s)", st.name, got, kind, want, f.proxy.summary())
			}
		}
		if got := f.proxy.summary(); strings.Count(got, "=") != len(st.want) {
			t.Errorf("%s: requests %s, want only %v", st.name, got, st.want)
		}
	}
}

func TestS3Multipart(t *testing.T) {
	f := startFakeS3(t)
	cfg := f.config("mp/")
	cfg.MultipartThreshold = 5 << 20
	cfg.PartSize = 5 << 20
	cfg.PartConcurrency = 4
	s := f.open(t, cfg)
	defer s.Close()
	ctx := context.Background()

	// Four parts, the last one short.
	data := randBytes(11, 3*(5<<20)+12345)
	if err := s.Put(ctx, "big", data); err != nil {
		t.Fatal(err)
	}
	t.Logf("multipart put of %d bytes: %s; peak parts in flight %d", len(data), f.proxy.summary(), f.proxy.maxInflight.Load())
	for kind, want := range map[string]int{"CREATE-MPU": 1, "PART": 4, "COMPLETE-MPU": 1, "PUT": 0, "ABORT-MPU": 0} {
		if got := f.proxy.count(kind); got != want {
			t.Errorf("%d %s requests, want %d", got, kind, want)
		}
	}
	if peak := f.proxy.maxInflight.Load(); peak < 2 {
		t.Errorf("at most %d part uploads were in flight at once, want them in parallel", peak)
	}
	got, err := s.GetRange(ctx, "big", 0, -1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes (equal=%v), %v", len(got), bytes.Equal(got, data), err)
	}
	// A range across a part boundary.
	if got, err := s.GetRange(ctx, "big", 5<<20-10, 20); err != nil || !bytes.Equal(got, data[5<<20-10:5<<20+10]) {
		t.Fatalf("range across parts: %v", err)
	}
	if info, err := s.Head(ctx, "big"); err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Head = %+v, %v", info, err)
	}
	// Just below the threshold is one PutObject.
	f.proxy.resetCounts()
	if err := s.Put(ctx, "small", data[:5<<20-1]); err != nil {
		t.Fatal(err)
	}
	if f.proxy.count("PUT") != 1 || f.proxy.count("CREATE-MPU") != 0 {
		t.Errorf("below the threshold: %s, want one PUT", f.proxy.summary())
	}

	// PutReader from many pieces whose boundaries do not fall on part
	// boundaries: the same requests as Put, parts in parallel, and never
	// more part buffers than PartConcurrency.
	t.Run("PutReader", func(t *testing.T) {
		f.proxy.resetCounts()
		var readers []io.Reader
		for off := 0; off < len(data); off += 777_777 {
			readers = append(readers, bytes.NewReader(data[off:min(off+777_777, len(data))]))
		}
		if err := s.PutReader(ctx, "assembled", io.MultiReader(readers...), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		for kind, want := range map[string]int{"CREATE-MPU": 1, "PART": 4, "COMPLETE-MPU": 1, "PUT": 0, "ABORT-MPU": 0} {
			if got := f.proxy.count(kind); got != want {
				t.Errorf("%d %s requests, want %d (%s)", got, kind, want, f.proxy.summary())
			}
		}
		if got, err := s.GetRange(ctx, "assembled", 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (equal=%v), %v", len(got), bytes.Equal(got, data), err)
		}
	})
	// A reader that ends early after some parts went up: the upload is
	// aborted, nothing appears, no upload stays open.
	t.Run("PutReaderShortIsAborted", func(t *testing.T) {
		f.proxy.resetCounts()
		err := s.PutReader(ctx, "short", bytes.NewReader(data[:len(data)-1]), int64(len(data)))
		if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), `"short"`) {
			t.Fatalf("PutReader of a short reader = %v, want io.ErrUnexpectedEOF naming the key", err)
		}
		if f.proxy.count("ABORT-MPU") != 1 || f.proxy.count("COMPLETE-MPU") != 0 {
			t.Errorf("requests %s, want one abort and no completion", f.proxy.summary())
		}
		if _, err := s.Head(ctx, "short"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after a short PutReader = %v, want ErrNotFound", err)
		}
		uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(uploads.Uploads) != 0 {
			t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
		}
	})
	// A caller that gives up mid-upload leaves no parts either: the
	// abort has a context of its own.
	t.Run("CancelledMidUploadIsAborted", func(t *testing.T) {
		f.proxy.resetCounts()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r := &cancelAfter{r: bytes.NewReader(data), n: 2 * (5 << 20), cancel: cancel}
		err := s.PutReader(cctx, "cancelled", r, int64(len(data)))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("PutReader cancelled mid-upload = %v, want context.Canceled", err)
		}
		if f.proxy.count("ABORT-MPU") != 1 || f.proxy.count("COMPLETE-MPU") != 0 {
			t.Errorf("requests %s, want one abort and no completion", f.proxy.summary())
		}
		if _, err := s.Head(ctx, "cancelled"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head after a cancelled PutReader = %v, want ErrNotFound", err)
		}
	})

	t.Run("FailedUploadIsAborted", func(t *testing.T) {
		f.proxy.resetCounts()
		f.proxy.add(faultRule{kind: "PART", fault: fault500, n: -1})
		defer f.proxy.clear()
		err := s.Put(ctx, "doomed", data)
		if err == nil {
			t.Fatal("Put succeeded with every part failing")
		}
		t.Logf("error: %v", err)
		if !strings.Contains(err.Error(), `"doomed"`) || !strings.Contains(err.Error(), "InternalError") {
			t.Errorf("error does not name the key and the cause: %v", err)
		}
		if got := f.proxy.count("ABORT-MPU"); got != 1 {
			t.Errorf("%d aborts, want 1 (%s)", got, f.proxy.summary())
		}
		if f.proxy.count("COMPLETE-MPU") != 0 {
			t.Errorf("a failed upload was completed")
		}
		if _, err := s.Head(ctx, "doomed"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Head of a failed upload = %v, want ErrNotFound", err)
		}
		uploads, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(testBucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(uploads.Uploads) != 0 {
			t.Errorf("%d multipart uploads left open", len(uploads.Uploads))
		}
	})
	t.Run("TransientPartFailuresRetried", func(t *testing.T) {
		f.proxy.resetCounts()
		f.proxy.add(faultRule{kind: "PART", fault: faultSlowDown, n: 2}, faultRule{kind: "PART", fault: faultDrop, n: 1})
		defer f.proxy.clear()
		if err := s.Put(ctx, "retried", data); err != nil {
			t.Fatal(err)
		}
		if got := f.proxy.count("PART"); got != 7 {
			t.Errorf("%d part requests, want 4 + 3 retries", got)
		}
		if got, err := s.GetRange(ctx, "retried", 0, -1); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back after retried parts: %v", err)
		}
	})
}

// errorCount reads Instrument's error counter for op.
func errorCount(op Op) uint64 { return opStats[op].errors.Get() }

func TestS3Faults(t *testing.T) {
	f := startFakeS3(t)
	cfg := f.config("faults/")
	// Short, so that a stalled request times out quickly; the objects
	// here are 10 kB.
	cfg.RequestTimeout = 500 * time.Millisecond
	s := f.open(t, cfg)
	store := Instrument(s)
	defer store.Close()
	ctx := context.Background()
	data := randBytes(3, 10000)
	if err := store.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}

	// Transient faults: the SDK (or, for a cut body, GetRange) retries
	// and the call succeeds; nothing counts as an error.
	for _, tc := range []struct {
		kind  string
		fault httpFault
		n     int
	}{
		{"PUT", faultSlowDown, 3},
		{"PUT", fault500, 2},
		{"PUT", faultStall, 1},
		{"PUT", faultDrop, 2},
		{"GET", faultSlowDown, 3},
		{"GET", fault500, 3},
		{"GET", faultStall, 1},
		{"GET", faultDrop, 1},
		{"GET", faultCutBody, 2},
		{"HEAD", faultSlowDown, 2},
		{"HEAD", faultDrop, 1},
		{"LIST", fault500, 2},
		{"LIST", faultStall, 1},
		{"DELETE", faultSlowDown, 1},
	} {
		t.Run(fmt.Sprintf("Transient/%s/%s", tc.kind, tc.fault), func(t *testing.T) {
			f.proxy.resetCounts()
			f.proxy.add(faultRule{kind: tc.kind, fault: tc.fault, n: tc.n})
			defer f.proxy.clear()
			op := map[string]Op{"PUT": OpPut, "GET": OpGet, "HEAD": OpHead, "LIST": OpList, "DELETE": OpDelete}[tc.kind]
			before := errorCount(op)
			start := time.Now()
			if err := doOp(ctx, store, op, data); err != nil {
				t.Fatalf("after %d x %s: %v", tc.n, tc.fault, err)
			}
			if got := f.proxy.count(tc.kind); got != tc.n+1 || f.proxy.injected(tc.fault) != tc.n {
				t.Errorf("%d %s requests (%d faulted), want %d faulted + 1", got, tc.kind, f.proxy.injected(tc.fault), tc.n)
			}
			if errorCount(op) != before {
				t.Errorf("a call that succeeded after retries counted as an error")
			}
			t.Logf("recovered in %v", time.Since(start).Round(time.Millisecond))
		})
	}

	// Persistent faults: the call fails after MaxAttempts with an error
	// naming the op, the key and the cause, and the metric counts it.
	for _, tc := range []struct {
		kind  string
		fault httpFault
		want  string
	}{
		{"PUT", faultSlowDown, "SlowDown"},
		{"PUT", fault500, "InternalError"},
		{"PUT", faultStall, "timed out (timeout=500ms per attempt)"},
		{"GET", faultStall, "timed out"},
		{"GET", faultDrop, "EOF"},
		{"GET", faultCutBody, "shorter than its Content-Length"},
		{"HEAD", fault500, "500"},
		{"LIST", faultSlowDown, "SlowDown"},
		{"DELETE", faultDrop, "EOF"},
	} {
		t.Run(fmt.Sprintf("Persistent/%s/%s", tc.kind, tc.fault), func(t *testing.T) {
			f.proxy.resetCounts()
			f.proxy.add(faultRule{kind: tc.kind, fault: tc.fault, n: -1})
			defer f.proxy.clear()
			op := map[string]Op{"PUT": OpPut, "GET": OpGet, "HEAD": OpHead, "LIST": OpList, "DELETE": OpDelete}[tc.kind]
			before := errorCount(op)
			start := time.Now()
			err := doOp(ctx, store, op, data)
			if err == nil {
				t.Fatal("succeeded against a persistent fault")
			}
			t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
			if !strings.Contains(err.Error(), "s3 "+op.String()) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name the op and %q: %v", tc.want, err)
			}
			// A fault is not an answer: not "no such key", not "range
			// past the end".
			if errors.Is(err, ErrNotFound) || errors.Is(err, errShortRange) {
				t.Errorf("a fault reported as an answer: %v", err)
			}
			wantReqs := cfg.MaxAttempts
			if tc.fault == faultCutBody {
				wantReqs = getAttempts
			}
			if got := f.proxy.count(tc.kind); got != wantReqs {
				t.Errorf("%d %s requests, want %d", got, tc.kind, wantReqs)
			}
			if got := errorCount(op) - before; got != 1 {
				t.Errorf("error counter rose by %d, want 1", got)
			}
		})
	}

	// The object is intact after all that.
	if got, err := store.GetRange(ctx, "k", 0, -1); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object after the faults: %v", err)
	}
}

// doOp runs one call of op on the object "k" holding data.
func doOp(ctx context.Context, s Store, op Op, data []byte) error {
	switch op {
	case OpPut:
		return s.Put(ctx, "k", data)
	case OpGet:
		b, err := s.GetRange(ctx, "k", 10, 5000)
		if err == nil && !bytes.Equal(b, data[10:5010]) {
			return errors.New("wrong bytes")
		}
		return err
	case OpHead:
		_, err := s.Head(ctx, "k")
		return err
	case OpList:
		return s.List(ctx, "", func(ObjectInfo) error { return nil })
	case OpDelete:
		if err := s.Delete(ctx, "gone"); err != nil {
			return err
		}
		return nil
	}
	panic("BUG: unknown op")
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	f := startFakeS3(t)
	// Open takes credentials from the AWS chain: static environment
	// variables here, and no shared files or instance metadata, which
	// would reach past loopback.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSLUICETEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	t.Run("S3", func(t *testing.T) {
		s, err := Open(ctx, "s3://"+testBucket+"/sluice/dev?region=us-east-1&path_style=true&endpoint="+f.url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Put(ctx, "segments/ab/01.seg", []byte("x")); err != nil {
			t.Fatal(err)
		}
		obj, err := f.backend.HeadObject(testBucket, "sluice/dev/segments/ab/01.seg")
		if err != nil || obj.Size != 1 {
			t.Fatalf("object not under the URL's prefix: %v", err)
		}
	})
	t.Run("S3MissingBucket", func(t *testing.T) {
		_, err := Open(ctx, "s3://no-such-bucket?region=us-east-1&path_style=true&max_attempts=1&endpoint="+f.url)
		if err == nil || !strings.Contains(err.Error(), "--bucket") || !strings.Contains(err.Error(), "no-such-bucket") {
			t.Fatalf("Open of a missing bucket: %v", err)
		}
	})
	t.Run("Local", func(t *testing.T) {
		dir := t.TempDir()
		for _, u := range []string{"file://" + dir, dir, "file://localhost" + dir} {
			s, err := Open(ctx, u)
			if err != nil {
				t.Fatalf("%s: %v", u, err)
			}
			if l, ok := s.(*Local); !ok || l.Dir() != dir {
				t.Fatalf("%s: got %T", u, s)
			}
		}
	})
	t.Run("Memory", func(t *testing.T) {
		s, err := Open(ctx, "mem://")
		if _, ok := s.(*Memory); !ok || err != nil {
			t.Fatalf("mem:// = %T, %v", s, err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		for u, want := range map[string]string{
			"":                                   "empty",
			"gs://bucket":                        "unknown scheme",
			"file://host/path":                   "three slashes",
			"mem://x":                            "mem://",
			"s3://":                              "bucket name",
			"s3://Bad_Bucket":                    "bucket name",
			"s3://b-1/p?regoin=x":                `unknown parameter "regoin"`,
			"s3://b-1/p?path_style=yes":          "true or false",
			"s3://b-1/p?endpoint=localhost:9000": "http:// or https://",
			"s3://b-1/p?part_size=1024":          "5 MiB",
			"s3://b-1/p?timeout=soon":            "duration",
			"s3://b-1/a//b":                      "empty segment",
			"s3://key:secret@b-1/p":              "AWS chain",
		} {
			_, err := Open(ctx, u)
			if err == nil || !strings.Contains(err.Error(), "--bucket") || !strings.Contains(err.Error(), want) {
				t.Errorf("Open(%q) = %v, want an error naming --bucket and %q", u, err, want)
			}
		}
	})
	t.Run("ParseS3URL", func(t *testing.T) {
		cfg, err := ParseS3URL("s3://my-bucket/sluice/?region=eu-west-1&endpoint=https://s3.example&path_style=true&multipart_threshold=33554432&part_size=16777216&part_concurrency=8&timeout=3s&max_attempts=7")
		if err != nil {
			t.Fatal(err)
		}
		want := S3Config{Bucket: "my-bucket", Prefix: "sluice/", Region: "eu-west-1", Endpoint: "https://s3.example", PathStyle: true,
			MultipartThreshold: 32 << 20, PartSize: 16 << 20, PartConcurrency: 8, RequestTimeout: 3 * time.Second, MaxAttempts: 7}
		if cfg != want {
			t.Fatalf("got %+v\nwant %+v", cfg, want)
		}
	})
}

// cancelAfter reads from r and calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

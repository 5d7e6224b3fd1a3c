package s3test

import (
	"context"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStart(t *testing.T) {
	s := Start(t)
	ctx := context.Background()
	c := s.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String("a/b"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	if got := s.Objects(t, s.Bucket); !slices.Equal(got, []string{"a/b"}) {
		t.Fatalf("Objects = %q, want [a/b]", got)
	}
	// A second bucket is independent of the first.
	s.CreateBucket(t, "second")
	if got := s.Objects(t, "second"); len(got) != 0 {
		t.Fatalf("new bucket holds %q", got)
	}
	u := s.URL("/pre/fix/")
	for _, want := range []string{"s3://" + s.Bucket + "/pre/fix?", "path_style=true", "region=" + Region, "endpoint=http%3A%2F%2F127.0.0.1%3A"} {
		if !strings.Contains(u, want) {
			t.Errorf("URL %q lacks %q", u, want)
		}
	}
}

// The gateway is gone after the test that started it: its port no longer
// accepts connections.
func TestStopped(t *testing.T) {
	var endpoint string
	t.Run("run", func(t *testing.T) { endpoint = Start(t).Endpoint })
	if endpoint == "" {
		t.Skip("gateway did not start (skipped above)")
	}
	addr := strings.TrimPrefix(endpoint, "http://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections after the test ended", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recorder is a testing.TB whose Fatal and Skip are recorded rather than
// ending the real test.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.fatal = sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.skip = sprint(args...)
	runtime.Goexit()
}

func sprint(args ...any) string {
	var b strings.Builder
	for _, a := range args {
		if s, ok := a.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// Without the binary a test skips locally but fails under CI=true: CI
// must never pass by skipping.
func TestMissingBinary(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			startBinary(r, "", nil)
		}()
		<-done
		if ci == "true" {
			if r.fatal == "" || r.skip != "" || !strings.Contains(r.fatal, "go install github.com/versity/versitygw/cmd/versitygw@"+Version) {
				t.Errorf("CI=true: fatal %q, skip %q; want a failure saying how to install", r.fatal, r.skip)
			}
		} else if r.skip == "" || r.fatal != "" {
			t.Errorf("CI unset: fatal %q, skip %q; want a skip", r.fatal, r.skip)
		}
	}
}

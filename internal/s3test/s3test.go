// Package s3test runs versitygw, an S3 gateway that production
// deployments use (Apache-2.0, github.com/versity/versitygw), on a
// temporary directory for one test, so that object-store code is tested
// against a real S3 implementation and not only gofakes3.
//
// The binary is not a module dependency (it would pull its whole server
// into go.mod); it is installed beside the toolchain:
//
//	go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
//
// Start finds it on PATH, then in $(go env GOPATH)/bin. Without it a test
// is skipped, except under CI=true, where it fails: CI must never pass by
// skipping the tests it exists to run (.ci/run installs the binary).
//
// This package does not import objstore, so objstore's own tests can use
// it; it hands out an s3:// URL for objstore.Open and the pieces to build
// an objstore.S3Config.
package s3test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"sluice.dev/internal/tlstest"
)

// Version is the versitygw release CI installs and these tests were
// written against.
const Version = "v1.8.0"

// Fixed test credentials and region: versitygw runs in single-account
// mode with these as its root user.
const (
	AccessKey = "SLUICETESTACCESS"
	SecretKey = "sluice-test-secret-key"
	Region    = "us-east-1"
)

// startTimeout bounds how long Start waits for the gateway to answer; it
// answers in milliseconds on an idle machine, seconds on a loaded one.
const startTimeout = 30 * time.Second

// Server is one running versitygw.
type Server struct {
	// Endpoint is the gateway's base URL, http://127.0.0.1:PORT
	// (https:// from StartTLS).
	Endpoint string
	// CAFile is the PEM file of the CA that signed the gateway's
	// certificate (StartTLS; empty for plain HTTP): AWS_CA_BUNDLE for a
	// client that should trust it.
	CAFile string
	// hc is an HTTP client that trusts CAFile (StartTLS; nil for plain
	// HTTP, where the SDK's default client serves).
	hc *http.Client
	// Region, AccessKey and SecretKey are what clients sign with.
	Region, AccessKey, SecretKey string
	// Bucket is an empty bucket Start created.
	Bucket string
	// Dir is the posix directory the gateway serves: Dir/<bucket>/<key>.
	Dir string
}

// binary returns the path of versitygw, or "" when it is not installed.
func binary() string {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	for dir := range strings.SplitSeq(goPath(), string(os.PathListSeparator)) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// goPath is the toolchain's GOPATH, where go install puts binaries.
var goPath = sync.OnceValue(func() string {
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			return p
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, "go")
})

// Start runs versitygw for the test on a free 127.0.0.1 port and a fresh
// temporary directory, waits until it answers, creates an empty bucket
// and stops the gateway when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return startBinary(t, binary(), nil)
}

// StartTLS is Start with the gateway serving HTTPS, with a certificate
// for 127.0.0.1 from a fresh test CA (Server.CAFile): what production S3
// looks like to the client, TLS and the SDK's unsigned streaming payload
// included (over plain HTTP the SDK hashes every body with SHA-256).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "s3test CA")
	return startBinary(t, binary(), &gatewayTLS{ca: ca, leaf: ca.Server(t, dir, "versitygw")})
}

// gatewayTLS is StartTLS's certificate.
type gatewayTLS struct {
	ca   *tlstest.CA
	leaf *tlstest.Leaf
}

// startBinary is Start with the binary found; "" means not installed.
func startBinary(t testing.TB, bin string, gt *gatewayTLS) *Server {
	t.Helper()
	if bin == "" {
		msg := "versitygw not found on PATH or in $(go env GOPATH)/bin; install it: go install github.com/versity/versitygw/cmd/versitygw@" + Version
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the S3 tests must run, not skip)")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	// A port picked by listening on :0 may be taken by someone else
	// before versitygw binds it; then versitygw exits and we try another.
	var lastErr error
	for range 3 {
		s, err := start(t, bin, dir, gt)
		if err == nil {
			s.Bucket = "sluice-test"
			s.CreateBucket(t, s.Bucket)
			return s
		}
		lastErr = err
	}
	t.Fatalf("s3test: versitygw did not start: %v", lastErr)
	return nil
}

func start(t testing.TB, bin, dir string, gt *gatewayTLS) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	// --keep-alive: versitygw closes every connection after one request
	// unless told otherwise, so each request paid a new TCP connection
	// and, over HTTPS, a TLS handshake, which S3 does not make clients do.
	args := []string{"--access", AccessKey, "--secret", SecretKey, "--region", Region,
		"--port", addr, "--quiet", "--keep-alive"}
	scheme := "http://"
	var tc *tls.Config
	if gt != nil {
		args = append(args, "--cert", gt.leaf.CertFile, "--key", gt.leaf.KeyFile)
		scheme = "https://"
		tc = &tls.Config{RootCAs: gt.ca.Pool(), MinVersion: tls.VersionTLS12}
	}
	cmd := exec.Command(bin, append(args, "posix", dir)...)
	// The gateway's own environment could point it at an IAM service or
	// other root keys (VGW_*, ROOT_*); give it a minimal one.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stop := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}

	s := &Server{Endpoint: scheme + addr, Region: Region, AccessKey: AccessKey, SecretKey: SecretKey, Dir: dir}
	if gt != nil {
		s.CAFile = gt.ca.File
		s.hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("versitygw exited at start (%v); output:\n%s", waitErr, out.String())
		default:
		}
		// Any HTTP answer means it is serving; an anonymous GET / gets
		// 403 AccessDenied.
		resp, err := hc.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not answer on %s within %v (%v); output:\n%s", addr, startTimeout, err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	hc.CloseIdleConnections()
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out.String())
		}
	})
	return s, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// Credentials returns a static provider with the gateway's keys, for
// objstore.S3Config.Credentials.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
}

// Client returns an SDK client for the gateway, for setup and for checks
// behind the back of the code under test.
func (s *Server) Client() *s3.Client {
	o := s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  s.Credentials(),
	}
	if s.hc != nil {
		o.HTTPClient = s.hc
	}
	return s3.New(o)
}

// CreateBucket creates an empty bucket named name.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3test: creating bucket %q: %v", name, err)
	}
}

// URL returns the --bucket URL of the bucket with the key prefix prefix
// ("" for none), for objstore.Open; the credentials come from the
// environment (see Env and SetEnv).
func (s *Server) URL(prefix string) string {
	q := url.Values{}
	q.Set("region", s.Region)
	q.Set("endpoint", s.Endpoint)
	q.Set("path_style", "true")
	u := url.URL{Scheme: "s3", Host: s.Bucket, Path: "/" + strings.Trim(prefix, "/"), RawQuery: q.Encode()}
	return u.String()
}

// Env returns the environment, as KEY=value pairs, under which the AWS
// chain finds the gateway's credentials and nothing beyond loopback (no
// shared config files, no instance metadata): for a child process.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/nonexistent",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this process for the rest of the test (t.Setenv: not
// in parallel tests), so that objstore.Open(s.URL(...)) works.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Objects returns the keys in bucket, read behind the back of the code
// under test (ListObjectsV2 through the SDK).
func (s *Server) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	pages := s3.NewListObjectsV2Paginator(s.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("s3test: listing %q: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// syncBuffer collects the gateway's output for a failing test's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// maxOutput bounds the kept output: a chatty gateway in a long test must
// not grow without bound.
const maxOutput = 1 << 20

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

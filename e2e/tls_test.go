package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/internal/kafkatest"
	"sluice.dev/internal/tlstest"
)

// tlsPKI is a cluster CA with the agent's certificate and a client's, and
// a CA the agent does not trust with a client certificate of its own.
type tlsPKI struct {
	ca, other           *tlstest.CA
	srv, alice, mallory *tlstest.Leaf
	dir                 string
}

func newTLSPKI(t *testing.T) *tlsPKI {
	dir := t.TempDir()
	p := &tlsPKI{dir: dir, ca: tlstest.NewCA(t, dir, "sluice"), other: tlstest.NewCA(t, dir, "other")}
	p.srv = p.ca.Server(t, dir, "agent")
	p.alice = p.ca.Client(t, dir, "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"org"}})
	p.mallory = p.other.Client(t, dir, "mallory", pkix.Name{CommonName: "mallory"})
	return p
}

// tlsFlags are the playground flags of TLS, and of mTLS when mtls.
func (p *tlsPKI) tlsFlags(mtls bool) []string {
	f := []string{"--kafka-tls-cert", p.srv.CertFile, "--kafka-tls-key", p.srv.KeyFile, "--default-partitions", "2"}
	if mtls {
		f = append(f, "--kafka-tls-client-ca", p.ca.File)
	}
	return f
}

// kcatSSL are kcat's arguments for security.protocol=SSL, with the client
// certificate when leaf is not nil.
func (p *tlsPKI) kcatSSL(leaf *tlstest.Leaf) []string {
	a := []string{"-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + p.ca.File}
	if leaf != nil {
		a = append(a, "-X", "ssl.certificate.location="+leaf.CertFile, "-X", "ssl.key.location="+leaf.KeyFile)
	}
	return a
}

// kcatRoundTrip produces n records with kcat over TLS and reads them back
// with kcat, checking every value.
func kcatRoundTrip(ctx context.Context, t *testing.T, kcat, bootstrap, topic string, n int, tlsArgs []string) {
	t.Helper()
	kcatProduce(ctx, t, kcat, bootstrap, topic, 0, n, tlsArgs...)
	cons := exec.CommandContext(ctx, kcat, append([]string{"-C", "-b", bootstrap, "-t", topic, "-o", "beginning",
		"-e", "-q", "-f", "%p %o %k %S %s\n"}, tlsArgs...)...)
	out, err := cons.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat consume over TLS: %v\n%s", err, tail(string(out), 4096))
	}
	seen := map[int]bool{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		r, err := parseKcatRec(topic, line)
		if err != nil {
			t.Fatal(err)
		}
		seen[r.index] = true
	}
	if len(seen) != n {
		t.Fatalf("kcat read %d distinct records over TLS, wrote %d", len(seen), n)
	}
}

// runPythonTLS runs testdata/confluent_tls.py against bootstrap.
func runPythonTLS(ctx context.Context, t *testing.T, bootstrap string, args ...string) {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("python3-confluent-kafka missing: apt-get install python3-confluent-kafka (.ci/run does)")
	}
	out, err := exec.CommandContext(ctx, py, append([]string{"testdata/confluent_tls.py", bootstrap}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "\nPASS\n") {
		t.Fatalf("confluent-kafka over TLS %v: %v\n%s", args, err, tail(string(out), 4096))
	}
}

// franzRoundTrip produces n records with franz-go over cfg and consumes
// them back, checking every value.
func franzRoundTrip(ctx context.Context, t *testing.T, bootstrap, topic string, n int, cfg *tls.Config) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DialTLSConfig(cfg), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: []byte(kcatValue(topic, i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce over TLS: %v", err)
	}
	got := map[string]string{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go fetch over TLS after %d records: %v", len(got), err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	for i := range n {
		if got[fmt.Sprintf("k%d", i)] != kcatValue(topic, i) {
			t.Fatalf("record %d differs", i)
		}
	}
}

// TestTLSClients: with --kafka-tls-cert (server certificate only) kcat,
// confluent-kafka-python (security.protocol=SSL, host name verified) and
// franz-go produce and consume exactly.
func TestTLSClients(t *testing.T) {
	kcat := lookKcat(t)
	p := newTLSPKI(t)
	pg := startPlayground(t, t.TempDir(), p.tlsFlags(false)...)
	ctx := testCtx(t, 3*time.Minute)
	kcatRoundTrip(ctx, t, kcat, pg.bootstrap, "kcat-tls", 500, p.kcatSSL(nil))
	runPythonTLS(ctx, t, pg.bootstrap, p.ca.File)
	franzRoundTrip(ctx, t, pg.bootstrap, "franz-tls", 500, &tls.Config{RootCAs: p.ca.Pool()})
	pg.stop(t) // a clean exit: under -race, no race on the TLS paths
}

// TestMTLSClients: with --kafka-tls-client-ca, kcat, confluent-kafka-python
// and franz-go with a certificate of the CA produce and consume; no
// certificate, one of another CA, a client offering only TLS 1.1 and a
// plaintext client are each refused while a franz-go producer on another
// connection keeps producing without an error; and a rotated agent
// certificate reaches new connections without a restart.
func TestMTLSClients(t *testing.T) {
	kcat := lookKcat(t)
	p := newTLSPKI(t)
	pg := startPlayground(t, t.TempDir(), p.tlsFlags(true)...)
	ctx := testCtx(t, 3*time.Minute)
	good := &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{p.alice.TLS}}

	kcatRoundTrip(ctx, t, kcat, pg.bootstrap, "kcat-mtls", 500, p.kcatSSL(p.alice))
	runPythonTLS(ctx, t, pg.bootstrap, p.ca.File, p.alice.CertFile, p.alice.KeyFile)
	franzRoundTrip(ctx, t, pg.bootstrap, "franz-mtls", 200, good)

	// A producer that keeps going through the bad attempts below.
	cl, err := kgo.NewClient(kgo.SeedBrokers(pg.bootstrap), kgo.DialTLSConfig(good), kgo.DefaultProduceTopic("steady"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var produced atomic.Int64
	var prodErr error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := cl.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
				prodErr = err
				return
			}
			produced.Add(1)
		}
	}()
	waitProduced := func(atLeast int64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for produced.Load() < atLeast {
			if time.Now().After(deadline) || prodErr != nil {
				t.Fatalf("steady producer stalled at %d records: %v", produced.Load(), prodErr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitProduced(1)

	// The refused: each gets the TLS alert Go's server sends, or a closed
	// socket.
	refused := func(name string, cfg *tls.Config, want string) {
		t.Helper()
		err := tlsFirstRead(pg.bootstrap, cfg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error containing %q", name, err, want)
		}
	}
	refused("no client certificate", &tls.Config{RootCAs: p.ca.Pool()}, "certificate required")
	// GetClientCertificate, not Certificates: Go's client would not send
	// a certificate that no CA the server names has signed.
	refused("certificate of another CA", &tls.Config{RootCAs: p.ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &p.mallory.TLS, nil }},
		"unknown certificate authority")
	refused("TLS 1.1", &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{p.alice.TLS}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "protocol version")
	// kcat without a certificate: librdkafka fails the handshake.
	out, err := exec.CommandContext(ctx, kcat, append([]string{"-L", "-b", pg.bootstrap, "-m", "5"}, p.kcatSSL(nil)...)...).CombinedOutput()
	if err == nil || !strings.Contains(strings.ToLower(string(out)), "ssl") {
		t.Fatalf("kcat without a client certificate: %v\n%s", err, out)
	}
	// A plaintext Kafka client: its ApiVersions is no TLS record; the
	// connection is closed without a Kafka answer.
	pc, err := kafkatest.Dial(pg.bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "plain", "1"
	if _, err := pc.RoundTrip(req, 10*time.Second); err == nil {
		t.Fatal("a plaintext client on the TLS port got an answer")
	}
	pc.Close()
	// franz-go in plaintext: its requests fail.
	plain, err := kgo.NewClient(kgo.SeedBrokers(pg.bootstrap), kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := plain.Ping(pctx); err == nil {
		t.Fatal("franz-go in plaintext reached the TLS port")
	}
	cancel()
	plain.Close()

	before := produced.Load()
	waitProduced(before + 20) // the steady producer is still fine
	close(stop)
	wg.Wait()
	if prodErr != nil {
		t.Fatalf("steady producer failed during the refused attempts: %v", prodErr)
	}

	// Rotation: new files under the same names; a new connection sees the
	// new serial within seconds, the agent not restarted.
	old := p.srv.Cert.SerialNumber.String()
	if got := servedSerial(t, pg.bootstrap, good); got != old {
		t.Fatalf("serial %s, want %s", got, old)
	}
	rotated := p.ca.Server(t, p.dir, "agent")
	deadline := time.Now().Add(15 * time.Second)
	for servedSerial(t, pg.bootstrap, good) != rotated.Cert.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("rotated certificate (serial %s) not served within 15s", rotated.Cert.SerialNumber)
		}
		time.Sleep(100 * time.Millisecond)
	}
	franzRoundTrip(ctx, t, pg.bootstrap, "franz-rotated", 50, good)
	if !strings.Contains(pg.stderr.String(), "TLS certificate reloaded") {
		t.Fatal("no log line for the reloaded certificate")
	}
	pg.stop(t) // a clean exit: under -race, no race on the TLS paths
}

// tlsFirstRead handshakes with cfg and reads once: the refusal of a client
// certificate shows up there under TLS 1.3 (the client finishes its
// handshake before the server checks the certificate).
func tlsFirstRead(addr string, cfg *tls.Config) error {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil {
		return errors.New("the server sent data")
	}
	return err
}

// servedSerial is the serial of the certificate a new connection sees.
func servedSerial(t *testing.T, addr string, cfg *tls.Config) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestCanaryBytesNeverReachMetaTLS is TestCanaryBytesNeverReachMeta with
// a `sluice agent` serving mTLS on its Kafka port and mutual TLS on its
// peer port: canary keys and values produced and consumed (in a group)
// over mTLS appear nowhere in the agent's traffic with meta, nor in meta's
// files. TLS changes where record bytes are encrypted, not where they go.
func TestCanaryBytesNeverReachMetaTLS(t *testing.T) {
	dir := t.TempDir()
	p := newTLSPKI(t)
	peer := p.ca.Server(t, p.dir, "peer")
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	key := createKey(t, m.lines["meta"], "canary-tls")
	cp := newCapture(t, m.lines["meta"])
	a := startAgent(t, "agent-canary-tls", cp.ln.Addr().String(), key, "file://"+filepath.Join(dir, "bucket"),
		"--kafka-tls-cert", p.srv.CertFile, "--kafka-tls-key", p.srv.KeyFile, "--kafka-tls-client-ca", p.ca.File,
		"--peer-tls-cert", peer.CertFile, "--peer-tls-key", peer.KeyFile, "--peer-tls-ca", p.ca.File,
		"--default-partitions", "4")
	bootstrap := a.lines["bootstrap"]
	ctx := testCtx(t, 2*time.Minute)
	dial := kgo.DialTLSConfig(&tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{p.alice.TLS}})

	const topic, group, n = "canary-tls-topic", "canary-tls-group", 1000
	prefix := "CANARY" + randHex(4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), dial, kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for range n {
		recs = append(recs, &kgo.Record{Key: []byte(prefix + "-key-" + randHex(12)), Value: []byte(prefix + "-value-" + randHex(24))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), dial, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < n && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cons.Close()
	if len(seen) != n {
		t.Fatalf("consumed %d distinct records over mTLS, want %d", len(seen), n)
	}
	up, down := cp.bytes()
	if !bytes.Contains(up, []byte(topic)) || !bytes.Contains(up, []byte(group)) {
		t.Fatalf("capture of %d bytes agent->meta lacks the topic or group name: capture broken", len(up))
	}
	if bytes.Contains(up, []byte(prefix)) || bytes.Contains(down, []byte(prefix)) {
		t.Fatal("canary bytes crossed between agent and meta")
	}
	err = filepath.Walk(filepath.Join(dir, "meta"), func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err == nil && bytes.Contains(b, []byte(prefix)) {
			return fmt.Errorf("canary bytes in meta's store file %s", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	a.stop(t)
	m.stop(t)
}

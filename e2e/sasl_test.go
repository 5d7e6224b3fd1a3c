package e2e

// SASL with librdkafka (kcat, confluent-kafka-python) against a
// playground started with --sasl-mechanisms and --bootstrap-user (issue
// 14), and `sluice meta users` against a running meta. The helpers take
// the security protocol as a parameter: SASL_PLAINTEXT here, SASL_SSL
// once the listener has TLS.

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// startSASLPlayground runs a playground offering every password
// mechanism, with user alice (password alice-secret).
func startSASLPlayground(t *testing.T, extra ...string) *playground {
	t.Helper()
	return startPlayground(t, t.TempDir(), append([]string{"--default-partitions", "1",
		"--sasl-mechanisms", strings.Join(saslMechanisms, ","), "--bootstrap-user", "alice:alice-secret"}, extra...)...)
}

// kcatSASL is the librdkafka configuration of a SASL login; extra are
// more librdkafka properties (key=value: the TLS ones for SASL_SSL).
func kcatSASL(protocol, mechanism, user, password string, extra ...string) []string {
	args := []string{"-X", "security.protocol=" + protocol, "-X", "sasl.mechanisms=" + mechanism,
		"-X", "sasl.username=" + user, "-X", "sasl.password=" + password}
	for _, kv := range extra {
		args = append(args, "-X", kv)
	}
	return args
}

func TestKcatSASL(t *testing.T) {
	testKcatSASL(t, "SASL_PLAINTEXT", nil, nil)
}

// testKcatSASL: playgroundFlags are added to the playground's (the TLS
// ones for SASL_SSL), rdkafka to every kcat's configuration.
func testKcatSASL(t *testing.T, protocol string, playgroundFlags, rdkafka []string) {
	kcat := lookKcat(t)
	pg := startSASLPlayground(t, playgroundFlags...)
	ctx := testCtx(t, 2*time.Minute)
	for _, mech := range saslMechanisms {
		t.Run(mech, func(t *testing.T) {
			topic := "kcat-" + strings.ToLower(mech)
			auth := kcatSASL(protocol, mech, "alice", "alice-secret", rdkafka...)
			var want []string
			for i := range 50 {
				want = append(want, fmt.Sprintf("k%d:%s value %d", i, mech, i))
			}
			prod := exec.CommandContext(ctx, kcat, append([]string{"-P", "-b", pg.bootstrap, "-t", topic, "-K:", "-X", "acks=all"}, auth...)...)
			prod.Stdin = strings.NewReader(strings.Join(want, "\n") + "\n")
			if out, err := prod.CombinedOutput(); err != nil {
				t.Fatalf("kcat produce: %v\n%s", err, out)
			}
			cons := exec.CommandContext(ctx, kcat, append([]string{"-C", "-b", pg.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n"}, auth...)...)
			out, err := cons.Output()
			if err != nil {
				t.Fatalf("kcat consume: %v\n%s", err, tail(pg.stderr.String(), 4096))
			}
			if got := strings.Split(strings.TrimRight(string(out), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("kcat read %d lines back, want %d identical", len(got), len(want))
			}
		})
	}
	// Wrong password and unknown user: refused alike.
	for name, up := range map[string][2]string{"wrong password": {"alice", "nope"}, "unknown user": {"mallory", "alice-secret"}} {
		t.Run(name, func(t *testing.T) {
			for _, mech := range saslMechanisms {
				out, err := exec.CommandContext(ctx, kcat, append([]string{"-L", "-b", pg.bootstrap, "-m", "1"}, kcatSASL(protocol, mech, up[0], up[1], rdkafka...)...)...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), "Authentication failed") {
					t.Fatalf("%s: kcat -L: %v, want an authentication failure\n%s", mech, err, out)
				}
			}
		})
	}
}

func TestConfluentKafkaPythonSASL(t *testing.T) {
	testConfluentKafkaPythonSASL(t, "SASL_PLAINTEXT", nil, nil)
}

// testConfluentKafkaPythonSASL: playgroundFlags are added to the
// playground's, rdkafka (key=value) to every client's configuration.
func testConfluentKafkaPythonSASL(t *testing.T, protocol string, playgroundFlags, rdkafka []string) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("python3-confluent-kafka missing: apt-get install python3-confluent-kafka (.ci/run does)")
	}
	pg := startSASLPlayground(t, playgroundFlags...)
	ctx := testCtx(t, 3*time.Minute)
	run := func(mech, user, password, expect string) string {
		args := append([]string{"testdata/confluent_sasl.py", pg.bootstrap, protocol, mech, user, password, expect}, rdkafka...)
		out, err := exec.CommandContext(ctx, py, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "\nPASS\n") {
			t.Fatalf("confluent-kafka %s %s as %s: %v\n%s\nagent log:\n%s", mech, expect, user, err, out, tail(pg.stderr.String(), 4096))
		}
		return string(out)
	}
	for _, mech := range saslMechanisms {
		t.Run(mech, func(t *testing.T) {
			run(mech, "alice", "alice-secret", "ok")
			wrong := run(mech, "alice", "nope", "refused")
			unknown := run(mech, "mallory", "alice-secret", "refused")
			// librdkafka shows the broker's message: it must not tell
			// which part was wrong.
			if msg := func(s string) string {
				_, after, _ := strings.Cut(s, "refused "+mech)
				return strings.Split(after, "\n")[0]
			}; !strings.Contains(msg(wrong), "Authentication failed") || strings.Contains(msg(wrong), "alice") || strings.Contains(msg(unknown), "mallory") {
				t.Fatalf("refusals tell too much or too little: %q / %q", msg(wrong), msg(unknown))
			}
		})
	}
}

// TestMetaUsersCLI: `sluice meta users set|list|delete` against a meta,
// an agent of that cluster with SASL on, franz-go logging in.
func TestMetaUsersCLI(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	addr := m.lines["meta"]
	key := createKey(t, addr, "users")
	if out, err := metaUsers(t, addr, "dave-secret", "set", "--cluster", "users", "--user", "dave"); err != nil {
		t.Fatalf("users set: %v\n%s", err, out)
	}
	if out, err := metaUsers(t, addr, "erin-secret", "set", "--cluster", "users", "--user", "erin", "--mechanism", "SCRAM-SHA-256", "--iterations", "4096"); err != nil {
		t.Fatalf("users set erin: %v\n%s", err, out)
	}
	if out, err := metaUsers(t, addr, "x", "set", "--cluster", "users", "--user", "weak", "--iterations", "100"); err == nil {
		t.Fatalf("100 iterations accepted:\n%s", out)
	}
	out, err := metaUsers(t, addr, "", "list", "--cluster", "users")
	if err != nil {
		t.Fatalf("users list: %v\n%s", err, out)
	}
	for _, want := range []string{"dave  SCRAM-SHA-256  8192", "dave  SCRAM-SHA-512  8192", "erin  SCRAM-SHA-256  4096"} {
		if !strings.Contains(out, want) {
			t.Fatalf("users list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "weak") || strings.Contains(out, "secret") {
		t.Fatalf("users list shows too much:\n%s", out)
	}
	a := startAgent(t, "agent-users", addr, key, "file://"+filepath.Join(dir, "bucket"), "--sasl-mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512")
	login := func(user, pass string) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()), kgo.RetryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := login("dave", "dave-secret"); err != nil {
		t.Fatalf("dave logs in: %v", err)
	}
	if out, err := metaUsers(t, addr, "", "delete", "--cluster", "users", "--user", "dave"); err != nil {
		t.Fatalf("users delete: %v\n%s", err, out)
	}
	if err := login("dave", "dave-secret"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted dave: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
	if out, err := metaUsers(t, addr, "", "delete", "--cluster", "users", "--user", "dave"); err == nil {
		t.Fatalf("deleting dave twice succeeded:\n%s", out)
	}
	a.stop(t)
	m.stop(t)
}

// SASL over TLS (SASL_SSL): the same logins and round trips as above, the
// agent's certificate verified by librdkafka (issue 14).
func TestKcatSASLSSL(t *testing.T) {
	p := newTLSPKI(t)
	testKcatSASL(t, "SASL_SSL", []string{"--kafka-tls-cert", p.srv.CertFile, "--kafka-tls-key", p.srv.KeyFile},
		[]string{"ssl.ca.location=" + p.ca.File})
}

func TestConfluentKafkaPythonSASLSSL(t *testing.T) {
	p := newTLSPKI(t)
	testConfluentKafkaPythonSASL(t, "SASL_SSL", []string{"--kafka-tls-cert", p.srv.CertFile, "--kafka-tls-key", p.srv.KeyFile},
		[]string{"ssl.ca.location=" + p.ca.File})
}

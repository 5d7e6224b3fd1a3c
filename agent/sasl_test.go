package agent_test

// SASL on the Kafka listener (issue 14, server/sasl.go) with franz-go and
// kadm in process, and raw connections for the refusals.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
	"sluice.dev/internal/tlstest"
	"sluice.dev/meta"
	"sluice.dev/server"
)

var allSASL = []string{server.MechPlain, server.MechScramSHA256, server.MechScramSHA512}

// addUser stores SCRAM-SHA-256 and -512 credentials for user straight in
// meta, as `sluice meta users set` does.
func addUser(t *testing.T, c *testCluster, user, password string) {
	t.Helper()
	var creds []meta.ScramCredential
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		cred, err := server.NewScramCredential(user, m, password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, cred)
	}
	errs, err := c.meta.AlterScramCredentials(context.Background(), creds, nil)
	if err != nil || errors.Join(errs...) != nil {
		t.Fatalf("add user %s: %v %v", user, err, errs)
	}
}

func saslClient(t *testing.T, addr string, m sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(m), kgo.RetryTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// roundTrip produces one record and reads it back.
func roundTrip(t *testing.T, addr string, m sasl.Mechanism, topic string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := saslClient(t, addr, m, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("secret value")}).FirstErr(); err != nil {
		return err
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		return err
	}
	if n := fs.NumRecords(); n != 1 || string(fs.Records()[0].Value) != "secret value" {
		t.Fatalf("read %d records back", n)
	}
	return nil
}

func TestSASLMechanismsWithFranzGo(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "alice", "alice-secret")
	for name, m := range map[string]sasl.Mechanism{
		"PLAIN":         plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
		"SCRAM-SHA-256": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			if err := roundTrip(t, c.addr(), m, "t-"+strings.ToLower(name)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSASLWrongCredentialsRefused(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "alice", "alice-secret")
	// A good client stays connected through every refusal below.
	good := saslClient(t, c.addr(), scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), kgo.AllowAutoTopicCreation())
	ctx := context.Background()
	if err := good.ProduceSync(ctx, &kgo.Record{Topic: "good", Value: []byte("1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]sasl.Mechanism{
		"scram256 wrong password": scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(),
		"scram512 unknown user":   scram.Auth{User: "mallory", Pass: "alice-secret"}.AsSha512Mechanism(),
		"plain wrong password":    plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
		"plain unknown user":      plain.Auth{User: "mallory", Pass: "nope"}.AsMechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			cl := saslClient(t, c.addr(), m, kgo.RetryTimeout(time.Second))
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := cl.Ping(ctx)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("Ping: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
	if err := good.ProduceSync(ctx, &kgo.Record{Topic: "good", Value: []byte("2")}).FirstErr(); err != nil {
		t.Fatalf("the authenticated client was disturbed: %v", err)
	}
}

// saslRaw authenticates a raw connection with PLAIN and returns the
// SaslAuthenticate response (nil and the error when the connection
// closed first).
func saslRaw(t *testing.T, conn *kafkatest.Conn, mech string, token []byte) (*kmsg.SASLAuthenticateResponse, error) {
	t.Helper()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = mech
	resp, err := conn.RoundTrip(hs, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if code := resp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		return nil, kerr.ErrorForCode(code)
	}
	auth := kmsg.NewPtrSASLAuthenticateRequest()
	auth.SetVersion(2)
	auth.SASLAuthBytes = token
	aresp, err := conn.RoundTrip(auth, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return aresp.(*kmsg.SASLAuthenticateResponse), nil
}

// closedByPeer waits for the server to close conn.
func closedByPeer(t *testing.T, conn *kafkatest.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read after refusal: %v, want the connection closed", err)
	}
}

func TestSASLRawRefusals(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "alice", "alice-secret")

	t.Run("request before authenticating", func(t *testing.T) {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// ApiVersions is allowed.
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(3)
		av.ClientSoftwareName, av.ClientSoftwareVersion = "t", "1"
		if _, err := conn.RoundTrip(av, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(9)
		if _, err := conn.Send(md); err != nil {
			t.Fatal(err)
		}
		closedByPeer(t, conn)
	})

	// Wrong password and unknown user: the same code and message.
	var messages []string
	for _, tok := range []string{"\x00alice\x00wrong", "\x00mallory\x00alice-secret"} {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := saslRaw(t, conn, "PLAIN", []byte(tok))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil {
			t.Fatalf("error code %d, want SASL_AUTHENTICATION_FAILED", resp.ErrorCode)
		}
		messages = append(messages, *resp.ErrorMessage)
		closedByPeer(t, conn)
		conn.Close()
	}
	if messages[0] != messages[1] {
		t.Errorf("wrong password says %q, unknown user %q: a hint which part was wrong", messages[0], messages[1])
	}

	t.Run("unsupported mechanism", func(t *testing.T) {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = saslRaw(t, conn, "GSSAPI", nil)
		if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Fatalf("GSSAPI handshake: %v", err)
		}
		closedByPeer(t, conn)
	})

	t.Run("authenticate without handshake", func(t *testing.T) {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SetVersion(1)
		resp, err := conn.RoundTrip(auth, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.(*kmsg.SASLAuthenticateResponse).ErrorCode; code != kerr.IllegalSaslState.Code {
			t.Fatalf("code %d, want ILLEGAL_SASL_STATE", code)
		}
		closedByPeer(t, conn)
	})

	t.Run("good PLAIN then requests", func(t *testing.T) {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := saslRaw(t, conn, "PLAIN", []byte("\x00alice\x00alice-secret"))
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("PLAIN: %v %+v", err, resp)
		}
		if resp.SessionLifetimeMillis != 0 {
			t.Errorf("session lifetime %d with none configured", resp.SessionLifetimeMillis)
		}
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(9)
		if _, err := conn.RoundTrip(md, 5*time.Second); err != nil {
			t.Fatalf("Metadata after PLAIN: %v", err)
		}
	})
}

// TestSASLHandshakeV0RawTokens: a v0 handshake is followed by bare
// tokens (KIP-152's legacy framing), as Kafka serves it.
func TestSASLHandshakeV0RawTokens(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "alice", "alice-secret")
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Mechanism = "PLAIN"
	if resp, err := conn.RoundTrip(hs, 5*time.Second); err != nil || resp.(*kmsg.SASLHandshakeResponse).ErrorCode != 0 {
		t.Fatalf("handshake v0: %v %+v", err, resp)
	}
	tok := []byte("\x00alice\x00alice-secret")
	frame := append([]byte{0, 0, 0, byte(len(tok))}, tok...)
	if _, err := conn.Write(frame); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, size[:]); err != nil || size != [4]byte{} {
		t.Fatalf("raw PLAIN answer: %v %x, want an empty token", err, size)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	if _, err := conn.RoundTrip(md, 5*time.Second); err != nil {
		t.Fatalf("Metadata after raw PLAIN: %v", err)
	}
}

func TestSASLFailuresRateLimited(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL, FailureBurst: 3, FailureRate: 0.001}})
	addUser(t, c, "alice", "alice-secret")
	before := metricValue(t, `sluice_sasl_refused_total{reason="rate_limited"}`)
	try := func(pass string) int16 {
		conn, err := kafkatest.Dial(c.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := saslRaw(t, conn, "PLAIN", []byte("\x00alice\x00"+pass))
		if err != nil {
			t.Fatal(err)
		}
		return resp.ErrorCode
	}
	for i := range 3 {
		if code := try("wrong"); code != kerr.SaslAuthenticationFailed.Code {
			t.Fatalf("failure %d: code %d", i, code)
		}
	}
	// Past the bucket even the right password is refused, the same way.
	if code := try("alice-secret"); code != kerr.SaslAuthenticationFailed.Code {
		t.Fatalf("right password past the failure budget: code %d, want refused", code)
	}
	if got := metricValue(t, `sluice_sasl_refused_total{reason="rate_limited"}`) - before; got != 1 {
		t.Errorf("rate_limited counted %v times, want 1", got)
	}
}

// TestSASLReauthentication: with a short session lifetime franz-go
// re-authenticates on its live connection (KIP-368), and a raw client
// that lets its session lapse has its connection closed.
func TestSASLReauthentication(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL, SessionLifetime: time.Second}})
	addUser(t, c, "alice", "alice-secret")

	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := saslRaw(t, conn, "PLAIN", []byte("\x00alice\x00alice-secret"))
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("PLAIN: %v %+v", err, resp)
	}
	if resp.SessionLifetimeMillis <= 0 || resp.SessionLifetimeMillis > 1000 {
		t.Fatalf("session lifetime %d ms, want (0, 1000]", resp.SessionLifetimeMillis)
	}

	okBefore := metricValue(t, `sluice_sasl_authentications_total{result="ok"}`)
	opensBefore := metricValue(t, `sluice_kafka_connections_opened_total`)
	cl := saslClient(t, c.addr(), scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), kgo.AllowAutoTopicCreation())
	ctx := context.Background()
	deadline := time.Now().Add(3500 * time.Millisecond)
	n := 0
	for time.Now().Before(deadline) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatalf("produce %d across re-authentications: %v", n, err)
		}
		n++
		time.Sleep(50 * time.Millisecond) // the subject is elapsed time
	}
	auths := metricValue(t, `sluice_sasl_authentications_total{result="ok"}`) - okBefore
	opens := metricValue(t, `sluice_kafka_connections_opened_total`) - opensBefore
	if auths <= opens {
		t.Errorf("%v authentications over %v new connections in 3.5 s of 1 s sessions: no re-authentication on a live connection", auths, opens)
	}

	// The raw connection's session has lapsed: its next request closes it.
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	if _, err := conn.Send(md); err != nil {
		t.Fatal(err)
	}
	closedByPeer(t, conn)
}

// TestSASLKadmManagesUsers: a user created through kadm
// (AlterUserScramCredentials) logs in with franz-go SCRAM; deleted, it
// no longer can.
func TestSASLKadmManagesUsers(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	addUser(t, c, "admin", "admin-secret")
	admCl := saslClient(t, c.addr(), scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism())
	adm := kadm.NewClient(admCl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "bob-secret"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "bob-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res["bob"].Err; err != nil {
		t.Fatalf("create bob: %v", err)
	}
	// kadm checks iterations itself; the broker must too.
	weak := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, u := range []struct {
		name  string
		mech  int8
		iters int32
		sp    int
	}{{"weak", 1, 1000, 32}, {"dup", 1, 4096, 32}, {"dup", 1, 4096, 32}, {"odd", 7, 4096, 32}, {"short", 2, 4096, 5}} {
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = u.name, u.mech, u.iters, []byte("salt"), make([]byte, u.sp)
		weak.Upsertions = append(weak.Upsertions, up)
	}
	wresp, err := weak.RequestWith(ctx, admCl)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int16{"weak": kerr.UnacceptableCredential.Code, "dup": kerr.DuplicateResource.Code,
		"odd": kerr.UnsupportedSaslMechanism.Code, "short": kerr.UnacceptableCredential.Code}
	if len(wresp.Results) != len(want) {
		t.Fatalf("%d results, want %d", len(wresp.Results), len(want))
	}
	for _, r := range wresp.Results {
		if r.ErrorCode != want[r.User] {
			t.Errorf("user %q: code %d, want %d", r.User, r.ErrorCode, want[r.User])
		}
	}
	desc, err := adm.DescribeUserSCRAMs(ctx, "bob", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if b := desc["bob"]; b.Err != nil || len(b.CredInfos) != 2 || b.CredInfos[1].Iterations != 8192 {
		t.Fatalf("describe bob: %+v", b)
	}
	if err := desc["nobody"].Err; !errors.Is(err, kerr.ResourceNotFound) {
		t.Fatalf("describe nobody: %v, want RESOURCE_NOT_FOUND", err)
	}
	all, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("describe all: %v %v", all, err)
	}
	if err := roundTrip(t, c.addr(), scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), "bob"); err != nil {
		t.Fatalf("bob logs in: %v", err)
	}
	// Meta holds no password: the stored keys are not it.
	cred, err := c.meta.ScramCredential(ctx, "bob", meta.ScramSHA256)
	if err != nil || strings.Contains(string(cred.StoredKey)+string(cred.ServerKey)+string(cred.Salt), "bob-secret") {
		t.Fatalf("stored credential: %v", err)
	}
	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}, {User: "ghost", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil || res["bob"].Err != nil || !errors.Is(res["ghost"].Err, kerr.ResourceNotFound) {
		t.Fatalf("delete: %v %+v", err, res)
	}
	cl := saslClient(t, c.addr(), scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism(), kgo.RetryTimeout(time.Second))
	if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted credential: %v", err)
	}
	// The other mechanism is still there.
	if err := roundTrip(t, c.addr(), scram.Auth{User: "bob", Pass: "bob-secret"}.AsSha512Mechanism(), "bob512"); err != nil {
		t.Fatalf("bob with SCRAM-SHA-512: %v", err)
	}
}

// jwksServer serves a key set on 127.0.0.1 and signs tokens.
type jwksServer struct {
	url  string
	keys map[string]any // kid -> private key
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	js := &jwksServer{keys: map[string]any{"rsa1": rk, "ec1": ek}}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &rk.PublicKey, KeyID: "rsa1", Algorithm: string(jose.RS256), Use: "sig"},
		{Key: &ek.PublicKey, KeyID: "ec1", Algorithm: string(jose.ES256), Use: "sig"},
	}}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	t.Cleanup(srv.Close)
	js.url = srv.URL
	return js
}

func (js *jwksServer) sign(t *testing.T, kid string, key any, claims map[string]any) string {
	t.Helper()
	alg := jose.RS256
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = jose.ES256
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSASLOAuthBearer(t *testing.T) {
	js := newJWKSServer(t)
	ctx := context.Background()
	v, err := server.NewJWKSValidator(ctx, server.JWKSConfig{JWKS: js.url, Issuer: "https://issuer.test", Audience: "sluice"})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: []string{server.MechOAuthBearer}, TokenValidator: v}})
	now := time.Now()
	claims := func(edit func(map[string]any)) map[string]any {
		m := map[string]any{"sub": "svc-orders", "iss": "https://issuer.test", "aud": "sluice",
			"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix()}
		if edit != nil {
			edit(m)
		}
		return m
	}
	for _, kid := range []string{"rsa1", "ec1"} {
		t.Run("good "+kid, func(t *testing.T) {
			tok := js.sign(t, kid, js.keys[kid], claims(nil))
			if err := roundTrip(t, c.addr(), oauth.Auth{Token: tok}.AsMechanism(), "oauth-"+kid); err != nil {
				t.Fatal(err)
			}
		})
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"expired":          js.sign(t, "rsa1", js.keys["rsa1"], claims(func(m map[string]any) { m["exp"] = now.Add(-time.Hour).Unix() })),
		"not yet valid":    js.sign(t, "rsa1", js.keys["rsa1"], claims(func(m map[string]any) { m["nbf"] = now.Add(time.Hour).Unix() })),
		"no exp":           js.sign(t, "rsa1", js.keys["rsa1"], claims(func(m map[string]any) { delete(m, "exp") })),
		"other key":        js.sign(t, "rsa1", otherKey, claims(nil)),
		"wrong audience":   js.sign(t, "ec1", js.keys["ec1"], claims(func(m map[string]any) { m["aud"] = "someone-else" })),
		"wrong issuer":     js.sign(t, "ec1", js.keys["ec1"], claims(func(m map[string]any) { m["iss"] = "https://evil.test" })),
		"no subject":       js.sign(t, "ec1", js.keys["ec1"], claims(func(m map[string]any) { delete(m, "sub") })),
		"not a JWT at all": "abc.def.ghi",
	} {
		t.Run(name, func(t *testing.T) {
			cl := saslClient(t, c.addr(), oauth.Auth{Token: tok}.AsMechanism(), kgo.RetryTimeout(time.Second))
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("Ping: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
}

// TestSASLLargeFrameBeforeAuthRefused: a client that has not logged in
// cannot make the agent buffer a large frame (Kafka's 512 KiB bound).
func TestSASLLargeFrameBeforeAuthRefused(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL}})
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A frame header announcing 1 MiB; the rest never needs to come.
	if _, err := conn.Write([]byte{0, 0x10, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	closedByPeer(t, conn)
}

// TestSASLLargeFrameBeforeAuthRefusedTLS: the same bound on the TLS
// transport (SASL_SSL without a client certificate), whose reader cuts
// frames on its own; it had only the --max-request-bytes check.
func TestSASLLargeFrameBeforeAuthRefusedTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "agent")
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: allSASL},
		KafkaTLS: server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile}})
	raw, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.addr(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	conn := &kafkatest.Conn{Conn: raw}
	defer conn.Close()
	if _, err := conn.Write([]byte{0, 0x10, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	closedByPeer(t, conn)
}

// TestSASLOAuthSessionEndsWithToken: with a session lifetime longer than
// the token's, the session ends when the token does (KIP-368, as Kafka).
func TestSASLOAuthSessionEndsWithToken(t *testing.T) {
	js := newJWKSServer(t)
	v, err := server.NewJWKSValidator(context.Background(), server.JWKSConfig{JWKS: js.url})
	if err != nil {
		t.Fatal(err)
	}
	c := startCluster(t, t.TempDir(), agent.Config{SASL: server.SASLConfig{Mechanisms: []string{server.MechOAuthBearer},
		TokenValidator: v, SessionLifetime: time.Hour}})
	exp := time.Now().Add(90 * time.Second)
	tok := js.sign(t, "ec1", js.keys["ec1"], map[string]any{"sub": "svc", "exp": exp.Unix()})
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := saslRaw(t, conn, "OAUTHBEARER", []byte("n,,\x01auth=Bearer "+tok+"\x01\x01"))
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("OAUTHBEARER: %v %+v", err, resp)
	}
	if ms := resp.SessionLifetimeMillis; ms <= 0 || ms > time.Until(exp).Milliseconds()+1000 {
		t.Fatalf("session lifetime %d ms for a token expiring in %v", ms, time.Until(exp))
	}
}

// TestSASLOffByDefault: without --sasl-mechanisms every request is served
// with no login, and a SaslHandshake is answered ILLEGAL_SASL_STATE, as
// Kafka answers it on a PLAINTEXT listener.
func TestSASLOffByDefault(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	if _, err := conn.RoundTrip(md, 5*time.Second); err != nil {
		t.Fatalf("Metadata without SASL: %v", err)
	}
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = "PLAIN"
	resp, err := conn.RoundTrip(hs, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != kerr.IllegalSaslState.Code {
		t.Fatalf("handshake with SASL off: code %d, want ILLEGAL_SASL_STATE", code)
	}
	if _, err := conn.RoundTrip(md, 5*time.Second); err != nil {
		t.Fatalf("Metadata after the refused handshake: %v", err)
	}
}

package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"sluice.dev/meta"
)

// credMeta serves SCRAM credentials from a map; nothing else of
// meta.Client is used by the exchanges.
type credMeta struct {
	meta.Client
	creds map[string]meta.ScramCredential // user + "/" + mechanism
	err   error
}

func (m *credMeta) ScramCredential(_ context.Context, user string, mech meta.ScramMechanism) (meta.ScramCredential, error) {
	if m.err != nil {
		return meta.ScramCredential{}, m.err
	}
	c, ok := m.creds[user+"/"+mech.String()]
	if !ok {
		return meta.ScramCredential{}, meta.ErrScramUserNotFound
	}
	return c, nil
}

func newCredMeta(t *testing.T, user, password string) *credMeta {
	t.Helper()
	m := &credMeta{creds: map[string]meta.ScramCredential{}}
	for _, mech := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		c, err := NewScramCredential(user, mech, password, 4096)
		if err != nil {
			t.Fatal(err)
		}
		m.creds[user+"/"+mech.String()] = c
	}
	return m
}

// runScram drives our server with xdg-go/scram's client (an
// implementation independent of ours).
func runScram(t testing.TB, m meta.Client, sh *scramHash, user, password string) error {
	t.Helper()
	hf := scram.SHA256
	if sh == scramSHA512 {
		hf = scram.SHA512
	}
	cl, err := hf.NewClient(user, password, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	x := newScramExchange(m, sh, []byte("fake-key"))
	msg, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		challenge, done, principal, _, err := x.step(context.Background(), []byte(msg))
		if err != nil {
			return err
		}
		if done {
			if principal != user {
				t.Fatalf("principal %q, want %q", principal, user)
			}
			// The client checks the server signature.
			if _, err := conv.Step(string(challenge)); err != nil {
				t.Fatalf("client refused the server's signature: %v", err)
			}
			if !conv.Valid() {
				t.Fatal("conversation not valid")
			}
			return nil
		}
		if msg, err = conv.Step(string(challenge)); err != nil {
			t.Fatal(err)
		}
		if i > 3 {
			t.Fatal("exchange does not end")
		}
	}
}

func TestScramAgainstXDGClient(t *testing.T) {
	m := newCredMeta(t, "al,ice=", "pässwörd")
	for _, sh := range []*scramHash{scramSHA256, scramSHA512} {
		t.Run(sh.name, func(t *testing.T) {
			if err := runScram(t, m, sh, "al,ice=", "pässwörd"); err != nil {
				t.Fatalf("good password: %v", err)
			}
			for _, c := range []struct{ user, pass string }{{"al,ice=", "wrong"}, {"mallory", "pässwörd"}} {
				err := runScram(t, m, sh, c.user, c.pass)
				if !errors.Is(err, errSASLFailed) {
					t.Fatalf("%s/%s: %v, want errSASLFailed", c.user, c.pass, err)
				}
			}
		})
	}
}

// TestScramUnknownUserLooksKnown: an unknown user's first server message
// has the shape of a known one's, and repeats its salt and iterations.
func TestScramUnknownUserLooksKnown(t *testing.T) {
	m := newCredMeta(t, "alice", "secret")
	first := func(user string) string {
		x := newScramExchange(m, scramSHA256, []byte("fake-key"))
		out, _, _, _, err := x.step(context.Background(), []byte("n,,n="+user+",r=abcdefgh"))
		if err != nil {
			t.Fatal(err)
		}
		// Drop the nonce, which is fresh each time.
		s := string(out)
		return s[len("r=abcdefgh")+32:]
	}
	a, b := first("mallory"), first("mallory")
	if a != b {
		t.Fatalf("unknown user's parameters change between attempts: %q vs %q", a, b)
	}
	// alice was made as the CLI makes users (32-byte salt; 8192
	// iterations is the CLI's default, newCredMeta uses 4096).
	known := first("alice")
	if len(known) != len(a) || !strings.HasSuffix(a, ",i=8192") {
		t.Fatalf("unknown user's parameters %q do not look like a known user's %q", a, known)
	}
}

// TestSASLMalformedTokens: every malformed message is a failed
// authentication, never a panic.
func TestSASLMalformedTokens(t *testing.T) {
	m := newCredMeta(t, "alice", "secret")
	firsts := []string{"", ",", "n", "n,", "n,,", "p=tls-unique,,n=alice,r=x", "y,,n=alice,r=x", "n,,r=x,n=alice",
		"n,,n=alice", "n,,n=,r=x", "n,,n=al=ZZce,r=x", "n,,n=alice,r=", "n,,n=alice,r=a b", "n,,n=alice,r=x,m=ext",
		"n,a=bob,n=alice,r=x", "n,,n=alice,r=x,tokenauth=true", string(make([]byte, 5000))}
	for _, f := range firsts {
		x := newScramExchange(m, scramSHA256, []byte("k"))
		if _, _, _, _, err := x.step(context.Background(), []byte(f)); !errors.Is(err, errSASLFailed) {
			t.Errorf("client-first %q: %v, want a failure", f, err)
		}
	}
	finals := []string{"", "c=biws", "c=biws,r=x", "c=biws,r=x,p=", "c=eSws,r=NONCE,p=AAAA", "c=biws,r=NONCE,p=!!!", "c=biws,r=OTHER,p=AAAA", "r=NONCE,c=biws,p=AAAA", "c=biws,r=NONCE,p=AAAA"}
	for _, f := range finals {
		x := newScramExchange(m, scramSHA256, []byte("k"))
		out, _, _, _, err := x.step(context.Background(), []byte("n,,n=alice,r=cnonce"))
		if err != nil {
			t.Fatal(err)
		}
		nonce, _, _ := strings.Cut(strings.TrimPrefix(string(out), "r="), ",")
		msg := []byte(strings.ReplaceAll(f, "NONCE", nonce))
		if _, _, _, _, err := x.step(context.Background(), msg); !errors.Is(err, errSASLFailed) {
			t.Errorf("client-final %q: %v, want a failure", f, err)
		}
	}
	for _, tok := range []string{"", "alice", "\x00alice", "\x00\x00secret", "bob\x00alice\x00secret", "\x00alice\x00secret\x00x"} {
		x := &plainExchange{meta: m, fakeKey: []byte("k")}
		if _, _, _, _, err := x.step(context.Background(), []byte(tok)); !errors.Is(err, errSASLFailed) {
			t.Errorf("PLAIN %q: %v, want a failure", tok, err)
		}
	}
	for _, tok := range []string{"", "n,,", "n,,\x01", "n,,\x01auth=Basic x\x01\x01", "n,,\x01auth=Bearer\x01\x01", "x,,\x01auth=Bearer t\x01\x01"} {
		x := &oauthExchange{v: rejectAll{}}
		if _, _, _, _, err := x.step(context.Background(), []byte(tok)); !errors.Is(err, errSASLFailed) {
			t.Errorf("OAUTHBEARER %q: %v, want a failure", tok, err)
		}
	}
}

type rejectAll struct{}

func (rejectAll) ValidateToken(context.Context, string) (string, time.Time, error) {
	return "", time.Time{}, errors.New("no")
}

func TestPlainAgainstScramCredential(t *testing.T) {
	m := newCredMeta(t, "alice", "secret")
	ok := &plainExchange{meta: m, fakeKey: []byte("k")}
	if _, done, p, _, err := ok.step(context.Background(), []byte("\x00alice\x00secret")); err != nil || !done || p != "alice" {
		t.Fatalf("PLAIN alice: %v %v %q", err, done, p)
	}
	// Only SCRAM-SHA-256 stored: PLAIN falls back to it.
	delete(m.creds, "alice/SCRAM-SHA-512")
	ok = &plainExchange{meta: m, fakeKey: []byte("k")}
	if _, done, _, _, err := ok.step(context.Background(), []byte("alice\x00alice\x00secret")); err != nil || !done {
		t.Fatalf("PLAIN alice with SHA-256 only: %v", err)
	}
	// Meta unreachable: a failure, but not counted against the client
	// (saslStep counts errSASLFailed; the message says why in the log).
	m.err = meta.ErrUnavailable
	x := &plainExchange{meta: m, fakeKey: []byte("k")}
	if _, _, _, _, err := x.step(context.Background(), []byte("\x00alice\x00secret")); !errors.Is(err, errSASLFailed) || !errors.Is(err, errSASLLookup) {
		t.Fatalf("meta down: %v", err)
	}
}

// TestSASLLimiterBounded: the per-address table never exceeds its bound
// and refused addresses earn their tokens back.
func TestSASLLimiterBounded(t *testing.T) {
	l := newSASLLimiter(2, 1, 100)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		l.fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		if n := l.size(); n > 100 {
			t.Fatalf("%d addresses tracked, bound 100", n)
		}
	}
	ip := "192.0.2.1"
	l.fail(ip, now)
	l.fail(ip, now)
	if l.allow(ip, now) {
		t.Fatal("address past its burst allowed")
	}
	if !l.allow(ip, now.Add(1100*time.Millisecond)) {
		t.Fatal("address not allowed again after a token refilled")
	}
	if !l.allow("198.51.100.7", now) {
		t.Fatal("an unseen address refused")
	}
}

func FuzzSCRAMClientMessages(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		m := &credMeta{creds: map[string]meta.ScramCredential{}}
		x := newScramExchange(m, scramSHA512, []byte("k"))
		if _, _, _, _, err := x.step(context.Background(), first); err != nil {
			return
		}
		if _, done, _, _, err := x.step(context.Background(), final); err == nil || done {
			t.Fatalf("an unknown user authenticated: %q %q", first, final)
		}
	})
}

// BenchmarkSASLLogin: what one login costs the agent's CPU. PLAIN runs
// PBKDF2 at the stored iteration count; SCRAM's server side is a few
// HMACs (its PBKDF2 runs on the client; the loop below includes the
// xdg-go client's, so it is an upper bound for the server).
func BenchmarkSASLLogin(b *testing.B) {
	for _, iters := range []int{4096, 8192} {
		m := &credMeta{creds: map[string]meta.ScramCredential{}}
		for _, mech := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
			c, err := NewScramCredential("alice", mech, "secret", iters)
			if err != nil {
				b.Fatal(err)
			}
			m.creds["alice/"+mech.String()] = c
		}
		b.Run(fmt.Sprintf("PLAIN-SHA512-%d", iters), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x := &plainExchange{meta: m, fakeKey: []byte("k")}
				if _, _, _, _, err := x.step(context.Background(), []byte("\x00alice\x00secret")); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("SCRAM-SHA512-%d-with-client", iters), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := runScram(b, m, scramSHA512, "alice", "secret"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

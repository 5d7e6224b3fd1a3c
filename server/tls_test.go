package server

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"sluice.dev/internal/tlsconf"
	"sluice.dev/internal/tlstest"
)

// startTLSOnly runs the TLS listener of a Server without the rest of Start
// (meta, the index): enough to handshake and look at the connections.
func startTLSOnly(t *testing.T, tc TLSConfig) *Server {
	t.Helper()
	s := New(Config{Addr: "127.0.0.1:0", TLS: tc,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, Deps{})
	if err := s.startTLS([]string{"tcp://127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.closing.Store(true)
		if err := s.stopTLS(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

// principals lists the principals of the open connections.
func (s *Server) principals() []string {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	var out []string
	for c := range s.conns {
		out = append(out, c.Principal().String())
	}
	return out
}

// waitPrincipals polls until the open connections have exactly want.
func waitPrincipals(t *testing.T, s *Server, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := s.principals()
		if len(got) == len(want) {
			ok := true
			for i := range want {
				found := false
				for _, g := range got {
					found = found || g == want[i]
				}
				ok = ok && found
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("connection principals %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handshakeFails dials with cfg and expects the connection to be refused:
// the handshake fails, or (TLS 1.3, where the client finishes first) the
// first read gets the server's alert or a closed socket.
func handshakeFails(t *testing.T, addr string, cfg *tls.Config) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("server accepted the connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept the connection open")
	}
}

// TestTLSClientCertificatePrincipals: with --kafka-tls-client-ca, a client
// certificate of the CA gets the principal of its subject (DEFAULT rule,
// then a RULE), no certificate or one of another CA is refused, a
// plaintext client is closed, and the good connection stays open through
// it all.
func TestTLSClientCertificatePrincipals(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	other := tlstest.NewCA(t, dir, "other")
	srv := ca.Server(t, dir, "server")
	alice := ca.Client(t, dir, "alice", pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"org"}})
	mallory := other.Client(t, dir, "mallory", pkix.Name{CommonName: "mallory"})

	for _, tc := range []struct {
		rules, want string
	}{
		{"", "User:CN=alice,OU=eng,O=org"},
		{"RULE:^CN=([^,]+),OU=eng,.*$/$1/U,DEFAULT", "User:ALICE"},
	} {
		s := startTLSOnly(t, TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File, PrincipalMappingRules: tc.rules})
		addr := s.Addr().String()
		good, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{alice.TLS}})
		if err != nil {
			t.Fatal(err)
		}
		waitPrincipals(t, s, tc.want)

		handshakeFails(t, addr, &tls.Config{RootCAs: ca.Pool()})
		handshakeFails(t, addr, &tls.Config{RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory.TLS, nil }})
		handshakeFails(t, addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{alice.TLS}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		// A plaintext Kafka client: its ApiVersions request is no TLS
		// record; the connection is closed.
		pc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = pc.Write([]byte{0, 0, 0, 18, 0, 18, 0, 3, 0, 0, 0, 1, 0, 4, 'k', 'c', 'a', 't', 0, 0})
		_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(pc); err != nil {
			t.Fatalf("plaintext client: %v (want the connection closed)", err)
		}
		pc.Close()
		waitPrincipals(t, s, tc.want) // the refused ones are gone, the good one stays
		_ = good.Close()
		waitPrincipals(t, s)
	}
}

// TestTLSNoClientCertificate: without --kafka-tls-client-ca a client
// presents no certificate and is User:ANONYMOUS; a rule that matches no
// subject refuses a client whose certificate it cannot map.
func TestTLSNoClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "server")
	s := startTLSOnly(t, TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile})
	c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitPrincipals(t, s, "User:ANONYMOUS")

	bob := ca.Client(t, dir, "bob", pkix.Name{CommonName: "bob", Organization: []string{"elsewhere"}})
	s2 := startTLSOnly(t, TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File,
		PrincipalMappingRules: "RULE:^CN=([^,]+),OU=eng,.*$/$1/"})
	handshakeFails(t, s2.Addr().String(), &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{bob.TLS}})
	waitPrincipals(t, s2)
}

// TestTLSCertificateRotation: replacing the certificate files changes what
// new connections see, without a restart; a pair that does not load keeps
// the previous certificate.
func TestTLSCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	first := ca.Server(t, dir, "server")
	s := startTLSOnly(t, TLSConfig{CertFile: first.CertFile, KeyFile: first.KeyFile})
	serial := func() string {
		c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serial(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serial %s, want %s", got, first.Cert.SerialNumber)
	}
	// A broken certificate file: the old one stays in service.
	if err := os.WriteFile(first.CertFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(tlsconf.CheckInterval + 100*time.Millisecond) // let a look at the files happen
	if got := serial(); got != first.Cert.SerialNumber.String() {
		t.Fatalf("after a broken rotation: serial %s, want the old %s", got, first.Cert.SerialNumber)
	}
	second := ca.Server(t, dir, "server") // same file names, new key and serial
	deadline := time.Now().Add(10 * time.Second)
	for serial() != second.Cert.SerialNumber.String() {
		if time.Now().After(deadline) {
			t.Fatalf("new certificate (serial %s) not served within 10s", second.Cert.SerialNumber)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

package tlsconf

import (
	"crypto/tls"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sluice.dev/internal/tlstest"
)

// Errors name the flag to change.
func TestErrorsNameTheFlag(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	leaf := ca.Server(t, dir, "leaf")
	log := slog.New(slog.DiscardHandler)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing key", func() error { _, err := Server(leaf.CertFile, "", "", "kafka", log); return err }, "--kafka-tls-cert and --kafka-tls-key"},
		{"missing file", func() error {
			_, err := Server(filepath.Join(dir, "nope.pem"), leaf.KeyFile, "", "kafka", log)
			return err
		}, "--kafka-tls-cert/--kafka-tls-key"},
		{"key of another cert", func() error {
			other := ca.Server(t, t.TempDir(), "other")
			_, err := Server(leaf.CertFile, other.KeyFile, "", "kafka", log)
			return err
		}, "--kafka-tls-cert/--kafka-tls-key"},
		{"CA not PEM", func() error { _, err := Server(leaf.CertFile, leaf.KeyFile, notPEM, "kafka", log); return err }, "--kafka-tls-client-ca"},
		{"peer without CA", func() error { _, _, err := Peer(leaf.CertFile, leaf.KeyFile, "", log); return err }, "--peer-tls-ca"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
}

// The policy: TLS 1.2 at least, AEAD suites, client certificates required
// and verified when a client CA is given.
func TestServerPolicy(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "ca")
	leaf := ca.Server(t, dir, "leaf")
	cfg, err := Server(leaf.CertFile, leaf.KeyFile, ca.File, "kafka", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
		t.Fatalf("policy: min version %x, client auth %v", cfg.MinVersion, cfg.ClientAuth)
	}
	for _, id := range cfg.CipherSuites {
		s := tls.CipherSuiteName(id)
		if !strings.Contains(s, "ECDHE") || !(strings.Contains(s, "GCM") || strings.Contains(s, "CHACHA20")) {
			t.Errorf("suite %s is not ECDHE with an AEAD", s)
		}
	}
	c, err := cfg.GetCertificate(nil)
	if err != nil || c.Leaf == nil || c.Leaf.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		t.Fatalf("certificate served: %v", err)
	}
}

// Package tlsconf builds the TLS configurations of Sluice's listeners (the
// Kafka listener, the zone cache's peer port) from PEM files: one policy
// (TLS 1.2+, AEAD suites) and certificates reloaded when their files change.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CheckInterval is how often, at most, a handshake looks at the
// certificate files: a stat of two files per handshake would be cheap, but
// a reconnect storm needs no syscalls it can do without, and a rotation
// taking effect within seconds is what operators expect.
const CheckInterval = 2 * time.Second

// Server builds the tls.Config of a listener from certificate files: TLS
// 1.2 and later only, AEAD cipher suites with forward secrecy for 1.2 (1.3's
// are all of that kind), the certificate reloaded from disk when it
// changes, and client certificates required and verified when clientCA is
// set. flagPrefix ("kafka", "peer") names the flags in errors. The cache's
// peer port uses it too.
func Server(certFile, keyFile, clientCA, flagPrefix string, log *slog.Logger) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("--%s-tls-cert and --%s-tls-key must be set together", flagPrefix, flagPrefix)
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, fmt.Errorf("--%s-tls-cert/--%s-tls-key: %w", flagPrefix, flagPrefix, err)
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		CipherSuites:   aeadSuites,
		GetCertificate: r.get,
	}
	if clientCA != "" {
		pool, err := loadCAs(clientCA)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-client-ca: %w", flagPrefix, err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// aeadSuites are the TLS 1.2 suites offered: ECDHE (forward secrecy) with
// an AEAD; CBC and RSA key exchange are left out (Go's own defaults still
// carry some CBC suites for old clients). TLS 1.3 ignores this list.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// loadCAs reads a PEM bundle of CA certificates.
func loadCAs(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// certReloader serves a certificate and re-reads it when its files change.
// A pair that fails to load (a rotation half done: the new certificate
// written, the old key still there) keeps the previous certificate and is
// tried again at the next look.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate // guarded by mu
	stamp    [2]fileStamp     // guarded by mu: the files when cert was read
	lastLook time.Time        // guarded by mu
	failed   [2]fileStamp     // guarded by mu: the files of the last failed load, logged once
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func (r *certReloader) stamps() ([2]fileStamp, error) {
	var st [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return st, err
		}
		st[i] = fileStamp{fi.Size(), fi.ModTime()}
	}
	return st, nil
}

// load reads the pair; the caller holds mu or is the only user.
func (r *certReloader) load() error {
	st, err := r.stamps()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return err
	}
	r.cert, r.stamp = &cert, st
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.lastLook) < CheckInterval {
		return r.cert, nil
	}
	r.lastLook = now
	st, err := r.stamps()
	if err != nil || st == r.stamp {
		return r.cert, nil
	}
	if err := r.load(); err != nil {
		if st != r.failed {
			r.failed = st
			r.log.Warn("TLS certificate files changed but do not load; serving the previous certificate",
				"cert", r.certFile, "key", r.keyFile, "err", err)
		}
		return r.cert, nil
	}
	if r.cert.Leaf != nil {
		r.log.Info("TLS certificate reloaded", "cert", r.certFile,
			"serial", r.cert.Leaf.SerialNumber.String(), "not_after", r.cert.Leaf.NotAfter)
	}
	return r.cert, nil
}

// Peer builds both ends of a mutually authenticated TLS link between the
// agents of a cluster (the zone cache's peer port; flags
// --peer-tls-cert, --peer-tls-key, --peer-tls-ca): the listener requires a
// client certificate issued by the CA in caFile, and the dialer presents
// the same certificate and accepts a listener only with a chain to that
// CA. Host names are not checked: agents dial each other at the addresses
// they registered (IPs, which change as agents come and go), and what a
// peer must prove is that it holds a certificate of the cluster's peer
// CA, not that it sits at a name. The HMAC of the peer protocol still
// authenticates every request on top.
func Peer(certFile, keyFile, caFile string, log *slog.Logger) (server, client *tls.Config, err error) {
	if caFile == "" {
		return nil, nil, fmt.Errorf("--peer-tls-ca must be set with --peer-tls-cert: agents verify each other against it")
	}
	server, err = Server(certFile, keyFile, caFile, "peer", log)
	if err != nil {
		return nil, nil, err
	}
	roots := server.ClientCAs
	get := server.GetCertificate
	client = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: aeadSuites,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return get(nil)
		},
		// Verified below against the peer CA, without a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("peer presented no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
			for _, c := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}
	return server, client, nil
}

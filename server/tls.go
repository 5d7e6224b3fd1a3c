package server

import "time"

// TLSConfig configures TLS on the Kafka listener (docs/security.md). With
// CertFile empty the listener is plaintext.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate chain and key, PEM
	// (flags --kafka-tls-cert, --kafka-tls-key). They are re-read when
	// either file changes (size or modification time, looked at most
	// every tlsconf.CheckInterval), so a rotated certificate is served to new
	// connections without a restart.
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, requires every client to present a
	// certificate signed by one of its CAs (mTLS; flag
	// --kafka-tls-client-ca). Read once at start.
	ClientCAFile string
	// PrincipalMappingRules maps a client certificate's subject to a
	// principal name, in Kafka's ssl.principal.mapping.rules syntax (flag
	// --ssl-principal-mapping-rules; principal_rules.go). Empty means
	// DEFAULT: the subject DN as Kafka renders it.
	PrincipalMappingRules string
}

// Enabled reports whether the listener serves TLS.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" }

// tlsHandshakeTimeout bounds a TLS handshake: a client that connects and
// says nothing must not hold a goroutine and a connection slot forever.
const tlsHandshakeTimeout = 10 * time.Second

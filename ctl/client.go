package ctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Environment variables the connection flags fall back to. Secrets belong
// in the environment, not on a command line other users can read in ps.
const (
	EnvBrokers      = "SLUICE_BROKERS"
	EnvSASLUser     = "SLUICE_SASL_USER"
	EnvSASLPassword = "SLUICE_SASL_PASSWORD"
)

// DefaultBrokers is where `make run` puts the playground's Kafka listener.
const DefaultBrokers = "127.0.0.1:9092"

// connFlags are the flags every admin command shares: where the cluster
// is, how to talk to it, how to print, how long to wait.
type connFlags struct {
	brokers                string
	tls                    bool
	tlsCA, tlsCert, tlsKey string
	saslMech               string
	saslUser, saslPassword string
	format                 string
	timeout                time.Duration
	getenv                 func(string) string
	seeds                  []string
	mech                   sasl.Mechanism
	tlsCfg                 *tls.Config
}

func (f *connFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	f.getenv = getenv
	brokers := DefaultBrokers
	if v := getenv(EnvBrokers); v != "" {
		brokers = v
	}
	fs.StringVar(&f.brokers, "brokers", brokers, "Kafka bootstrap addresses, comma-separated: any Sluice agent or any Kafka broker; $"+EnvBrokers+" sets the default")
	fs.BoolVar(&f.tls, "tls", false, "dial the brokers over TLS, verified against the system's CA certificates (or --tls-ca)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "PEM CA bundle to verify the brokers' certificates with; implies --tls")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM client certificate for mutual TLS (with --tls-key); implies --tls")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.saslMech, "sasl-mechanism", "", "authenticate with SASL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL")
	fs.StringVar(&f.saslUser, "sasl-user", "", "SASL user name (or $"+EnvSASLUser+")")
	fs.StringVar(&f.saslPassword, "sasl-password", "", "SASL password (better: $"+EnvSASLPassword+", which ps does not show)")
	fs.StringVar(&f.format, "format", "table", "output: table (for people) or json (for scripts)")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "how long to wait for the cluster: to reach a broker, for a command's admin requests, for each produced record's acknowledgement")
}

// validate checks the flags and prepares TLS and SASL; it opens nothing.
func (f *connFlags) validate() error {
	f.seeds = f.seeds[:0]
	for _, b := range strings.Split(f.brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			f.seeds = append(f.seeds, b)
		}
	}
	if len(f.seeds) == 0 {
		return fmt.Errorf("--brokers is empty: give host:port of an agent or broker (or set $%s)", EnvBrokers)
	}
	switch f.format {
	case "table", "json":
	default:
		return fmt.Errorf("--format must be table or json, got %q", f.format)
	}
	if f.timeout <= 0 {
		return fmt.Errorf("--timeout must be positive, got %s", f.timeout)
	}
	if err := f.buildTLS(); err != nil {
		return err
	}
	return f.buildSASL()
}

func (f *connFlags) buildTLS() error {
	f.tlsCfg = nil
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key must be set together")
	}
	if !f.tls && f.tlsCA == "" && f.tlsCert == "" {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.tlsCA != "" {
		b, err := os.ReadFile(f.tlsCA)
		if err != nil {
			return fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return fmt.Errorf("--tls-ca: %s holds no PEM certificate", f.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	f.tlsCfg = cfg
	return nil
}

func (f *connFlags) buildSASL() error {
	f.mech = nil
	user := f.saslUser
	if user == "" {
		user = f.getenv(EnvSASLUser)
	}
	pass := f.saslPassword
	if pass == "" {
		pass = f.getenv(EnvSASLPassword)
	}
	mech := strings.ToUpper(f.saslMech)
	if mech == "" {
		if f.saslUser != "" || f.saslPassword != "" {
			return errors.New("--sasl-user and --sasl-password need --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	}
	if user == "" || pass == "" {
		return fmt.Errorf("--sasl-mechanism %s needs --sasl-user and --sasl-password (or $%s and $%s)", mech, EnvSASLUser, EnvSASLPassword)
	}
	switch mech {
	case "PLAIN":
		f.mech = plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		f.mech = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		f.mech = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	default:
		return fmt.Errorf("--sasl-mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", f.saslMech)
	}
	return nil
}

// opts are the kgo options every client of the command starts from.
func (f *connFlags) opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(f.seeds...),
		kgo.ClientID("sluice-cli"),
		kgo.DialTimeout(min(f.timeout, 10*time.Second)),
		// Each request is bounded by the command's context; retries stop
		// at --timeout rather than kgo's default of 30 s.
		kgo.RetryTimeout(f.timeout),
	}
	if f.tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(f.tlsCfg.Clone()))
	}
	if f.mech != nil {
		opts = append(opts, kgo.SASL(f.mech))
	}
	return opts
}

// client opens a kgo client with the connection flags and extra, and
// checks within --timeout that a broker answers, so an unreachable
// cluster or a refused login fails at once with the flag to change
// rather than as a retry loop ending in "context deadline exceeded".
// The client is closed when the command returns.
func (e *env) client(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(append(e.conn.opts(), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("--brokers: %w", err)
	}
	e.closers = append(e.closers, cl.Close)
	pctx, cancel := context.WithTimeout(ctx, e.conn.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		return nil, e.unreachable(err)
	}
	return cl, nil
}

// admin is client wrapped in kadm, its requests bounded by --timeout on
// the broker side too.
func (e *env) admin(ctx context.Context) (*kadm.Client, error) {
	cl, err := e.client(ctx)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(e.conn.timeout, time.Hour).Milliseconds()))
	return adm, nil
}

// bounded is ctx limited by --timeout, for one admin step.
func (e *env) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.conn.timeout)
}

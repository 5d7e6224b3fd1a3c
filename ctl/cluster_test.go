package ctl

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"testing"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/server"

	"sluice.dev/internal/tlstest"
)

// TestClusterInfo: the table (golden, ids and ports normalised) and the
// JSON, checked against kadm's metadata.
func TestClusterInfo(t *testing.T) {
	c := newCLI(t)
	c.ok("", "topic", "create", "a", "--partitions", "2")
	c.ok("", "topic", "create", "b", "--partitions", "3")
	golden(t, "cluster_info", c.normaliser().apply(c.ok("", "cluster", "info")))

	var info struct {
		ClusterID  string `json:"cluster_id"`
		Controller int32  `json:"controller"`
		Topics     int    `json:"topics"`
		Partitions int    `json:"partitions"`
		Brokers    []struct {
			ID   int32  `json:"id"`
			Host string `json:"host"`
			Port int32  `json:"port"`
		} `json:"brokers"`
	}
	c.jsonOf(&info, "", "cluster", "info")
	m, err := c.admin().BrokerMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.ClusterID != m.Cluster || info.Controller != m.Controller || info.Topics != 2 || info.Partitions != 5 ||
		len(info.Brokers) != len(m.Brokers) || info.Brokers[0].ID != m.Brokers[0].NodeID || info.Brokers[0].Port != m.Brokers[0].Port {
		t.Errorf("cluster info --format json = %+v; kadm: %+v", info, m)
	}
}

// TestSASL: every command's connection flags log in with PLAIN and both
// SCRAMs, the password also from $SLUICE_SASL_PASSWORD; a wrong password
// fails naming the SASL flags.
func TestSASL(t *testing.T) {
	c := newCLI(t, func(cfg *agent.Config) {
		cfg.SASL = server.SASLConfig{Mechanisms: []string{server.MechPlain, server.MechScramSHA256, server.MechScramSHA512}}
	})
	var creds []meta.ScramCredential
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		cred, err := server.NewScramCredential("alice", m, "alice-secret", 4096)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, cred)
	}
	if errs, err := c.c.Meta.AlterScramCredentials(context.Background(), creds, nil); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("add alice: %v %v", err, errs)
	}
	for i, mech := range []string{"PLAIN", "SCRAM-SHA-256", "scram-sha-512"} {
		topic := []string{"p", "s256", "s512"}[i]
		c.ok("", "topic", "create", topic, "--partitions", "1", "--sasl-mechanism", mech, "--sasl-user", "alice", "--sasl-password", "alice-secret")
		c.env = map[string]string{EnvSASLUser: "alice", EnvSASLPassword: "alice-secret"}
		c.ok("hello\n", "produce", topic, "--sasl-mechanism", mech)
		if got := c.ok("", "consume", topic, "-e", "--sasl-mechanism", mech); got != "hello\n" {
			t.Errorf("%s: consumed %q", mech, got)
		}
		c.env = nil
	}
	c.fails([]string{"login refused (SASL_AUTHENTICATION_FAILED", "check --sasl-mechanism, --sasl-user and --sasl-password"}, "",
		"topic", "list", "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", "alice", "--sasl-password", "wrong", "--timeout", "5s")
	c.fails([]string{"--sasl-mechanism SCRAM-SHA-256 needs --sasl-user and --sasl-password"}, "", "topic", "list", "--sasl-mechanism", "SCRAM-SHA-256")
	c.fails([]string{"--sasl-mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}, "", "topic", "list", "--sasl-mechanism", "GSSAPI", "--sasl-user", "a", "--sasl-password", "b")
}

// TestMutualTLS: --tls-ca, --tls-cert and --tls-key reach an agent that
// requires client certificates; without a certificate the command fails
// naming the TLS flags.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, dir, "sluice")
	srv := ca.Server(t, dir, "agent")
	client := ca.Client(t, dir, "client", pkix.Name{CommonName: "ctl"})
	c := newCLI(t, func(cfg *agent.Config) {
		cfg.KafkaTLS = server.TLSConfig{CertFile: srv.CertFile, KeyFile: srv.KeyFile, ClientCAFile: ca.File}
	})
	tlsArgs := []string{"--tls-ca", ca.File, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile}
	c.ok("", append([]string{"topic", "create", "secure", "--partitions", "1"}, tlsArgs...)...)
	c.ok("over tls\n", append([]string{"produce", "secure"}, tlsArgs...)...)
	if got := c.ok("", append([]string{"consume", "secure", "-e"}, tlsArgs...)...); got != "over tls\n" {
		t.Errorf("consumed %q over mTLS", got)
	}
	c.fails([]string{"cannot reach a broker", "check --tls, --tls-ca, --tls-cert and --tls-key"}, "", "topic", "list", "--tls-ca", ca.File, "--timeout", "3s")
	c.fails([]string{"--tls-cert and --tls-key must be set together"}, "", "topic", "list", "--tls-cert", client.CertFile)
}

package compat_test

// SASL (issue 14) with sarama and kafkajs: SCRAM-SHA-256/512 logins that
// produce and consume, and a wrong password refused with
// SASL_AUTHENTICATION_FAILED.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/server"
)

// startSASLCluster starts a cluster offering PLAIN and SCRAM with user
// alice (password alice-secret).
func startSASLCluster(t testing.TB, _ ...func(*agent.Config)) *cluster {
	t.Helper()
	c := startCluster(t, func(cfg *agent.Config) {
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
	if errs, err := c.Meta.AlterScramCredentials(context.Background(), creds, nil); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("add alice: %v %v", err, errs)
	}
	return c
}

// xdgSCRAM is sarama's SCRAM client on xdg-go/scram (sarama ships none).
type xdgSCRAM struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

func (x *xdgSCRAM) Begin(user, pass, authzID string) error {
	cl, err := x.hash.NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	x.conv = cl.NewConversation()
	return nil
}

func (x *xdgSCRAM) Step(challenge string) (string, error) { return x.conv.Step(challenge) }
func (x *xdgSCRAM) Done() bool                            { return x.conv.Done() }

func saramaSASLConfig(mech sarama.SASLMechanism, user, pass string) *sarama.Config {
	cfg := saramaConfig()
	cfg.Net.SASL.Enable = true
	cfg.Net.SASL.Handshake = true
	cfg.Net.SASL.Mechanism = mech
	cfg.Net.SASL.User, cfg.Net.SASL.Password = user, pass
	switch mech {
	case sarama.SASLTypeSCRAMSHA256:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: scram.SHA256} }
	case sarama.SASLTypeSCRAMSHA512:
		cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &xdgSCRAM{hash: scram.SHA512} }
	}
	cfg.Metadata.Retry.Max = 1
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	return cfg
}

func TestSaramaSASL(t *testing.T) {
	c := startSASLCluster(t)
	for _, mech := range []sarama.SASLMechanism{sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512} {
		t.Run(string(mech), func(t *testing.T) {
			topic := "sarama-sasl-" + string(mech)
			cfg := saramaSASLConfig(mech, "alice", "alice-secret")
			prod, err := sarama.NewSyncProducer([]string{c.addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: -1, Value: sarama.StringEncoder(valueOf(topic, i))}); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			prod.Close()
			cl, err := sarama.NewClient([]string{c.addr()}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			var total int64
			parts, err := cl.Partitions(topic)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				hw, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
				if err != nil {
					t.Fatal(err)
				}
				total += hw
			}
			if total != 10 {
				t.Fatalf("%d records stored, want 10", total)
			}

			_, err = sarama.NewClient([]string{c.addr()}, saramaSASLConfig(mech, "alice", "wrong"))
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) && !errors.Is(err, sarama.ErrOutOfBrokers) {
				t.Fatalf("wrong password: %v", err)
			}
			if err == nil {
				t.Fatal("wrong password accepted")
			}
		})
	}
}

// TestKafkaJSSASL: kafkajs logs in with SCRAM-SHA-256 and -512 and PLAIN,
// produces, reads the high watermarks; a wrong password is refused.
func TestKafkaJSSASL(t *testing.T) {
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		t.Run(mech, func(t *testing.T) {
			runKafkaJSOn(t, startSASLCluster, "sasl", []string{"KAFKAJS_SASL=" + mech + ":alice:alice-secret"})
		})
	}
}

// TestFranzGoOwnSCRAMTests runs franz-go's own SCRAM tests (kgo's
// TestSCRAMAuth and TestSCRAMAuthBadCredentials, switched on by its
// KGO_TEST_SCRAM variables) against an agent, for SHA-256 and SHA-512.
// (Its TestOAuthAuth is not run: it sends unsecured "alg":"none" tokens,
// which Kafka's unsecured validator takes and ours refuses by design.)
func TestFranzGoOwnSCRAMTests(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go not on PATH")
	}
	c := startSASLCluster(t)
	for _, bits := range []string{"256", "512"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, goBin, "test", "github.com/twmb/franz-go/pkg/kgo", "-run", "^TestSCRAMAuth", "-count=1", "-v")
		cmd.Env = append(os.Environ(), "KGO_SEEDS="+c.addr(), "KGO_TEST_SCRAM_SEEDS="+c.addr(), "KGO_TEST_SCRAM=alice:alice-secret:"+bits)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestSCRAMAuth ") || !strings.Contains(string(out), "--- PASS: TestSCRAMAuthBadCredentials") {
			t.Fatalf("franz-go's SCRAM tests (SHA-%s): %v\n%s", bits, err, out)
		}
	}
}

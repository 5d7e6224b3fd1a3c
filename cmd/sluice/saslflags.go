package main

// SASL flags of the Kafka listener (issue 14; server/sasl.go), shared by
// the agent and the playground, and --bootstrap-user of the playground.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"sluice.dev/meta"
	"sluice.dev/server"
)

type saslFlags struct {
	mechanisms     string
	lifetime       time.Duration
	failureBurst   int
	failureRate    float64
	jwks           string
	issuer         string
	audience       string
	principalClaim string

	cfg server.SASLConfig // built by validate
}

func (f *saslFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.mechanisms, "sasl-mechanisms", "", "SASL mechanisms offered on the Kafka listener, comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; empty (the default): no authentication, every client is User:ANONYMOUS")
	fs.DurationVar(&f.lifetime, "sasl-session-lifetime", 0, "longest a SASL session lasts before the client must re-authenticate on its connection (KIP-368, Kafka's connections.max.reauth.ms); 0: forever")
	fs.IntVar(&f.failureBurst, "sasl-failure-burst", 10, "failed SASL logins one source address may make at once before it is refused")
	fs.Float64Var(&f.failureRate, "sasl-failure-rate", 1, "failed SASL logins per second one source address earns back after --sasl-failure-burst")
	fs.StringVar(&f.jwks, "sasl-oauthbearer-jwks", "", "JWK Set (file path or http(s) URL) whose public keys sign OAUTHBEARER tokens; required with OAUTHBEARER")
	fs.StringVar(&f.issuer, "sasl-oauthbearer-issuer", "", "OAUTHBEARER tokens must have this iss (unchecked when empty)")
	fs.StringVar(&f.audience, "sasl-oauthbearer-audience", "", "OAUTHBEARER tokens must list this in aud (unchecked when empty)")
	fs.StringVar(&f.principalClaim, "sasl-oauthbearer-principal-claim", "sub", "the token claim that names the principal (User:<value>)")
}

// validate checks the flags and builds the SASL configuration; with
// OAUTHBEARER it reads the key set once, so a wrong flag fails at start.
func (f *saslFlags) validate() error {
	mechs := splitList(f.mechanisms)
	for i, m := range mechs {
		mechs[i] = strings.ToUpper(m)
	}
	if err := server.CheckSASLMechanisms(mechs); err != nil {
		return err
	}
	switch {
	case f.lifetime < 0:
		return fmt.Errorf("--sasl-session-lifetime must not be negative, got %s", f.lifetime)
	case f.failureBurst < 1:
		return fmt.Errorf("--sasl-failure-burst must be at least 1, got %d", f.failureBurst)
	case f.failureRate <= 0:
		return fmt.Errorf("--sasl-failure-rate must be positive, got %g", f.failureRate)
	}
	f.cfg = server.SASLConfig{Mechanisms: mechs, SessionLifetime: f.lifetime, FailureBurst: f.failureBurst, FailureRate: f.failureRate}
	oauth := false
	for _, m := range mechs {
		oauth = oauth || m == server.MechOAuthBearer
	}
	if !oauth {
		if f.jwks != "" {
			return errors.New("--sasl-oauthbearer-jwks is set but --sasl-mechanisms does not offer OAUTHBEARER")
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	v, err := server.NewJWKSValidator(ctx, server.JWKSConfig{JWKS: f.jwks, Issuer: f.issuer, Audience: f.audience, PrincipalClaim: f.principalClaim})
	if err != nil {
		return err
	}
	f.cfg.TokenValidator = v
	return nil
}

// parseUserPassword splits --bootstrap-user's NAME:PASSWORD.
func parseUserPassword(v string) (user, password string, err error) {
	user, password, ok := strings.Cut(v, ":")
	if !ok || user == "" || password == "" {
		return "", "", errors.New("--bootstrap-user wants NAME:PASSWORD")
	}
	return user, password, nil
}

// scramIterations is the iteration count of credentials the CLI derives:
// twice Kafka's minimum, a few milliseconds per PLAIN login.
const scramIterations = 8192

// setUser stores SCRAM-SHA-256 and -512 credentials (or those of mechs)
// for user, derived from password here: meta gets no password.
func setUser(ctx context.Context, alter func(context.Context, []meta.ScramCredential, []meta.ScramDeletion) ([]error, error), user, password string, mechs []meta.ScramMechanism, iterations int) error {
	var creds []meta.ScramCredential
	for _, m := range mechs {
		c, err := server.NewScramCredential(user, m, password, iterations)
		if err != nil {
			return fmt.Errorf("user %s: %w", user, err)
		}
		creds = append(creds, c)
	}
	errs, err := alter(ctx, creds, nil)
	if err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("user %s: %w", user, err)
	}
	return nil
}

var bothScram = []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512}

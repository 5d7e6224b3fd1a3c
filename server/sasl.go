package server

// SaslHandshake, versions 0–1, and SaslAuthenticate, versions 0–2
// (issue 14, docs/security.md).
//
// Mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (sasl_scram.go) and
// OAUTHBEARER (sasl_oauthbearer.go), those of SASLConfig.Mechanisms
// (flag --sasl-mechanisms) and no others. With none configured (the
// default) nothing changes: every request is served, SaslHandshake is
// answered ILLEGAL_SASL_STATE as Kafka answers it on a PLAINTEXT
// listener, and the gate in dispatch is one nil check.
//
// With mechanisms configured, a connection may send ApiVersions,
// SaslHandshake and SaslAuthenticate only, until it has authenticated;
// any other request closes the connection with a log line, as Kafka
// does (its SaslServerAuthenticator refuses to read anything else).
//
// Handshake v1 is followed by SaslAuthenticate requests that carry the
// tokens. Handshake v0 (clients from before Kafka 1.0, KIP-152) is
// followed by raw SASL tokens in bare size-prefixed frames with no
// request header; Kafka still serves that, and so does this file: after
// a v0 handshake the connection's next frames are read as tokens
// (saslRawToken) and answered with bare size-prefixed tokens, until the
// exchange ends. A failure there closes the connection with no answer,
// which is all the raw protocol allows.
//
// A failed exchange (unknown user, wrong password, a bad token) is
// answered SASL_AUTHENTICATION_FAILED with the same message whatever was
// wrong, and the connection is closed once the answer is on its way.
// Failures are counted per source address (saslLimiter): past the
// bucket an address's SaslAuthenticate is refused at once, with the same
// answer, before any credential is looked up or any PBKDF2 runs.
//
// Re-authentication (KIP-368): with SASLConfig.SessionLifetime set,
// SaslAuthenticate v1+ tells the client how long its session lasts
// (session_lifetime_ms; for OAUTHBEARER no longer than the token's
// exp). A client re-authenticates on the live connection with a new
// SaslHandshake and SaslAuthenticate before then (franz-go, librdkafka
// and the Java client do); a connection whose session has expired gets
// its next other request refused by closing the connection, as Kafka
// does. A re-authentication must keep the mechanism and the principal
// (Kafka's rule: the principal of a connection never changes).
//
// What is left out: GSSAPI (Kerberos) and SCRAM delegation tokens
// (tokenauth); the handshake answers UNSUPPORTED_SASL_MECHANISM for
// them. SASLprep of SCRAM names and passwords is not applied (Kafka
// does not apply it either; names and passwords are compared as bytes).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sluice.dev/internal/lograte"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(int16(kmsg.SASLHandshake), 0, 1, handleSASLHandshake)
	register(int16(kmsg.SASLAuthenticate), 0, 2, handleSASLAuthenticate)
}

// The SASL mechanism names (--sasl-mechanisms).
const (
	MechPlain       = "PLAIN"
	MechScramSHA256 = "SCRAM-SHA-256"
	MechScramSHA512 = "SCRAM-SHA-512"
	MechOAuthBearer = "OAUTHBEARER"
)

// SASLConfig configures SASL on the Kafka listener (Config.SASL).
type SASLConfig struct {
	// Mechanisms are those offered (flag --sasl-mechanisms); empty: no
	// authentication, every connection is User:ANONYMOUS.
	Mechanisms []string
	// SessionLifetime is the longest a SASL session lasts before the
	// client must re-authenticate (flag --sasl-session-lifetime,
	// Kafka's connections.max.reauth.ms); 0: sessions never expire.
	SessionLifetime time.Duration
	// TokenValidator checks OAUTHBEARER tokens; required when
	// OAUTHBEARER is offered (sasl_oauthbearer.go builds one from the
	// --sasl-oauthbearer-* flags).
	TokenValidator TokenValidator
	// FailureBurst failed attempts from one source address are let
	// through at once, then FailureRate a second (flags
	// --sasl-failure-burst, --sasl-failure-rate; defaults 10 and 1).
	FailureBurst int
	FailureRate  float64
}

// TokenValidator validates an OAUTHBEARER token and returns the principal
// name it carries and when it expires.
type TokenValidator interface {
	ValidateToken(ctx context.Context, token string) (principal string, expires time.Time, err error)
}

// CheckSASLMechanisms validates a --sasl-mechanisms list.
func CheckSASLMechanisms(mechs []string) error {
	for _, m := range mechs {
		switch m {
		case MechPlain, MechScramSHA256, MechScramSHA512, MechOAuthBearer:
		default:
			return fmt.Errorf("--sasl-mechanisms: unknown mechanism %q (want a comma list of %s, %s, %s, %s)",
				m, MechPlain, MechScramSHA256, MechScramSHA512, MechOAuthBearer)
		}
	}
	return nil
}

// saslServer is the listener's SASL state; nil when SASL is off.
type saslServer struct {
	mechs    []string
	lifetime time.Duration
	tokens   TokenValidator
	limiter  *saslLimiter
	// fakeKey salts the made-up SCRAM parameters of unknown users
	// (sasl_scram.go), so they look the same on every attempt.
	fakeKey []byte
	// limitedLog limits the log line for a refusal over the failure
	// budget to one a second, so an address being refused cannot flood
	// the log (the metric counts every one).
	limitedLog lograte.Limiter
}

func newSASLServer(cfg SASLConfig) (*saslServer, error) {
	if len(cfg.Mechanisms) == 0 {
		return nil, nil
	}
	if err := CheckSASLMechanisms(cfg.Mechanisms); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Mechanisms, MechOAuthBearer) && cfg.TokenValidator == nil {
		return nil, errors.New("--sasl-mechanisms offers OAUTHBEARER but no --sasl-oauthbearer-jwks is set")
	}
	if cfg.SessionLifetime < 0 {
		return nil, errors.New("--sasl-session-lifetime must not be negative")
	}
	burst, rate := cfg.FailureBurst, cfg.FailureRate
	if burst <= 0 {
		burst = 10 // a user mistyping a password a few times is not an attack
	}
	if rate <= 0 {
		rate = 1 // guessing one password a second per address is useless
	}
	return &saslServer{
		mechs:    slices.Clone(cfg.Mechanisms),
		lifetime: cfg.SessionLifetime,
		tokens:   cfg.TokenValidator,
		limiter:  newSASLLimiter(burst, rate, saslLimiterMaxAddrs),
		fakeKey:  randomBytes(32),
	}, nil
}

// saslConn is a connection's SASL state. Only the connection's worker
// touches it (in dispatch and the SASL handlers, which complete before
// the next request is dispatched), so it needs no lock.
type saslConn struct {
	// mech is the mechanism chosen by the last handshake, "" when the
	// next SASL request must be a handshake.
	mech string
	// raw: the handshake was v0; the next frames are bare tokens.
	raw bool
	// exchange is the mechanism's state between tokens.
	exchange saslExchange
	// authenticated: a session exists (it may have expired).
	authenticated bool
	principal     string
	authMech      string
	// expires ends the session (zero: never).
	expires time.Time
}

// saslExchange is one mechanism's server side: step takes the client's
// token and returns the next challenge; done with a principal when the
// exchange succeeded. An error is a failed authentication.
type saslExchange interface {
	step(ctx context.Context, token []byte) (challenge []byte, done bool, principal string, expires time.Time, err error)
}

var (
	// errSASLFailed is every failed authentication: one message for
	// all causes, so a client learns nothing of which part was wrong.
	errSASLFailed = errors.New("invalid credentials")
	// errSASLState is a SASL request out of order.
	errSASLState = errors.New("SASL request out of order")
	// errSASLLookup marks a failure that is not the client's (meta
	// unreachable): answered as a failed authentication, not counted
	// against the client's address.
	errSASLLookup = errors.New("credential lookup failed")
	// errSASLLimited: the source address is over its failure budget.
	errSASLLimited = fmt.Errorf("%w (source address over its failure budget)", errSASLFailed)
)

// saslMessage is what a failed client is told, whatever the cause (the
// log line has the cause).
var saslMessage = "Authentication failed: invalid credentials"

// saslAllows is the gate of dispatch, reached only when SASL is on: may
// the connection send this request now?
func (s *Server) saslAllows(c *conn, key int16, now time.Time) (bool, string) {
	switch key {
	case int16(kmsg.ApiVersions), int16(kmsg.SASLHandshake), int16(kmsg.SASLAuthenticate):
		return true, ""
	}
	st := c.sasl
	switch {
	case st == nil || !st.authenticated:
		mSASLUnauth.Inc()
		return false, "request before SASL authentication"
	case !st.expires.IsZero() && now.After(st.expires):
		mSASLExpired.Inc()
		return false, "SASL session expired and the client did not re-authenticate"
	}
	return true, ""
}

func handleSASLHandshake(s *Server, rc *reqCtx, req kmsg.Request) {
	r := req.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	ss := s.sasl
	if ss == nil {
		// Kafka on a PLAINTEXT listener: SASL is not in use here.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		rc.respond(resp)
		return
	}
	resp.SupportedMechanisms = ss.mechs
	c := rc.c
	st := c.sasl
	if st == nil {
		st = &saslConn{}
		c.sasl = st
	}
	switch {
	case st.mech != "":
		// A second handshake in the middle of an exchange.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		rc.respond(resp)
		s.saslClose(rc, "SASL handshake during an exchange")
		return
	case !slices.Contains(ss.mechs, r.Mechanism):
		// Kafka answers with the list and closes the connection.
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		rc.respond(resp)
		s.saslClose(rc, "SASL mechanism not offered: "+trimForLog(r.Mechanism))
		return
	case st.authenticated && (r.Version == 0 || r.Mechanism != st.authMech):
		// KIP-368: re-authentication keeps the mechanism, and needs
		// SaslAuthenticate framing.
		resp.ErrorCode = kerr.IllegalSaslState.Code
		rc.respond(resp)
		s.saslClose(rc, "SASL re-authentication with another mechanism or handshake v0")
		return
	}
	st.mech = r.Mechanism
	st.raw = r.Version == 0
	st.exchange = ss.newExchange(s, r.Mechanism)
	rc.respond(resp)
}

func handleSASLAuthenticate(s *Server, rc *reqCtx, req kmsg.Request) {
	r := req.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	st := rc.c.sasl
	if s.sasl == nil || st == nil || st.mech == "" || st.raw {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate before SaslHandshake"
		resp.ErrorMessage = &msg
		rc.respond(resp)
		s.saslClose(rc, msg)
		return
	}
	challenge, done, err := s.saslStep(rc.c, r.SASLAuthBytes, rc.start)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = &saslMessage
		rc.respond(resp)
		if err == errSASLLimited {
			if !s.sasl.limitedLog.Allow(rc.start, time.Second) {
				rc.c.closeWhenSent() // logged this second already
				return
			}
		}
		s.saslClose(rc, "SASL authentication failed: "+err.Error())
		return
	}
	resp.SASLAuthBytes = challenge
	if done && !st.expires.IsZero() {
		resp.SessionLifetimeMillis = max(st.expires.Sub(rc.start).Milliseconds(), 1)
	}
	rc.respond(resp)
}

// saslStep runs one token through the connection's exchange; on success
// at the end of it the connection is authenticated. Errors are
// errSASLFailed or errSASLState.
func (s *Server) saslStep(c *conn, token []byte, now time.Time) (challenge []byte, done bool, err error) {
	ss, st := s.sasl, c.sasl
	ip := remoteIP(c.remote)
	if !ss.limiter.allow(ip, now) {
		mSASLRateLimited.Inc()
		return nil, false, errSASLLimited
	}
	ctx, cancel := context.WithTimeout(context.Background(), saslLookupTimeout)
	defer cancel()
	challenge, done, principal, expires, err := st.exchange.step(ctx, token)
	if err != nil {
		st.mech, st.exchange = "", nil
		if errors.Is(err, errSASLFailed) && !errors.Is(err, errSASLLookup) {
			ss.limiter.fail(ip, now)
			mSASLFailed.Inc()
		}
		return nil, false, err
	}
	if !done {
		return challenge, false, nil
	}
	if st.authenticated && principal != st.principal {
		// KIP-368: a connection's principal never changes.
		st.mech, st.exchange = "", nil
		mSASLFailed.Inc()
		return nil, false, fmt.Errorf("%w (re-authentication as another principal)", errSASLFailed)
	}
	st.authenticated, st.principal, st.authMech = true, principal, st.mech
	st.mech, st.exchange, st.raw = "", nil, false
	st.expires = time.Time{}
	if ss.lifetime > 0 {
		st.expires = now.Add(ss.lifetime)
		if !expires.IsZero() && expires.Before(st.expires) {
			st.expires = expires
		}
	}
	c.setPrincipal(Principal{Type: "User", Name: principal})
	mSASLSucceeded.Inc()
	return challenge, true, nil
}

// saslRawToken serves one bare token frame after a v0 handshake (see the
// top of this file). It returns false to close the connection.
func (s *Server) saslRawToken(c *conn, seq uint64, frame *frameBuf) bool {
	defer frame.release()
	now := time.Now()
	challenge, _, err := s.saslStep(c, frame.b, now)
	if err != nil {
		if err != errSASLLimited || s.sasl.limitedLog.Allow(now, time.Second) {
			s.log.Warn("closing connection: SASL authentication failed", "remote", c.remote, "err", err)
		}
		return false
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(challenge)), uint32(len(challenge)))
	c.respond(seq, []outBuf{{b: append(b, challenge...), release: true}})
	return true
}

// saslMaxPreAuthFrame bounds a frame of a connection that has not
// authenticated (Kafka's sasl.server.max.receive.size default).
const saslMaxPreAuthFrame = 512 << 10

// saslLookupTimeout bounds the credential lookup in meta of one step.
const saslLookupTimeout = 10 * time.Second

// saslClose closes the connection once the response just given is on
// its way (conn.closeWhenSent: over TLS an immediate close would drop it,
// and librdkafka then reports a broken connection instead of the failed
// login). A response still waiting behind earlier ones (a client that
// pipelines SASL requests) is dropped with the connection.
func (s *Server) saslClose(rc *reqCtx, why string) {
	s.log.Warn("closing connection: "+why, "remote", rc.c.remote, "api", kmsg.NameForKey(rc.key))
	rc.c.closeWhenSent()
}

func (ss *saslServer) newExchange(s *Server, mech string) saslExchange {
	switch mech {
	case MechPlain:
		return &plainExchange{meta: s.deps.Meta, fakeKey: ss.fakeKey}
	case MechScramSHA256:
		return newScramExchange(s.deps.Meta, scramSHA256, ss.fakeKey)
	case MechScramSHA512:
		return newScramExchange(s.deps.Meta, scramSHA512, ss.fakeKey)
	case MechOAuthBearer:
		return &oauthExchange{v: ss.tokens}
	}
	panic("BUG: SASL mechanism offered without an exchange: " + mech)
}

// remoteIP is the address part of host:port, the key of the failure
// limiter.
func remoteIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// trimForLog keeps a client-chosen string short in a log line.
func trimForLog(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

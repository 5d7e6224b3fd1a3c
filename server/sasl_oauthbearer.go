package server

// OAUTHBEARER (RFC 7628, KIP-255): the client sends a JWT, which the
// agent validates against a JSON Web Key Set (flag
// --sasl-oauthbearer-jwks: a file, or an http(s) URL): the signature
// (RS256/384/512, PS256/384/512, ES256/384/512, EdDSA; never "none" or
// HMAC, whose key would have to be shared with every agent), exp (which
// must be present), nbf, and the issuer and audience of the flags
// --sasl-oauthbearer-issuer and --sasl-oauthbearer-audience when set. The
// principal is the claim of --sasl-oauthbearer-principal-claim (default
// "sub"), as User:<value>. The session ends no later than the token's
// exp when --sasl-session-lifetime is set (KIP-368, as Kafka does).
//
// Keys rotate: a token whose key id the set lacks makes the agent read
// the set again (at most once per jwksMinRefresh), and a set older than
// jwksMaxAge is read again on the next login; a failed read keeps the
// keys it has.
//
// A refused token is answered SASL_AUTHENTICATION_FAILED at once and the
// connection closed, like a wrong password. RFC 7628 has the server send
// an error JSON and wait for the client's "\x01" first; Kafka's Java
// server does, but clients treat both the same way (an error), and one
// round trip fewer is less to get wrong.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

type oauthExchange struct {
	v    TokenValidator
	done bool
}

func (x *oauthExchange) step(ctx context.Context, token []byte) ([]byte, bool, string, time.Time, error) {
	if x.done {
		return nil, false, "", time.Time{}, errSASLState
	}
	x.done = true
	if len(token) > maxOAuthMessage {
		return nil, false, "", time.Time{}, fmt.Errorf("%w (OAUTHBEARER message of %d bytes)", errSASLFailed, len(token))
	}
	// gs2-header, then key=value pairs each ended by \x01, then \x01.
	msg := string(token)
	gs2, rest, ok := strings.Cut(msg, "\x01")
	if !ok || !strings.HasPrefix(gs2, "n,") {
		return nil, false, "", time.Time{}, fmt.Errorf("%w (malformed OAUTHBEARER message)", errSASLFailed)
	}
	var bearer string
	for _, kv := range strings.Split(rest, "\x01") {
		if v, ok := strings.CutPrefix(kv, "auth="); ok {
			scheme, tok, _ := strings.Cut(v, " ")
			if !strings.EqualFold(scheme, "Bearer") {
				break
			}
			bearer = strings.TrimSpace(tok)
		}
	}
	if bearer == "" {
		return nil, false, "", time.Time{}, fmt.Errorf("%w (OAUTHBEARER message without a bearer token)", errSASLFailed)
	}
	principal, exp, err := x.v.ValidateToken(ctx, bearer)
	if err != nil {
		return nil, false, "", time.Time{}, fmt.Errorf("%w (OAUTHBEARER: %v)", errSASLFailed, err)
	}
	// An authorization id in the GS2 header must be the principal.
	if authz := strings.TrimSuffix(strings.TrimPrefix(gs2, "n,"), ","); authz != "" && authz != "a="+principal {
		return nil, false, "", time.Time{}, fmt.Errorf("%w (OAUTHBEARER authorization id is not the principal)", errSASLFailed)
	}
	return nil, true, principal, exp, nil
}

// maxOAuthMessage bounds an OAUTHBEARER message: tokens run to a few KiB.
const maxOAuthMessage = 64 << 10

// JWKSConfig configures the OAUTHBEARER validator.
type JWKSConfig struct {
	// JWKS is a JWK Set file or an http(s) URL serving one (flag
	// --sasl-oauthbearer-jwks).
	JWKS string
	// Issuer and Audience, when set, must match iss and be one of aud
	// (flags --sasl-oauthbearer-issuer, --sasl-oauthbearer-audience).
	Issuer   string
	Audience string
	// PrincipalClaim names the claim holding the principal (flag
	// --sasl-oauthbearer-principal-claim); default "sub".
	PrincipalClaim string
	// HTTPClient fetches a JWKS URL; default: one with a 10 s timeout.
	HTTPClient *http.Client
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// How often the key set is read again (see the top of this file).
const (
	jwksMinRefresh = 10 * time.Second
	jwksMaxAge     = 5 * time.Minute
	maxJWKSBytes   = 1 << 20
)

var oauthAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// JWKSValidator validates OAUTHBEARER tokens against a key set.
type JWKSValidator struct {
	cfg JWKSConfig

	mu       sync.Mutex
	keys     *jose.JSONWebKeySet // guarded by mu
	loadedAt time.Time           // guarded by mu
	tried    time.Time           // guarded by mu: last read attempt
}

// NewJWKSValidator reads the key set once, so a wrong flag fails at start.
func NewJWKSValidator(ctx context.Context, cfg JWKSConfig) (*JWKSValidator, error) {
	if cfg.JWKS == "" {
		return nil, errors.New("--sasl-oauthbearer-jwks is required for OAUTHBEARER")
	}
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = "sub"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &JWKSValidator{cfg: cfg}
	ks, err := v.read(ctx)
	if err != nil {
		return nil, fmt.Errorf("--sasl-oauthbearer-jwks %s: %w", cfg.JWKS, err)
	}
	v.keys, v.loadedAt, v.tried = ks, cfg.Now(), cfg.Now()
	return v, nil
}

func (v *JWKSValidator) read(ctx context.Context) (*jose.JSONWebKeySet, error) {
	var b []byte
	src := v.cfg.JWKS
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, err
		}
		resp, err := v.cfg.HTTPClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		if b, err = io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1)); err != nil {
			return nil, err
		}
	} else {
		var err error
		if b, err = os.ReadFile(src); err != nil {
			return nil, err
		}
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", maxJWKSBytes)
	}
	ks := new(jose.JSONWebKeySet)
	if err := json.Unmarshal(b, ks); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if len(ks.Keys) == 0 {
		return nil, errors.New("the key set has no keys")
	}
	for _, k := range ks.Keys {
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %q is not a public key (HMAC and private keys are refused)", k.KeyID)
		}
	}
	return ks, nil
}

// keySet returns the keys, read again when kid is unknown or the set is
// old (at most once per jwksMinRefresh).
func (v *JWKSValidator) keySet(ctx context.Context, kid string) *jose.JSONWebKeySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	stale := now.Sub(v.loadedAt) > jwksMaxAge || (kid != "" && len(v.keys.Key(kid)) == 0)
	if stale && now.Sub(v.tried) >= jwksMinRefresh {
		v.tried = now
		// Reading under mu makes concurrent logins wait for one read
		// rather than each read the set.
		if ks, err := v.read(ctx); err == nil {
			v.keys, v.loadedAt = ks, now
		}
	}
	return v.keys
}

// ValidateToken implements TokenValidator.
func (v *JWKSValidator) ValidateToken(ctx context.Context, token string) (string, time.Time, error) {
	tok, err := jwt.ParseSigned(token, oauthAlgs)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("malformed token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return "", time.Time{}, errors.New("token with more than one signature")
	}
	ks := v.keySet(ctx, tok.Headers[0].KeyID)
	var claims jwt.Claims
	var all map[string]any
	if err := tok.Claims(ks, &claims, &all); err != nil {
		return "", time.Time{}, fmt.Errorf("signature: %w", err)
	}
	if claims.Expiry == nil {
		return "", time.Time{}, errors.New("token without exp")
	}
	exp := v.cfg.Now()
	e := jwt.Expected{Issuer: v.cfg.Issuer, Time: exp}
	if v.cfg.Audience != "" {
		e.AnyAudience = jwt.Audience{v.cfg.Audience}
	}
	// No leeway beyond go-jose's default minute for clock skew.
	if err := claims.Validate(e); err != nil {
		return "", time.Time{}, err
	}
	p, _ := all[v.cfg.PrincipalClaim].(string)
	if p == "" {
		return "", time.Time{}, fmt.Errorf("token without a string %q claim (flag --sasl-oauthbearer-principal-claim)", v.cfg.PrincipalClaim)
	}
	return p, claims.Expiry.Time(), nil
}

package meta

import (
	"context"
	"errors"
)

// SCRAM credentials (issue 14, docs/security.md). Meta keeps, per user and
// mechanism, what RFC 5802 lets a server keep: the salt, the iteration
// count, StoredKey = H(HMAC(SaltedPassword, "Client Key")) and ServerKey =
// HMAC(SaltedPassword, "Server Key"). It never sees a password: the agent
// (or `sluice meta users set`) derives these before anything is sent. They
// are fixed-purpose credential bytes, not record bytes (meta.proto's
// boundary).

// ScramMechanism is a SCRAM mechanism, numbered as Kafka's
// AlterUserScramCredentials numbers them.
type ScramMechanism int8

const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String is the SASL mechanism name.
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return "UNKNOWN"
}

// ScramMinIterations is the least iteration count meta accepts (RFC 7677
// recommends 4096 at least; Kafka refuses fewer too).
const ScramMinIterations = 4096

// ScramMaxIterations is the most: Kafka's bound, which also bounds the
// CPU one PLAIN login may cost an agent.
const ScramMaxIterations = 16384

// ScramCredential is one user's credential for one mechanism.
type ScramCredential struct {
	User       string
	Mechanism  ScramMechanism
	Salt       []byte
	Iterations int32
	StoredKey  []byte
	ServerKey  []byte
}

// ScramDeletion removes one user's credential for one mechanism.
type ScramDeletion struct {
	User      string
	Mechanism ScramMechanism
}

// ScramUser describes one user's credentials without their keys
// (DescribeUserScramCredentials).
type ScramUser struct {
	User  string
	Creds []ScramCredentialInfo
	// Err is ErrScramUserNotFound for a named user without credentials.
	Err error
}

// ScramCredentialInfo is what may be shown of a credential.
type ScramCredentialInfo struct {
	Mechanism  ScramMechanism
	Iterations int32
}

var (
	// ErrScramUserNotFound: no credential for that user (and mechanism).
	ErrScramUserNotFound = errors.New("meta: no SCRAM credential for that user")
	// ErrScramUnacceptable: the credential is malformed (iterations out of
	// range, empty salt or user, key of the wrong length).
	ErrScramUnacceptable = errors.New("meta: unacceptable SCRAM credential")
	// ErrScramMechanism: a mechanism other than SCRAM-SHA-256/512.
	ErrScramMechanism = errors.New("meta: unsupported SCRAM mechanism")
)

// ScramCredentials is the credential store of a cluster. Every meta.Client
// implements it (the in-process Service and the gRPC client).
type ScramCredentials interface {
	// ScramCredential returns one user's credential for a mechanism, or
	// ErrScramUserNotFound.
	ScramCredential(ctx context.Context, user string, mech ScramMechanism) (ScramCredential, error)
	// AlterScramCredentials applies upserts, then deletions; one error
	// per upsertion, then one per deletion, in order.
	AlterScramCredentials(ctx context.Context, upserts []ScramCredential, deletes []ScramDeletion) ([]error, error)
	// DescribeScramCredentials describes the named users (every user
	// with a credential when users is nil), in user order.
	DescribeScramCredentials(ctx context.Context, users []string) ([]ScramUser, error)
}

// CheckScramCredential validates a credential before it is stored.
func CheckScramCredential(c *ScramCredential) error {
	var keyLen int
	switch c.Mechanism {
	case ScramSHA256:
		keyLen = 32
	case ScramSHA512:
		keyLen = 64
	default:
		return ErrScramMechanism
	}
	switch {
	case c.User == "", len(c.User) > 1024:
		return ErrScramUnacceptable
	case c.Iterations < ScramMinIterations || c.Iterations > ScramMaxIterations:
		return ErrScramUnacceptable
	case len(c.Salt) == 0 || len(c.Salt) > 1024:
		return ErrScramUnacceptable
	case len(c.StoredKey) != keyLen || len(c.ServerKey) != keyLen:
		return ErrScramUnacceptable
	}
	return nil
}

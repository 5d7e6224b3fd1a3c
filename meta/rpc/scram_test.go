package rpc

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"sluice.dev/meta"
)

// TestScramRoundTrip: the SCRAM calls over gRPC answer as the Service
// does, errors included (SASL, issue 14).
func TestScramRoundTrip(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, time.Minute)
	rc, svc := e.rc, e.svc
	cred := meta.ScramCredential{User: "alice", Mechanism: meta.ScramSHA256, Salt: []byte("s"), Iterations: 4096,
		StoredKey: bytes.Repeat([]byte{1}, 32), ServerKey: bytes.Repeat([]byte{2}, 32)}
	weak := cred
	weak.User, weak.Iterations = "weak", 10
	errs, err := rc.AlterScramCredentials(ctx, []meta.ScramCredential{cred, weak}, []meta.ScramDeletion{{User: "ghost", Mechanism: meta.ScramSHA512}})
	if err != nil || errs[0] != nil || !errors.Is(errs[1], meta.ErrScramUnacceptable) || !errors.Is(errs[2], meta.ErrScramUserNotFound) {
		t.Fatalf("alter: %v %v", errs, err)
	}
	got, err := rc.ScramCredential(ctx, "alice", meta.ScramSHA256)
	want, err2 := svc.ScramCredential(ctx, "alice", meta.ScramSHA256)
	same(t, "ScramCredential", []any{got, err}, []any{want, err2})
	_, err = rc.ScramCredential(ctx, "nobody", meta.ScramSHA256)
	if !errors.Is(err, meta.ErrScramUserNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	for _, users := range [][]string{nil, {}, {"alice", "nobody"}} {
		r, err := rc.DescribeScramCredentials(ctx, users)
		d, err2 := svc.DescribeScramCredentials(ctx, users)
		same(t, "DescribeScramCredentials", []any{r, err}, []any{d, err2})
	}
}

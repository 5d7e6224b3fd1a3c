package controller

import (
	"bytes"
	"errors"
	"testing"

	"sluice.dev/meta"
)

func testCred(user string, mech meta.ScramMechanism, fill byte) meta.ScramCredential {
	n := 32
	if mech == meta.ScramSHA512 {
		n = 64
	}
	return meta.ScramCredential{User: user, Mechanism: mech, Salt: []byte("salt-" + user), Iterations: 4096,
		StoredKey: bytes.Repeat([]byte{fill}, n), ServerKey: bytes.Repeat([]byte{fill + 1}, n)}
}

// TestScramCredentials: credentials go through the committer, survive a
// restart (openT's verify compares the reopened state, scram included),
// and bad ones are refused one by one.
func TestScramCredentials(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	ctx := ctxT(t)
	bad := testCred("weak", meta.ScramSHA256, 1)
	bad.Iterations = 1000
	short := testCred("short", meta.ScramSHA512, 1)
	short.StoredKey = short.StoredKey[:32]
	odd := testCred("odd", meta.ScramSHA256, 1)
	odd.Mechanism = 7
	errs, err := s.AlterScramCredentials(ctx, []meta.ScramCredential{
		testCred("alice", meta.ScramSHA256, 1), testCred("alice", meta.ScramSHA512, 3), testCred("bob", meta.ScramSHA256, 5),
		bad, short, odd,
	}, []meta.ScramDeletion{{User: "ghost", Mechanism: meta.ScramSHA256}})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nil, nil, meta.ErrScramUnacceptable, meta.ErrScramUnacceptable, meta.ErrScramMechanism, meta.ErrScramUserNotFound}
	for i := range want {
		if !errors.Is(errs[i], want[i]) {
			t.Errorf("item %d: %v, want %v", i, errs[i], want[i])
		}
	}
	got, err := s.ScramCredential(ctx, "alice", meta.ScramSHA512)
	if err != nil || !bytes.Equal(got.StoredKey, testCred("alice", meta.ScramSHA512, 3).StoredKey) {
		t.Fatalf("alice 512: %+v %v", got, err)
	}
	if _, err := s.ScramCredential(ctx, "weak", meta.ScramSHA256); !errors.Is(err, meta.ErrScramUserNotFound) {
		t.Fatalf("refused credential stored: %v", err)
	}

	// An upsert and a delete of one key in one call: in order.
	errs, err = s.AlterScramCredentials(ctx, []meta.ScramCredential{testCred("carol", meta.ScramSHA256, 7)},
		[]meta.ScramDeletion{{User: "carol", Mechanism: meta.ScramSHA256}, {User: "bob", Mechanism: meta.ScramSHA256}})
	if err != nil || errors.Join(errs...) != nil {
		t.Fatalf("upsert then delete: %v %v", err, errs)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	users, err := s.DescribeScramCredentials(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].User != "alice" || len(users[0].Creds) != 2 || users[0].Creds[1].Mechanism != meta.ScramSHA512 {
		t.Fatalf("after reopen: %+v", users)
	}
	named, err := s.DescribeScramCredentials(ctx, []string{"carol", "alice"})
	if err != nil || len(named) != 2 || named[0].User != "alice" || !errors.Is(named[1].Err, meta.ErrScramUserNotFound) {
		t.Fatalf("describe named: %+v %v", named, err)
	}
	// Answers share no memory with meta.
	got, _ = s.ScramCredential(ctx, "alice", meta.ScramSHA256)
	got.StoredKey[0] ^= 0xff
	again, _ := s.ScramCredential(ctx, "alice", meta.ScramSHA256)
	if again.StoredKey[0] == got.StoredKey[0] {
		t.Fatal("a caller's change reached meta's state")
	}
}

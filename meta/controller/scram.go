package controller

// SCRAM credentials (meta/scram.go): kept in state.scram, written to the
// scram bucket through the committer like every other change.
//
//	scram  mechanism (1) + user  -> v | iterations (4) | uvarint len | salt |
//	                                uvarint len | stored key | server key
//
// Describe and the agents' logins read state.scram under mu; nothing
// else of the state depends on it.

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

var bucketScram = kv.BucketScram

type scramKey struct {
	user string
	mech meta.ScramMechanism
}

// scramChange is one credential written (cred set) or deleted.
type scramChange struct {
	key  scramKey
	cred *meta.ScramCredential
}

type scramReq struct {
	upserts []meta.ScramCredential
	deletes []meta.ScramDeletion
}

// lookupScram reads a credential through the group's changes.
func (g *group) lookupScram(k scramKey) (*meta.ScramCredential, bool) {
	for i := len(g.scram) - 1; i >= 0; i-- {
		if g.scram[i].key == k {
			return g.scram[i].cred, g.scram[i].cred != nil
		}
	}
	c, ok := g.st.scram[k]
	return c, ok
}

func (s *Service) applyScram(g *group, r *scramReq) []error {
	errs := make([]error, 0, len(r.upserts)+len(r.deletes))
	for i := range r.upserts {
		c := r.upserts[i]
		if err := meta.CheckScramCredential(&c); err != nil {
			errs = append(errs, err)
			continue
		}
		g.scram = append(g.scram, scramChange{key: scramKey{c.User, c.Mechanism}, cred: &c})
		errs = append(errs, nil)
	}
	for _, d := range r.deletes {
		k := scramKey{d.User, d.Mechanism}
		if _, ok := g.lookupScram(k); !ok {
			errs = append(errs, meta.ErrScramUserNotFound)
			continue
		}
		g.scram = append(g.scram, scramChange{key: k})
		errs = append(errs, nil)
	}
	return errs
}

func mergeScramLocked(st *state, chs []scramChange) {
	for _, c := range chs {
		if c.cred == nil {
			delete(st.scram, c.key)
		} else {
			st.scram[c.key] = c.cred
		}
	}
}

func scramStoreKey(k scramKey) []byte {
	return append([]byte{byte(k.mech)}, k.user...)
}

func writeScram(tx kv.KVTx, chs []scramChange) error {
	for _, c := range chs {
		k := scramStoreKey(c.key)
		if c.cred == nil {
			if err := tx.Delete(bucketScram, k); err != nil {
				return err
			}
			continue
		}
		v := []byte{recFormat}
		v = be.AppendUint32(v, uint32(c.cred.Iterations))
		v = appendUvarintBytes(v, c.cred.Salt)
		v = appendUvarintBytes(v, c.cred.StoredKey)
		v = append(v, c.cred.ServerKey...)
		if err := tx.Put(bucketScram, k, v); err != nil {
			return err
		}
	}
	return nil
}

func appendUvarintBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// takeBytes reads a uvarint length and that many bytes, marking the
// decoder bad (rather than allocating) when the length is a lie.
func (d *decoder) takeBytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	return append([]byte(nil), d.take(int(n))...)
}

func loadScram(tx kv.KVTx, st *state) error {
	return tx.ForEach(bucketScram, func(k, v []byte) error {
		if len(k) < 2 {
			return fmt.Errorf("%w: scram key %x", meta.ErrCorrupt, k)
		}
		c := &meta.ScramCredential{User: string(k[1:]), Mechanism: meta.ScramMechanism(k[0])}
		d := decoder{b: v}
		d.format()
		c.Iterations = int32(d.u32())
		c.Salt = d.takeBytes()
		c.StoredKey = d.takeBytes()
		c.ServerKey = append([]byte(nil), d.rest()...)
		if err := d.finish(); err != nil {
			return fmt.Errorf("scram credential %x: %w", k, err)
		}
		if err := meta.CheckScramCredential(c); err != nil {
			return fmt.Errorf("%w: scram credential %x: %v", meta.ErrCorrupt, k, err)
		}
		st.scram[scramKey{c.User, c.Mechanism}] = c
		return nil
	})
}

// ScramCredential returns one user's credential for a mechanism.
func (s *Service) ScramCredential(ctx context.Context, user string, mech meta.ScramMechanism) (meta.ScramCredential, error) {
	if s.closed.Load() {
		return meta.ScramCredential{}, meta.ErrClosed
	}
	s.mu.RLock()
	c, ok := s.st.scram[scramKey{user, mech}]
	s.mu.RUnlock()
	if !ok {
		return meta.ScramCredential{}, meta.ErrScramUserNotFound
	}
	// The stored slices are never changed (a change replaces the
	// pointer), but the contract says answers share no memory with meta.
	out := *c
	out.Salt = slices.Clone(c.Salt)
	out.StoredKey = slices.Clone(c.StoredKey)
	out.ServerKey = slices.Clone(c.ServerKey)
	return out, nil
}

// AlterScramCredentials applies upserts, then deletions, in one commit.
func (s *Service) AlterScramCredentials(ctx context.Context, upserts []meta.ScramCredential, deletes []meta.ScramDeletion) ([]error, error) {
	o := &op{kind: opScram, scram: &scramReq{upserts: slices.Clone(upserts), deletes: slices.Clone(deletes)}}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.adminErrs, nil
}

// DescribeScramCredentials describes users' credentials, keys left out.
func (s *Service) DescribeScramCredentials(ctx context.Context, users []string) ([]meta.ScramUser, error) {
	if s.closed.Load() {
		return nil, meta.ErrClosed
	}
	byUser := map[string][]meta.ScramCredentialInfo{}
	s.mu.RLock()
	for k, c := range s.st.scram {
		byUser[k.user] = append(byUser[k.user], meta.ScramCredentialInfo{Mechanism: k.mech, Iterations: c.Iterations})
	}
	s.mu.RUnlock()
	if users == nil {
		for u := range byUser {
			users = append(users, u)
		}
	}
	users = slices.Clone(users)
	slices.Sort(users)
	users = slices.Compact(users)
	out := make([]meta.ScramUser, 0, len(users))
	for _, u := range users {
		cs := byUser[u]
		slices.SortFunc(cs, func(a, b meta.ScramCredentialInfo) int { return int(a.Mechanism) - int(b.Mechanism) })
		su := meta.ScramUser{User: u, Creds: cs}
		if len(cs) == 0 {
			su.Err = meta.ErrScramUserNotFound
		}
		out = append(out, su)
	}
	return out, nil
}

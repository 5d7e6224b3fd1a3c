package controller

import (
	"context"
	"maps"
	"slices"
	"strings"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// ACL bindings (issue 14; meta/acls.go has the types and Kafka's filter
// semantics). Each binding is one key of kv.BucketACLs (meta.ACLKey; the
// value is one byte, unused) and one entry of state.acls. Creates and
// deletes are ops through the committer like every write, so they are
// durable on either store before they are answered. A group that changed
// any binding publishes one CommitEvent with ACLs set: agents re-read
// every binding on it (server/authz.go), and on losing their watch, so a
// change reaches every agent as fast as the commit stream does.

// aclValue is what a binding's key maps to in the store.
var aclValue = []byte{1}

// aclReq is an ACL op: creates, or deletes by filters.
type aclReq struct {
	creates []meta.ACLBinding
	deletes []meta.ACLFilter
}

// aclChange is a binding created (del false) or deleted in a group.
type aclChange struct {
	b   meta.ACLBinding
	del bool
}

// aclsView lists the bindings of the state with the group's changes
// applied, in key order. Called on the committer (g) or with s.mu held
// (g nil).
func aclsView(st *state, g *group) []meta.ACLBinding {
	m := st.acls
	if g != nil && len(g.acls) > 0 {
		m = maps.Clone(st.acls)
		if m == nil {
			m = map[string]meta.ACLBinding{}
		}
		for k, ch := range g.acls {
			if ch.del {
				delete(m, k)
			} else {
				m[k] = ch.b
			}
		}
	}
	keys := slices.Sorted(maps.Keys(m))
	out := make([]meta.ACLBinding, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// applyACLs records r's changes in g. For deletes it returns, per
// filter, the bindings it removed (a binding matched by two filters of
// one request is reported under the first, as Kafka removes it once).
func applyACLs(g *group, r *aclReq) ([][]meta.ACLBinding, []error) {
	if r.creates != nil {
		errs := make([]error, len(r.creates))
		for i := range r.creates {
			b := r.creates[i]
			if err := b.Validate(); err != nil {
				errs[i] = err
				continue
			}
			g.acls[b.ACLKey()] = aclChange{b: b}
		}
		return nil, errs
	}
	view := aclsView(g.st, g)
	out := make([][]meta.ACLBinding, len(r.deletes))
	errs := make([]error, len(r.deletes))
	for i := range r.deletes {
		f := &r.deletes[i]
		if err := f.Validate(); err != nil {
			errs[i] = err
			continue
		}
		for j := range view {
			b := &view[j]
			k := b.ACLKey()
			if ch, ok := g.acls[k]; ok && ch.del {
				continue // removed by an earlier filter
			}
			if f.Matches(b) {
				g.acls[k] = aclChange{b: *b, del: true}
				out[i] = append(out[i], *b)
			}
		}
	}
	return out, errs
}

// mergeACLsLocked applies a group's ACL changes to the state.
func mergeACLsLocked(st *state, chs map[string]aclChange) {
	for k, ch := range chs {
		if ch.del {
			delete(st.acls, k)
		} else {
			st.acls[k] = ch.b
		}
	}
}

// writeACLs writes a group's ACL changes.
func writeACLs(tx kv.KVTx, chs map[string]aclChange) error {
	for k, ch := range chs {
		var err error
		if ch.del {
			err = tx.Delete(kv.BucketACLs, []byte(k))
		} else {
			err = tx.Put(kv.BucketACLs, []byte(k), aclValue)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// loadACLs reads every binding at Open.
func loadACLs(tx kv.KVTx, st *state) error {
	return tx.ForEach(kv.BucketACLs, func(k, _ []byte) error {
		b, err := meta.ParseACLKey(k)
		if err != nil {
			return err
		}
		st.acls[string(k)] = b
		return nil
	})
}

// CreateACLs implements Client: one error per binding (ErrInvalidACL for
// one Kafka would refuse). Creating a binding that exists is a success
// that changes nothing.
func (s *Service) CreateACLs(ctx context.Context, bs []meta.ACLBinding) ([]error, error) {
	o := &op{kind: opACLs, acl: &aclReq{creates: slices.Clone(bs)}}
	if o.acl.creates == nil {
		o.acl.creates = []meta.ACLBinding{}
	}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	return o.adminErrs, nil
}

// DeleteACLs implements Client: per filter the bindings it removed, or
// its error.
func (s *Service) DeleteACLs(ctx context.Context, fs []meta.ACLFilter) ([]meta.DeletedACLs, error) {
	o := &op{kind: opACLs, acl: &aclReq{deletes: slices.Clone(fs)}}
	if err := s.submit(ctx, o); err != nil {
		return nil, err
	}
	out := make([]meta.DeletedACLs, len(fs))
	for i := range out {
		if i < len(o.adminErrs) {
			out[i].Err = o.adminErrs[i]
		}
		if i < len(o.aclsDeleted) {
			out[i].Bindings = o.aclsDeleted[i]
		}
	}
	return out, nil
}

// ACLs implements Client: the bindings f matches, in a stable order.
func (s *Service) ACLs(ctx context.Context, f meta.ACLFilter) ([]meta.ACLBinding, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	all := aclsView(s.st, nil)
	s.mu.RUnlock()
	out := all[:0]
	for i := range all {
		if f.Matches(&all[i]) {
			out = append(out, all[i])
		}
	}
	slices.SortStableFunc(out, func(a, b meta.ACLBinding) int {
		if c := int(a.ResourceType) - int(b.ResourceType); c != 0 {
			return c
		}
		return strings.Compare(a.ResourceName, b.ResourceName)
	})
	return slices.Clip(out), nil
}

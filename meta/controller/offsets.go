package controller

import (
	"context"
	"fmt"
	"sort"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// Committed offsets of consumer groups. They are durable like everything
// else meta writes: an OffsetCommit is answered after its store
// transaction. Group membership (groups.go) is kept in memory: after a
// restart members rejoin, and the offsets they committed are here.

// offsetCommitReq is the durable half of an OffsetCommit.
type offsetCommitReq struct {
	group   string
	offsets []meta.CommittedOffset
	delete  bool // remove these partitions' offsets (or all, if none named)
	// expire removes the named offsets only if they are still the ones
	// the expiry saw (same CommitTime) and the group still has no
	// members: a member that joined or committed since wins.
	expire bool
}

// offsetChange is one offset written (or deleted) by a commit group.
type offsetChange struct {
	group  string
	off    meta.CommittedOffset
	delete bool
	all    bool // delete every offset of the group
}

// applyCommitOffsets records r's changes in g. A commit that would add
// a group past MaxGroups fails with ErrTooManyGroups; the count may
// overshoot by the new groups of one commit group (at most maxGroupOps),
// which keeps the check O(groups) once per new group instead of per op.
func (s *Service) applyCommitOffsets(g *group, r *offsetCommitReq, now int64) error {
	switch {
	case r.expire:
		if s.groups.Active(r.group) {
			return nil
		}
		for _, o := range r.offsets {
			if cur, ok := g.committedOffset(r.group, o.TopicPartition); ok && cur.CommitTime == o.CommitTime {
				g.offsets = append(g.offsets, offsetChange{group: r.group, off: o, delete: true})
			}
		}
		return nil
	case !r.delete && len(r.offsets) > 0 && g.st.offsets[r.group] == nil && !g.touchesGroup(r.group):
		// A new group, unless JoinGroup made it. The committer reads
		// the state without Service.mu (invariant 4), so the count of
		// groups with offsets comes from here, not through Offsets.
		if err := s.groups.AdmitNewGroup(r.group, len(g.st.offsets), func(name string) bool { return g.st.offsets[name] != nil }); err != nil {
			return err
		}
	}
	if r.delete && len(r.offsets) == 0 {
		g.offsets = append(g.offsets, offsetChange{group: r.group, delete: true, all: true})
		return nil
	}
	for _, o := range r.offsets {
		if !r.delete {
			if !g.partExists(o.TopicPartition) {
				// The topic was deleted after the agent resolved it (or the
				// partition never existed): an offset for it would outlive
				// the topic's delete, which removes every record naming it.
				continue
			}
			o.CommitTime = now / 1e6
		}
		g.offsets = append(g.offsets, offsetChange{group: r.group, off: o, delete: r.delete})
	}
	return nil
}

// touchesGroup reports whether the commit group already changed offsets
// of the named group.
func (g *group) touchesGroup(name string) bool {
	for i := range g.offsets {
		if g.offsets[i].group == name {
			return true
		}
	}
	return false
}

// committedOffset returns a partition's committed offset as of the
// changes of the commit group so far.
func (g *group) committedOffset(name string, tp meta.TopicPartition) (meta.CommittedOffset, bool) {
	for i := len(g.offsets) - 1; i >= 0; i-- {
		c := &g.offsets[i]
		switch {
		case c.group != name:
		case c.all:
			return meta.CommittedOffset{}, false
		case c.off.TopicPartition == tp:
			return c.off, !c.delete
		}
	}
	o, ok := g.st.offsets[name][tp]
	return o, ok
}

func mergeOffsetsLocked(st *state, chs []offsetChange) {
	for _, c := range chs {
		m := st.offsets[c.group]
		switch {
		case c.all:
			delete(st.offsets, c.group)
		case c.delete:
			if m != nil {
				delete(m, c.off.TopicPartition)
				if len(m) == 0 {
					delete(st.offsets, c.group)
				}
			}
		default:
			if m == nil {
				m = make(map[meta.TopicPartition]meta.CommittedOffset)
				st.offsets[c.group] = m
			}
			m[c.off.TopicPartition] = c.off
		}
	}
}

// Offsets bucket: key = uint16 group length, group, topic id, partition;
// value = format byte, offset, leader epoch, commit time, metadata.
func offsetKey(dst []byte, group string, tp meta.TopicPartition) []byte {
	dst = be.AppendUint16(dst, uint16(len(group)))
	dst = append(dst, group...)
	dst = append(dst, tp.TopicID[:]...)
	return be.AppendUint32(dst, uint32(tp.Partition))
}

func writeOffsets(tx kv.KVTx, chs []offsetChange) error {
	for _, c := range chs {
		if c.all {
			prefix := be.AppendUint16(nil, uint16(len(c.group)))
			prefix = append(prefix, c.group...)
			if err := tx.DeletePrefix(bucketOffsets, prefix); err != nil {
				return err
			}
			continue
		}
		k := offsetKey(nil, c.group, c.off.TopicPartition)
		if c.delete {
			if err := tx.Delete(bucketOffsets, k); err != nil {
				return err
			}
			continue
		}
		v := append([]byte(nil), recFormat)
		v = be.AppendUint64(v, uint64(c.off.Offset))
		v = be.AppendUint32(v, uint32(c.off.LeaderEpoch))
		v = be.AppendUint64(v, uint64(c.off.CommitTime))
		v = append(v, c.off.Metadata...)
		if err := tx.Put(bucketOffsets, k, v); err != nil {
			return err
		}
	}
	return nil
}

func loadOffsets(tx kv.KVTx, st *state, stale *staleRecords) error {
	return tx.ForEach(bucketOffsets, func(k, v []byte) error {
		if len(k) < 2 {
			return fmt.Errorf("%w: offset key %x", meta.ErrCorrupt, k)
		}
		n := int(be.Uint16(k))
		if len(k) != 2+n+20 || len(v) < 21 || v[0] != recFormat {
			return fmt.Errorf("%w: offset record %x", meta.ErrCorrupt, k)
		}
		group := string(k[2 : 2+n])
		var o meta.CommittedOffset
		copy(o.TopicID[:], k[2+n:])
		o.Partition = int32(be.Uint32(k[2+n+16:]))
		if t := st.topicsByID[o.TopicID]; t == nil || o.Partition < 0 || int(o.Partition) >= len(t.parts) {
			// Left by a topic delete of an older version, or committed
			// for a partition that never existed (older versions did not
			// check): nothing can read it.
			stale.add(bucketOffsets, k)
			return nil
		}
		o.Offset = int64(be.Uint64(v[1:]))
		o.LeaderEpoch = int32(be.Uint32(v[9:]))
		o.CommitTime = int64(be.Uint64(v[13:]))
		o.Metadata = string(v[21:])
		m := st.offsets[group]
		if m == nil {
			m = make(map[meta.TopicPartition]meta.CommittedOffset)
			st.offsets[group] = m
		}
		m[o.TopicPartition] = o
		return nil
	})
}

// writeOffsetsDurable commits offsets (or deletes them) through the
// committer.
func (s *Service) writeOffsetsDurable(ctx context.Context, r *offsetCommitReq) error {
	return s.submit(ctx, &op{kind: opCommitOffsets, offs: r})
}

// FetchOffsets returns a group's committed offsets for tps (all of them
// when tps is nil), sorted by topic id and partition. Partitions without
// a committed offset are left out.
func (s *Service) FetchOffsets(ctx context.Context, group string, tps []meta.TopicPartition) ([]meta.CommittedOffset, error) {
	if s.closed.Load() {
		return nil, meta.ErrClosed
	}
	s.mu.RLock()
	m := s.st.offsets[group]
	var out []meta.CommittedOffset
	if tps == nil {
		for _, o := range m {
			out = append(out, o)
		}
	} else {
		for _, tp := range tps {
			if o, ok := m[tp]; ok {
				out = append(out, o)
			}
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.TopicID != b.TopicID {
			return string(a.TopicID[:]) < string(b.TopicID[:])
		}
		return a.Partition < b.Partition
	})
	return out, nil
}

// hasOffsets reports whether a group has committed offsets.
func (s *Service) hasOffsets(group string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.st.offsets[group]) > 0
}

// offsetGroupsNotIn counts the groups with committed offsets for which
// known reports false (the coordinator's groups, for the MaxGroups count).
func (s *Service) offsetGroupsNotIn(known func(string) bool) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for name := range s.st.offsets {
		if !known(name) {
			n++
		}
	}
	return n
}

// Offset expiry (Kafka's offsets.retention.minutes, KIP-211): the offsets
// of a group without members expire OffsetsRetention after the later of
// their commit and the moment the group lost its last member. A group
// with members keeps its offsets however old, since a member commits
// only the partitions it moved on. When the group became empty is kept
// in memory only; after a restart it counts from the restart (the
// members had not come back), so a restart never expires offsets early.
//
// Every offsetsCheckInterval (Kafka's offsets.retention.check.interval.ms
// default) expireOffsets finds the expired offsets and deletes them
// through the committer, which re-checks each one (expire in
// offsetCommitReq).
const offsetsCheckInterval = 10 * time.Minute

// maxExpireOps bounds the offsets one expiry op deletes, so one commit
// group's transaction stays small.
const maxExpireOps = 4096

// expireOffsets deletes the offsets that expired at now and returns how
// many it asked the committer to delete.
func (s *Service) expireOffsets(ctx context.Context, now time.Time) (int, error) {
	retention := s.cfg.Groups.OffsetsRetention
	cutoff := now.Add(-retention).UnixMilli()
	// Offsets committed before the cutoff are candidates; the group's
	// empty-since time decides.
	cands := map[string][]meta.CommittedOffset{}
	s.mu.RLock()
	for group, m := range s.st.offsets {
		for _, o := range m {
			if o.CommitTime <= cutoff {
				cands[group] = append(cands[group], o)
			}
		}
	}
	s.mu.RUnlock()
	var batch []meta.CommittedOffset
	total := 0
	flush := func(group string) error {
		if len(batch) == 0 {
			return nil
		}
		err := s.writeOffsetsDurable(ctx, &offsetCommitReq{group: group, offsets: batch, expire: true, delete: true})
		total += len(batch)
		batch = batch[:0]
		return err
	}
	for group, offs := range cands {
		active, since, known := s.groups.EmptyState(group)
		if active {
			continue
		}
		if !known {
			since = s.openedAt
		}
		if now.Sub(since) < retention {
			continue
		}
		for _, o := range offs {
			batch = append(batch, o)
			if len(batch) == maxExpireOps {
				if err := flush(group); err != nil {
					return total, err
				}
			}
		}
		if err := flush(group); err != nil {
			return total, err
		}
	}
	s.groups.ForgetEmpty()
	return total, nil
}

// groupsWithOffsets lists groups that have committed offsets.
func (s *Service) groupsWithOffsets() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.st.offsets))
	for g := range s.st.offsets {
		out = append(out, g)
	}
	return out
}

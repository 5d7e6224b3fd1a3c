package meta

import (
	"context"
	"fmt"
	"sort"
)

// Committed offsets of consumer groups. They are durable like everything
// else meta writes: an OffsetCommit is answered after its store
// transaction. Group membership (groups.go) is kept in memory: after a
// restart members rejoin, and the offsets they committed are here.

// MaxGroupIDBytes bounds a group id: it is part of every committed
// offset's store key, and PostgreSQL cannot index keys much beyond 2 KiB
// (one over-long id would fail every op of its commit group, other
// clients' included). Kafka sets no limit; real ids are far shorter.
const MaxGroupIDBytes = 1024

// CommittedOffset is one partition's committed offset in a group.
type CommittedOffset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64 // unix milliseconds
}

// offsetCommitReq is the durable half of an OffsetCommit.
type offsetCommitReq struct {
	group   string
	offsets []CommittedOffset
	delete  bool // remove these partitions' offsets (or all, if none named)
}

// offsetChange is one offset written (or deleted) by a commit group.
type offsetChange struct {
	group  string
	off    CommittedOffset
	delete bool
	all    bool // delete every offset of the group
}

func applyCommitOffsets(g *group, r *offsetCommitReq, now int64) {
	if r.delete && len(r.offsets) == 0 {
		g.offsets = append(g.offsets, offsetChange{group: r.group, delete: true, all: true})
		return
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
				m = make(map[TopicPartition]CommittedOffset)
				st.offsets[c.group] = m
			}
			m[c.off.TopicPartition] = c.off
		}
	}
}

// Offsets bucket: key = uint16 group length, group, topic id, partition;
// value = format byte, offset, leader epoch, commit time, metadata.
func offsetKey(dst []byte, group string, tp TopicPartition) []byte {
	dst = be.AppendUint16(dst, uint16(len(group)))
	dst = append(dst, group...)
	dst = append(dst, tp.TopicID[:]...)
	return be.AppendUint32(dst, uint32(tp.Partition))
}

func writeOffsets(tx KVTx, chs []offsetChange) error {
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

func loadOffsets(tx KVTx, st *state, stale *staleRecords) error {
	return tx.ForEach(bucketOffsets, func(k, v []byte) error {
		if len(k) < 2 {
			return fmt.Errorf("%w: offset key %x", ErrCorrupt, k)
		}
		n := int(be.Uint16(k))
		if len(k) != 2+n+20 || len(v) < 21 || v[0] != recFormat {
			return fmt.Errorf("%w: offset record %x", ErrCorrupt, k)
		}
		group := string(k[2 : 2+n])
		var o CommittedOffset
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
			m = make(map[TopicPartition]CommittedOffset)
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
func (s *Service) FetchOffsets(ctx context.Context, group string, tps []TopicPartition) ([]CommittedOffset, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	s.mu.RLock()
	m := s.st.offsets[group]
	var out []CommittedOffset
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

package controller

import (
	"cmp"
	"context"
	"slices"
	"time"

	"sluice.dev/meta"
)

// What the web console (meta/console, issue 16) reads beyond the
// meta.Client interface: agents with their last heartbeat, and bytes per
// partition. Both are metadata meta already holds; neither reads a
// record byte.

// AgentStatus is one live agent as the console shows it.
type AgentStatus struct {
	Info meta.AgentInfo
	// LastHeartbeat is when meta last heard from the agent; the agent is
	// forgotten TTL after it.
	LastHeartbeat time.Time
	TTL           time.Duration
}

// AgentStatuses lists the live agents by node id, with their last
// heartbeat.
func (s *Service) AgentStatuses(ctx context.Context) ([]AgentStatus, error) {
	if err := s.readable(ctx); err != nil {
		return nil, err
	}
	r := s.registry
	r.mu.Lock()
	r.expireLocked(time.Now())
	out := make([]AgentStatus, 0, len(r.agents))
	for _, a := range r.agents {
		info := a.info
		info.Roles = slices.Clone(info.Roles)
		out = append(out, AgentStatus{Info: info, LastHeartbeat: a.seen, TTL: r.ttl})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b AgentStatus) int { return cmp.Compare(a.Info.NodeID, b.Info.NodeID) })
	return out, nil
}

// PartitionBytes sums, per partition, the bytes its index entries cover:
// what the partition holds in the bucket. It walks
// the whole index under the read lock, like AgeReport: the console calls
// it once per page view, not per request of the data path.
func (s *Service) PartitionBytes() map[meta.TopicPartition]int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[meta.TopicPartition]int64)
	for id, t := range s.st.topicsByID {
		for p, ps := range t.parts {
			l := &ps.entries
			var n int64
			for k := range l.len() {
				n += l.at(k).Length
			}
			out[meta.TopicPartition{TopicID: id, Partition: int32(p)}] = n
		}
	}
	return out
}

// DefaultRetention is the retention.ms and retention.bytes of topics
// that set neither (-1: no limit).
func (s *Service) DefaultRetention() (ms, bytes int64) {
	return s.cfg.DefaultRetentionMs, s.cfg.DefaultRetentionBytes
}

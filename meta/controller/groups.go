package controller

import (
	"context"
	"errors"
	"time"

	"sluice.dev/meta"
)

// Consumer groups: the classic coordinator (membership, rebalances,
// timers, limits) is meta/groups and keeps its state in memory; the
// controller owns what is durable, the committed offsets (offsets.go),
// and lends the coordinator a read-only view of them (groupOffsets).
// Each method below checks that the Service is open, asks the
// coordinator, and writes offsets through the committer when the
// request changes them.

// groupOffsets is the coordinator's view of the committed offsets. Its
// methods take Service.mu for reading; the coordinator calls them with
// its own locks held (lock order: groups → Service.mu).
type groupOffsets struct{ s *Service }

func (o groupOffsets) HasOffsets(group string) bool { return o.s.hasOffsets(group) }

func (o groupOffsets) CountNotIn(known func(string) bool) int {
	return o.s.offsetGroupsNotIn(known)
}

// JoinGroup joins (or rejoins) a member and waits for the rebalance to
// complete, ctx permitting.
func (s *Service) JoinGroup(ctx context.Context, req meta.JoinGroupRequest) (meta.JoinGroupResult, error) {
	if s.closed.Load() {
		return meta.JoinGroupResult{}, meta.ErrClosed
	}
	res, err := s.groups.Join(ctx, req)
	s.logLimit(err)
	return res, err
}

// SyncGroup hands out the leader's assignment, waiting for it when the
// caller is not the leader.
func (s *Service) SyncGroup(ctx context.Context, req meta.SyncGroupRequest) (meta.SyncGroupResult, error) {
	if s.closed.Load() {
		return meta.SyncGroupResult{}, meta.ErrClosed
	}
	return s.groups.Sync(ctx, req)
}

// Heartbeat keeps a member's session and tells it about rebalances.
func (s *Service) Heartbeat(ctx context.Context, group, memberID, instanceID string, generation int32) error {
	if s.closed.Load() {
		return meta.ErrClosed
	}
	return s.groups.Heartbeat(group, memberID, instanceID, generation)
}

// LeaveGroup removes members; one error per member, in order.
func (s *Service) LeaveGroup(ctx context.Context, group string, members []meta.LeavingMember) ([]error, error) {
	if s.closed.Load() {
		return nil, meta.ErrClosed
	}
	return s.groups.Leave(group, members), nil
}

// CommitOffsets checks the committer's membership and makes the offsets
// durable.
func (s *Service) CommitOffsets(ctx context.Context, req meta.OffsetCommitRequest) error {
	if s.closed.Load() {
		return meta.ErrClosed
	}
	if err := s.groups.CheckCommit(req); err != nil {
		return err
	}
	err := s.writeOffsetsDurable(ctx, &offsetCommitReq{group: req.Group, offsets: req.Offsets})
	s.logLimit(err)
	return err
}

// DeleteOffsets removes a group's committed offsets for tps (OffsetDelete)
// unless the coordinator refuses (groups.Coordinator.CheckDeleteOffsets).
func (s *Service) DeleteOffsets(ctx context.Context, group string, tps []meta.TopicPartition) error {
	if err := s.groups.CheckDeleteOffsets(group); err != nil {
		return err
	}
	offs := make([]meta.CommittedOffset, len(tps))
	for i, tp := range tps {
		offs[i].TopicPartition = tp
	}
	return s.writeOffsetsDurable(ctx, &offsetCommitReq{group: group, offsets: offs, delete: true})
}

// DeleteGroup deletes a group without members and its offsets.
func (s *Service) DeleteGroup(ctx context.Context, group string) error {
	if err := s.groups.Delete(group); err != nil {
		return err
	}
	if !s.hasOffsets(group) {
		return nil
	}
	return s.writeOffsetsDurable(ctx, &offsetCommitReq{group: group, delete: true})
}

// ListGroups lists groups with members or committed offsets.
func (s *Service) ListGroups(ctx context.Context) ([]meta.GroupListing, error) {
	return s.groups.List(s.groupsWithOffsets()), nil
}

// DescribeGroup describes one group; an unknown group is described as
// Dead with no members, as Kafka does.
func (s *Service) DescribeGroup(ctx context.Context, group string) (meta.GroupDescription, error) {
	return s.groups.Describe(group), nil
}

// logLimit logs a refusal by a group limit, at most once a minute: the
// Kafka answers to JoinGroup and OffsetCommit carry no message, so this
// line is where an operator learns which flag to raise. (Once a minute:
// a client refused in a loop must not flood the log.)
func (s *Service) logLimit(err error) {
	if !errors.Is(err, meta.ErrTooManyGroups) && !errors.Is(err, meta.ErrGroupMaxSizeReached) {
		return
	}
	if !s.limitLogged.Allow(time.Now(), time.Minute) {
		return
	}
	s.log.Warn("meta: group limit reached", "err", err)
}

// KIP-848 consumer groups (meta/groups/consumer.go): membership and
// assignment are the coordinator's, in memory like classic groups;
// offsets stay here.

// ConsumerGroupHeartbeat serves a ConsumerGroupHeartbeat.
func (s *Service) ConsumerGroupHeartbeat(ctx context.Context, req meta.ConsumerHeartbeatRequest) (meta.ConsumerHeartbeatResult, error) {
	if s.closed.Load() {
		return meta.ConsumerHeartbeatResult{}, meta.ErrClosed
	}
	res, err := s.groups.ConsumerHeartbeat(req)
	s.logLimit(err)
	return res, err
}

// DescribeConsumerGroup describes a consumer-protocol group;
// meta.ErrGroupIDNotFound when there is none.
func (s *Service) DescribeConsumerGroup(ctx context.Context, group string) (meta.ConsumerGroupDescription, error) {
	if s.closed.Load() {
		return meta.ConsumerGroupDescription{}, meta.ErrClosed
	}
	d, ok := s.groups.DescribeConsumer(group)
	if !ok {
		return d, meta.ErrGroupIDNotFound
	}
	return d, nil
}

// consumerGroupTopics lists every topic for the coordinator, which
// resolves subscriptions and regular expressions against it. It takes
// Service.mu for reading (lock order: groups → Service.mu).
func (s *Service) consumerGroupTopics() []meta.Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]meta.Topic, 0, len(s.st.topicsByName))
	for _, t := range s.st.topicsByName {
		out = append(out, meta.Topic{Name: t.topic.Name, ID: t.topic.ID, Partitions: t.topic.Partitions})
	}
	return out
}

package groups

import (
	"fmt"

	"sluice.dev/meta"
)

// TxnOffsetCommit fencing (KIP-447). A transactional producer commits a
// consumer group's offsets inside its transaction; from TxnOffsetCommit
// v3 on it also names the group member it consumes as (member id,
// generation, group instance id), so that a zombie — a member that lost
// its partitions in a rebalance but whose transaction is still open —
// cannot commit offsets over the partitions' new owner. The producer
// epoch alone does not fence it: with KIP-447 one producer serves a
// member across rebalances, so its epoch does not move when the
// assignment does.
//
// The rules are Kafka 4's (OffsetMetadataManager's
// validateTransactionalOffsetCommit, and the groups' validateOffsetCommit
// with isTransactional set):
//
//   - No member fields (generation -1, empty member id, no instance id:
//     every v0–v2 request, and an admin or non-group producer) are not
//     checked: a transactional commit does not need a member.
//   - A group that does not exist (no members, no committed offsets):
//     accepted with generation -1 (a "simple" group), else
//     ILLEGAL_GENERATION.
//   - A group without members: accepted with generation -1, else
//     UNKNOWN_MEMBER_ID (Kafka keeps such a group as an Empty one; here
//     it lives on in its committed offsets).
//   - A classic group: a named static instance must be held by the
//     member id sent (none holds it: UNKNOWN_MEMBER_ID; another member:
//     FENCED_INSTANCE_ID), the member must exist (UNKNOWN_MEMBER_ID) and
//     the generation must be the group's (ILLEGAL_GENERATION). Unlike a
//     plain OffsetCommit, a group completing a rebalance does not answer
//     REBALANCE_IN_PROGRESS: Kafka does not enforce the state for
//     transactional commits.
//   - A consumer (KIP-848) group: the member must exist
//     (UNKNOWN_MEMBER_ID) and the generation must be its member epoch;
//     a mismatch either way is ILLEGAL_GENERATION (Kafka turns the
//     STALE_MEMBER_EPOCH of its epoch check into ILLEGAL_GENERATION for
//     TxnOffsetCommit, which older clients know how to handle).
//
// The controller calls CheckTxnCommit from its committer, after the
// producer's epoch and the group's place in the transaction were checked
// (Kafka verifies the transaction first too), so a fenced producer still
// gets PRODUCER_FENCED rather than a group error.

// CheckTxnCommit checks the member fields of a TxnOffsetCommit against
// the group's current membership. It takes the coordinator's locks and
// nothing else (never Offsets), so the committer may call it;
// hasOffsets reports whether a group has committed offsets, read from
// the committer's own state.
func (c *Coordinator) CheckTxnCommit(req meta.OffsetCommitRequest, hasOffsets func(string) bool) error {
	if req.Generation < 0 && req.MemberID == "" && req.InstanceID == "" {
		return nil
	}
	if k, _ := c.lockConsumerGroup(req.Group, false); k != nil {
		err := k.checkTxnCommitLocked(req)
		k.mu.Unlock()
		return err
	}
	g, _ := c.lockGroup(req.Group, false)
	if g == nil {
		switch {
		case req.Generation < 0:
			return nil
		case hasOffsets(req.Group):
			return meta.ErrUnknownMemberID
		}
		return fmt.Errorf("%w: group %q has no members (generation %d sent)", meta.ErrIllegalGeneration, req.Group, req.Generation)
	}
	defer g.mu.Unlock()
	return g.checkTxnCommitLocked(req)
}

func (g *cgroup) checkTxnCommitLocked(req meta.OffsetCommitRequest) error {
	if req.Generation < 0 && len(g.members) == 0 {
		return nil
	}
	if req.InstanceID != "" {
		holder, ok := g.instances[req.InstanceID]
		switch {
		case !ok:
			return meta.ErrUnknownMemberID
		case holder != req.MemberID:
			return fmt.Errorf("%w: instance %q is held by another member", meta.ErrFencedInstanceID, req.InstanceID)
		}
	}
	if g.members[req.MemberID] == nil {
		return meta.ErrUnknownMemberID
	}
	if req.Generation != g.generation {
		return fmt.Errorf("%w: generation %d, the group is at %d", meta.ErrIllegalGeneration, req.Generation, g.generation)
	}
	return nil
}

func (g *kgroup) checkTxnCommitLocked(req meta.OffsetCommitRequest) error {
	if req.Generation < 0 && len(g.members) == 0 {
		return nil
	}
	m := g.members[req.MemberID]
	if m == nil {
		return meta.ErrUnknownMemberID
	}
	if req.Generation != m.epoch {
		return fmt.Errorf("%w: generation %d, the member's epoch is %d", meta.ErrIllegalGeneration, req.Generation, m.epoch)
	}
	return nil
}

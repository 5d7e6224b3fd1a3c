package rpc

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"sluice.dev/meta/metapb"
)

// TestNoFieldCanCarryRecordBytes enforces the zero-access boundary on the
// API itself: every bytes field of every message in meta.proto must be on
// this list of fields whose content is known and checked (fixed-size ids
// validated on decode, consumer group protocol metadata), and no message
// may embed a well-known generic type (Any, Struct, Value, BytesValue)
// that could carry arbitrary data. Adding a bytes field fails this test
// until someone has argued, here, why it cannot carry record data.
func TestNoFieldCanCarryRecordBytes(t *testing.T) {
	allowed := []string{
		// 16-byte ids, length-checked by convert.go.
		"sluice.meta.v1.TopicPartition.topic_id",
		"sluice.meta.v1.Topic.id",
		"sluice.meta.v1.TopicsByIDRequest.ids",
		"sluice.meta.v1.PartitionState.topic_id",
		"sluice.meta.v1.Chunk.topic_id",
		"sluice.meta.v1.CommitSegmentRequest.segment_id",
		"sluice.meta.v1.IndexEntry.topic_id",
		"sluice.meta.v1.IndexEntry.segment_id",
		"sluice.meta.v1.CommittedOffset.topic_id",
		// Segment ids of the jobs API (objects a job writes or deletes).
		"sluice.meta.v1.CompactJob.output",
		"sluice.meta.v1.ObjectRef.id",
		"sluice.meta.v1.CompleteCompactionRequest.output",
		"sluice.meta.v1.CompleteDeleteRequest.deleted",
		// Consumer group protocol: subscriptions and assignments, which
		// Kafka clients send to the group coordinator.
		"sluice.meta.v1.GroupProtocol.metadata",
		"sluice.meta.v1.GroupMember.metadata",
		"sluice.meta.v1.SyncGroupRequest.AssignmentsEntry.value", // member id -> assignment
		"sluice.meta.v1.SyncGroupResponse.assignment",
		"sluice.meta.v1.GroupMemberDescription.metadata",
		"sluice.meta.v1.GroupMemberDescription.assignment",
		// SASL (issue 14): SCRAM credentials. A salt and two keys
		// derived from a password (PBKDF2, HMAC; RFC 5802), written by
		// AlterUserScramCredentials or `sluice meta users set` and
		// checked on decode (meta.CheckScramCredential: 32- or 64-byte
		// keys, at most 1 KiB of salt). They are credentials of a
		// user, never bytes of a record.
		"sluice.meta.v1.ScramCredential.salt",
		"sluice.meta.v1.ScramCredential.stored_key",
		"sluice.meta.v1.ScramCredential.server_key",
		// KIP-848 consumer groups: topic ids of owned and assigned
		// partitions, length-checked by consumer_groups.go.
		"sluice.meta.v1.TopicPartitions.topic_id",
	}
	fd := metapb.File_meta_proto
	var found []string
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			for j := range m.Fields().Len() {
				f := m.Fields().Get(j)
				if f.Kind() == protoreflect.BytesKind {
					found = append(found, string(f.FullName()))
				}
				if f.Kind() == protoreflect.MessageKind && f.Message().ParentFile().Package() == "google.protobuf" {
					t.Errorf("%s embeds %s, a generic container that could carry record bytes", f.FullName(), f.Message().FullName())
				}
			}
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	if len(found) == 0 {
		t.Fatal("no bytes fields found: the walk is broken")
	}
	for _, name := range found {
		if !slices.Contains(allowed, name) {
			t.Errorf("bytes field %s is not on the boundary's allow list", name)
		}
	}
	for _, name := range allowed {
		if !slices.Contains(found, name) {
			t.Errorf("allow list names %s, which is not a bytes field: keep the list exact", name)
		}
	}
	t.Logf("%d bytes fields, all on the allow list", len(found))
}

package compat_test

import (
	"testing"

	"github.com/IBM/sarama"
)

// TestSaramaACLs (issue 14): sarama's ClusterAdmin creates ACLs
// (CreateAcls v2), lists them with a MATCH filter (DescribeAcls v1) and
// deletes them (DeleteAcls v2); an invalid binding is refused with
// INVALID_REQUEST. The agent runs without an authorizer: the ACL APIs
// store bindings whatever the mode (docs/security.md).
func TestSaramaACLs(t *testing.T) {
	c := startCluster(t)
	admin, err := sarama.NewClusterAdmin([]string{c.addr()}, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	prefixed := sarama.Resource{ResourceType: sarama.AclResourceTopic, ResourceName: "orders-", ResourcePatternType: sarama.AclPatternPrefixed}
	literal := sarama.Resource{ResourceType: sarama.AclResourceGroup, ResourceName: "app", ResourcePatternType: sarama.AclPatternLiteral}
	allow := func(op sarama.AclOperation) sarama.Acl {
		return sarama.Acl{Principal: "User:alice", Host: "*", Operation: op, PermissionType: sarama.AclPermissionAllow}
	}
	if err := admin.CreateACLs([]*sarama.ResourceAcls{
		{Resource: prefixed, Acls: []*sarama.Acl{ptr(allow(sarama.AclOperationWrite)), ptr(allow(sarama.AclOperationRead))}},
		{Resource: literal, Acls: []*sarama.Acl{ptr(allow(sarama.AclOperationRead))}},
	}); err != nil {
		t.Fatalf("CreateACLs: %v", err)
	}
	bad := sarama.Acl{Principal: "alice", Host: "*", Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAllow}
	if err := admin.CreateACLs([]*sarama.ResourceAcls{{Resource: literal, Acls: []*sarama.Acl{&bad}}}); err == nil {
		t.Fatal("a principal that is not Type:Name was accepted")
	}

	name := "orders-eu"
	got, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny, ResourceName: &name,
		ResourcePatternTypeFilter: sarama.AclPatternMatch, Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny})
	if err != nil {
		t.Fatalf("ListAcls: %v", err)
	}
	if len(got) != 1 || got[0].ResourceName != "orders-" || got[0].ResourcePatternType != sarama.AclPatternPrefixed || len(got[0].Acls) != 2 {
		t.Fatalf("ListAcls MATCH orders-eu: %+v, want the two prefixed bindings", got)
	}

	deleted, err := admin.DeleteACL(sarama.AclFilter{ResourceType: sarama.AclResourceAny, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation: sarama.AclOperationRead, PermissionType: sarama.AclPermissionAny}, false)
	if err != nil || len(deleted) != 2 {
		t.Fatalf("DeleteACL READ: %+v, %v, want the two READ bindings", deleted, err)
	}
	left, err := admin.ListAcls(sarama.AclFilter{ResourceType: sarama.AclResourceAny, ResourcePatternTypeFilter: sarama.AclPatternAny,
		Operation: sarama.AclOperationAny, PermissionType: sarama.AclPermissionAny})
	if err != nil || len(left) != 1 || len(left[0].Acls) != 1 || left[0].Acls[0].Operation != sarama.AclOperationWrite {
		t.Fatalf("after the delete: %+v, %v, want the WRITE binding alone", left, err)
	}
}

func ptr[T any](v T) *T { return &v }

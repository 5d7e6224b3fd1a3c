package meta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// ACL bindings (issue 14, docs/security.md): who may do what to which
// resource, stored per virtual cluster in meta and enforced by every
// agent's authorizer (server/authz.go). The numbers are Kafka's own
// (org.apache.kafka.common.acl and .resource), so the Kafka APIs pass
// them through unchanged.

// ResourceType is the kind of resource a binding names.
type ResourceType int8

// Resource types (Kafka's ResourceType codes).
const (
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
)

// ClusterResourceName is the one name a CLUSTER resource has (Kafka's).
const ClusterResourceName = "kafka-cluster"

// PatternType says how a binding's resource name matches.
type PatternType int8

// Pattern types (Kafka's PatternType codes). Any and Match appear in
// filters only: Any matches bindings of every pattern type with the
// filter's name; Match matches the bindings that apply to a resource of
// the filter's name (literal equal or "*", prefixed as a prefix).
const (
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// ACLOperation is what a binding allows or denies.
type ACLOperation int8

// Operations (Kafka's AclOperation codes).
const (
	OpAny             ACLOperation = 1 // filters only
	OpAll             ACLOperation = 2
	OpRead            ACLOperation = 3
	OpWrite           ACLOperation = 4
	OpCreate          ACLOperation = 5
	OpDelete          ACLOperation = 6
	OpAlter           ACLOperation = 7
	OpDescribe        ACLOperation = 8
	OpClusterAction   ACLOperation = 9
	OpDescribeConfigs ACLOperation = 10
	OpAlterConfigs    ACLOperation = 11
	OpIdempotentWrite ACLOperation = 12
	OpCreateTokens    ACLOperation = 13
	OpDescribeTokens  ACLOperation = 14
)

// ACLPermission is ALLOW or DENY.
type ACLPermission int8

// Permissions (Kafka's AclPermissionType codes).
const (
	PermissionAny   ACLPermission = 1 // filters only
	PermissionDeny  ACLPermission = 2
	PermissionAllow ACLPermission = 3
)

// WildcardName is the literal resource name and the principal name that
// match every resource or principal; WildcardHost every host.
const (
	WildcardName = "*"
	WildcardHost = "*"
)

// ACLBinding is one ACL: Principal ("User:alice", or "User:*" for
// everyone) may or may not (Permission) do Operation on the resources
// ResourceName names under PatternType, from Host ("*" or an IP).
type ACLBinding struct {
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string
	Host         string
	Operation    ACLOperation
	Permission   ACLPermission
}

// ACLFilter selects bindings (DescribeAcls, DeleteAcls) with Kafka's
// semantics: a nil string matches every value, the Any codes every code,
// PatternMatch the bindings that apply to the resource ResourceName.
type ACLFilter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    ACLOperation
	Permission   ACLPermission
}

// DeletedACLs answers one filter of DeleteACLs: the bindings it
// removed, or why it was refused.
type DeletedACLs struct {
	Bindings []ACLBinding
	Err      error
}

// ErrInvalidACL: a binding or filter Kafka would refuse (INVALID_REQUEST).
var ErrInvalidACL = errors.New("meta: invalid ACL")

// Validate checks that b is a binding that can be stored: concrete codes
// (no Any or Match), a Type:Name principal, a host, the CLUSTER
// resource's one name.
func (b *ACLBinding) Validate() error {
	switch {
	case b.ResourceType < ResourceTopic || b.ResourceType > ResourceTransactionalID:
		return fmt.Errorf("%w: resource type %d is not TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID", ErrInvalidACL, b.ResourceType)
	case b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed:
		return fmt.Errorf("%w: pattern type %d is not LITERAL or PREFIXED", ErrInvalidACL, b.PatternType)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalidACL)
	case b.ResourceType == ResourceCluster && b.ResourceName != ClusterResourceName:
		return fmt.Errorf("%w: the only valid name for the CLUSTER resource is %s", ErrInvalidACL, ClusterResourceName)
	case b.Operation < OpAll || b.Operation > OpDescribeTokens:
		return fmt.Errorf("%w: operation %d", ErrInvalidACL, b.Operation)
	case b.Permission != PermissionAllow && b.Permission != PermissionDeny:
		return fmt.Errorf("%w: permission %d is not ALLOW or DENY", ErrInvalidACL, b.Permission)
	case b.Host == "":
		return fmt.Errorf("%w: empty host (use * for every host)", ErrInvalidACL)
	}
	if i := strings.IndexByte(b.Principal, ':'); i <= 0 || i == len(b.Principal)-1 {
		return fmt.Errorf("%w: principal %q is not of the form Type:Name", ErrInvalidACL, b.Principal)
	}
	return nil
}

// Validate checks that f uses codes Kafka knows.
func (f *ACLFilter) Validate() error {
	switch {
	case f.ResourceType < ResourceAny || f.ResourceType > ResourceTransactionalID:
		return fmt.Errorf("%w: resource type %d", ErrInvalidACL, f.ResourceType)
	case f.PatternType < PatternAny || f.PatternType > PatternPrefixed:
		return fmt.Errorf("%w: pattern type %d", ErrInvalidACL, f.PatternType)
	case f.Operation < OpAny || f.Operation > OpDescribeTokens:
		return fmt.Errorf("%w: operation %d", ErrInvalidACL, f.Operation)
	case f.Permission < PermissionAny || f.Permission > PermissionAllow:
		return fmt.Errorf("%w: permission %d", ErrInvalidACL, f.Permission)
	}
	return nil
}

// Matches reports whether f selects b (Kafka's AclBindingFilter.matches:
// ResourcePatternFilter and AccessControlEntryFilter).
func (f *ACLFilter) Matches(b *ACLBinding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != PatternAny && f.PatternType != PatternMatch && f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName != nil {
		name := *f.ResourceName
		if f.PatternType == PatternAny || f.PatternType == b.PatternType {
			if name != b.ResourceName {
				return false
			}
		} else { // Match
			switch b.PatternType {
			case PatternLiteral:
				if name != b.ResourceName && b.ResourceName != WildcardName {
					return false
				}
			case PatternPrefixed:
				if !strings.HasPrefix(name, b.ResourceName) {
					return false
				}
			default:
				return false
			}
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == PermissionAny || f.Permission == b.Permission
}

// ACLKey is b's key in the store and in meta's memory: the four codes,
// then name, principal and host, each with a uvarint length. Two bindings
// with the same key are the same binding, so creating one twice stores it
// once, as Kafka does.
func (b *ACLBinding) ACLKey() string {
	k := make([]byte, 0, 4+3*binary.MaxVarintLen32+len(b.ResourceName)+len(b.Principal)+len(b.Host))
	k = append(k, byte(b.ResourceType), byte(b.PatternType), byte(b.Operation), byte(b.Permission))
	for _, s := range [...]string{b.ResourceName, b.Principal, b.Host} {
		k = binary.AppendUvarint(k, uint64(len(s)))
		k = append(k, s...)
	}
	return string(k)
}

// ParseACLKey is ACLKey's inverse.
func ParseACLKey(k []byte) (ACLBinding, error) {
	if len(k) < 4 {
		return ACLBinding{}, fmt.Errorf("%w: ACL key of %d bytes", ErrCorrupt, len(k))
	}
	b := ACLBinding{ResourceType: ResourceType(k[0]), PatternType: PatternType(k[1]), Operation: ACLOperation(k[2]), Permission: ACLPermission(k[3])}
	rest := k[4:]
	var out [3]string
	for i := range out {
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n {
			return ACLBinding{}, fmt.Errorf("%w: ACL key %x", ErrCorrupt, k)
		}
		out[i] = string(rest[w : w+int(n)])
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return ACLBinding{}, fmt.Errorf("%w: ACL key %x has %d trailing bytes", ErrCorrupt, k, len(rest))
	}
	b.ResourceName, b.Principal, b.Host = out[0], out[1], out[2]
	return b, nil
}

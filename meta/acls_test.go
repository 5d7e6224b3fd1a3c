package meta

import (
	"errors"
	"testing"
)

func strp(s string) *string { return &s }

// TestACLFilterMatches checks Kafka's filter semantics
// (ResourcePatternFilter.matches, AccessControlEntryFilter.matches).
func TestACLFilterMatches(t *testing.T) {
	lit := func(name string) ACLBinding {
		return ACLBinding{ResourceType: ResourceTopic, ResourceName: name, PatternType: PatternLiteral, Principal: "User:a", Host: "*", Operation: OpRead, Permission: PermissionAllow}
	}
	pre := func(name string) ACLBinding {
		b := lit(name)
		b.PatternType = PatternPrefixed
		return b
	}
	any := ACLFilter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}
	with := func(mod func(*ACLFilter)) ACLFilter { f := any; mod(&f); return f }
	cases := []struct {
		name string
		f    ACLFilter
		b    ACLBinding
		want bool
	}{
		{"any matches all", any, pre("x"), true},
		{"resource type", with(func(f *ACLFilter) { f.ResourceType = ResourceGroup }), lit("x"), false},
		{"any pattern, name equal", with(func(f *ACLFilter) { f.ResourceName = strp("x") }), pre("x"), true},
		{"any pattern, name differs", with(func(f *ACLFilter) { f.ResourceName = strp("xy") }), pre("x"), false},
		{"literal filter, prefixed binding", with(func(f *ACLFilter) { f.PatternType = PatternLiteral }), pre("x"), false},
		{"literal filter, literal binding", with(func(f *ACLFilter) { f.PatternType = PatternLiteral; f.ResourceName = strp("x") }), lit("x"), true},
		{"literal filter does not expand *", with(func(f *ACLFilter) { f.PatternType = PatternLiteral; f.ResourceName = strp("x") }), lit("*"), false},
		{"match: literal equal", with(func(f *ACLFilter) { f.PatternType = PatternMatch; f.ResourceName = strp("orders") }), lit("orders"), true},
		{"match: literal wildcard", with(func(f *ACLFilter) { f.PatternType = PatternMatch; f.ResourceName = strp("orders") }), lit("*"), true},
		{"match: prefix", with(func(f *ACLFilter) { f.PatternType = PatternMatch; f.ResourceName = strp("orders") }), pre("ord"), true},
		{"match: not a prefix", with(func(f *ACLFilter) { f.PatternType = PatternMatch; f.ResourceName = strp("orders") }), pre("orx"), false},
		{"match: other literal", with(func(f *ACLFilter) { f.PatternType = PatternMatch; f.ResourceName = strp("orders") }), lit("ord"), false},
		{"match without name: all", with(func(f *ACLFilter) { f.PatternType = PatternMatch }), pre("ord"), true},
		{"principal", with(func(f *ACLFilter) { f.Principal = strp("User:b") }), lit("x"), false},
		{"host", with(func(f *ACLFilter) { f.Host = strp("*") }), lit("x"), true},
		{"operation", with(func(f *ACLFilter) { f.Operation = OpWrite }), lit("x"), false},
		{"permission", with(func(f *ACLFilter) { f.Permission = PermissionDeny }), lit("x"), false},
	}
	for _, c := range cases {
		if got := c.f.Matches(&c.b); got != c.want {
			t.Errorf("%s: Matches = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestACLBindingValidateAndKey(t *testing.T) {
	good := ACLBinding{ResourceType: ResourceCluster, ResourceName: ClusterResourceName, PatternType: PatternLiteral, Principal: "User:alice", Host: "10.0.0.1", Operation: OpAlter, Permission: PermissionDeny}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	k := good.ACLKey()
	back, err := ParseACLKey([]byte(k))
	if err != nil || back != good {
		t.Fatalf("ParseACLKey(ACLKey) = %+v, %v; want %+v", back, err, good)
	}
	if _, err := ParseACLKey([]byte(k[:len(k)-1])); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated key: %v, want ErrCorrupt", err)
	}
	bad := []func(*ACLBinding){
		func(b *ACLBinding) { b.ResourceType = ResourceAny },
		func(b *ACLBinding) { b.PatternType = PatternMatch },
		func(b *ACLBinding) { b.ResourceName = "other" },
		func(b *ACLBinding) { b.Operation = OpAny },
		func(b *ACLBinding) { b.Permission = PermissionAny },
		func(b *ACLBinding) { b.Principal = "alice" },
		func(b *ACLBinding) { b.Principal = "User:" },
		func(b *ACLBinding) { b.Host = "" },
	}
	for i, mod := range bad {
		b := good
		mod(&b)
		if err := b.Validate(); !errors.Is(err, ErrInvalidACL) {
			t.Errorf("case %d (%+v): Validate = %v, want ErrInvalidACL", i, b, err)
		}
	}
}

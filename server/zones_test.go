package server

import (
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestParseClientID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want placement
	}{
		{"", placement{}},
		{"plain-client", placement{}},
		{"app,sluice_az=us-east-1a", placement{zone: "us-east-1a"}},
		{"warpstream_az=eu-west-1b", placement{zone: "eu-west-1b"}},
		{"a;sluice_group=ingest sluice_az=z1", placement{zone: "z1", group: "ingest"}},
		{"sluice_az=", placement{}},
		{"sluice_az_x=1,xsluice_az=2", placement{}},
	} {
		if got := parseClientID(c.id); got != c.want {
			t.Errorf("parseClientID(%q) = %+v, want %+v", c.id, got, c.want)
		}
	}
}

func mk(id, zone, group string, roles ...string) broker {
	return broker{id: id, node: int32(xxhash.Sum64String(id) & 0x7fff), zone: zone, group: group, roles: roles, seed: xxhash.Sum64String(id)}
}

func ids(bs []broker) map[string]bool {
	m := map[string]bool{}
	for _, b := range bs {
		m[b.id] = true
	}
	return m
}

// TestSelectFor: zone and group filters, their fallbacks, jobs-only
// agents never offered, leaders among produce-role agents.
func TestSelectFor(t *testing.T) {
	all := []broker{
		mk("a1", "a", ""), mk("a2", "a", "", "consume"),
		mk("b1", "b", ""), mk("b2", "b", "", "jobs"),
		mk("p1", "a", "ingest", "produce"),
	}
	cases := []struct {
		p               placement
		offered, leader []string
	}{
		{placement{zone: "a"}, []string{"a1", "a2"}, []string{"a1"}},
		{placement{zone: "b"}, []string{"b1"}, []string{"b1"}},
		{placement{zone: "c"}, []string{"a1", "a2", "b1"}, []string{"a1", "b1"}}, // no agent in c: all zones
		{placement{}, []string{"a1", "a2", "b1"}, []string{"a1", "b1"}},
		{placement{zone: "a", group: "ingest"}, []string{"p1"}, []string{"p1"}},
		{placement{zone: "b", group: "ingest"}, []string{"p1"}, []string{"p1"}}, // the group's zone wins over none
		{placement{group: "nope"}, []string{"a1", "a2", "b1", "p1"}, []string{"a1", "b1", "p1"}},
	}
	for _, c := range cases {
		offered, leaders := selectFor(all, c.p)
		if got, want := ids(offered), c.offered; len(got) != len(want) || !all3(got, want) {
			t.Errorf("%+v: offered %v, want %v", c.p, got, want)
		}
		if got, want := ids(leaders), c.leader; len(got) != len(want) || !all3(got, want) {
			t.Errorf("%+v: leaders %v, want %v", c.p, got, want)
		}
	}
	if b := coordinatorFor(all[:2], "a2", "g"); b.id != "a2" {
		t.Errorf("coordinator %s, want this agent when it is offered", b.id)
	}
	if b1, b2 := coordinatorFor(all[:2], "zz", "g"), coordinatorFor(all[:2], "zz", "g"); b1.id != b2.id {
		t.Error("coordinator choice not stable")
	}
}

func all3(got map[string]bool, want []string) bool {
	for _, w := range want {
		if !got[w] {
			return false
		}
	}
	return true
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadZoneFile: the chart's init container writes the node's zone
// with a newline; a missing or empty file must stop the agent with an
// error naming --zone-file, not start it without a zone.
func TestReadZoneFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if z, err := readZoneFile(write("ok", "eu-west-1a\n")); err != nil || z != "eu-west-1a" {
		t.Fatalf("readZoneFile = %q, %v; want eu-west-1a", z, err)
	}
	for _, tc := range []struct{ name, path string }{
		{"missing", filepath.Join(dir, "absent")},
		{"empty", write("empty", "")},
		{"blank", write("blank", " \n\t\n")},
	} {
		if z, err := readZoneFile(tc.path); err == nil || !strings.Contains(err.Error(), "--zone-file") {
			t.Errorf("%s: readZoneFile = %q, %v; want an error naming --zone-file", tc.name, z, err)
		}
	}
}

// TestAgentZoneFlagsExclusive: --zone and --zone-file together are
// refused before anything starts.
func TestAgentZoneFlagsExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zone")
	if err := os.WriteFile(p, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runAgent([]string{"--agent-key", "k", "--bucket", "file://" + t.TempDir(), "--zone", "b", "--zone-file", p})
	if err == nil || !strings.Contains(err.Error(), "--zone and --zone-file") {
		t.Fatalf("runAgent = %v, want the two flags refused together", err)
	}
}

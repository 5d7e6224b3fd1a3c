package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "-1": -1, "536870912": 512 << 20, "512MiB": 512 << 20, "512mib": 512 << 20,
		"8 MiB": 8 << 20, "64KiB": 64 << 10, "2GiB": 2 << 30, "1TiB": 1 << 40,
		"1GB": 1e9, "100MB": 1e8, "5KB": 5000, "7B": 7, " 3GiB ": 3 << 30,
	} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "1.5GiB", "12XB", "8M", "ten", "9999999TiB", "0x10"} {
		if n, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) = %d, want an error", in, n)
		}
	}
	for n, want := range map[int64]string{0: "0", -1: "-1", 512 << 20: "512MiB", 100 << 20: "100MiB", 1 << 40: "1TiB", 1e9: "1000000000", 1536: "1536", 3 << 10: "3KiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
		if back, err := parseBytes(formatBytes(n)); err != nil || back != n {
			t.Errorf("formatBytes(%d) does not parse back: %d, %v", n, back, err)
		}
	}
}

// The agent's size flags take units, and a bad one names the flag.
func TestAgentBytesFlags(t *testing.T) {
	parse := func(args ...string) (*agentFlags, error) {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var af agentFlags
		af.register(fs)
		return &af, fs.Parse(args)
	}
	af, err := parse("--cache-bytes", "256MiB", "--max-request-bytes", "1GiB", "--max-inflight-bytes", "300000000", "--jobs-max-bytes-per-second", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if af.cacheBytes != 256<<20 || af.maxReq != 1<<30 || af.maxInFlight != 300000000 || af.jobsPace != -1 {
		t.Fatalf("parsed %d %d %d %d", af.cacheBytes, af.maxReq, af.maxInFlight, af.jobsPace)
	}
	if af, err = parse(); err != nil || af.cacheBytes != 512<<20 || af.maxSeg != 8<<20 {
		t.Fatalf("defaults: %d %d %v", af.cacheBytes, af.maxSeg, err)
	}
	if _, err := parse("--cache-bytes", "lots"); err == nil || !strings.Contains(err.Error(), "-cache-bytes") || !strings.Contains(err.Error(), "MiB") {
		t.Fatalf("a bad size: %v", err)
	}
}

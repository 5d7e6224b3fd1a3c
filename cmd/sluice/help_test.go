package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"sluice.dev/internal/flagusage"
)

// TestHelpEverySubcommand walks `--help` of every long-running and
// harness subcommand and of meta's admin actions: each prints its
// synopsis and every flag with its default, then exits without starting
// anything. The admin CLI's commands are walked in ctl's
// TestHelpEveryCommand; here one of them is reached through the router.
func TestHelpEverySubcommand(t *testing.T) {
	var buf bytes.Buffer
	var seen []*flag.FlagSet
	oldOut := helpOut
	helpOut, onFlagSet = &buf, func(fs *flag.FlagSet) { seen = append(seen, fs) }
	t.Cleanup(func() { helpOut, onFlagSet = oldOut, nil })

	cases := []struct {
		name string
		run  func([]string) error
		args []string
		want []string // flags with their defaults, spot checks
	}{
		{"playground", runPlayground, nil, []string{`--kafka-addr string`, `(default "127.0.0.1:9092")`}},
		{"meta", runMeta, nil, []string{"--listen string"}},
		{"meta keys create", runMeta, []string{"keys", "create"}, []string{"--cluster string"}},
		{"meta keys list", runMeta, []string{"keys", "list"}, []string{"--meta-addr"}},
		{"meta keys revoke", runMeta, []string{"keys", "revoke"}, []string{"--id string"}},
		{"meta users set", runMeta, []string{"users", "set"}, []string{"--iterations int"}},
		{"meta users list", runMeta, []string{"users", "list"}, []string{"--cluster"}},
		{"meta users delete", runMeta, []string{"users", "delete"}, []string{"--mechanism"}},
		{"agent", runAgent, nil, []string{"--flush-interval duration", "(default 250ms)", "--auto-create-topics", "(default true)"}},
		{"bench produce", runBench, []string{"produce"}, []string{"--record-size int"}},
		{"bench consume", runBench, []string{"consume"}, []string{"--from string"}},
		{"bench e2e", runBench, []string{"e2e"}, []string{"--producers int"}},
		{"loadtest", runLoadtest, nil, []string{"--agents int"}},
		{"version", runVersion, nil, []string{"--format string"}},
		{"topic create", runAdmin, []string{"topic", "create"}, []string{"--partitions int", "(default -1)"}},
	}
	for _, tc := range cases {
		buf.Reset()
		seen = nil
		args := append(append([]string{}, tc.args...), "--help")
		if tc.name == "topic create" {
			args = append([]string{}, "topic", "create", "--help")
		}
		if err := tc.run(args); err != nil {
			t.Errorf("sluice %s --help: %v", tc.name, err)
			continue
		}
		help := buf.String()
		if !strings.Contains(help, "Usage:") || !strings.Contains(help, "Flags:") {
			t.Errorf("sluice %s --help has no usage and flags:\n%s", tc.name, help)
		}
		if tc.name != "topic create" && tc.name != "version" {
			if len(seen) != 1 {
				t.Errorf("sluice %s --help made %d flag sets through newFlagSet, want 1", tc.name, len(seen))
				continue
			}
			if err := flagusage.Check(help, seen[0]); err != nil {
				t.Errorf("sluice %s --help: %v", tc.name, err)
			}
		}
		for _, w := range tc.want {
			if !strings.Contains(help, w) {
				t.Errorf("sluice %s --help lacks %q:\n%s", tc.name, w, help)
			}
		}
	}
}

package ctl

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"sluice.dev/internal/flagusage"
)

// TestHelpEveryCommand walks every admin command's --help: it prints the
// synopsis and every flag with its default (connection flags included),
// touches no cluster, and returns no error.
func TestHelpEveryCommand(t *testing.T) {
	var seen []*flag.FlagSet
	onFlagSet = func(fs *flag.FlagSet) { seen = append(seen, fs) }
	t.Cleanup(func() { onFlagSet = nil })
	for _, path := range Paths() {
		seen = nil
		var out, errb bytes.Buffer
		args := append(strings.Fields(path), "--help")
		// No --brokers: help must not dial anything.
		if err := Run(context.Background(), args, IO{Out: &out, Err: &errb, Getenv: func(string) string { return "" }}); err != nil {
			t.Errorf("sluice %s --help: %v", path, err)
			continue
		}
		help := errb.String()
		if len(seen) != 1 {
			t.Errorf("sluice %s --help made %d flag sets, want 1", path, len(seen))
			continue
		}
		if !strings.HasPrefix(help, "Usage:\n  sluice "+path) {
			t.Errorf("sluice %s --help does not start with its synopsis:\n%s", path, help)
		}
		if err := flagusage.Check(help, seen[0]); err != nil {
			t.Errorf("sluice %s --help: %v\n%s", path, err, help)
		}
		for _, common := range []string{"--brokers string", `(default "127.0.0.1:9092")`, "--sasl-mechanism", "--tls-ca", "--format string", "--timeout duration"} {
			if !strings.Contains(help, common) {
				t.Errorf("sluice %s --help lacks %q", path, common)
			}
		}
		if out.Len() != 0 {
			t.Errorf("sluice %s --help wrote to stdout: %q", path, out.String())
		}
	}
	seen = nil
	var vh bytes.Buffer
	if err := Version([]string{"--help"}, IO{Err: &vh}, "dev", ""); err != nil || len(seen) != 1 {
		t.Errorf("sluice version --help: %v, %d flag sets", err, len(seen))
	} else if err := flagusage.Check(vh.String(), seen[0]); err != nil {
		t.Errorf("sluice version --help: %v", err)
	}
	// A group without a subcommand lists its subcommands.
	for _, root := range []string{"topic", "group", "cluster"} {
		var errb bytes.Buffer
		if err := Run(context.Background(), []string{root, "--help"}, IO{Err: &errb}); err != nil {
			t.Errorf("sluice %s --help: %v", root, err)
		}
		for _, p := range Paths() {
			if strings.HasPrefix(p, root+" ") && !strings.Contains(errb.String(), "sluice "+p) {
				t.Errorf("sluice %s --help does not list %q:\n%s", root, p, errb.String())
			}
		}
	}
	// $SLUICE_BROKERS shows as the default it is.
	var errb bytes.Buffer
	_ = Run(context.Background(), []string{"topic", "list", "--help"}, IO{Err: &errb, Getenv: func(k string) string {
		if k == EnvBrokers {
			return "kafka-1:9092"
		}
		return ""
	}})
	if !strings.Contains(errb.String(), `(default "kafka-1:9092")`) {
		t.Errorf("with $SLUICE_BROKERS set, --brokers' default is not shown as it:\n%s", errb.String())
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Version(nil, IO{Out: &out}, "v1.2.3", "0123abc"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	if lines[0] != "sluice v1.2.3" || !strings.HasPrefix(lines[1], "commit 0123abc") || !strings.Contains(lines[2], "go1.") {
		t.Errorf("sluice version printed:\n%s", out.String())
	}
	out.Reset()
	if err := Version([]string{"--format", "json"}, IO{Out: &out}, "dev", ""); err != nil {
		t.Fatal(err)
	}
	var b BuildInfo
	if err := jsonUnmarshal(out.String(), &b); err != nil || b.Version == "" || !strings.HasPrefix(b.GoVersion, "go1.") || b.Commit == "" {
		t.Errorf("sluice version --format json: %q (%v)", out.String(), err)
	}
	if err := Version([]string{"--format", "yaml"}, IO{Out: &out}, "dev", ""); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("--format yaml: %v, want an error naming --format", err)
	}
}

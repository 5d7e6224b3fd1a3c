package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
	"sluice.dev/internal/testcluster"
)

// runLimit bounds one command of a test; every command ends long before.
var runLimit = 60 * time.Second

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// cli runs admin commands in-process against one cluster, as a user at
// a shell would: arguments, stdin, stdout; no environment.
type cli struct {
	t    *testing.T
	c    *testcluster.Cluster
	addr string
	env  map[string]string
	// stderr of the last run (help, usage on a flag error).
	stderr string
}

func newCLI(t *testing.T, opts ...func(*agent.Config)) *cli {
	t.Helper()
	c := testcluster.Start(t, opts...)
	return &cli{t: t, c: c, addr: c.Addr()}
}

// run runs `sluice args... --brokers ADDR` with stdin and returns stdout;
// stderr is logged.
func (c *cli) run(stdin string, args ...string) (string, error) {
	c.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	if c.addr != "" {
		args = append(args, "--brokers", c.addr)
	}
	err := Run(ctx, args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Getenv: func(k string) string { return c.env[k] }})
	if ctx.Err() != nil {
		// A consume ends quietly when its context ends (Ctrl-C); here
		// that means it did not end by itself.
		c.t.Fatalf("sluice %s: still running after %s", strings.Join(args, " "), runLimit)
	}
	c.stderr = errb.String()
	return out.String(), err
}

// ok is run that fails the test on an error.
func (c *cli) ok(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err != nil {
		c.t.Fatalf("sluice %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, c.stderr)
	}
	return out
}

// jsonOf runs a command with --format json and decodes its output into v.
func (c *cli) jsonOf(v any, stdin string, args ...string) {
	c.t.Helper()
	out := c.ok(stdin, append(args, "--format", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("sluice %s --format json: not JSON (%v):\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs a command that must fail with an error containing every
// one of want.
func (c *cli) fails(want []string, stdin string, args ...string) {
	c.t.Helper()
	out, err := c.run(stdin, args...)
	if err == nil {
		c.t.Fatalf("sluice %s succeeded, want an error containing %q; stdout:\n%s", strings.Join(args, " "), want, out)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			c.t.Errorf("sluice %s: error %q does not contain %q", strings.Join(args, " "), err, w)
		}
	}
}

func (c *cli) admin() *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// normaliser replaces what differs between runs (node ids, ports, ids)
// with fixed words, then re-aligns the tables as the CLI would have.
type normaliser struct{ pairs []string }

var idPattern = regexp.MustCompile(`[A-Za-z0-9+/]{22}==`) // topic ids

func (c *cli) normaliser() *normaliser {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := c.admin().BrokerMetadata(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	n := &normaliser{}
	for _, b := range m.Brokers {
		n.pairs = append(n.pairs, itoa(b.NodeID), "NODE", itoa(b.Port), "PORT")
	}
	if m.Cluster != "" {
		n.pairs = append(n.pairs, m.Cluster, "CLUSTER-ID")
	}
	return n
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }

func (n *normaliser) apply(s string) string {
	s = strings.NewReplacer(n.pairs...).Replace(s)
	s = idPattern.ReplaceAllString(s, "ID")
	return realign(s)
}

// realign re-runs each block of table lines (cells split by two or more
// spaces) through a tabwriter configured as the CLI's tables are.
func realign(s string) string {
	var out bytes.Buffer
	split := regexp.MustCompile(` {2,}`)
	tw := tabwriter.NewWriter(&out, 0, 0, 2, ' ', 0)
	for _, line := range strings.SplitAfter(s, "\n") {
		if line == "" {
			continue
		}
		body := strings.TrimSuffix(line, "\n")
		if body == "" || !strings.Contains(body, "  ") {
			tw.Flush()
			out.WriteString(line)
			continue
		}
		tw.Write([]byte(strings.Join(split.Split(strings.TrimRight(body, " "), -1), "\t") + "\n"))
	}
	tw.Flush()
	return out.String()
}

// golden compares got with testdata/name.golden (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ctl -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test ./ctl -run %s -update rewrites it)\n--- got:\n%s--- want:\n%s", name, path, t.Name(), got, want)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

package e2e

// The admin CLI (issue 16, cli) as the binary: routing, $SLUICE_BROKERS,
// stdin and stdout, exit codes, and Ctrl-C ending a group consume that
// commits what it printed. Command by command coverage is in ctl/.

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAdminCLI(t *testing.T) {
	pg := startPlayground(t, t.TempDir())
	env := []string{"SLUICE_BROKERS=" + pg.bootstrap}

	if out, err := runSluice(t, env, "topic", "create", "cli", "--partitions", "2"); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("topic create: %v\n%s", err, out)
	}
	produce := exec.Command(sluiceBin, "produce", "cli", "-K", "=")
	produce.Env = append(os.Environ(), env...)
	produce.Stdin = strings.NewReader("a=1\nb=2\nc=3\n")
	if out, err := produce.CombinedOutput(); err != nil || !strings.Contains(string(out), "produced 3 records to cli") {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	out, err := runSluice(t, env, "consume", "cli", "-e", "-f", `%k=%s\n`)
	if err != nil {
		t.Fatalf("consume: %v\n%s", err, out)
	}
	lines := strings.Fields(out)
	if len(lines) != 3 || !strings.Contains(out, "a=1") || !strings.Contains(out, "b=2") || !strings.Contains(out, "c=3") {
		t.Errorf("consume -e printed %q", out)
	}

	// An error exits 1 with the plain-words message on stderr.
	out, err = runSluice(t, env, "topic", "describe", "missing")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, `topic "missing" does not exist (UNKNOWN_TOPIC_OR_PARTITION)`) {
		t.Errorf("describe of a missing topic: %v\n%s", err, out)
	}

	// A tail consumer in a group, ended by Ctrl-C: clean exit, and the
	// group's committed offsets cover exactly what it printed.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tailCmd := exec.CommandContext(ctx, sluiceBin, "consume", "cli", "--group", "tail", "-f", `%s\n`)
	tailCmd.Env = append(os.Environ(), env...)
	var stdout, stderr syncBuffer
	tailCmd.Stdout, tailCmd.Stderr = &stdout, &stderr
	if err := tailCmd.Start(); err != nil {
		t.Fatal(err)
	}
	for strings.Count(stdout.String(), "\n") < 3 {
		if ctx.Err() != nil {
			t.Fatalf("group consumer printed %q in 60s; stderr:\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the child's output, bounded by ctx
	}
	_ = tailCmd.Process.Signal(syscall.SIGINT)
	if err := tailCmd.Wait(); err != nil {
		t.Fatalf("consume after SIGINT: %v\n%s", err, stderr.String())
	}
	out, err = runSluice(t, env, "group", "lag", "tail")
	if err != nil || !strings.Contains(out, "TOTAL LAG 0") {
		t.Errorf("group lag after the tail consumer stopped: %v\n%s", err, out)
	}

	out, err = runSluice(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "sluice ") || !strings.Contains(out, "go1.") {
		t.Errorf("sluice version: %v\n%s", err, out)
	}
	var help bytes.Buffer
	cmd := exec.Command(sluiceBin, "group", "reset-offsets", "--help")
	cmd.Stderr = &help
	if err := cmd.Run(); err != nil || !strings.Contains(help.String(), "--dry-run\n") || !strings.Contains(help.String(), "(default false)") {
		t.Errorf("group reset-offsets --help: %v\n%s", err, help.String())
	}
}

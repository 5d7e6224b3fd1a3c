package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestKcatRoundTrip produces lines with kcat (librdkafka) and reads them
// back with kcat.
func TestKcatRoundTrip(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: install it (apt-get install kcat) or run .ci/run, which does")
	}
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "1")
	var in bytes.Buffer
	var want []string
	for i := 0; i < 1000; i++ {
		line := fmt.Sprintf("key-%d:value number %d %s", i, i, strings.Repeat("x", i%50))
		want = append(want, line)
		in.WriteString(line + "\n")
	}
	ctx := testCtx(t, 60_000_000_000)
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "kcat-topic", "-K:",
		"-X", "acks=all", "-X", "enable.idempotence=true")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	cons := exec.CommandContext(ctx, kcat, "-C", "-b", pg.bootstrap, "-t", "kcat-topic", "-o", "beginning",
		"-e", "-q", "-f", "%k:%s\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, pg.stderr.String())
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("kcat read %d lines, wrote %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	// kcat's metadata view: the topic, its partition, this broker.
	meta, err := exec.CommandContext(ctx, kcat, "-L", "-b", pg.bootstrap, "-t", "kcat-topic").CombinedOutput()
	if err != nil || !strings.Contains(string(meta), `topic "kcat-topic" with 1 partitions`) {
		t.Fatalf("kcat -L: %v\n%s", err, meta)
	}
}

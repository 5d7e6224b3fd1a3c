package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
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
	ctx := testCtx(t, time.Minute)
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

// TestKcatConsumerGroup consumes with a librdkafka consumer group (kcat
// -G): two runs of the same group, the second starting from what the
// first committed.
func TestKcatConsumerGroup(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: install it (apt-get install kcat) or run .ci/run, which does")
	}
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	ctx := testCtx(t, 2*time.Minute)
	produce := func(from, n int) {
		var in bytes.Buffer
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&in, "m%d\n", i)
		}
		p := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "kg")
		p.Stdin = &in
		if out, err := p.CombinedOutput(); err != nil {
			t.Fatalf("kcat produce: %v\n%s", err, out)
		}
	}
	consume := func(want int) map[string]int {
		got := map[string]int{}
		// -G joins the group; -e exits once every assigned partition is
		// at its end; offsets are committed as it goes and on exit. (No
		// -o: in group mode it would override the committed offsets.)
		c := exec.CommandContext(ctx, kcat, "-b", pg.bootstrap, "-G", "kcat-group", "-X", "auto.offset.reset=earliest",
			"-e", "-q", "-X", "auto.commit.interval.ms=100", "kg")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("kcat -G: %v\n%s", err, pg.stderr.String())
		}
		for _, l := range strings.Fields(string(out)) {
			got[l]++
		}
		if len(got) != want {
			t.Fatalf("kcat -G read %d distinct records, want %d", len(got), want)
		}
		return got
	}
	produce(0, 200)
	first := consume(200)
	produce(200, 100)
	second := consume(100)
	for k := range second {
		if first[k] > 0 {
			t.Fatalf("record %s read again by the second run: committed offsets not used", k)
		}
	}
}

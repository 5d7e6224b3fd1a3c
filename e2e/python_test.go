package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestConfluentKafkaPython runs librdkafka's Python client (Debian's
// python3-confluent-kafka, which belongs to /usr/bin/python3, not
// necessarily the python3 first on PATH): every compression codec round
// trip, and a consumer group resuming from committed offsets.
func TestConfluentKafkaPython(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("python3-confluent-kafka missing: apt-get install python3-confluent-kafka (.ci/run does)")
	}
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	ctx := testCtx(t, 3*time.Minute)
	out, err := exec.CommandContext(ctx, py, "testdata/confluent_compat.py", pg.bootstrap).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("confluent-kafka compat: %v\nagent log:\n%s", err, pg.stderr.String())
	}
}

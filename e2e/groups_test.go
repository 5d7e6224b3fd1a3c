package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestConfluentKafkaPythonSlowRevoke (issue 11, item 6): librdkafka
// members with a 1 s session and a 10 s rebalance timeout
// (max.poll.interval.ms), one of them taking 3 s in its revoke callback.
// When a third member joins, the others wait in JoinGroup for the slow
// one; the group must settle in one rebalance with nobody expelled.
// e2e/testdata/confluent_slow_revoke.py says what it checks.
func TestConfluentKafkaPythonSlowRevoke(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("python3-confluent-kafka missing: apt-get install python3-confluent-kafka (.ci/run does)")
	}
	pg := startPlayground(t, t.TempDir())
	ctx := testCtx(t, 90*time.Second)
	out, err := exec.CommandContext(ctx, py, "testdata/confluent_slow_revoke.py", pg.bootstrap, "3000", "7").CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "\nPASS\n") {
		t.Fatalf("confluent-kafka slow revoke: %v\nagent log:\n%s", err, tail(pg.stderr.String(), 8192))
	}
}

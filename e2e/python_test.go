package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runConfluentCompat runs e2e/testdata/confluent_compat.py with librdkafka's
// Python client (Debian's python3-confluent-kafka, which belongs to
// /usr/bin/python3, not necessarily the python3 first on PATH) against a
// fresh playground, for the given checks, fails unless it says PASS, and
// returns its output and the playground.
func runConfluentCompat(t *testing.T, timeout time.Duration, checks ...string) (string, *playground) {
	t.Helper()
	return runConfluentCompatOn(t, timeout, nil, checks...)
}

// runConfluentCompatOn is runConfluentCompat on a playground with extra
// flags.
func runConfluentCompatOn(t *testing.T, timeout time.Duration, flags []string, checks ...string) (string, *playground) {
	t.Helper()
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("python3-confluent-kafka missing: apt-get install python3-confluent-kafka (.ci/run does)")
	}
	pg := startPlayground(t, t.TempDir(), append([]string{"--default-partitions", "4"}, flags...)...)
	ctx := testCtx(t, timeout)
	args := append([]string{"testdata/confluent_compat.py", pg.bootstrap}, checks...)
	out, err := exec.CommandContext(ctx, py, args...).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "\nPASS\n") {
		t.Fatalf("confluent-kafka %s: %v\nagent log:\n%s", strings.Join(checks, ", "), err, tail(pg.stderr.String(), 8192))
	}
	return string(out), pg
}

// TestConfluentKafkaPython: every compression codec round trip (exact,
// with keys and headers; the stored batches carry the codec in
// librdkafkaCodecs, and librdkafka says when it does not compress), and a
// consumer group resuming from committed offsets.
func TestConfluentKafkaPython(t *testing.T) {
	out, pg := runConfluentCompat(t, 3*time.Minute, "codecs", "resume")
	ctx := testCtx(t, time.Minute)
	for _, c := range librdkafkaCodecs {
		var n, notices int
		i := strings.Index(out, "ok "+c.name+" ")
		if i < 0 {
			t.Fatalf("no result for %s", c.name)
		}
		if _, err := fmt.Sscanf(out[i:], "ok "+c.name+" %d not-compressing=%d", &n, &notices); err != nil || n != 500 {
			t.Fatalf("%s: unparsable result %q: %v", c.name, strings.SplitN(out[i:], "\n", 2)[0], err)
		}
		checkStoredCodec(ctx, t, pg.bootstrap, "py-"+c.name, c.name, c.stored, n, notices)
	}
}

// TestConfluentKafkaPythonGroup: two Consumers of one group split a
// 4-partition topic; one closes with its committed offsets exactly what it
// consumed and the other takes over; a new member joins and both resume
// from the committed offsets, nothing skipped or repeated, offsets dense.
func TestConfluentKafkaPythonGroup(t *testing.T) {
	runConfluentCompat(t, 2*time.Minute, "members")
}

// TestConfluentKafkaPythonAdmin: AdminClient create_topics (and
// TOPIC_ALREADY_EXISTS), list_topics metadata, describe_configs,
// delete_topics (gone from list_topics; then UNKNOWN_TOPIC_OR_PART).
func TestConfluentKafkaPythonAdmin(t *testing.T) {
	runConfluentCompat(t, time.Minute, "admin")
}

// TestConfluentKafkaPythonCompacted: a compacted topic made with
// AdminClient refuses keyless records (INVALID_RECORD) and, once the
// playground's jobs agent has cleaned it, reads back as each key's latest
// value, tombstones included.
func TestConfluentKafkaPythonCompacted(t *testing.T) {
	runConfluentCompatOn(t, 2*time.Minute, []string{"--compaction-interval", "1s", "--gc-interval", "1s"}, "compacted")
}

// TestConfluentKafkaPythonTxn (issue 15): librdkafka's transactional
// producer commits and aborts; read_committed consumers see only what
// was committed; send_offsets_to_transaction commits the group's offsets
// with the transaction's output, and an abort leaves them untouched.
func TestConfluentKafkaPythonTxn(t *testing.T) {
	runConfluentCompat(t, 2*time.Minute, "txn")
}

// TestConfluentKafkaPythonTxnLSO (issue 15): librdkafka's
// get_watermark_offsets answers the last stable offset to a
// read_committed consumer while a transaction is open and the high
// watermark to a read_uncommitted one; a transaction past its
// transaction.timeout.ms is aborted by the coordinator and its late
// commit fails.
func TestConfluentKafkaPythonTxnLSO(t *testing.T) {
	runConfluentCompat(t, 2*time.Minute, "txnlso")
}

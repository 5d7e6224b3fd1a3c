package e2e

import (
	"strings"
	"testing"
	"time"

	"sluice.dev/internal/pgtest"
	"sluice.dev/loadtest"
)

// TestPostgresFailover runs two meta replicas on one PostgreSQL and an
// agent that knows both. Under a produce load the leader is killed with
// SIGKILL: the standby takes over within 10 s, the agent follows it,
// production resumes, and every acknowledged record is there, at its
// offset, with dense offsets.
func TestPostgresFailover(t *testing.T) {
	url := pgtest.URL(t)
	dir := t.TempDir()
	m1 := startMeta(t, "meta-1", url, "127.0.0.1:0")
	m2 := startMeta(t, "meta-2", url, "127.0.0.1:0")
	leader, standby := m1, m2
	if _, ok := waitHealthy(m1.lines["http"], 10*time.Second); !ok {
		leader, standby = m2, m1
		if _, ok := waitHealthy(m2.lines["http"], 10*time.Second); !ok {
			t.Fatal("neither meta replica leads")
		}
	}
	if _, ok := waitHealthy(standby.lines["http"], 500*time.Millisecond); ok {
		t.Fatal("both meta replicas claim to lead")
	}
	key := createKey(t, leader.lines["meta"], "ha")
	a := startAgent(t, "agent-ha", m1.lines["meta"]+","+m2.lines["meta"], key, "file://"+dir+"/bucket")
	bootstrap := a.lines["bootstrap"]

	const topic = "failover"
	var oracle loadtest.Oracle
	stop := make(chan struct{})
	type result struct{ acked, failed int }
	done := make(chan result, 1)
	go func() {
		acked, failed := produceUntil(t, bootstrap, topic, stop, &oracle)
		done <- result{acked, failed}
	}()
	time.Sleep(3 * time.Second)
	before := oracle.Count()
	if before == 0 {
		t.Fatal("nothing acknowledged before the failover")
	}

	leader.kill()
	took, ok := waitHealthy(standby.lines["http"], 10*time.Second)
	if !ok {
		t.Fatalf("standby did not take over within 10s:\n%s", tail(standby.stderr.String(), 4096))
	}
	t.Logf("standby leads %v after the leader was killed", took.Round(100*time.Millisecond))
	if !strings.Contains(standby.stderr.String(), "meta: leading") {
		t.Fatal("standby's log does not say it leads")
	}

	// Production resumes through the new leader.
	resumed := time.Now()
	for oracle.Count() < before+2000 {
		if time.Since(resumed) > 60*time.Second {
			t.Fatalf("production did not resume: %d acknowledged before, %d now", before, oracle.Count())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("production resumed: %d more records acknowledged %v after takeover", oracle.Count()-before, time.Since(resumed).Round(100*time.Millisecond))
	close(stop)
	r := <-done
	t.Logf("acknowledged %d, failed %d (failed = not acknowledged, allowed)", r.acked, r.failed)
	verify(t, &oracle, consumeAll(t, bootstrap, topic))
	a.stop(t)
	standby.stop(t)
}

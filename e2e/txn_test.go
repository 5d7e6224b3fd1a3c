package e2e

// Transactions (issue 15) across a meta restart, with `sluice meta` and
// `sluice agent` as separate processes.

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTxnAcrossMetaRestart: meta is killed (SIGKILL) while a franz-go
// transaction is open with its records written, and started again on
// the same store. The coordinator's state was in the store: the same
// producer then commits, and a read_committed consumer sees its records
// exactly once. A second transaction, aborted after another restart,
// stays invisible.
func TestTxnAcrossMetaRestart(t *testing.T) {
	dir := t.TempDir()
	store, maddr := filepath.Join(dir, "meta"), freePort(t)
	m := startMeta(t, "meta", store, maddr)
	key := createKey(t, maddr, "txn-restart")
	a := startAgent(t, "agent-txn-restart", maddr, key, "file://"+filepath.Join(dir, "bucket"))
	bootstrap := a.lines["bootstrap"]
	ctx := testCtx(t, 3*time.Minute)

	adm, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 2, 1, nil, "txn-restart"); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.TransactionalID("restart-tx"), kgo.DefaultProduceTopic("txn-restart"),
		kgo.TransactionTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	restart := func(name string) {
		m.kill()
		m = startMeta(t, name, store, maddr)
	}
	for round, commit := range []bool{true, false} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("r%d-%d", round, i))}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("round %d produce: %v", round, err)
			}
		}
		restart(fmt.Sprintf("meta-restarted-%d", round))
		// The agent reconnects on its own; EndTxn is retried by the
		// client until meta answers.
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("round %d EndTransaction(commit=%v) after the restart: %v", round, commit, err)
		}
	}
	// An end record committed last: read_committed reads to it.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for part := range int32(2) {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("end")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	c, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics("txn-restart"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen, ends := map[string]int{}, 0
	for ends < 2 {
		f := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d records and %d end records by the deadline", len(seen), ends)
		}
		f.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "end" {
				ends++
				return
			}
			seen[string(r.Value)]++
		})
	}
	for i := range 20 {
		if n := seen[fmt.Sprintf("r0-%d", i)]; n != 1 {
			t.Errorf("committed record r0-%d read %d times, want once", i, n)
		}
	}
	if len(seen) != 20 {
		t.Errorf("read_committed saw %d distinct records, want the 20 committed ones (the aborted round is hidden)", len(seen))
	}
	a.stop(t)
	m.stop(t)
}

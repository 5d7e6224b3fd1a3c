package e2e

// Transactions (issue 15) read by librdkafka through kcat: kcat cannot
// produce transactionally, so franz-go writes and kcat reads with each
// isolation level.

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKcatIsolationLevels: franz-go writes a committed, an aborted and a
// committed transaction of 5 records to a one-partition topic and leaves
// a fourth open (offsets: c1 0-4, marker 5, a2 6-10, marker 11, c3
// 12-16, marker 17, open 18-19). `kcat -C -e` with
// `-X isolation.level=read_committed` reads exactly the 10 committed
// records at their offsets and reaches the partition's end at the last
// stable offset (18) although the open transaction's records are past
// it; without -X it does the same (librdkafka 2.0.2 defaults to
// read_committed); with read_uncommitted it reads all 17 records, the
// markers skipped. After the fourth transaction commits, read_committed
// reads its two records too.
func TestKcatIsolationLevels(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "1")
	ctx := testCtx(t, 2*time.Minute)
	const topic = "kcat-txn"
	p, err := kgo.NewClient(kgo.SeedBrokers(pg.bootstrap), kgo.TransactionalID("kcat-txn-writer"),
		kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txn := func(prefix string, end bool, commit bool) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		n := 5
		if !end {
			n = 2
		}
		for i := range n {
			if err := p.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s-%d", prefix, i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end {
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
	}
	txn("c1", true, true)
	txn("a2", true, false)
	txn("c3", true, true)
	txn("open", false, false)

	read := func(isolation string) string {
		args := []string{"-C", "-b", pg.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o:%s\n"}
		if isolation != "" {
			args = append(args, "-X", "isolation.level="+isolation)
		}
		out, err := exec.CommandContext(ctx, kcat, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kcat -C (isolation %q): %v\n%s", isolation, err, out)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	var committed, all []string
	for i := range 5 {
		committed = append(committed, fmt.Sprintf("%d:c1-%d", i, i))
		all = append(all, fmt.Sprintf("%d:c1-%d", i, i))
	}
	for i := range 5 {
		all = append(all, fmt.Sprintf("%d:a2-%d", 6+i, i))
	}
	for i := range 5 {
		committed = append(committed, fmt.Sprintf("%d:c3-%d", 12+i, i))
		all = append(all, fmt.Sprintf("%d:c3-%d", 12+i, i))
	}
	all = append(all, "18:open-0", "19:open-1")
	for _, iso := range []string{"read_committed", ""} {
		if got, want := read(iso), strings.Join(committed, " "); got != want {
			t.Errorf("kcat isolation %q with a transaction open:\n got %s\nwant %s", iso, got, want)
		}
	}
	if got, want := read("read_uncommitted"), strings.Join(all, " "); got != want {
		t.Errorf("kcat read_uncommitted:\n got %s\nwant %s", got, want)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	committed = append(committed, "18:open-0", "19:open-1")
	if got, want := read("read_committed"), strings.Join(committed, " "); got != want {
		t.Errorf("kcat read_committed after the last commit:\n got %s\nwant %s", got, want)
	}
}

package compat_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestFranzGoOwnTxnTests (issue 15) runs franz-go's own transaction test,
// kgo's TestTxnEtl (consume-transform-produce chains of
// GroupTransactSessions with the range, cooperative-sticky and static
// cooperative-sticky balancers, checking that every record arrives
// exactly once), against an agent, with 20,000 records instead of its
// default 500,000 to keep `make test` fast.
func TestFranzGoOwnTxnTests(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go not on PATH")
	}
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "github.com/twmb/franz-go/pkg/kgo", "-run", "^TestTxnEtl$", "-count=1", "-v")
	cmd.Env = append(os.Environ(), "KGO_SEEDS="+c.addr(), "KGO_TEST_RECORDS=20000")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestTxnEtl ") {
		t.Fatalf("franz-go's TestTxnEtl: %v\n%s", err, out)
	}
	for _, sub := range []string{"range", "cooperative-sticky", "cooperative-sticky/static"} {
		if !strings.Contains(string(out), "--- PASS: TestTxnEtl/"+sub+" ") {
			t.Errorf("franz-go's TestTxnEtl/%s did not pass:\n%s", sub, out)
		}
	}
}

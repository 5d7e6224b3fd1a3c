package host

import (
	"context"
	"errors"
	"testing"

	"sluice.dev/meta"
)

// TestAgentServesJobs: what Agent resolves a key to must also be the
// cluster's meta.JobsClient. meta/rpc serves the jobs calls by asserting
// that interface on it, so a host that handed out a wrapper hiding it
// would answer every jobs agent UNIMPLEMENTED, and no compaction, deletion
// or orphan pass would ever run.
func TestAgentServesJobs(t *testing.T) {
	ctx := context.Background()
	h := openHost(t, t.TempDir())
	defer h.Close()
	key, _, err := h.CreateKey(ctx, "tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.Agent(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	jc, ok := c.(meta.JobsClient)
	if !ok {
		t.Fatalf("Agent returned %T, which is not a meta.JobsClient", c)
	}
	// It is the key's own cluster: a lease it does not hold is lost.
	if err := jc.AbandonJob(ctx, 1, "test"); !errors.Is(err, meta.ErrJobLost) {
		t.Fatalf("AbandonJob of a job never leased: %v, want ErrJobLost", err)
	}
}

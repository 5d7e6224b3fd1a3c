package controller

import (
	"testing"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/planner"
)

// A job given back (AbandonJob: it failed, say on an object missing from
// the bucket) keeps its objects out of new jobs for abandonCooldown (a
// minute at the default GC grace). They
// used to go into a new job at once, planned first again, so that a job
// failing the same way each time took every lease of every tick and no
// other compaction ran. An orphan pass given back waits the same.
func TestAbandonedJobCoolsDown(t *testing.T) {
	s := openT(t, t.TempDir(), func(c *Config) {
		c.Compaction = planner.Config{MinAge: time.Second, MaxWait: time.Second}
	})
	clk := &fakeClock{t: time.Now()}
	s.now = clk.now
	ctx := ctxT(t)
	a := createTopic(t, s, "a", 1)
	for range 4 {
		commit(t, s, newSegmentAt(clk.now()).add(a.ID, 0, 2, 100))
	}
	if got := s.abandonCooldown(); got != time.Minute {
		t.Fatalf("cooldown %v at the default GC grace, want a minute", got)
	}
	clk.add(time.Minute)
	compact := []meta.JobKind{meta.JobCompact}
	job, ok, err := s.AcquireJob(ctx, "jobs-1", compact)
	if err != nil || !ok {
		t.Fatalf("no compaction job: %v %v", ok, err)
	}
	if err := s.AbandonJob(ctx, job.ID, "object not found"); err != nil {
		t.Fatal(err)
	}
	if again, ok, err := s.AcquireJob(ctx, "jobs-2", compact); err != nil || ok {
		t.Fatalf("the abandoned job's objects went into a new job at once: %+v %v %v", again, ok, err)
	}
	clk.add(s.abandonCooldown() + time.Second)
	again, ok, err := s.AcquireJob(ctx, "jobs-2", compact)
	if err != nil || !ok {
		t.Fatalf("no compaction job after the cooldown: %v %v", ok, err)
	}
	if len(again.Compact.Sources) != len(job.Compact.Sources) {
		t.Fatalf("after the cooldown: %d sources, want the abandoned job's %d", len(again.Compact.Sources), len(job.Compact.Sources))
	}

	// The orphan pass (due once GCGrace has passed since open).
	clk.add(s.cfg.GCGrace)
	orphans := []meta.JobKind{meta.JobOrphans}
	oj, ok, err := s.AcquireJob(ctx, "jobs-1", orphans)
	if err != nil || !ok {
		t.Fatalf("no orphan pass: %v %v", ok, err)
	}
	if err := s.AbandonJob(ctx, oj.ID, "list denied"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.AcquireJob(ctx, "jobs-2", orphans); ok {
		t.Fatal("an orphan pass given back was leased again at once")
	}
	clk.add(s.abandonCooldown() + time.Second)
	if _, ok, err := s.AcquireJob(ctx, "jobs-2", orphans); err != nil || !ok {
		t.Fatalf("no orphan pass after the cooldown: %v %v", ok, err)
	}
}

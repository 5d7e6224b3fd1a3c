package loadtest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// samplesOf makes one sample every 5 s over 120 s with objects, bytes and
// entries all given by f.
func samplesOf(f func(at float64) int64) []Sample {
	var out []Sample
	for at := 5.0; at <= 120; at += 5 {
		v := f(at)
		out = append(out, Sample{AtS: at, BucketObjects: v, BucketBytes: v * 1000, IndexEntries: v * 3})
	}
	return out
}

func TestPlateauChecks(t *testing.T) {
	const load, interval = 120 * time.Second, 4 * time.Second
	// A plateau after 40 s that swings by 20 % around its level, as GC
	// deleting in batches makes it.
	flat := samplesOf(func(at float64) int64 {
		if at < 40 {
			return int64(at * 10)
		}
		if int(at)%10 == 0 {
			return 480
		}
		return 400
	})
	for _, c := range plateauChecks(flat, load, interval) {
		if !c.OK {
			t.Fatalf("plateau judged growing: %+v", c)
		}
	}
	// Nothing collected: linear growth; last/middle is 1.5.
	linear := samplesOf(func(at float64) int64 { return int64(at * 10) })
	for _, c := range plateauChecks(linear, load, interval) {
		if c.OK {
			t.Fatalf("linear growth judged a plateau: %+v", c)
		}
	}
	// Growth that resumes in the last third.
	late := samplesOf(func(at float64) int64 {
		if at < 80 {
			return 400
		}
		return 400 + int64(at-80)*10
	})
	for _, c := range plateauChecks(late, load, interval) {
		if c.OK {
			t.Fatalf("late growth judged a plateau: %+v", c)
		}
	}
	// Meta down for every sample of the middle third: no verdict, a
	// failure with a note. Samples after the load do not count.
	gap := samplesOf(func(float64) int64 { return 100 })
	for i := range gap {
		if gap[i].AtS >= 40 && gap[i].AtS < 80 {
			gap[i].IndexEntries = -1
		}
	}
	gap = append(gap, Sample{AtS: 200, BucketObjects: 1e6, BucketBytes: 1e9, IndexEntries: 1e6})
	cs := plateauChecks(gap, load, interval)
	if !cs[0].OK || !cs[1].OK || cs[2].OK || cs[2].Note == "" {
		t.Fatalf("checks %+v: want objects and bytes ok, entries failed with a note", cs)
	}
}

func TestParseSeriesAndRestarts(t *testing.T) {
	page := strings.Join([]string{
		`sluice_jobs_runs_total{kind="compact"} 7`,
		`sluice_jobs_runs_total{kind="delete"} 3`,
		`sluice_jobs_runs_total{kind="compactx"} 99`,
		`sluice_other 1`,
		`sluice_jobs_orphans_total{kind="orphans"} 2`,
	}, "\n")
	got := parseSeries(page, jobSeries)
	if len(got) != 3 || got[`sluice_jobs_runs_total{kind="compact"}`] != 7 || got[`sluice_jobs_orphans_total{kind="orphans"}`] != 2 {
		t.Fatalf("parsed %v", got)
	}
	// A counter that restarts from zero keeps counting on.
	var c counterTrack
	for _, v := range []float64{1, 5, 5, 0, 2, 3} {
		c.observe(v)
	}
	if c.total() != 8 {
		t.Fatalf("total %v, want 8", c.total())
	}
}

// TestReportTextFromJSON: a report read back from --json (Load is not in
// the JSON) still prints the load's length, and the lifecycle section.
func TestReportTextFromJSON(t *testing.T) {
	rep := &Report{Pass: true, Load: 2 * time.Minute, LoadS: 120, Acked: 10, Retention: "20s", Expired: 7,
		Lifecycle: &Lifecycle{Retention: "20s", Samples: []Sample{{AtS: 5, BucketObjects: 3, BucketBytes: 1 << 20, LiveObjects: -1, DeadObjects: -1, IndexEntries: -1, LeasedJobs: -1}},
			Plateau: []PlateauCheck{{What: "bucket objects", OK: true, LastMax: 3, Bound: 9}},
			Orphans: &OrphanCheck{OK: true, Detail: "no orphan left"}}}
	var js strings.Builder
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal([]byte(js.String()), &back); err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := back.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2m0s", "bucket objects  PASS", "orphans   PASS: no orphan left", "7 acknowledged records were below the final log start", "   5s               3        1.00          ?"} {
		if !strings.Contains(text.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, text.String())
		}
	}
}

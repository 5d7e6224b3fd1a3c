package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what ran, what was injected, what the
// verification found. Pass is false on any loss, duplicate, gap,
// reordering, group that missed an acknowledged record, failed fault, or
// when nothing at all was acknowledged.
type Report struct {
	Pass bool   `json:"pass"`
	Seed uint64 `json:"seed"`

	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	Agents     int    `json:"agents"`
	Store      string `json:"store"`
	Bucket     string `json:"bucket"`
	Producers  int    `json:"producers"`
	Rate       int    `json:"rate"`
	Groups     int    `json:"groups"`
	Members    int    `json:"members"`

	// Load is how long producers ran: --duration, plus the end of a fault
	// that started before it.
	Load          time.Duration `json:"-"`
	LoadS         float64       `json:"load_s"`
	Acked         int64         `json:"acked"`
	Failed        int64         `json:"failed"`  // produce failed: not acknowledged, allowed
	CutOff        int64         `json:"cut_off"` // still unsent when the flush at the end timed out
	AckedPerS     float64       `json:"acked_per_s"`
	ProduceErrors []string      `json:"produce_errors,omitempty"` // the first few distinct ones
	LogRecords    int64         `json:"log_records"`              // read back from the start
	// Retention is the topic's retention.ms ("0s": none); Expired counts
	// the acknowledged records below the final log start, which
	// retention removed before the read back.
	Retention string `json:"retention"`
	Expired   int64  `json:"expired"`

	Faults     []FaultEvent `json:"faults"`
	GroupStats []GroupStats `json:"group_stats"`

	Warnings     []string `json:"warnings,omitempty"`
	Problems     []string `json:"problems,omitempty"` // the first ones
	ProblemCount int      `json:"problem_count"`

	// Lifecycle is set in lifecycle mode (--compaction): the samples
	// over time, the plateau and orphan verdicts, the jobs counted.
	Lifecycle *Lifecycle `json:"lifecycle,omitempty"`
	// Txn is set in transactions mode (--transactions): the
	// transactions' outcomes and what the exactly-once oracle checked.
	Txn *TxnStats `json:"transactions,omitempty"`

	Timings Timings `json:"timings"`
	Dir     string  `json:"dir,omitempty"` // the run's directory, when kept
}

// GroupStats is one consumer group's view at the end.
type GroupStats struct {
	Name        string `json:"name"`
	Received    int64  `json:"received"`    // distinct offsets
	Redelivered int64  `json:"redelivered"` // received again after a rebalance
	FetchErrors int64  `json:"fetch_errors"`
	CaughtUp    bool   `json:"caught_up"` // reached the end offsets within the drain timeout
	// Expired counts acknowledged records the group never received
	// because retention removed them first (lifecycle mode).
	Expired int64 `json:"expired,omitempty"`
}

// Timings are the phases of a run, in seconds.
type Timings struct {
	StartS   float64 `json:"start_s"`   // cluster up, topic created
	LoadS    float64 `json:"load_s"`    // producing, faults
	FlushS   float64 `json:"flush_s"`   // in-flight produces finishing
	CatchUpS float64 `json:"catchup_s"` // groups reaching the end offsets
	VerifyS  float64 `json:"verify_s"`  // reading the log back, checking
	TotalS   float64 `json:"total_s"`
}

// retained says the run's topic had retention.
func (r *Report) retained() bool { return r.Retention != "" && r.Retention != "0s" }

// redactStore hides a password in a postgres:// URL.
func redactStore(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return s
}

// WriteJSON writes the report as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sluice loadtest: %s\n\n", verdict(r.Pass))
	store := "embedded store"
	if r.Store != "" {
		store = r.Store
	}
	fmt.Fprintf(&b, "  cluster   %d agents, meta on %s, bucket %s\n", r.Agents, store, r.Bucket)
	groups := fmt.Sprintf("%d groups x %d members", r.Groups, r.Members)
	if r.Txn != nil {
		groups = fmt.Sprintf("%d read_committed groups x %d members", r.Groups, r.Members)
	}
	fmt.Fprintf(&b, "  load      %d producers at %d rec/s into %s (%d partitions), %s, %s, seed %d\n",
		r.Producers, r.Rate, r.Topic, r.Partitions, groups, time.Duration(r.LoadS*float64(time.Second)).Round(100*time.Millisecond), r.Seed)
	fmt.Fprintf(&b, "  produced  %d acknowledged (%.0f rec/s), %d failed (not acknowledged: allowed), %d cut off at the end\n",
		r.Acked, r.AckedPerS, r.Failed, r.CutOff)
	for _, e := range r.ProduceErrors {
		fmt.Fprintf(&b, "            produce error: %s\n", e)
	}
	if r.retained() {
		fmt.Fprintf(&b, "  log       %d records read back from the log start; %d acknowledged records were below the final log start (expired by retention.ms=%s)\n",
			r.LogRecords, r.Expired, r.Retention)
	} else if r.Txn != nil {
		fmt.Fprintf(&b, "  log       %d records and markers read back from offset 0 with read_uncommitted\n", r.LogRecords)
	} else {
		fmt.Fprintf(&b, "  log       %d records read back from offset 0\n", r.LogRecords)
	}

	if len(r.Faults) == 0 {
		fmt.Fprintf(&b, "  faults    none\n")
	} else {
		fmt.Fprintf(&b, "\n  faults (%d)\n", len(r.Faults))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "    at\tkind\ttarget\ttook\twhat happened")
		for _, f := range r.Faults {
			what := f.Detail
			if f.Err != "" {
				what += "; ERROR: " + f.Err
			}
			fmt.Fprintf(tw, "    %.1fs\t%s\t%s\t%.1fs\t%s\n", f.AtS, f.Kind, f.Target, f.TookS, what)
		}
		tw.Flush()
	}
	if len(r.GroupStats) > 0 {
		fmt.Fprintf(&b, "\n  groups\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		if r.Lifecycle == nil && !r.retained() {
			fmt.Fprintln(tw, "    group\treceived\tredelivered\tfetch errors\tcaught up")
			for _, g := range r.GroupStats {
				fmt.Fprintf(tw, "    %s\t%d\t%d\t%d\t%v\n", g.Name, g.Received, g.Redelivered, g.FetchErrors, g.CaughtUp)
			}
		} else {
			fmt.Fprintln(tw, "    group\treceived\tredelivered\tfetch errors\tcaught up\texpired before received")
			for _, g := range r.GroupStats {
				fmt.Fprintf(tw, "    %s\t%d\t%d\t%d\t%v\t%d\n", g.Name, g.Received, g.Redelivered, g.FetchErrors, g.CaughtUp, g.Expired)
			}
		}
		tw.Flush()
	}
	if lc := r.Lifecycle; lc != nil {
		writeLifecycle(&b, lc)
	}
	if tx := r.Txn; tx != nil {
		fmt.Fprintf(&b, "\n  transactions (%d records each, every %d aborted on purpose)\n", tx.RecordsPerTxn, tx.AbortEvery)
		fmt.Fprintf(&b, "            %d committed, %d aborted on purpose, %d failed and aborted, %d of unknown outcome (%d turned out committed, %d aborted)\n",
			tx.Committed, tx.AbortedOnPurpose, tx.Failed, tx.Unknown, tx.UnknownCommitted, tx.UnknownAborted)
		fmt.Fprintf(&b, "            %d clients re-initialised (new epoch), %d PRODUCER_FENCED / INVALID_PRODUCER_EPOCH errors\n", tx.Reinits, tx.Fenced)
		fmt.Fprintf(&b, "            read_committed: %d records visible, each checked against its transaction; %d aborted records hidden; %d markers in the read_uncommitted log\n",
			tx.RecordsVisible, tx.RecordsHidden, tx.Markers)
	}
	t := r.Timings
	fmt.Fprintf(&b, "\n  timings   cluster start %.1fs, load %.1fs, flush %.1fs, groups catch up %.1fs, verify %.1fs, total %.1fs\n",
		t.StartS, t.LoadS, t.FlushS, t.CatchUpS, t.VerifyS, t.TotalS)
	if r.Dir != "" {
		fmt.Fprintf(&b, "  kept      %s (logs/ has every process's output)\n", r.Dir)
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "  warning   %s\n", wn)
	}
	fmt.Fprintln(&b)
	switch {
	case r.Pass && r.Txn != nil:
		fmt.Fprintf(&b, "PASS: every committed transaction's records are visible to read_committed exactly once (%d records), no aborted one is, "+
			"unknown outcomes are all or nothing; read_uncommitted holds all %d acknowledged records at their offsets, dense across data and %d markers\n",
			r.Txn.RecordsVisible, r.Acked, r.Txn.Markers)
	case r.Pass && r.retained():
		fmt.Fprintf(&b, "PASS: of %d acknowledged records, all at or above the log start are in the log at their offsets, once and in order, and every group received them; "+
			"%d expired; whatever was read holds what was acknowledged", r.Acked, r.Expired)
		if r.Lifecycle != nil {
			fmt.Fprintf(&b, "; the bucket and meta's index reached a plateau; no orphan was left")
		}
		fmt.Fprintln(&b)
	case r.Pass && r.Lifecycle != nil:
		fmt.Fprintf(&b, "PASS: all %d acknowledged records are in the log at their offsets, once and in order; offsets are dense; every group received them all; "+
			"the bucket and meta's index reached a plateau; no orphan was left\n", r.Acked)
	case r.Pass:
		fmt.Fprintf(&b, "PASS: all %d acknowledged records are in the log at their offsets, once and in order; offsets are dense; every group received them all\n", r.Acked)
	default:
		fmt.Fprintf(&b, "FAIL: %d problem(s)", r.ProblemCount)
		if len(r.Problems) < r.ProblemCount {
			fmt.Fprintf(&b, ", the first %d", len(r.Problems))
		}
		fmt.Fprintln(&b, ":")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
		if r.Dir == "" {
			fmt.Fprintf(&b, "rerun with --seed %d --keep to keep the processes' logs\n", r.Seed)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeLifecycle writes the lifecycle section: the timings, the samples
// over time, the plateau and orphan verdicts.
func writeLifecycle(b *strings.Builder, lc *Lifecycle) {
	fmt.Fprintf(b, "\n  lifecycle retention %s", lc.Retention)
	if lc.RetCheck != "" {
		fmt.Fprintf(b, " (checked every %s)", lc.RetCheck)
	}
	fmt.Fprintf(b, ", jobs every %s on one jobs agent, compaction min age %s, max wait %s, gc grace %s, orphan scan every %s\n",
		lc.Interval, lc.MinAge, lc.MaxWait, lc.Grace, lc.OrphanScan)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "    at\tbucket objects\tbucket MiB\tmeta live\tdead awaiting GC\tindex entries\tleased\tcompactions\tdeletes\torphan passes\torphans found\t")
	num := func(v int64) string {
		if v < 0 {
			return "?"
		}
		return fmt.Sprint(v)
	}
	for _, s := range lc.Samples {
		mib := "?"
		if s.BucketBytes >= 0 {
			mib = fmt.Sprintf("%.2f", float64(s.BucketBytes)/(1<<20))
		}
		fmt.Fprintf(tw, "    %.0fs\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t\n", s.AtS, num(s.BucketObjects), mib,
			num(s.LiveObjects), num(s.DeadObjects), num(s.IndexEntries), num(s.LeasedJobs), s.Compactions, s.Deletes, s.OrphanPasses, s.OrphansFound)
	}
	tw.Flush()
	if len(lc.Plateau) == 0 {
		fmt.Fprintf(b, "  plateau   not checked: without retention the bucket and the index grow with the load\n")
	} else {
		fmt.Fprintf(b, "  plateau   over the last third of the load, each at most 1.25 x its middle third's maximum + slack (what the first third added in two intervals and a fault's stall of the jobs):\n")
	}
	for _, c := range lc.Plateau {
		if c.Note != "" {
			fmt.Fprintf(b, "            %-15s FAIL: %s\n", c.What, c.Note)
			continue
		}
		fmt.Fprintf(b, "            %-15s %s: last third max %d, bound %d (middle max %d + slack %d)\n", c.What, verdict(c.OK), c.LastMax, c.Bound, c.MiddleMax, c.Slack)
	}
	if o := lc.Orphans; o != nil {
		fmt.Fprintf(b, "  orphans   %s: %s\n", verdict(o.OK), o.Detail)
	}
	j := lc.JobsAtEnd
	fmt.Fprintf(b, "  jobs      compaction %d, delete %d, orphan passes %d (all agents, across restarts); %d failed; %d orphans found; %d objects deleted\n",
		j.Compactions, j.Deletes, j.OrphanPasses, j.Failures, j.OrphansFound, j.ObjectsDeleted)
}

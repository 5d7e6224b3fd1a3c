package loadtest

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// The kinds of fault a run injects, in the order the schedule takes them.
const (
	FaultKillAgent   = "kill-agent"   // SIGKILL an agent, restart it on the same addresses
	FaultRestartMeta = "restart-meta" // SIGKILL meta, restart it on the same --listen and --store
	FaultStoreErrors = "store-errors" // one agent's object store fails some requests, slowly
	FaultStallClient = "stall-client" // a client that sends half a request, and one that never reads
	// FaultKillJobsAgent SIGKILLs the only agent with the jobs role while
	// meta holds a job leased (lifecycle mode only, see lifecycle.go).
	FaultKillJobsAgent = "kill-jobs-agent"
)

// FaultKinds lists the fault kinds of every run ("all"), in schedule
// order. Lifecycle mode (--compaction) adds FaultKillJobsAgent to "all".
var FaultKinds = []string{FaultKillAgent, FaultRestartMeta, FaultStoreErrors, FaultStallClient}

// LifecycleFaultKinds is "all" in lifecycle mode. The jobs agent is
// killed first, so that most of the run shows jobs going on after it.
var LifecycleFaultKinds = append([]string{FaultKillJobsAgent}, FaultKinds...)

// Config is one `sluice loadtest` run. Errors from Validate name the flag
// to change.
type Config struct {
	// Binary is the sluice executable started as `sluice meta` and
	// `sluice agent` (the subcommand passes os.Executable()).
	Binary string
	// Agents is the number of agent processes.
	Agents int
	// Store is meta's --store: empty for an embedded store in the run's
	// directory, or a postgres:// URL.
	Store string
	// Bucket is the agents' --bucket: empty for a directory in the run's
	// directory. A given bucket gets a fresh prefix per run (see
	// runBucket), so a run never reads or deletes another's objects.
	Bucket string

	Duration   time.Duration
	Producers  int
	Rate       int // records per second, across all producers
	Partitions int32
	Groups     int // consumer groups, each reading the whole topic
	Members    int // consumers per group

	// Faults are the kinds to inject, round robin; empty injects none.
	Faults     []string
	FaultEvery time.Duration

	// Seed drives every random choice of the run (which agent a fault
	// hits); 0 picks one. The report prints it.
	Seed uint64
	// Keep leaves the run's directory (logs, bucket, embedded store).
	Keep bool
	// Progress receives a line every few seconds and one per fault; nil
	// stays quiet.
	Progress io.Writer
	// DrainTimeout bounds, after producing stops, the wait for in-flight
	// produces and then for every group to reach the end offsets.
	DrainTimeout time.Duration

	// Retention, when positive, is the run's topic's retention.ms; meta
	// then checks retention every Retention/6 (1s to 30s), and the
	// verifier accepts records below the final log start offset as
	// expired (see verify). Zero keeps everything, as a plain run.
	Retention time.Duration
	// Compaction, when positive, turns lifecycle mode on: agents run
	// compaction and GC every Compaction, meta's compaction and GC
	// timings are scaled to it (lifecycleTimings), only agent-0 has the
	// jobs role, and the run samples the bucket and meta to check that
	// they plateau and that every orphan is collected (lifecycle.go).
	Compaction time.Duration

	// Transactions turns transactions mode on (txn.go): the producers are
	// transactional, TxnRecords records per transaction, every
	// AbortEvery-th transaction aborted on purpose (0: none), groups
	// reading with read_committed, and the exactly-once oracle
	// (txnverify.go) checks the read_committed and read_uncommitted
	// views and the groups.
	Transactions bool
	TxnRecords   int
	AbortEvery   int
	// TxnTimeout is the producers' transaction.timeout.ms, and how long
	// a transaction's produces and its EndTxn may take before the
	// producer gives the transaction up. Shorter than a fault's
	// downtime, it makes meta's janitor abort transactions under the
	// producers' feet (they are then fenced and re-initialise).
	TxnTimeout time.Duration
}

// Defaults are the flag defaults of `sluice loadtest`.
var Defaults = Config{
	Agents:       3,
	Duration:     2 * time.Minute,
	Producers:    2,
	Rate:         2000,
	Partitions:   12, // spread over every agent, several per producer connection
	Groups:       2,
	Members:      2,
	Faults:       FaultKinds,
	FaultEvery:   15 * time.Second,
	DrainTimeout: 60 * time.Second,
	// A few records per transaction, over several partitions each, and
	// enough aborts that every run has some.
	TxnRecords: 5,
	AbortEvery: 5,
	// Long enough for a fault (an agent down 3 s, meta down 2 s) to
	// pass within one transaction.
	TxnTimeout: 20 * time.Second,
}

// Lifecycle reports whether the run is in lifecycle mode (--compaction).
func (c *Config) Lifecycle() bool { return c.Compaction > 0 }

// ParseFaults reads the --faults flag: "all", "none" or a comma-separated
// list of kinds. "all" is LifecycleFaultKinds when lifecycle is set.
func ParseFaults(s string, lifecycle bool) ([]string, error) {
	switch strings.TrimSpace(s) {
	case "all":
		if lifecycle {
			return LifecycleFaultKinds, nil
		}
		return FaultKinds, nil
	case "", "none":
		return nil, nil
	}
	var out []string
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		ok := false
		for _, known := range LifecycleFaultKinds {
			ok = ok || k == known
		}
		if !ok {
			return nil, fmt.Errorf("--faults: unknown fault %q (want all, none, or some of %s)", k, strings.Join(LifecycleFaultKinds, ","))
		}
		out = append(out, k)
	}
	return out, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Binary == "":
		return fmt.Errorf("loadtest: no sluice binary to start")
	case c.Agents < 1 || c.Agents > 32:
		return fmt.Errorf("--agents must be between 1 and 32, got %d", c.Agents)
	case c.Duration < time.Second:
		return fmt.Errorf("--duration must be at least 1s, got %s", c.Duration)
	case c.Producers < 1:
		return fmt.Errorf("--producers must be positive, got %d", c.Producers)
	case c.Rate < c.Producers:
		return fmt.Errorf("--rate must be at least one record per second per producer (%d), got %d", c.Producers, c.Rate)
	case c.Partitions < 1 || c.Partitions > 10000:
		return fmt.Errorf("--partitions must be between 1 and 10000, got %d", c.Partitions)
	case c.Groups < 0:
		return fmt.Errorf("--groups must not be negative, got %d", c.Groups)
	case c.Groups > 0 && c.Members < 1:
		return fmt.Errorf("--members must be positive, got %d", c.Members)
	case len(c.Faults) > 0 && c.FaultEvery < time.Second:
		return fmt.Errorf("--fault-every must be at least 1s, got %s", c.FaultEvery)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("loadtest: DrainTimeout must be positive")
	case strings.HasPrefix(c.Bucket, "mem:"):
		return fmt.Errorf("--bucket %q: agents are separate processes and cannot share an in-memory bucket; use a directory or s3://", c.Bucket)
	}
	switch {
	case c.Retention < 0 || (c.Retention > 0 && c.Retention < time.Second):
		return fmt.Errorf("--retention must be 0 (off) or at least 1s, got %s", c.Retention)
	case c.Compaction < 0 || (c.Compaction > 0 && c.Compaction < time.Second):
		return fmt.Errorf("--compaction must be 0 (off) or at least 1s, got %s", c.Compaction)
	}
	if c.Transactions {
		switch {
		case c.TxnRecords < 1 || c.TxnRecords > 1000:
			return fmt.Errorf("--txn-records must be between 1 and 1000, got %d", c.TxnRecords)
		case c.TxnTimeout < time.Second:
			return fmt.Errorf("--txn-timeout must be at least 1s, got %s", c.TxnTimeout)
		case c.AbortEvery < 0:
			return fmt.Errorf("--abort-every must not be negative, got %d", c.AbortEvery)
		case c.Retention > 0:
			return fmt.Errorf("--transactions does not combine with --retention: its oracle reads every offset from 0")
		case c.Rate < c.Producers*c.TxnRecords:
			return fmt.Errorf("--rate must be at least one transaction per second per producer (%d records), got %d", c.Producers*c.TxnRecords, c.Rate)
		}
	}
	for _, k := range c.Faults {
		if _, err := ParseFaults(k, true); err != nil {
			return err
		}
		if k == FaultKillJobsAgent && !c.Lifecycle() {
			return fmt.Errorf("--faults %s needs lifecycle mode: give --compaction", k)
		}
	}
	return nil
}

// lifecycleTimings are the jobs' timings of a lifecycle run, all scaled
// to --compaction (C) so that every step of an object's life happens
// several times within the run.
type lifecycleTimings struct {
	interval       time.Duration // agents' --compaction-interval and --gc-interval: C
	minAge         time.Duration // meta's --compaction-min-age: C
	maxWait        time.Duration // meta's --compaction-max-wait: 2C
	grace          time.Duration // meta's --gc-grace: max(3C, 4s), meta's floor
	orphanScan     time.Duration // meta's --orphan-scan-interval: 2C
	retentionCheck time.Duration // meta's --retention-check-interval: Retention/6 in [1s, 30s]
}

func timingsFor(c Config) lifecycleTimings {
	C := c.Compaction
	t := lifecycleTimings{interval: C, minAge: C, maxWait: 2 * C, grace: max(3*C, 4*time.Second), orphanScan: 2 * C}
	if c.Retention > 0 {
		t.retentionCheck = min(max(c.Retention/6, time.Second), 30*time.Second)
	}
	return t
}

// orphanWait is how long after the last upload the bucket must hold no
// orphan: an object uploaded just before and never committed is old
// enough to collect after the grace period; the next orphan pass, which
// meta plans at most every orphanScan and the jobs agent asks for every
// interval, deletes it. orphanDeadline adds one more pass of slack for a
// pass that a fault (or a busy machine) made fail.
func (t lifecycleTimings) orphanWait() time.Duration {
	return t.grace + t.orphanScan + t.interval
}

func (t lifecycleTimings) orphanDeadline() time.Duration {
	return t.orphanWait() + t.orphanScan + t.interval
}

// holds says how long each fault lasts, scaled down when faults come more
// often than the full lengths allow, so that one ends before the next.
type holds struct {
	agentDown time.Duration // kill-agent: from SIGKILL to restart
	metaDown  time.Duration // restart-meta: from SIGKILL to restart
	hold      time.Duration // store-errors, stall-client
}

func holdsFor(every time.Duration) holds {
	return holds{
		agentDown: min(3*time.Second, every/2),
		metaDown:  min(2*time.Second, every/3),
		hold:      min(10*time.Second, every*2/3),
	}
}

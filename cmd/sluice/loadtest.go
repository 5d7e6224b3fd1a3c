package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"sluice.dev/loadtest"
)

const loadtestUsage = `Usage:
  sluice loadtest [flags]

Starts a cluster of its own on loopback (one sluice meta, --agents sluice
agent processes, one bucket), produces with idempotent producers and
consumes with consumer groups for --duration while injecting faults, then
reads the log back and checks that every acknowledged record is there,
at its offset, once and in order, and that every group consumed it.
Exits non-zero on any loss, duplicate, gap or reordering.

Faults (--faults, one every --fault-every, round robin):
  kill-agent     SIGKILL an agent, restart it on the same addresses
  restart-meta   SIGKILL meta, restart it on the same --listen and --store
  store-errors   one agent's object store fails 30% of requests, +100ms each
  stall-client   half a request, and a client that never reads, on one agent
  kill-jobs-agent  (lifecycle mode) SIGKILL the only jobs agent while meta
                 holds a job leased, restart it, wait until it runs a job again

Lifecycle mode (--compaction, usually with --retention): agent-0 alone has
the jobs role; agents run compaction and GC every --compaction; meta gets
--compaction-min-age C, --compaction-max-wait 2C, --gc-grace max(3C, 4s),
--orphan-scan-interval 2C, and --retention-check-interval retention/6 (1s
to 30s). Records below the final log start may have expired; everything at
or above it must be there once. Every 5-10s the run prints the bucket's
objects and bytes, meta's live and dead objects and index entries, and the
job counts; with --retention it fails unless these plateau over the last
third of the load; it fails unless the bucket holds no orphan once
producing stopped.

Transactions mode (--transactions): each producer is transactional (its
own transactional id) and writes transactions of --txn-records records
over random partitions, committing them and aborting every --abort-every-th
on purpose; on any error it gives its client up and starts a new one (a
new epoch fences the old). At the end every transactional id is fenced,
and the log is read from offset 0 with read_committed and with
read_uncommitted: every committed transaction's records are visible
exactly once, no aborted one is, a transaction whose EndTxn(commit)
returned an error is visible wholly or not at all, and read_uncommitted
holds every acknowledged record at its offset, offsets dense across data
and markers. The consumer groups read with read_committed while the
transactions run, and must receive exactly what that final read shows.
It combines with --compaction (not --retention: the read starts at 0).

`

// runLoadtest parses flags into a loadtest.Config and runs it; the
// harness is in package loadtest.
func runLoadtest(args []string) error {
	d := loadtest.Defaults
	fs := newFlagSet("loadtest", loadtestUsage)
	agents := fs.Int("agents", d.Agents, "agent processes")
	store := fs.String("store", "", "meta's store: empty for an embedded store in the run's directory, or a postgres:// URL")
	bucket := fs.String("bucket", "", "the agents' bucket: empty for a directory in the run's directory, or file:///path or s3://bucket/prefix?region=R (the run writes under a fresh sub-prefix of its own)")
	duration := fs.Duration("duration", d.Duration, "how long producers run (a fault in progress at the end runs to its end)")
	producers := fs.Int("producers", d.Producers, "idempotent producer clients")
	rate := fs.Int("rate", d.Rate, "records per second across all producers")
	partitions := fs.Int("partitions", int(d.Partitions), "partitions of the run's topic")
	groups := fs.Int("groups", d.Groups, "consumer groups, each reading the whole topic")
	members := fs.Int("members", d.Members, "consumers per group")
	faults := fs.String("faults", "all", "faults to inject, round robin: all, none, or a comma-separated list of "+strings.Join(loadtest.FaultKinds, ","))
	faultEvery := fs.Duration("fault-every", d.FaultEvery, "time between the starts of two faults")
	seed := fs.Uint64("seed", 0, "seed of every random choice (which agent a fault hits); 0 picks one, the report prints it")
	keep := fs.Bool("keep", false, "keep the run's directory: every process's log, the embedded store and the bucket")
	jsonOut := fs.Bool("json", false, "print one JSON line on stdout instead of the report")
	retention := fs.Duration("retention", 0, "retention.ms of the run's topic; 0 keeps everything (records below the final log start may then be missing from the read back and the groups)")
	transactions := fs.Bool("transactions", false, "transactions mode: transactional producers, --txn-records records per transaction, every --abort-every-th aborted on purpose, read_committed groups; checks exactly-once with read_committed")
	txnRecords := fs.Int("txn-records", d.TxnRecords, "records per transaction (--transactions)")
	abortEvery := fs.Int("abort-every", d.AbortEvery, "abort every n-th transaction on purpose (--transactions); 0 never")
	txnTimeout := fs.Duration("txn-timeout", d.TxnTimeout, "transaction.timeout.ms of the producers (--transactions), and how long a transaction may take before the producer gives it up; shorter than a fault makes meta abort transactions under the producers")
	compaction := fs.Duration("compaction", 0, "lifecycle mode: agents' --compaction-interval and --gc-interval, meta's compaction and GC timings scaled to it, one jobs agent, plateau and orphan checks; 0 is off")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	kinds, err := loadtest.ParseFaults(*faults, *compaction > 0)
	if err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("loadtest: find the sluice binary to start: %w", err)
	}
	cfg := d
	cfg.Binary, cfg.Agents, cfg.Store, cfg.Bucket = bin, *agents, *store, *bucket
	cfg.Duration, cfg.Producers, cfg.Rate, cfg.Partitions = *duration, *producers, *rate, int32(*partitions)
	cfg.Groups, cfg.Members, cfg.Faults, cfg.FaultEvery = *groups, *members, kinds, *faultEvery
	cfg.Seed, cfg.Keep, cfg.Progress = *seed, *keep, os.Stderr
	cfg.Retention, cfg.Compaction = *retention, *compaction
	cfg.Transactions, cfg.TxnRecords, cfg.AbortEvery, cfg.TxnTimeout = *transactions, *txnRecords, *abortEvery, *txnTimeout
	if err := cfg.Validate(); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.Run(ctx, cfg)
	if rep != nil {
		var werr error
		if *jsonOut {
			werr = rep.WriteJSON(os.Stdout)
		} else {
			werr = rep.WriteText(os.Stdout)
		}
		if werr != nil && err == nil {
			err = werr
		}
	}
	return err
}

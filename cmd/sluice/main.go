// Command sluice is the single Sluice binary: playground, agent, meta and
// the bundled harnesses. It parses flags and environment and wires the
// packages together; it holds no logic of its own.
package main

import (
	"fmt"
	"os"
)

const usage = `sluice: Kafka-compatible streaming on object storage, with zero local disks.

Usage:
  sluice playground [flags]   control plane + agent in one process (try it: make run)
  sluice meta [flags]         the control plane service (and: sluice meta keys create|list|revoke)
  sluice agent [flags]        a stateless agent connecting to a running meta
  sluice bench MODE [flags]   measure any Kafka cluster: produce, consume or e2e
  sluice loadtest [flags]     a cluster of its own under load and faults: proves nothing acknowledged is lost
  sluice version [flags]      version, commit and Go version of this binary

Admin CLI (any Kafka cluster; --brokers, default 127.0.0.1:9092 or $SLUICE_BROKERS):
  sluice topic list|create|describe|alter-config|delete|add-partitions
  sluice group list|describe|lag|reset-offsets|delete
  sluice produce TOPIC < lines
  sluice consume TOPIC [-n N] [-o START] [--group G]
  sluice cluster info

Run "sluice COMMAND --help" for a command's flags.
`

// version and commit are set at link time (make build: -ldflags "-X
// main.version=... -X main.commit=..."); `sluice version` falls back to
// Go's build info (issue 16, cli).
var version, commit = "dev", ""

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "playground":
		err = runPlayground(os.Args[2:])
	case "meta":
		err = runMeta(os.Args[2:])
	case "agent":
		err = runAgent(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	case "loadtest":
		err = runLoadtest(os.Args[2:])
	case "version", "--version", "-v":
		err = runVersion(os.Args[2:]) // issue 16, cli
	// Admin CLI (issue 16, cli): package ctl.
	case "topic", "group", "produce", "consume", "cluster":
		err = runAdmin(os.Args[1:])
	case "help", "--help", "-h":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sluice: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sluice:", err)
		os.Exit(1)
	}
}

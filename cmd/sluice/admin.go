package main

// The admin CLI (issue 16, cli): sluice topic|group|produce|consume|cluster
// and sluice version. The commands live in package ctl; this routes to it.

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"sluice.dev/ctl"
)

// runAdmin runs an admin command; args[0] is one of ctl.Roots. Ctrl-C
// ends it (a consume then exits cleanly, committing what it printed).
func runAdmin(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return ctl.Run(ctx, args, ctl.IO{In: os.Stdin, Out: os.Stdout, Err: helpOut})
}

func runVersion(args []string) error {
	return ctl.Version(args, ctl.IO{Out: os.Stdout, Err: helpOut}, version, commit)
}

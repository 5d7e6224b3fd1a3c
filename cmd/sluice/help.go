package main

// The --help of every subcommand (issue 16, cli): one shape, every flag
// with its default (internal/flagusage).

import (
	"flag"
	"io"
	"os"

	"sluice.dev/internal/flagusage"
)

// helpOut is where flag sets print help and parse errors; tests capture it.
var helpOut io.Writer = os.Stderr

// onFlagSet, when set (by tests), sees every flag set a subcommand makes.
var onFlagSet func(*flag.FlagSet)

// newFlagSet makes a subcommand's flag set: parse errors are returned, not
// fatal, and --help prints synopsis and every flag with its default.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(helpOut)
	flagusage.Set(fs, synopsis)
	if onFlagSet != nil {
		onFlagSet(fs)
	}
	return fs
}

package ctl

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"sluice.dev/internal/flagusage"
)

// BuildInfo is what `sluice version` prints.
type BuildInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit"`                // "unknown" outside a VCS build
	CommitTime string `json:"commit_time,omitempty"` // RFC 3339
	Modified   bool   `json:"modified"`              // built from a tree with uncommitted changes
	GoVersion  string `json:"go_version"`
	Platform   string `json:"platform"`
}

// Build reads the binary's build information. linked and linkedCommit
// are the version and commit set at link time (-ldflags "-X
// main.version=... -X main.commit=..."); "dev" or "" means none, and then
// the module version Go stamped (a tag, or a pseudo-version from the
// commit) is used when there is one. Go's VCS stamp wins for the commit.
func Build(linked, linkedCommit string) BuildInfo {
	b := BuildInfo{Version: linked, Commit: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if linkedCommit != "" {
		b.Commit = linkedCommit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if (b.Version == "" || b.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.CommitTime = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Version runs `sluice version [--format table|json]`.
func Version(args []string, s IO, linked, linkedCommit string) error {
	fs := flag.NewFlagSet("sluice version", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	flagusage.Set(fs, "sluice version [flags]")
	format := fs.String("format", "table", "output: table (for people) or json (for scripts)")
	if onFlagSet != nil {
		onFlagSet(fs)
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version: unexpected argument %q", fs.Arg(0))
	}
	b := Build(linked, linkedCommit)
	switch *format {
	case "json":
		return writeJSON(s.Out, b)
	case "table":
	default:
		return fmt.Errorf("--format must be table or json, got %q", *format)
	}
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	if b.CommitTime != "" {
		commit += " " + b.CommitTime
	}
	_, err := fmt.Fprintf(s.Out, "sluice %s\ncommit %s\ngo     %s %s\n", b.Version, commit, b.GoVersion, b.Platform)
	return err
}

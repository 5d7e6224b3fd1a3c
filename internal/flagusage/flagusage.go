// Package flagusage prints the --help of every sluice subcommand in one
// shape: a synopsis, then every flag with its type, its description and its
// default. The standard library's PrintDefaults leaves out defaults that are
// zero values ("", 0, false), so a reader cannot tell "off" from "not
// documented"; here every flag states its default, always.
package flagusage

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Set makes fs print Print's help on -h/--help and on a parse error.
// synopsis is the usage line(s) shown above the flags, e.g.
// "sluice topic create NAME [flags]", or a whole preamble starting with
// "Usage:", printed as it is.
func Set(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() { Print(fs.Output(), fs, synopsis) }
}

// Print writes the synopsis and every flag of fs, sorted by name, each as
//
//	--name type
//	    description (default value)
//
// Every flag line carries "(default ...)": strings and flags without a
// typed default are quoted, so an empty default shows as "".
func Print(w io.Writer, fs *flag.FlagSet, synopsis string) {
	var b strings.Builder
	if strings.HasPrefix(synopsis, "Usage:") {
		b.WriteString(strings.TrimRight(synopsis, "\n"))
	} else {
		b.WriteString("Usage:\n  ")
		b.WriteString(strings.ReplaceAll(strings.TrimRight(synopsis, "\n"), "\n", "\n  "))
	}
	b.WriteString("\n")
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nFlags:\n")
	}
	fs.VisitAll(func(f *flag.Flag) {
		b.WriteString(Line(f))
	})
	_, _ = io.WriteString(w, b.String())
}

// Line is the help entry of one flag (two lines, newline-terminated).
func Line(f *flag.Flag) string {
	typ, usage := flag.UnquoteUsage(f)
	dash := "--"
	if len(f.Name) == 1 {
		dash = "-" // kcat-style short flags (-n, -o) read as themselves
	}
	head := "  " + dash + f.Name
	if typ != "" && !isBool(f) {
		head += " " + typ
	}
	return fmt.Sprintf("%s\n      %s (default %s)\n", head, usage, Default(f))
}

// Default renders f's default as Line shows it.
func Default(f *flag.Flag) string {
	typ, _ := flag.UnquoteUsage(f)
	if isBool(f) || (f.DefValue != "" && typ != "string" && typ != "value") {
		return f.DefValue
	}
	return fmt.Sprintf("%q", f.DefValue)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

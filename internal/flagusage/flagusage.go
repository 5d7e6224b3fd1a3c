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
// Every flag states its default: "(default ...)" at the end, strings and
// flags without a typed default in double quotes (as typed in a shell, so
// an empty default shows as ""). A flag whose default is empty and whose
// description already says what the default is ("default: the bound
// --kafka-addr", "default $SLUICE_AGENT_KEY") keeps those words alone.
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
	if f.DefValue == "" && SaysDefault(usage) {
		return fmt.Sprintf("%s\n      %s\n", head, usage)
	}
	return fmt.Sprintf("%s\n      %s (default %s)\n", head, usage, Default(f))
}

// SaysDefault reports whether a description states a default in words.
func SaysDefault(usage string) bool {
	return strings.Contains(usage, "default")
}

// Default renders f's default as Line shows it.
func Default(f *flag.Flag) string {
	typ, _ := flag.UnquoteUsage(f)
	if isBool(f) || (f.DefValue != "" && typ != "string" && typ != "value") {
		return f.DefValue
	}
	return `"` + f.DefValue + `"`
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

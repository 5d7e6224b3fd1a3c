package flagusage

import (
	"flag"
	"fmt"
	"strings"
)

// Check verifies that help (the output of a --help) lists every flag of
// fs with its default, as Print writes it: a "--name" (or "-n") line, then
// a line ending in "(default <value>)". It is for tests of every
// subcommand; it reads the text, not Print's code, so a flag set whose
// Usage was left at the standard library's (which omits zero defaults)
// fails it.
func Check(help string, fs *flag.FlagSet) error {
	lines := strings.Split(help, "\n")
	var errs []string
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		found := false
		for i, l := range lines {
			if l != "  "+dash+f.Name && !strings.HasPrefix(l, "  "+dash+f.Name+" ") {
				continue
			}
			found = true
			// Strings are quoted, numbers, durations and bools are not;
			// either way the default itself must be there, even "",
			// unless the description says in words what an empty
			// default means.
			plain, quoted := "(default "+f.DefValue+")", `(default "`+f.DefValue+`")`
			desc := ""
			if i+1 < len(lines) {
				desc = lines[i+1]
			}
			ok := strings.HasSuffix(desc, quoted) || (f.DefValue != "" && strings.HasSuffix(desc, plain)) ||
				(f.DefValue == "" && SaysDefault(desc))
			if !ok {
				errs = append(errs, fmt.Sprintf("%s%s: description does not end in %s", dash, f.Name, quoted))
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s%s is not listed", dash, f.Name))
		}
	})
	if n == 0 && strings.Contains(help, "Flags:") {
		errs = append(errs, "a Flags: section without flags")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Byte-count flags (--cache-bytes and the other sizes) take a whole
// number of bytes, plain as Kafka's settings are, or with a unit:
// "536870912", "512MiB" and "512 MiB" (as the README's tables write
// defaults) are the same; "0.5GiB" is refused.

// byteUnits are the accepted units, matched case-insensitively: binary
// (KiB = 1024) and decimal (KB = 1000). The binary ones come first:
// formatBytes writes those.
var byteUnits = []struct {
	label string
	mult  int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

const byteSyntax = "an integer number of bytes, optionally with a unit: KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB"

// parseBytes reads a byte count.
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if len(t) > len(u.label) && strings.EqualFold(t[len(t)-len(u.label):], u.label) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.label)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", s, byteSyntax)
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

// formatBytes writes n in the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range byteUnits[:4] {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.label
		}
	}
	return strconv.FormatInt(n, 10)
}

// bytesValue is a flag.Value over an int or int64 byte count.
type bytesValue[T int | int64] struct{ p *T }

func (v bytesValue[T]) String() string {
	if v.p == nil {
		return "0"
	}
	return formatBytes(int64(*v.p))
}

func (v bytesValue[T]) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	if int64(T(n)) != n {
		return fmt.Errorf("%q is too large", s)
	}
	*v.p = T(n)
	return nil
}

// bytesVar defines a byte-count flag: like fs.Int64Var, but also taking
// units (parseBytes). Help shows its type as "bytes".
func bytesVar[T int | int64](fs *flag.FlagSet, p *T, name string, def T, usage string) {
	*p = def
	// The first back-quoted word names the flag's type in help.
	if i := strings.Index(usage, "bytes"); i >= 0 {
		usage = usage[:i] + "`bytes`" + usage[i+len("bytes"):]
	} else {
		usage += "; `bytes`"
	}
	fs.Var(bytesValue[T]{p}, name, usage+" (plain, or with a unit: 64MiB, 2GiB, 1GB)")
}

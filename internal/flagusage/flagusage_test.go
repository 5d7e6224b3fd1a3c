package flagusage

import (
	"bytes"
	"flag"
	"strings"
	"testing"
	"time"
)

func sample() *flag.FlagSet {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("name", "", "a `NAME`")
	fs.String("addr", "127.0.0.1:9092", "where")
	fs.Int("n", 0, "count")
	fs.Bool("dry-run", false, "only look")
	fs.Bool("on", true, "on by default")
	fs.Duration("timeout", 10*time.Second, "how long")
	fs.Func("config", "k=v, repeatable", func(string) error { return nil })
	return fs
}

func TestPrintListsEveryDefault(t *testing.T) {
	fs := sample()
	var b bytes.Buffer
	Print(&b, fs, "sluice x [flags]")
	want := `Usage:
  sluice x [flags]

Flags:
  --addr string
      where (default "127.0.0.1:9092")
  --config value
      k=v, repeatable (default "")
  --dry-run
      only look (default false)
  -n int
      count (default 0)
  --name NAME
      a NAME (default "")
  --on
      on by default (default true)
  --timeout duration
      how long (default 10s)
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if err := Check(b.String(), fs); err != nil {
		t.Errorf("Check of Print's output: %v", err)
	}
}

// The standard library's help leaves out zero defaults; Check catches it.
func TestCheckCatchesStandardHelp(t *testing.T) {
	fs := sample()
	var b bytes.Buffer
	fs.SetOutput(&b)
	fs.PrintDefaults()
	err := Check(b.String(), fs)
	if err == nil {
		t.Fatal("Check passed the standard library's help, which omits zero defaults")
	}
	for _, f := range []string{"--dry-run", "--name"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("Check's error %q does not name %s", err, f)
		}
	}
}

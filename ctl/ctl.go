// Package ctl is Sluice's admin CLI, in the spirit of Redpanda's rpk:
// sluice topic|group|produce|consume|cluster. It speaks only the Kafka
// protocol (franz-go's kgo and kadm), so it works against any agent and
// against any Kafka cluster.
//
// The command tree, its flags and its output formats are what this package
// offers, so it parses its own flags: cmd/sluice routes the arguments here
// and gives it stdin, stdout, stderr and the environment. That also lets
// tests run every command in-process against a real cluster.
//
// Every command takes the connection flags (--brokers, TLS, SASL),
// --format table|json and --timeout. Tables are for people (aligned
// columns, stable row order); JSON is for scripts (one document, or one
// object per line for produce and consume). Errors say what went wrong in
// plain words, keep the Kafka error name in parentheses, and name the flag
// or the command that helps.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"sluice.dev/internal/flagusage"
)

// IO is what a command reads and writes: stdin (produce), stdout
// (results), stderr (help, progress), and the environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	Getenv   func(string) string // os.Getenv when nil
}

func (s IO) getenv(k string) string {
	if s.Getenv == nil {
		return os.Getenv(k)
	}
	return s.Getenv(k)
}

// command is one leaf of the tree: "topic create", "produce".
type command struct {
	path     string // words after "sluice"
	synopsis string // usage line after "sluice "
	summary  string // one line for the group's usage
	run      func(ctx context.Context, e *env, args []string) error
}

// commands is the whole tree, in the order the usage lists it.
var commands = []command{
	{path: "topic list", synopsis: "topic list [flags]", summary: "topics with their partition counts", run: topicList},
	{path: "topic create", synopsis: "topic create NAME... [--partitions N] [--config k=v]... [flags]", summary: "create topics", run: topicCreate},
	{path: "topic describe", synopsis: "topic describe NAME... [flags]", summary: "a topic's partitions, offsets and configs", run: topicDescribe},
	{path: "topic alter-config", synopsis: "topic alter-config NAME... [--set k=v]... [--delete k]... [flags]", summary: "set or delete topic configs", run: topicAlterConfig},
	{path: "topic delete", synopsis: "topic delete NAME... [flags]", summary: "delete topics", run: topicDelete},
	{path: "topic add-partitions", synopsis: "topic add-partitions NAME... --num N [flags]", summary: "add partitions to topics", run: topicAddPartitions},
	{path: "group list", synopsis: "group list [flags]", summary: "consumer groups with their states", run: groupList},
	{path: "group describe", synopsis: "group describe NAME... [flags]", summary: "a group's state, members and lag per partition", run: groupDescribe},
	{path: "group lag", synopsis: "group lag NAME... [flags]", summary: "a group's committed offsets, end offsets and lag", run: groupLag},
	{path: "group reset-offsets", synopsis: "group reset-offsets NAME --to earliest|latest|timestamp:T|offset:N [--topic T[:P,P...]]... [--dry-run] [flags]", summary: "move an idle group's committed offsets", run: groupResetOffsets},
	{path: "group delete", synopsis: "group delete NAME... [flags]", summary: "delete idle groups and their offsets", run: groupDelete},
	{path: "produce", synopsis: "produce TOPIC [flags] < lines", summary: "produce one record per stdin line", run: produce},
	{path: "consume", synopsis: "consume TOPIC... [flags]", summary: "print records, kcat-style (-f) or as JSON lines", run: consume},
	{path: "cluster info", synopsis: "cluster info [flags]", summary: "cluster id, controller, brokers, topic counts", run: clusterInfo},
}

// Roots are the first words of the admin commands: cmd/sluice routes
// these to Run.
var Roots = []string{"topic", "group", "produce", "consume", "cluster"}

// Paths lists every admin command ("topic create", "produce", ...), for
// the test that walks every --help.
func Paths() []string {
	out := make([]string, len(commands))
	for i, c := range commands {
		out[i] = c.path
	}
	return out
}

// Run runs the admin command args names (args[0] is one of Roots). A
// request for help prints it on s.Err and returns nil.
func Run(ctx context.Context, args []string, s IO) error {
	if len(args) == 0 {
		return errors.New("name a command: " + strings.Join(Roots, ", "))
	}
	root := args[0]
	var subs []command
	for _, c := range commands {
		if c.path == root {
			return runCommand(ctx, c, args[1:], s)
		}
		if strings.HasPrefix(c.path, root+" ") {
			subs = append(subs, c)
		}
	}
	if len(subs) == 0 {
		return fmt.Errorf("unknown command %q", root)
	}
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		for _, c := range subs {
			if c.path == root+" "+args[1] {
				return runCommand(ctx, c, args[2:], s)
			}
		}
		groupUsage(s.Err, root, subs)
		return fmt.Errorf("%s: unknown subcommand %q", root, args[1])
	}
	groupUsage(s.Err, root, subs)
	if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "-help") {
		return nil
	}
	return fmt.Errorf("%s: name a subcommand", root)
}

func groupUsage(w io.Writer, root string, subs []command) {
	fmt.Fprintf(w, "Usage:\n")
	width := 0
	for _, c := range subs {
		width = max(width, len(c.path))
	}
	for _, c := range subs {
		fmt.Fprintf(w, "  sluice %-*s  %s\n", width, c.path, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"sluice %s SUBCOMMAND --help\" for its flags.\n", root)
}

// onFlagSet, when set (by tests), sees every flag set a command makes.
var onFlagSet func(*flag.FlagSet)

// env is what a running command has: its flags, its IO, and the clients
// it opened (closed by runCommand).
type env struct {
	IO
	cmd     command
	conn    connFlags
	closers []func()
}

func runCommand(ctx context.Context, c command, args []string, s IO) error {
	e := &env{IO: s, cmd: c}
	defer func() {
		for i := len(e.closers) - 1; i >= 0; i-- {
			e.closers[i]()
		}
	}()
	if err := c.run(ctx, e, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%s: %w", c.path, err)
	}
	return nil
}

// flags makes the flag set of command path with the connection flags
// registered on it; the command adds its own before calling parse.
func (e *env) flags(path string) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+path, flag.ContinueOnError)
	fs.SetOutput(e.Err)
	flagusage.Set(fs, "sluice "+e.cmd.synopsis)
	e.conn.register(fs, e.getenv)
	if onFlagSet != nil {
		onFlagSet(fs)
	}
	return fs
}

// parse parses args, flags and positional arguments in any order
// (`topic create NAME --partitions 3` as well as `--partitions 3 NAME`);
// after "--" everything is positional. It checks the connection flags
// and that the positional count is within [min, max] (max < 0: no limit),
// naming what is missing.
func (e *env) parse(fs *flag.FlagSet, args []string, what string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if err := e.conn.validate(); err != nil {
		return nil, err
	}
	switch {
	case len(pos) < min:
		return nil, fmt.Errorf("name %s (see --help)", what)
	case max == 0 && len(pos) > 0:
		return nil, fmt.Errorf("unexpected argument %q: this command takes only flags (see --help)", pos[0])
	case max >= 0 && len(pos) > max:
		return nil, fmt.Errorf("unexpected argument %q: name only %s", pos[max], what)
	}
	return pos, nil
}

// kv is a repeatable name=value flag (--config, --set, -H).
type kv struct {
	order []string // names in the order given
	vals  map[string]string
}

func (k *kv) String() string {
	if k == nil {
		return ""
	}
	parts := make([]string, 0, len(k.order))
	for _, n := range k.order {
		parts = append(parts, n+"="+k.vals[n])
	}
	return strings.Join(parts, ",")
}

func (k *kv) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	if k.vals == nil {
		k.vals = map[string]string{}
	}
	if _, dup := k.vals[name]; !dup {
		k.order = append(k.order, name)
	}
	k.vals[name] = value
	return nil
}

// list is a repeatable string flag (--delete, --topic).
type list []string

func (l *list) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *list) Set(s string) error {
	if s == "" {
		return errors.New("empty value")
	}
	*l = append(*l, s)
	return nil
}

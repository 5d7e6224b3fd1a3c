package main

// sluice meta users set|list|delete (SASL, issue 14): SCRAM users of a
// virtual cluster, through the Admin service like `sluice meta keys`.
// The password is read from standard input (or SLUICE_USER_PASSWORD),
// never from a flag where ps would show it, and is turned into SCRAM
// credentials here: meta never receives it.

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"sluice.dev/meta"
)

func runMetaUsers(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, metaUsage)
		return errors.New("sluice meta users: name an action: set, list or delete")
	}
	action := args[0]
	fs := newFlagSet("meta users "+action, "sluice meta users "+action+" --meta-addr ADDR --cluster NAME [--user USER] [flags]")
	af := registerAdminFlags(fs)
	cluster := fs.String("cluster", "", "virtual cluster name")
	user := fs.String("user", "", "user name")
	mechanism := fs.String("mechanism", "", "SCRAM-SHA-256 or SCRAM-SHA-512 (set and delete: default both)")
	iterations := fs.Int("iterations", scramIterations, "SCRAM iteration count, 4096 to 16384 (set)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if *cluster == "" {
		return fmt.Errorf("sluice meta users %s: --cluster is required", action)
	}
	mechs := bothScram
	switch strings.ToUpper(*mechanism) {
	case "":
	case "SCRAM-SHA-256":
		mechs = []meta.ScramMechanism{meta.ScramSHA256}
	case "SCRAM-SHA-512":
		mechs = []meta.ScramMechanism{meta.ScramSHA512}
	default:
		return fmt.Errorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", *mechanism)
	}
	ac, err := af.dial()
	if err != nil {
		return err
	}
	defer ac.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	alter := func(ctx context.Context, ups []meta.ScramCredential, dels []meta.ScramDeletion) ([]error, error) {
		return ac.AlterUsers(ctx, *cluster, ups, dels)
	}
	switch action {
	case "set":
		if *user == "" {
			return errors.New("sluice meta users set: --user is required")
		}
		password, err := readPassword(os.Stdin)
		if err != nil {
			return err
		}
		if err := setUser(ctx, alter, *user, password, mechs, *iterations); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "user %s of cluster %s set\n", *user, *cluster)
		return nil
	case "list":
		us, err := ac.DescribeUsers(ctx, *cluster, nil)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
		for _, u := range us {
			for _, c := range u.Creds {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", u.User, c.Mechanism, c.Iterations)
			}
		}
		return tw.Flush()
	case "delete":
		if *user == "" {
			return errors.New("sluice meta users delete: --user is required")
		}
		var dels []meta.ScramDeletion
		for _, m := range mechs {
			dels = append(dels, meta.ScramDeletion{User: *user, Mechanism: m})
		}
		errs, err := alter(ctx, nil, dels)
		if err != nil {
			return err
		}
		deleted := 0
		for i, e := range errs {
			switch {
			case e == nil:
				deleted++
			case !errors.Is(e, meta.ErrScramUserNotFound) || *mechanism != "":
				return fmt.Errorf("user %s, %s: %w", *user, mechs[i], e)
			}
		}
		if deleted == 0 {
			return fmt.Errorf("user %s of cluster %s: %w", *user, *cluster, meta.ErrScramUserNotFound)
		}
		fmt.Fprintf(os.Stderr, "user %s of cluster %s deleted\n", *user, *cluster)
		return nil
	default:
		fmt.Fprint(os.Stderr, metaUsage)
		return fmt.Errorf("sluice meta users: unknown action %q", action)
	}
}

// readPassword takes SLUICE_USER_PASSWORD, or the first line of r.
func readPassword(r io.Reader) (string, error) {
	if p := os.Getenv("SLUICE_USER_PASSWORD"); p != "" {
		return p, nil
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from standard input: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password: give it on standard input or in SLUICE_USER_PASSWORD")
	}
	return line, nil
}

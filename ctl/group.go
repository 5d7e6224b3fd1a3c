package ctl

// sluice group list|describe|lag|reset-offsets|delete.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func groupList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group list")
	if _, err := e.parse(fs, args, "", 0, 0); err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	gs, err := adm.ListGroups(rctx)
	if err != nil {
		return explain(err, subject{}, "")
	}
	type groupJSON struct {
		Name         string `json:"name"`
		State        string `json:"state"`
		ProtocolType string `json:"protocol_type"`
		Coordinator  int32  `json:"coordinator"`
	}
	out := []groupJSON{}
	for _, g := range gs.Sorted() {
		out = append(out, groupJSON{Name: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
	}
	if e.json() {
		return writeJSON(e.Out, out)
	}
	t := newTable(e.Out, "GROUP", "STATE", "PROTOCOL-TYPE")
	for _, g := range out {
		t.row(g.Name, g.State, g.ProtocolType)
	}
	return t.flush()
}

type memberJSON struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	Host       string   `json:"host"`
	Assigned   []string `json:"assigned"` // "topic:0,1,2"
}

type lagJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed_offset"` // -1: no commit
	LogStart  int64  `json:"log_start_offset"`
	End       int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

type groupDescJSON struct {
	Name         string       `json:"name"`
	State        string       `json:"state"`
	ProtocolType string       `json:"protocol_type"`
	Protocol     string       `json:"protocol"`
	Coordinator  int32        `json:"coordinator"`
	Members      []memberJSON `json:"members"`
	TotalLag     int64        `json:"total_lag"`
	Lag          []lagJSON    `json:"partitions"`
}

// describeGroups gathers state, members and lag of each group; a group
// the cluster does not know (Dead, nothing committed) is an error.
func describeGroups(ctx context.Context, e *env, names []string) ([]groupDescJSON, error) {
	adm, err := e.admin(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	lags, err := adm.Lag(rctx, names...)
	if err != nil {
		return nil, explain(err, subject{}, "")
	}
	var out []groupDescJSON
	for _, n := range names {
		l, ok := lags[n]
		if !ok {
			return nil, explain(kerr.GroupIDNotFound, groupSubject(n), "")
		}
		if l.DescribeErr != nil {
			return nil, explain(l.DescribeErr, groupSubject(n), "")
		}
		if l.FetchErr != nil {
			return nil, explain(l.FetchErr, groupSubject(n), "")
		}
		if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
			return nil, explain(kerr.GroupIDNotFound, groupSubject(n), "")
		}
		g := groupDescJSON{Name: n, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
			Coordinator: l.Coordinator.NodeID, Members: []memberJSON{}, Lag: []lagJSON{}}
		for _, m := range l.Members {
			mj := memberJSON{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []string{}}
			if m.InstanceID != nil {
				mj.InstanceID = *m.InstanceID
			}
			if ca, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range ca.Topics {
					ps := append([]int32(nil), t.Partitions...)
					sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
					mj.Assigned = append(mj.Assigned, t.Topic+":"+joinInt32(ps))
				}
				sort.Strings(mj.Assigned)
			}
			g.Members = append(g.Members, mj)
		}
		g.TotalLag = l.Lag.Total()
		for _, ml := range l.Lag.Sorted() {
			lj := lagJSON{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, LogStart: ml.Start.Offset, End: ml.End.Offset, Lag: ml.Lag}
			if ml.Member != nil {
				lj.MemberID, lj.ClientID = ml.Member.MemberID, ml.Member.ClientID
			}
			if ml.Err != nil {
				lj.Error = ml.Err.Error()
			}
			g.Lag = append(g.Lag, lj)
		}
		out = append(out, g)
	}
	return out, nil
}

func joinInt32(ps []int32) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

func groupDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group describe")
	names, err := e.parse(fs, args, "the group to describe", 1, -1)
	if err != nil {
		return err
	}
	gs, err := describeGroups(ctx, e, names)
	if err != nil {
		return err
	}
	if e.json() {
		if len(gs) == 1 {
			return writeJSON(e.Out, gs[0])
		}
		return writeJSON(e.Out, gs)
	}
	for i, g := range gs {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		t := newTable(e.Out)
		t.row("GROUP", g.Name)
		t.row("STATE", g.State)
		t.row("PROTOCOL-TYPE", g.ProtocolType)
		t.row("PROTOCOL", g.Protocol)
		t.row("MEMBERS", len(g.Members))
		t.row("TOTAL-LAG", g.TotalLag)
		if err := t.flush(); err != nil {
			return err
		}
		if len(g.Members) > 0 {
			fmt.Fprintln(e.Out)
			t = newTable(e.Out, "MEMBER-ID", "CLIENT-ID", "HOST", "ASSIGNED")
			for _, m := range g.Members {
				t.row(m.MemberID, m.ClientID, m.Host, strings.Join(m.Assigned, " "))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		fmt.Fprintln(e.Out)
		if err := printLag(e, g.Lag, true); err != nil {
			return err
		}
	}
	return nil
}

// printLag prints the per-partition table of a group's lag.
func printLag(e *env, rows []lagJSON, withMember bool) error {
	header := []string{"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG"}
	if withMember {
		header = append(header, "MEMBER-ID", "CLIENT-ID")
	}
	t := newTable(e.Out, header...)
	for _, r := range rows {
		committed := strconv.FormatInt(r.Committed, 10)
		if r.Committed < 0 {
			committed = "-"
		}
		cells := []any{r.Topic, r.Partition, committed, r.End, r.Lag}
		if withMember {
			cells = append(cells, r.MemberID, r.ClientID)
		}
		t.row(cells...)
	}
	return t.flush()
}

func groupLag(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group lag")
	names, err := e.parse(fs, args, "the group", 1, -1)
	if err != nil {
		return err
	}
	gs, err := describeGroups(ctx, e, names)
	if err != nil {
		return err
	}
	if e.json() {
		type lagDoc struct {
			Name     string    `json:"name"`
			State    string    `json:"state"`
			TotalLag int64     `json:"total_lag"`
			Lag      []lagJSON `json:"partitions"`
		}
		var docs []lagDoc
		for _, g := range gs {
			docs = append(docs, lagDoc{Name: g.Name, State: g.State, TotalLag: g.TotalLag, Lag: g.Lag})
		}
		if len(docs) == 1 {
			return writeJSON(e.Out, docs[0])
		}
		return writeJSON(e.Out, docs)
	}
	for i, g := range gs {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		if len(gs) > 1 {
			fmt.Fprintf(e.Out, "GROUP %s\n", g.Name)
		}
		if err := printLag(e, g.Lag, false); err != nil {
			return err
		}
		fmt.Fprintf(e.Out, "TOTAL LAG %d\n", g.TotalLag)
	}
	return nil
}

func groupDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group delete")
	names, err := e.parse(fs, args, "the group to delete", 1, -1)
	if err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	resps, err := adm.DeleteGroups(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	return printStatus(e, "GROUP", "deleted", resps.Sorted(), func(r kadm.DeleteGroupResponse) (string, error) {
		return r.Group, explain(r.Err, groupSubject(r.Group), r.ErrMessage)
	})
}

// resetTarget is where --to moves offsets.
type resetTarget struct {
	kind  string // earliest, latest, timestamp, offset
	milli int64  // timestamp
	at    int64  // offset
}

func parseResetTarget(s string) (resetTarget, error) {
	bad := fmt.Errorf("--to must be earliest, latest, timestamp:T (T in Unix milliseconds or RFC 3339) or offset:N, got %q", s)
	switch s {
	case "earliest", "beginning", "start":
		return resetTarget{kind: "earliest"}, nil
	case "latest", "end":
		return resetTarget{kind: "latest"}, nil
	}
	kind, v, ok := strings.Cut(s, ":")
	if !ok {
		return resetTarget{}, bad
	}
	switch kind {
	case "timestamp":
		ms, err := parseMillis(v)
		if err != nil {
			return resetTarget{}, fmt.Errorf("--to timestamp:%s: %w", v, err)
		}
		return resetTarget{kind: "timestamp", milli: ms}, nil
	case "offset":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return resetTarget{}, fmt.Errorf("--to offset:%s: want a non-negative offset", v)
		}
		return resetTarget{kind: "offset", at: n}, nil
	}
	return resetTarget{}, bad
}

// parseMillis reads Unix milliseconds or an RFC 3339 time.
func parseMillis(v string) (int64, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, errors.New("want Unix milliseconds or an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t.UnixMilli(), nil
}

// parseTopicPartitions reads --topic values: "orders" (every partition)
// or "orders:0,2".
func parseTopicPartitions(vals []string) (map[string][]int32, error) {
	out := map[string][]int32{}
	for _, v := range vals {
		topic, ps, hasParts := strings.Cut(v, ":")
		if topic == "" {
			return nil, fmt.Errorf("--topic %q: want TOPIC or TOPIC:P,P", v)
		}
		if !hasParts {
			out[topic] = nil
			continue
		}
		for _, p := range strings.Split(ps, ",") {
			n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("--topic %q: partition %q is not a partition number", v, p)
			}
			out[topic] = append(out[topic], int32(n))
		}
	}
	return out, nil
}

type resetRow struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current_offset"` // -1: no commit
	New       int64  `json:"new_offset"`
	Note      string `json:"note,omitempty"`
}

// groupResetOffsets moves a group's committed offsets. Like Kafka's
// kafka-consumer-groups --reset-offsets it refuses a group with members:
// a running member would overwrite the reset with its next commit, and
// the coordinator rejects commits from outside the generation anyway.
// Offsets outside [log start, log end] are clamped into it, as Kafka's tool
// does, with a note in the plan.
func groupResetOffsets(ctx context.Context, e *env, args []string) error {
	fs := e.flags("group reset-offsets")
	to := fs.String("to", "", "where to move the offsets: earliest, latest, timestamp:T (the first record at or after T, Unix milliseconds or RFC 3339) or offset:N (required)")
	var topics list
	fs.Var(&topics, "topic", "reset only this topic (TOPIC) or these partitions (TOPIC:0,1); repeat for more; default: every partition the group has committed")
	dry := fs.Bool("dry-run", false, "print the plan, commit nothing")
	names, err := e.parse(fs, args, "the group", 1, 1)
	if err != nil {
		return err
	}
	group := names[0]
	if *to == "" {
		return errors.New("--to is required: earliest, latest, timestamp:T or offset:N")
	}
	target, err := parseResetTarget(*to)
	if err != nil {
		return err
	}
	only, err := parseTopicPartitions(topics)
	if err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()

	dg, err := adm.DescribeGroups(rctx, group)
	if err != nil {
		return explain(err, subject{}, "")
	}
	d, err := dg.On(group, nil)
	if err == nil {
		err = d.Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return explain(err, groupSubject(group), d.ErrMessage)
	}
	if len(d.Members) > 0 {
		return fmt.Errorf("group %q has %d active members (state %s); stop its consumers before resetting offsets (see `sluice group describe %s`)", group, len(d.Members), d.State, group)
	}

	committed, err := adm.FetchOffsets(rctx, group)
	if err != nil {
		return explain(err, groupSubject(group), "")
	}
	// The partitions to reset: those named, or every committed one.
	parts := map[string][]int32{}
	if len(only) == 0 {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				parts[o.Topic] = append(parts[o.Topic], o.Partition)
			}
		})
		if len(parts) == 0 {
			return fmt.Errorf("group %q has no committed offsets; name what to reset with --topic", group)
		}
	} else {
		var named []string
		for t := range only {
			named = append(named, t)
		}
		tds, err := adm.ListTopics(rctx, named...)
		if err != nil {
			return explain(err, subject{}, "")
		}
		for t, ps := range only {
			d, ok := tds[t]
			if !ok || d.Err != nil {
				derr := d.Err
				if !ok {
					derr = errUnknownTopic
				}
				return explain(derr, topicSubject(t), "")
			}
			if ps == nil {
				for p := range d.Partitions {
					ps = append(ps, p)
				}
			}
			for _, p := range ps {
				if _, ok := d.Partitions[p]; !ok {
					return fmt.Errorf("topic %q has no partition %d (it has %d); fix --topic", t, p, len(d.Partitions))
				}
			}
			parts[t] = ps
		}
	}
	var ts []string
	for t, ps := range parts {
		ts = append(ts, t)
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	}
	sort.Strings(ts)

	starts, err := adm.ListStartOffsets(rctx, ts...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	ends, err := adm.ListEndOffsets(rctx, ts...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	var byTime kadm.ListedOffsets
	if target.kind == "timestamp" {
		if byTime, err = adm.ListOffsetsAfterMilli(rctx, target.milli, ts...); err != nil {
			return explain(err, subject{}, "")
		}
	}
	var plan []resetRow
	commit := kadm.Offsets{}
	for _, t := range ts {
		for _, p := range parts[t] {
			s, sok := starts.Lookup(t, p)
			en, eok := ends.Lookup(t, p)
			if !sok || !eok || s.Err != nil || en.Err != nil {
				lerr := errors.Join(s.Err, en.Err)
				if lerr == nil {
					lerr = errUnknownTopic
				}
				return explain(lerr, topicSubject(t), "")
			}
			row := resetRow{Topic: t, Partition: p, Current: -1}
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil {
				row.Current = c.At
			}
			switch target.kind {
			case "earliest":
				row.New = s.Offset
			case "latest":
				row.New = en.Offset
			case "timestamp":
				o, ok := byTime.Lookup(t, p)
				if !ok || o.Err != nil || o.Offset < 0 {
					row.New, row.Note = en.Offset, "no record at or after the time: log end"
				} else {
					row.New = o.Offset
				}
			case "offset":
				row.New = target.at
			}
			switch {
			case row.New < s.Offset:
				row.New, row.Note = s.Offset, fmt.Sprintf("%d is before the log start: clamped", row.New)
			case row.New > en.Offset:
				row.New, row.Note = en.Offset, fmt.Sprintf("%d is past the log end: clamped", row.New)
			}
			plan = append(plan, row)
			commit.Add(kadm.Offset{Topic: t, Partition: p, At: row.New, LeaderEpoch: -1})
		}
	}
	if !*dry {
		resps, err := adm.CommitOffsets(rctx, group, commit)
		if err != nil {
			return explain(err, groupSubject(group), "")
		}
		if err := resps.Error(); err != nil {
			return explain(err, groupSubject(group), "")
		}
	}
	if e.json() {
		return writeJSON(e.Out, struct {
			Group  string     `json:"group"`
			DryRun bool       `json:"dry_run"`
			Plan   []resetRow `json:"partitions"`
		}{group, *dry, plan})
	}
	t := newTable(e.Out, "TOPIC", "PARTITION", "CURRENT", "NEW", "NOTE")
	for _, r := range plan {
		cur := strconv.FormatInt(r.Current, 10)
		if r.Current < 0 {
			cur = "-"
		}
		t.row(r.Topic, r.Partition, cur, r.New, r.Note)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if *dry {
		fmt.Fprintln(e.Out, "(dry run: nothing committed; run again without --dry-run to reset)")
	} else {
		fmt.Fprintf(e.Out, "reset %d %s of group %s\n", len(plan), plural(len(plan), "partition"), group)
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

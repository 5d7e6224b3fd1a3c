package ctl

// sluice topic list|create|describe|alter-config|delete|add-partitions.

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicJSON struct {
	Name       string `json:"name"`
	ID         string `json:"id,omitempty"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal,omitempty"`
}

func replicasOf(d kadm.TopicDetail) int {
	for _, p := range d.Partitions {
		return len(p.Replicas)
	}
	return 0
}

func topicList(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic list")
	internal := fs.Bool("internal", false, "also list internal topics (__consumer_offsets, ...)")
	if _, err := e.parse(fs, args, "", 0, 0); err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	list := adm.ListTopics
	if *internal {
		list = adm.ListTopicsWithInternal
	}
	tds, err := list(rctx)
	if err != nil {
		return explain(err, subject{}, "")
	}
	out := []topicJSON{}
	for _, d := range tds.Sorted() {
		if d.Err != nil {
			return explain(d.Err, topicSubject(d.Topic), "")
		}
		out = append(out, topicJSON{Name: d.Topic, ID: d.ID.String(), Partitions: len(d.Partitions), Replicas: replicasOf(d), Internal: d.IsInternal})
	}
	if e.json() {
		return writeJSON(e.Out, out)
	}
	t := newTable(e.Out, "NAME", "PARTITIONS", "REPLICAS")
	for _, r := range out {
		t.row(r.Name, r.Partitions, r.Replicas)
	}
	return t.flush()
}

func topicCreate(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic create")
	partitions := fs.Int("partitions", -1, "partitions of each new topic; -1: the cluster's default (an agent's --default-partitions)")
	replicas := fs.Int("replicas", -1, "replication factor; -1: the cluster's default (Sluice keeps data in the object store and reports 1)")
	configs := &kv{}
	fs.Var(configs, "config", "a topic config name=value, e.g. retention.ms=86400000 or cleanup.policy=compact; repeat for more")
	dry := fs.Bool("dry-run", false, "only validate: ask the cluster whether it would create the topics, create nothing")
	names, err := e.parse(fs, args, "the topic to create", 1, -1)
	if err != nil {
		return err
	}
	if *partitions == 0 || *partitions < -1 {
		return fmt.Errorf("--partitions must be positive or -1 (the cluster's default), got %d", *partitions)
	}
	if *replicas == 0 || *replicas < -1 || *replicas > 32767 {
		return fmt.Errorf("--replicas must be positive or -1 (the cluster's default), got %d", *replicas)
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	cfg := map[string]*string{}
	for _, k := range configs.order {
		v := configs.vals[k]
		cfg[k] = &v
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	create := adm.CreateTopics
	if *dry {
		create = adm.ValidateCreateTopics
	}
	resps, err := create(rctx, int32(*partitions), int16(*replicas), cfg, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	type created struct {
		Name       string `json:"name"`
		ID         string `json:"id,omitempty"`
		Partitions int32  `json:"partitions"`
		DryRun     bool   `json:"dry_run,omitempty"`
	}
	var out []created
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			errs = append(errs, explain(r.Err, topicSubject(r.Topic), r.ErrMessage))
			continue
		}
		id := r.ID.String()
		if *dry || r.ID == (kadm.TopicID{}) {
			id = ""
		}
		out = append(out, created{Name: r.Topic, ID: id, Partitions: r.NumPartitions, DryRun: *dry})
	}
	if err := printCreated(e, out, *dry, func(c created) []any { return []any{c.Name, c.Partitions} }); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// printCreated prints the topics a create (or dry run) accepted.
func printCreated[T any](e *env, rows []T, dry bool, cells func(T) []any) error {
	if e.json() {
		if rows == nil {
			rows = []T{}
		}
		return writeJSON(e.Out, rows)
	}
	if len(rows) == 0 {
		return nil
	}
	status := "created"
	if dry {
		status = "valid (dry run, not created)"
	}
	t := newTable(e.Out, "TOPIC", "PARTITIONS", "STATUS")
	for _, r := range rows {
		t.row(append(cells(r), status)...)
	}
	return t.flush()
}

type partitionJSON struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	Replicas      []int32 `json:"replicas"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
}

type configJSON struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

type topicDescJSON struct {
	topicJSON
	PartitionList []partitionJSON `json:"partition_details"`
	Configs       []configJSON    `json:"configs"`
}

func topicDescribe(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic describe")
	all := fs.Bool("all-configs", false, "list every config with its source, not only those set on the topic")
	names, err := e.parse(fs, args, "the topic to describe", 1, -1)
	if err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	tds, err := adm.ListTopicsWithInternal(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	for _, n := range names {
		d, ok := tds[n]
		if !ok {
			return explain(errUnknownTopic, topicSubject(n), "")
		}
		if d.Err != nil {
			return explain(d.Err, topicSubject(n), "")
		}
	}
	starts, err := adm.ListStartOffsets(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	ends, err := adm.ListEndOffsets(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	rcs, err := adm.DescribeTopicConfigs(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	var out []topicDescJSON
	for _, n := range names {
		d := tds[n]
		tj := topicDescJSON{topicJSON: topicJSON{Name: n, ID: d.ID.String(), Partitions: len(d.Partitions), Replicas: replicasOf(d), Internal: d.IsInternal},
			PartitionList: []partitionJSON{}, Configs: []configJSON{}}
		for _, p := range d.Partitions.Sorted() {
			pj := partitionJSON{Partition: p.Partition, Leader: p.Leader, Replicas: p.Replicas, LogStart: -1, HighWatermark: -1}
			if o, ok := starts.Lookup(n, p.Partition); ok && o.Err == nil {
				pj.LogStart = o.Offset
			}
			if o, ok := ends.Lookup(n, p.Partition); ok && o.Err == nil {
				pj.HighWatermark = o.Offset
			}
			tj.PartitionList = append(tj.PartitionList, pj)
		}
		rc, err := rcs.On(n, nil)
		if err == nil && rc.Err != nil {
			err = rc.Err
		}
		if err != nil {
			return explain(err, topicSubject(n), rc.ErrMessage)
		}
		cs := rc.Configs
		sort.Slice(cs, func(i, j int) bool { return cs[i].Key < cs[j].Key })
		for _, c := range cs {
			if !*all && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				continue
			}
			v := c.MaybeValue()
			if c.Sensitive {
				v = "(sensitive)"
			}
			tj.Configs = append(tj.Configs, configJSON{Name: c.Key, Value: v, Source: sourceName(c.Source)})
		}
		out = append(out, tj)
	}
	if e.json() {
		if len(out) == 1 {
			return writeJSON(e.Out, out[0])
		}
		return writeJSON(e.Out, out)
	}
	for i, tj := range out {
		if i > 0 {
			fmt.Fprintln(e.Out)
		}
		t := newTable(e.Out)
		t.row("NAME", tj.Name)
		t.row("ID", tj.ID)
		t.row("PARTITIONS", tj.Partitions)
		t.row("REPLICAS", tj.Replicas)
		if tj.Internal {
			t.row("INTERNAL", "yes")
		}
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(e.Out)
		if len(tj.Configs) == 0 {
			fmt.Fprintln(e.Out, "CONFIGS  (none set on the topic; --all-configs lists the defaults)")
		} else {
			t = newTable(e.Out, "CONFIG", "VALUE", "SOURCE")
			for _, c := range tj.Configs {
				t.row(c.Name, c.Value, c.Source)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		fmt.Fprintln(e.Out)
		t = newTable(e.Out, "PARTITION", "LEADER", "REPLICAS", "LOG-START", "HIGH-WATERMARK")
		for _, p := range tj.PartitionList {
			t.row(p.Partition, p.Leader, fmt.Sprint(p.Replicas), p.LogStart, p.HighWatermark)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// sourceName is a config source as people read it.
func sourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig, kmsg.ConfigSourceStaticBrokerConfig:
		return "cluster"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return s.String()
}

func topicAlterConfig(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic alter-config")
	set := &kv{}
	fs.Var(set, "set", "set a config name=value on the topics; repeat for more")
	var del list
	fs.Var(&del, "delete", "remove a config from the topics (back to the cluster's default); repeat for more")
	dry := fs.Bool("dry-run", false, "only validate the change, alter nothing")
	names, err := e.parse(fs, args, "the topic to alter", 1, -1)
	if err != nil {
		return err
	}
	if len(set.order) == 0 && len(del) == 0 {
		return errors.New("nothing to change: give --set name=value or --delete name")
	}
	var changes []kadm.AlterConfig
	for _, k := range set.order {
		v := set.vals[k]
		changes = append(changes, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range del {
		changes = append(changes, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	alter := adm.AlterTopicConfigs
	if *dry {
		alter = adm.ValidateAlterTopicConfigs
	}
	resps, err := alter(rctx, changes, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	type altered struct {
		Name    string            `json:"name"`
		Set     map[string]string `json:"set"`
		Deleted []string          `json:"deleted"`
		DryRun  bool              `json:"dry_run,omitempty"`
	}
	var out []altered
	var errs []error
	sort.Slice(resps, func(i, j int) bool { return resps[i].Name < resps[j].Name })
	for _, r := range resps {
		if r.Err != nil {
			errs = append(errs, explain(r.Err, topicSubject(r.Name), r.ErrMessage))
			continue
		}
		a := altered{Name: r.Name, Set: map[string]string{}, Deleted: []string(del), DryRun: *dry}
		if a.Deleted == nil {
			a.Deleted = []string{}
		}
		for k, v := range set.vals {
			a.Set[k] = v
		}
		out = append(out, a)
	}
	if e.json() {
		if out == nil {
			out = []altered{}
		}
		if err := writeJSON(e.Out, out); err != nil {
			return err
		}
		return errors.Join(errs...)
	}
	if len(out) > 0 {
		t := newTable(e.Out, "TOPIC", "CONFIG", "CHANGE")
		for _, a := range out {
			for _, k := range set.order {
				t.row(a.Name, k, "set to "+set.vals[k])
			}
			for _, k := range del {
				t.row(a.Name, k, "deleted")
			}
		}
		if err := t.flush(); err != nil {
			return err
		}
		if *dry {
			fmt.Fprintln(e.Out, "(dry run: nothing altered)")
		}
	}
	return errors.Join(errs...)
}

func topicDelete(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic delete")
	names, err := e.parse(fs, args, "the topic to delete", 1, -1)
	if err != nil {
		return err
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	resps, err := adm.DeleteTopics(rctx, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	return printStatus(e, "TOPIC", "deleted", resps.Sorted(), func(r kadm.DeleteTopicResponse) (string, error) {
		return r.Topic, explain(r.Err, topicSubject(r.Topic), r.ErrMessage)
	})
}

// statusJSON is one row of a command that acts on named things.
type statusJSON struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// printStatus prints one row per response, done or failed, and returns
// the failures joined.
func printStatus[R any](e *env, kind, done string, resps []R, each func(R) (string, error)) error {
	var rows []statusJSON
	var errs []error
	for _, r := range resps {
		name, err := each(r)
		row := statusJSON{Name: name, Status: done}
		if err != nil {
			row.Status, row.Error = "failed", err.Error()
			errs = append(errs, err)
		}
		rows = append(rows, row)
	}
	if e.json() {
		if rows == nil {
			rows = []statusJSON{}
		}
		if err := writeJSON(e.Out, rows); err != nil {
			return err
		}
	} else {
		t := newTable(e.Out, kind, "STATUS")
		for _, r := range rows {
			t.row(r.Name, r.Status)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

func topicAddPartitions(ctx context.Context, e *env, args []string) error {
	fs := e.flags("topic add-partitions")
	num := fs.Int("num", 0, "partitions to add to each topic (required; partitions are never removed)")
	names, err := e.parse(fs, args, "the topic to grow", 1, -1)
	if err != nil {
		return err
	}
	if *num <= 0 {
		return fmt.Errorf("--num must be positive (partitions to add), got %d", *num)
	}
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	resps, err := adm.CreatePartitions(rctx, *num, names...)
	if err != nil {
		return explain(err, subject{}, "")
	}
	return printStatus(e, "TOPIC", fmt.Sprintf("added %d %s", *num, plural(*num, "partition")), resps.Sorted(), func(r kadm.CreatePartitionsResponse) (string, error) {
		return r.Topic, explain(r.Err, topicSubject(r.Topic), r.ErrMessage)
	})
}

package loadtest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Acked returns a copy of the acknowledged records, by partition, in the
// order they were acknowledged.
func (o *Oracle) Acked() map[TopicPartition][]Acked {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[TopicPartition][]Acked, len(o.acked))
	for tp, a := range o.acked {
		out[tp] = slices.Clone(a)
	}
	return out
}

// problems collects what a verification found: every problem counts, the
// first limit are kept with their text.
type problems struct {
	limit int
	list  []string
	total int
}

func (p *problems) addf(format string, args ...any) {
	p.total++
	if len(p.list) < p.limit {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

// logCheck is what verification reads: the topic's log as a fresh
// consumer read it from the start, the start and end offsets listed once
// producing stopped, and the consumer groups' views.
type logCheck struct {
	topic      string
	partitions int32
	log        map[TopicPartition][]Consumed
	starts     map[int32]int64
	ends       map[int32]int64
	groups     []*group
}

// verify checks the log and the groups against the oracle:
//
//   - every partition starts at offset 0 (nothing deletes records here)
//     and reads densely up to its end offset;
//   - every acknowledged record is at its acknowledged offset with its
//     value (Oracle.Verify);
//   - no value is stored twice: the idempotent producer never duplicates,
//     acknowledged or not;
//   - per producer per partition, sequence numbers rise with the offset;
//   - every group received every acknowledged record (redeliveries after
//     a rebalance are fine, a record no member ever saw is not).
func verify(o *Oracle, in logCheck, p *problems) {
	for part := range in.partitions {
		tp := TopicPartition{in.topic, part}
		if s := in.starts[part]; s != 0 {
			p.addf("%s/%d: log starts at offset %d, want 0 (nothing deletes records in a load test)", tp.Topic, part, s)
		}
		recs := in.log[tp]
		next := int64(0)
		if len(recs) > 0 {
			next = recs[len(recs)-1].Offset + 1
		}
		if end := in.ends[part]; next < end {
			p.addf("%s/%d: reading from the start stops at offset %d, but the end offset is %d: records missing", tp.Topic, part, next, end)
		}
	}
	for _, err := range o.Verify(in.log, p.limit) {
		p.addf("%v", err)
	}
	checkValues(in.log, p)
	checkGroups(o, in.groups, p)
}

// checkValues finds values stored twice and, per producer per partition,
// sequence numbers that do not rise with the offset.
func checkValues(log map[TopicPartition][]Consumed, p *problems) {
	type loc struct {
		tp     TopicPartition
		offset int64
	}
	type last struct {
		seq, offset int64
	}
	seen := map[string]loc{}
	tps := slices.SortedFunc(maps.Keys(log), compareTP)
	for _, tp := range tps {
		prev := map[int]last{}
		for _, r := range log[tp] {
			v := string(r.Value)
			if first, dup := seen[v]; dup {
				p.addf("value %q stored twice: %s/%d offset %d and %s/%d offset %d",
					v, first.tp.Topic, first.tp.Partition, first.offset, tp.Topic, tp.Partition, r.Offset)
				continue
			}
			seen[v] = loc{tp, r.Offset}
			prod, seq, ok := parseValue(r.Value)
			if !ok {
				p.addf("%s/%d offset %d: value %q was not written by this run", tp.Topic, tp.Partition, r.Offset, v)
				continue
			}
			if l, ok := prev[prod]; ok && seq < l.seq {
				p.addf("%s/%d: producer %d's record %d at offset %d comes after its record %d at offset %d: order not kept",
					tp.Topic, tp.Partition, prod, seq, r.Offset, l.seq, l.offset)
			}
			prev[prod] = last{seq, r.Offset}
		}
	}
}

// checkGroups finds acknowledged records a group never received.
func checkGroups(o *Oracle, groups []*group, p *problems) {
	acked := o.Acked()
	tps := slices.SortedFunc(maps.Keys(acked), compareTP)
	for _, g := range groups {
		missing, shown := 0, 0
		for _, tp := range tps {
			for _, a := range acked[tp] {
				if g.has(tp.Partition, a.Offset) {
					continue
				}
				missing++
				if shown < 3 {
					shown++
					p.addf("group %s never received acknowledged record %q (%s/%d offset %d)", g.name, a.Value, tp.Topic, tp.Partition, a.Offset)
				}
			}
		}
		if missing > shown {
			p.addf("group %s never received %d acknowledged records in all", g.name, missing)
		}
	}
}

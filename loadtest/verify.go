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
// consumer read it, the log start offsets listed after that read and the
// end offsets listed once producing stopped, and the consumer groups'
// views. retention says the topic has retention.ms: records below the
// log start may then be gone.
type logCheck struct {
	topic      string
	partitions int32
	log        map[TopicPartition][]Consumed
	starts     map[int32]int64
	ends       map[int32]int64
	groups     []*group
	retention  bool
}

// startsByTP are the log start offsets keyed as the oracle keys them.
func (in logCheck) startsByTP() map[TopicPartition]int64 {
	out := make(map[TopicPartition]int64, len(in.starts))
	for p, s := range in.starts {
		out[TopicPartition{in.topic, p}] = s
	}
	return out
}

// verify checks the log and the groups against the oracle:
//
//   - every partition starts at offset 0 (without retention nothing
//     deletes records) and reads densely from its log start up to its
//     end offset;
//   - every acknowledged record at or above the log start is at its
//     acknowledged offset with its value, and one below it that was
//     read holds its value (Oracle.Verify);
//   - no value is stored twice: the idempotent producer never duplicates,
//     acknowledged or not;
//   - per producer per partition, sequence numbers rise with the offset;
//   - every group received every acknowledged record at or above the log
//     start (redeliveries after a rebalance are fine, a record no member
//     ever saw is not; with retention, one that expired before the group
//     reached it is counted, not a problem), and whatever a group
//     received is what the log or the acknowledgement holds at that
//     offset.
func verify(o *Oracle, in logCheck, p *problems) {
	for part := range in.partitions {
		tp := TopicPartition{in.topic, part}
		start := in.starts[part]
		if start != 0 && !in.retention {
			p.addf("%s/%d: log starts at offset %d, want 0 (nothing deletes records in a load test without --retention)", tp.Topic, part, start)
		}
		recs := in.log[tp]
		next := start
		if len(recs) > 0 {
			next = max(next, recs[len(recs)-1].Offset+1)
		}
		if end := in.ends[part]; next < end {
			p.addf("%s/%d: reading from the start stops at offset %d, but the end offset is %d: records missing", tp.Topic, part, next, end)
		}
	}
	for _, err := range o.Verify(in.log, in.startsByTP(), p.limit) {
		p.addf("%v", err)
	}
	checkValues(in.log, p)
	checkGroups(o, in, p)
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

// checkGroups finds acknowledged records a group never received (below
// the log start of a topic with retention they may have expired first:
// counted in group.expired), and records a group received with another
// value than the log (or, for a record no longer in the log, its
// acknowledgement) holds at that offset.
func checkGroups(o *Oracle, in logCheck, p *problems) {
	acked := o.Acked()
	tps := slices.SortedFunc(maps.Keys(acked), compareTP)
	for _, g := range in.groups {
		missing, shown, wrong := 0, 0, 0
		g.expired = 0
		wrongf := func(format string, args ...any) {
			wrong++
			if wrong <= 3 {
				p.addf(format, args...)
			}
		}
		for _, tp := range tps {
			start := in.starts[tp.Partition]
			for _, a := range acked[tp] {
				if h := g.valueAt(tp.Partition, a.Offset); h != 0 {
					// At or above the start the log holds the record
					// and the loop over the log compares it.
					if a.Offset < start && h != valueHash([]byte(a.Value)) {
						wrongf("group %s received another value than acknowledged %q at %s/%d offset %d", g.name, a.Value, tp.Topic, tp.Partition, a.Offset)
					}
					continue
				}
				if in.retention && a.Offset < start {
					g.expired++
					continue
				}
				missing++
				if shown < 3 {
					shown++
					p.addf("group %s never received acknowledged record %q (%s/%d offset %d, log start %d)", g.name, a.Value, tp.Topic, tp.Partition, a.Offset, start)
				}
			}
		}
		for tp, recs := range in.log {
			for _, r := range recs {
				if h := g.valueAt(tp.Partition, r.Offset); h != 0 && h != valueHash(r.Value) {
					wrongf("group %s received another value than the log's %q at %s/%d offset %d", g.name, r.Value, tp.Topic, tp.Partition, r.Offset)
				}
			}
		}
		if missing > shown {
			p.addf("group %s never received %d acknowledged records in all", g.name, missing)
		}
		if wrong > 3 {
			p.addf("group %s received %d records with values that differ from the log's in all", g.name, wrong)
		}
		g.mu.Lock()
		for _, c := range g.conflicts {
			p.addf("group %s: %s", g.name, c)
		}
		if g.nConflict > len(g.conflicts) {
			p.addf("group %s received %d offsets with two different values in all", g.name, g.nConflict)
		}
		g.mu.Unlock()
	}
}

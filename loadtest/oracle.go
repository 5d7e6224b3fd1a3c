// Package loadtest is `sluice loadtest`, Sluice's soak and fault harness:
// it starts its own cluster of meta and agent processes (cluster.go),
// drives idempotent producers and consumer groups (workload.go), injects
// faults on a schedule (faults.go, faultapi.go), and proves with the
// oracle (this file) and the verifier (verify.go) that nothing
// acknowledged was lost, duplicated or reordered.
package loadtest

import (
	"fmt"
	"sort"
	"sync"
)

// Oracle remembers every acknowledged record and checks a consumed copy
// of the log against them. Safe for concurrent use.
type Oracle struct {
	mu    sync.Mutex
	acked map[TopicPartition][]Acked // guarded by mu
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Acked is one acknowledged record: where the broker said it is and what
// it holds.
type Acked struct {
	Offset int64
	Value  string
}

// Consumed is one record read back. Control is set for a control record
// (a transaction's commit or abort marker), read only in transactions
// mode.
type Consumed struct {
	Offset  int64
	Value   []byte
	Control bool
}

// Ack records an acknowledgement.
func (o *Oracle) Ack(tp TopicPartition, offset int64, value []byte) {
	o.mu.Lock()
	if o.acked == nil {
		o.acked = make(map[TopicPartition][]Acked)
	}
	o.acked[tp] = append(o.acked[tp], Acked{Offset: offset, Value: string(value)})
	o.mu.Unlock()
}

// Count is the number of acknowledged records.
func (o *Oracle) Count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, a := range o.acked {
		n += len(a)
	}
	return n
}

// Verify checks a full read of the log, records per partition in the order
// consumed, against the acknowledgements. starts are the partitions' log
// start offsets after the read (nil: all 0, nothing deleted records):
//
//   - offsets rise strictly (an offset read twice is a duplicate);
//   - offsets are dense at and above the log start; a gap is allowed
//     only below it (expired records the reader skipped when retention
//     moved the start while it read: OFFSET_OUT_OF_RANGE and a reset);
//   - no offset was acknowledged twice;
//   - every acknowledged record at or above the log start is present at
//     its offset with its value; one below it may be missing (expired),
//     but if it was read it must hold its value.
//
// It returns one error per problem, at most limit.
func (o *Oracle) Verify(log map[TopicPartition][]Consumed, starts map[TopicPartition]int64, limit int) []error {
	var errs []error
	add := func(format string, args ...any) bool {
		errs = append(errs, fmt.Errorf(format, args...))
		return len(errs) < limit
	}
	tps := make([]TopicPartition, 0, len(log))
	for tp := range log {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	// byOffset indexes each partition's records by offset; the read is
	// sorted by offset once the checks below pass.
	byOffset := make(map[TopicPartition]map[int64][]byte, len(log))
	for _, tp := range tps {
		start := starts[tp]
		prev := int64(-1)
		idx := make(map[int64][]byte, len(log[tp]))
		byOffset[tp] = idx
		for i, r := range log[tp] {
			switch {
			case r.Offset <= prev:
				if !add("%s/%d: record %d has offset %d after offset %d: offset read twice or out of order", tp.Topic, tp.Partition, i, r.Offset, prev) {
					return errs
				}
			case r.Offset > prev+1 && r.Offset > start:
				if !add("%s/%d: record %d has offset %d after offset %d: offsets not dense (log start %d)", tp.Topic, tp.Partition, i, r.Offset, prev, start) {
					return errs
				}
			}
			prev = max(prev, r.Offset)
			if _, dup := idx[r.Offset]; !dup {
				idx[r.Offset] = r.Value
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for tp, acks := range o.acked {
		recs := byOffset[tp]
		start := starts[tp]
		seen := make(map[int64]bool, len(acks))
		for _, a := range acks {
			if seen[a.Offset] {
				if !add("%s/%d: offset %d acknowledged twice", tp.Topic, tp.Partition, a.Offset) {
					return errs
				}
			}
			seen[a.Offset] = true
			v, ok := recs[a.Offset]
			switch {
			case !ok && (a.Offset < 0 || a.Offset >= start):
				if !add("%s/%d: acknowledged record %q at offset %d lost (log start %d, %d records read)", tp.Topic, tp.Partition, a.Value, a.Offset, start, len(recs)) {
					return errs
				}
			case ok && string(v) != a.Value:
				if !add("%s/%d: offset %d holds %q, acknowledged %q", tp.Topic, tp.Partition, a.Offset, v, a.Value) {
					return errs
				}
			}
		}
	}
	return errs
}

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

// Consumed is one record read back.
type Consumed struct {
	Offset int64
	Value  []byte
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
// consumed: offsets are dense from zero and increasing, no offset was
// acknowledged twice, and every acknowledged record is present at its
// offset with its value. It returns one error per problem, at most limit.
func (o *Oracle) Verify(log map[TopicPartition][]Consumed, limit int) []error {
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
	for _, tp := range tps {
		for i, r := range log[tp] {
			if r.Offset != int64(i) {
				if !add("%s/%d: record %d has offset %d: offsets not dense", tp.Topic, tp.Partition, i, r.Offset) {
					return errs
				}
				break
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for tp, acks := range o.acked {
		recs := log[tp]
		seen := make(map[int64]bool, len(acks))
		for _, a := range acks {
			if seen[a.Offset] {
				if !add("%s/%d: offset %d acknowledged twice", tp.Topic, tp.Partition, a.Offset) {
					return errs
				}
			}
			seen[a.Offset] = true
			switch {
			case a.Offset < 0 || a.Offset >= int64(len(recs)):
				if !add("%s/%d: acknowledged record %q at offset %d lost (partition holds %d)", tp.Topic, tp.Partition, a.Value, a.Offset, len(recs)) {
					return errs
				}
			case string(recs[a.Offset].Value) != a.Value:
				if !add("%s/%d: offset %d holds %q, acknowledged %q", tp.Topic, tp.Partition, a.Offset, recs[a.Offset].Value, a.Value) {
					return errs
				}
			}
		}
	}
	return errs
}

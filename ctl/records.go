package ctl

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordJSON is one record as `consume --format json` prints it and
// `produce --format json` reads it, one object per line, so the two
// compose: consume from one topic, produce into another. Keys, values and
// headers are JSON strings: text round-trips exactly; bytes that are not
// valid UTF-8 do not (they become U+FFFD). A null key or value is null.
type recordJSON struct {
	Topic     string       `json:"topic,omitempty"`
	Partition *int32       `json:"partition,omitempty"`
	Offset    *int64       `json:"offset,omitempty"`
	Timestamp *int64       `json:"timestamp,omitempty"` // Unix milliseconds
	Key       *string      `json:"key"`
	Value     *string      `json:"value"`
	Headers   []headerJSON `json:"headers,omitempty"`
}

type headerJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func toJSON(r *kgo.Record) recordJSON {
	p, o, ts := r.Partition, r.Offset, r.Timestamp.UnixMilli()
	j := recordJSON{Topic: r.Topic, Partition: &p, Offset: &o, Timestamp: &ts}
	if r.Key != nil {
		k := string(r.Key)
		j.Key = &k
	}
	if r.Value != nil {
		v := string(r.Value)
		j.Value = &v
	}
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, headerJSON{Key: h.Key, Value: string(h.Value)})
	}
	return j
}

// fromJSON builds the record to produce; topic and partition come from
// the command line, the offset is the cluster's to assign.
func fromJSON(j recordJSON) *kgo.Record {
	r := &kgo.Record{}
	if j.Key != nil {
		r.Key = []byte(*j.Key)
	}
	if j.Value != nil {
		r.Value = []byte(*j.Value)
	}
	if j.Timestamp != nil {
		r.Timestamp = time.UnixMilli(*j.Timestamp)
	}
	for _, h := range j.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: []byte(h.Value)})
	}
	return r
}

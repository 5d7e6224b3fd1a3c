package loadtest

import (
	"strings"
	"testing"
)

func TestOracle(t *testing.T) {
	tp := TopicPartition{"t", 0}
	log := map[TopicPartition][]Consumed{tp: {{Offset: 0, Value: []byte("a")}, {Offset: 1, Value: []byte("b")}, {Offset: 2, Value: []byte("c")}}}
	var o Oracle
	o.Ack(tp, 0, []byte("a"))
	o.Ack(tp, 2, []byte("c"))
	if errs := o.Verify(log, nil, 10); len(errs) != 0 {
		t.Fatalf("clean log: %v", errs)
	}
	cases := []struct {
		name string
		edit func(o *Oracle, log map[TopicPartition][]Consumed)
		want string
	}{
		{"lost", func(o *Oracle, _ map[TopicPartition][]Consumed) { o.Ack(tp, 3, []byte("d")) }, "lost"},
		{"changed", func(_ *Oracle, l map[TopicPartition][]Consumed) { l[tp][2].Value = []byte("x") }, "holds"},
		{"gap", func(_ *Oracle, l map[TopicPartition][]Consumed) { l[tp][1].Offset = 5 }, "not dense"},
		{"twice", func(o *Oracle, _ map[TopicPartition][]Consumed) { o.Ack(tp, 0, []byte("a")) }, "twice"},
		{"other partition lost", func(o *Oracle, _ map[TopicPartition][]Consumed) {
			o.Ack(TopicPartition{"t", 1}, 0, []byte("z"))
		}, "lost"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o Oracle
			o.Ack(tp, 0, []byte("a"))
			o.Ack(tp, 2, []byte("c"))
			l := map[TopicPartition][]Consumed{tp: append([]Consumed(nil), log[tp]...)}
			tc.edit(&o, l)
			errs := o.Verify(l, nil, 10)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

// TestOracleWithRetention: with a log start of 3 (retention expired
// offsets 0-2 before the read), a record below it may be missing, but
// whatever was read must be right and read once, and everything at or
// above it must be there.
func TestOracleWithRetention(t *testing.T) {
	tp := TopicPartition{"t", 0}
	vals := []string{"a", "b", "c", "d", "e", "f"}
	full := func() []Consumed {
		var out []Consumed
		for i, v := range vals {
			out = append(out, Consumed{Offset: int64(i), Value: []byte(v)})
		}
		return out
	}
	ackAll := func() *Oracle {
		o := &Oracle{}
		for i, v := range vals {
			o.Ack(tp, int64(i), []byte(v))
		}
		return o
	}
	starts := map[TopicPartition]int64{tp: 3}
	clean := []struct {
		name string
		log  []Consumed
	}{
		{"whole log read", full()},
		{"read from the start", full()[3:]},
		{"reset past expired records mid-read", append(full()[:2:2], full()[3:]...)},
	}
	for _, c := range clean {
		if errs := ackAll().Verify(map[TopicPartition][]Consumed{tp: c.log}, starts, 10); len(errs) != 0 {
			t.Fatalf("%s: %v", c.name, errs)
		}
	}
	bad := []struct {
		name string
		log  []Consumed
		want string
	}{
		{"loss at the log start", full()[4:], "not dense"},
		{"loss above the log start", append(full()[:4:4], full()[5:]...), "not dense"},
		{"loss at the tail", full()[:5], "lost"},
		{"duplicate above the log start", append(full()[:5:5], full()[4:]...), "read twice"},
		{"duplicate below the log start", append(full()[:2:2], full()[1:]...), "read twice"},
		{"wrong value below the log start", append([]Consumed{{Offset: 0, Value: []byte("x")}}, full()[1:]...), "holds"},
	}
	for _, c := range bad {
		errs := ackAll().Verify(map[TopicPartition][]Consumed{tp: c.log}, starts, 10)
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want) {
			t.Fatalf("%s: errors %v, want one containing %q", c.name, errs, c.want)
		}
	}
}

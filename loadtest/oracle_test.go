package loadtest

import (
	"strings"
	"testing"
)

func TestOracle(t *testing.T) {
	tp := TopicPartition{"t", 0}
	log := map[TopicPartition][]Consumed{tp: {{0, []byte("a")}, {1, []byte("b")}, {2, []byte("c")}}}
	var o Oracle
	o.Ack(tp, 0, []byte("a"))
	o.Ack(tp, 2, []byte("c"))
	if errs := o.Verify(log, 10); len(errs) != 0 {
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
			errs := o.Verify(l, 10)
			if len(errs) == 0 || !strings.Contains(errs[0].Error(), tc.want) {
				t.Fatalf("errors %v, want one containing %q", errs, tc.want)
			}
		})
	}
}

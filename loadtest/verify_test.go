package loadtest

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fixture is a small clean run: two producers writing interleaved into two
// partitions, every other record acknowledged, two groups that received
// everything (one of them twice over, as after a rebalance).
type fixture struct {
	oracle *Oracle
	in     logCheck
}

func newFixture() *fixture {
	const topic = "t"
	f := &fixture{oracle: &Oracle{}, in: logCheck{
		topic: topic, partitions: 2, log: map[TopicPartition][]Consumed{},
		starts: map[int32]int64{0: 0, 1: 0}, ends: map[int32]int64{},
	}}
	seq := [2]int64{}
	for p := range int32(2) {
		tp := TopicPartition{topic, p}
		for off := range int64(10) {
			prod := int(off % 2)
			v := appendValue(nil, prod, seq[prod])
			seq[prod]++
			f.in.log[tp] = append(f.in.log[tp], Consumed{Offset: off, Value: v})
			if off%2 == 0 {
				f.oracle.Ack(tp, off, v)
			}
		}
		f.in.ends[p] = 10
	}
	for _, name := range []string{"g0", "g1"} {
		g := newGroup(name)
		for tp, recs := range f.in.log {
			for _, r := range recs {
				g.mark(tp.Partition, r.Offset, r.Value)
				if name == "g1" {
					g.mark(tp.Partition, r.Offset, r.Value) // a redelivery: allowed
				}
			}
		}
		f.in.groups = append(f.in.groups, g)
	}
	return f
}

func (f *fixture) verify() *problems {
	p := &problems{limit: 20}
	verify(f.oracle, f.in, p)
	return p
}

func (f *fixture) remove(part int32, off int64) {
	tp := TopicPartition{f.in.topic, part}
	recs := f.in.log[tp]
	f.in.log[tp] = append(recs[:off:off], recs[off+1:]...)
}

func TestVerifyCleanRun(t *testing.T) {
	f := newFixture()
	if p := f.verify(); p.total != 0 {
		t.Fatalf("clean run: %d problems: %v", p.total, p.list)
	}
	if g := f.in.groups[1]; g.delivered.Load() != 2*g.distinct.Load() || g.distinct.Load() != 20 {
		t.Fatalf("g1 delivered %d distinct %d", g.delivered.Load(), g.distinct.Load())
	}
}

// TestVerifyDetects breaks a clean run in each way the load test must
// catch and checks that verification fails with the right complaint.
func TestVerifyDetects(t *testing.T) {
	cases := []struct {
		name string
		edit func(f *fixture)
		want string
	}{
		{"acknowledged record removed", func(f *fixture) { f.remove(0, 4) }, "not dense"},
		{"acknowledged record removed at the tail", func(f *fixture) {
			f.remove(1, 9)
			f.remove(1, 8)
		}, "lost"},
		{"unacknowledged record removed: a gap", func(f *fixture) { f.remove(1, 3) }, "not dense"},
		{"unacknowledged tail short of the end offset", func(f *fixture) { f.remove(1, 9) }, "records missing"},
		{"value stored twice", func(f *fixture) {
			tp := TopicPartition{"t", 0}
			f.in.log[tp] = append(f.in.log[tp], Consumed{Offset: 10, Value: f.in.log[tp][3].Value})
			f.in.ends[0] = 11
		}, "stored twice"},
		{"value stored twice across partitions", func(f *fixture) {
			tp := TopicPartition{"t", 1}
			f.in.log[tp] = append(f.in.log[tp], Consumed{Offset: 10, Value: f.in.log[TopicPartition{"t", 0}][5].Value})
			f.in.ends[1] = 11
		}, "stored twice"},
		{"one producer's records reordered", func(f *fixture) {
			// Offsets 3 and 5 are producer 1's and unacknowledged: only
			// the order check can see the swap.
			recs := f.in.log[TopicPartition{"t", 0}]
			recs[3].Value, recs[5].Value = recs[5].Value, recs[3].Value
		}, "order not kept"},
		{"acknowledged value changed", func(f *fixture) {
			f.in.log[TopicPartition{"t", 1}][2].Value = appendValue(nil, 7, 1)
		}, "holds"},
		{"foreign value", func(f *fixture) {
			f.in.log[TopicPartition{"t", 1}][3].Value = []byte("hello")
		}, "not written by this run"},
		{"log start moved", func(f *fixture) { f.in.starts[1] = 2 }, "log starts at offset 2"},
		{"group missed an acknowledged record", func(f *fixture) {
			g := newGroup("g2")
			for tp, recs := range f.in.log {
				for _, r := range recs {
					if tp.Partition != 1 || r.Offset != 6 {
						g.mark(tp.Partition, r.Offset, r.Value)
					}
				}
			}
			f.in.groups = append(f.in.groups, g)
		}, "group g2 never received acknowledged record"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture()
			tc.edit(f)
			p := f.verify()
			if p.total == 0 {
				t.Fatalf("verification passed; want a problem containing %q", tc.want)
			}
			found := false
			for _, s := range p.list {
				found = found || strings.Contains(s, tc.want)
			}
			if !found {
				t.Fatalf("problems %q, want one containing %q", p.list, tc.want)
			}
		})
	}
}

// TestVerifyGroupMissingUnackedIsFine: a group need only have received
// what was acknowledged.
func TestVerifyGroupMissingUnackedIsFine(t *testing.T) {
	f := newFixture()
	g := newGroup("g2")
	for tp, recs := range f.in.log {
		for _, r := range recs {
			if r.Offset%2 == 0 {
				g.mark(tp.Partition, r.Offset, r.Value)
			}
		}
	}
	f.in.groups = append(f.in.groups, g)
	if p := f.verify(); p.total != 0 {
		t.Fatalf("%d problems: %v", p.total, p.list)
	}
}

func TestProblemsBounded(t *testing.T) {
	f := newFixture()
	for p := range int32(2) {
		f.in.log[TopicPartition{"t", p}] = nil // everything lost
	}
	p := &problems{limit: 5}
	verify(f.oracle, f.in, p)
	if len(p.list) != 5 || p.total <= 5 {
		t.Fatalf("kept %d of %d problems, want 5 of more", len(p.list), p.total)
	}
}

func TestValueRoundTrip(t *testing.T) {
	for _, c := range []struct {
		p int
		s int64
	}{{0, 0}, {3, 1234}, {99, 999999999999}, {123, 5}} {
		v := appendValue(nil, c.p, c.s)
		p, s, ok := parseValue(v)
		if !ok || p != c.p || s != c.s {
			t.Fatalf("%q parsed as %d %d %v", v, p, s, ok)
		}
	}
	for _, bad := range []string{"", "p", "p1", "x01-1", "p01-", "p-1", "p01-1x", "p01--1"} {
		if _, _, ok := parseValue([]byte(bad)); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func TestBitset(t *testing.T) {
	var b bitset
	for _, off := range []int64{0, 1, 63, 64, 65, 200} {
		if !b.set(off) {
			t.Fatalf("set(%d) not new", off)
		}
	}
	if b.set(64) || b.set(-1) {
		t.Fatal("set of a present or negative offset reported new")
	}
	for _, c := range []struct{ end, want int64 }{{0, 0}, {1, 1}, {2, 2}, {63, 2}, {64, 3}, {65, 4}, {66, 5}, {200, 5}, {201, 6}, {1000, 6}} {
		if got := b.countBelow(c.end); got != c.want {
			t.Fatalf("countBelow(%d) = %d, want %d", c.end, got, c.want)
		}
	}
	if !b.has(200) || b.has(199) || b.has(5000) || b.has(-1) {
		t.Fatal("has wrong")
	}
	g := newGroup("g")
	g.mark(0, 0, nil)
	g.mark(0, 1, nil)
	g.mark(1, 0, nil)
	if ok, missing := g.caughtUp(nil, map[int32]int64{0: 2, 1: 2}); ok || missing != 1 {
		t.Fatalf("caughtUp = %v, %d missing; want false, 1", ok, missing)
	}
	// With retention, offsets below the log start are not waited for.
	if ok, missing := g.caughtUp(map[int32]int64{1: 1}, map[int32]int64{0: 2, 1: 2}); ok || missing != 1 {
		t.Fatalf("caughtUp from 1 = %v, %d missing; want false, 1", ok, missing)
	}
	if ok, _ := g.caughtUp(map[int32]int64{1: 2, 2: 5}, map[int32]int64{0: 2, 1: 2, 2: 5}); !ok {
		t.Fatal("not caught up from the log start")
	}
	g.mark(1, 1, nil)
	if ok, _ := g.caughtUp(nil, map[int32]int64{0: 2, 1: 2, 2: 0}); !ok {
		t.Fatal("not caught up")
	}
}

// TestStallFrames: the stalled client's bytes are what they claim, read
// back with kmsg.
func TestStallFrames(t *testing.T) {
	b := fetchFrame("topic", 3)
	if n := binary.BigEndian.Uint32(b); int(n) != len(b)-4 {
		t.Fatalf("frame length %d, have %d", n, len(b)-4)
	}
	body := b[4:]
	if key, ver := int16(binary.BigEndian.Uint16(body)), int16(binary.BigEndian.Uint16(body[2:])); key != 1 || ver != 11 {
		t.Fatalf("api key %d version %d", key, ver)
	}
	idLen := int(binary.BigEndian.Uint16(body[8:]))
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	if err := req.ReadFrom(body[10+idLen:]); err != nil {
		t.Fatal(err)
	}
	if len(req.Topics) != 1 || req.Topics[0].Topic != "topic" || len(req.Topics[0].Partitions) != 3 {
		t.Fatalf("decoded %+v", req.Topics)
	}

	h := halfProduce(16 << 20)
	if binary.BigEndian.Uint32(h) != 16<<20 || len(h) > 64 {
		t.Fatalf("half produce: %x", h)
	}
}

// retentionFixture is the clean fixture after retention moved both log
// starts to 4: the read back starts there, and a third group, g2, joined
// late and never received what expired before it read.
func retentionFixture() *fixture {
	f := newFixture()
	f.in.retention = true
	for p := range int32(2) {
		tp := TopicPartition{f.in.topic, p}
		f.in.starts[p] = 4
		f.in.log[tp] = f.in.log[tp][4:]
	}
	g := newGroup("g2")
	for tp, recs := range f.in.log {
		for _, r := range recs {
			g.mark(tp.Partition, r.Offset, r.Value)
		}
	}
	f.in.groups = append(f.in.groups, g)
	return f
}

func TestVerifyRetention(t *testing.T) {
	f := retentionFixture()
	if p := f.verify(); p.total != 0 {
		t.Fatalf("clean run with retention: %d problems: %v", p.total, p.list)
	}
	// Acknowledged offsets 0 and 2 of each partition expired before g2.
	if g := f.in.groups[2]; g.expired != 4 {
		t.Fatalf("g2 expired %d, want 4", g.expired)
	}
	// Everything expired: nothing to read, nothing missing.
	f = newFixture()
	f.in.retention = true
	for p := range int32(2) {
		f.in.starts[p] = 10
		f.in.log[TopicPartition{f.in.topic, p}] = nil
	}
	if p := f.verify(); p.total != 0 {
		t.Fatalf("all expired: %d problems: %v", p.total, p.list)
	}

	cases := []struct {
		name string
		edit func(f *fixture)
		want string
	}{
		{"acknowledged record above the log start lost", func(f *fixture) {
			tp := TopicPartition{"t", 0}
			f.in.log[tp] = append(f.in.log[tp][:2:2], f.in.log[tp][3:]...) // offset 6
		}, "not dense"},
		{"record at the log start lost", func(f *fixture) {
			tp := TopicPartition{"t", 1}
			f.in.log[tp] = f.in.log[tp][1:] // offset 4, unacknowledged
		}, "not dense"},
		{"value stored twice above the log start", func(f *fixture) {
			tp := TopicPartition{"t", 0}
			f.in.log[tp] = append(f.in.log[tp], Consumed{Offset: 10, Value: f.in.log[tp][1].Value})
			f.in.ends[0] = 11
		}, "stored twice"},
		{"offset read twice", func(f *fixture) {
			tp := TopicPartition{"t", 1}
			f.in.log[tp] = append(f.in.log[tp][:3:3], f.in.log[tp][2:]...)
		}, "read twice"},
		{"group missed a record above the log start", func(f *fixture) {
			g := newGroup("g3")
			for tp, recs := range f.in.log {
				for _, r := range recs {
					if tp.Partition != 0 || r.Offset != 8 {
						g.mark(tp.Partition, r.Offset, r.Value)
					}
				}
			}
			f.in.groups = append(f.in.groups, g)
		}, "group g3 never received acknowledged record"},
		{"group received a wrong value", func(f *fixture) {
			f.in.groups[0].mark(1, 7, []byte("p09-000000000009"))
		}, "two different values"},
		{"group received a wrong value once", func(f *fixture) {
			g := newGroup("g3")
			for tp, recs := range f.in.log {
				for _, r := range recs {
					v := r.Value
					if tp.Partition == 1 && r.Offset == 5 {
						v = []byte("p09-000000000009")
					}
					g.mark(tp.Partition, r.Offset, v)
				}
			}
			f.in.groups = append(f.in.groups, g)
		}, "group g3 received another value than the log's"},
		{"group received a wrong value below the log start", func(f *fixture) {
			f.in.groups[2].mark(0, 2, []byte("p09-000000000009"))
		}, "group g2 received another value than acknowledged"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := retentionFixture()
			tc.edit(f)
			p := f.verify()
			found := false
			for _, s := range p.list {
				found = found || strings.Contains(s, tc.want)
			}
			if !found {
				t.Fatalf("problems %q, want one containing %q", p.list, tc.want)
			}
		})
	}
}

package planner

import (
	"testing"
	"time"

	"sluice.dev/meta"
)

func obj(i byte, level int8, size int64, committed time.Time) Object {
	return Object{ID: meta.SegmentID{i}, Level: level, Size: size, LiveBytes: size, Committed: committed}
}

func TestCompactionPlans(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	cfg := Config{}.WithDefaults()
	const mib = 1 << 20
	old := now.Add(-time.Hour)
	cases := []struct {
		name  string
		objs  []Object
		busy  map[byte]bool
		want  []byte // object ids of the plan, nil for none
		level int8
	}{
		{name: "nothing", want: nil},
		{name: "young objects wait", objs: []Object{obj(1, 0, 40*mib, now), obj(2, 0, 40*mib, now)}, want: nil},
		{name: "target reached", objs: []Object{obj(1, 0, 15*mib, old), obj(2, 0, 15*mib, old), obj(3, 0, 10*mib, old), obj(4, 0, 10*mib, old), obj(5, 0, 15*mib, old), obj(6, 0, 15*mib, old), obj(7, 0, 1*mib, old)},
			want: []byte{1, 2, 3, 4, 5, 6}, level: 1}, // 80 MiB
		{name: "large objects are never rewritten", objs: []Object{obj(1, 0, 16*mib, old), obj(2, 0, 20*mib, old)}, want: nil},
		{name: "waiting for the target", objs: []Object{obj(1, 0, mib, now.Add(-time.Minute)), obj(2, 0, mib, now.Add(-time.Minute))}, want: nil},
		{name: "max wait passed", objs: []Object{obj(1, 0, mib, now.Add(-3*time.Minute)), obj(2, 0, mib, now.Add(-time.Minute))},
			want: []byte{1, 2}, level: 1},
		{name: "a single object is not rewritten", objs: []Object{obj(1, 0, mib, old)}, want: nil},
		{name: "busy objects are skipped", objs: []Object{obj(1, 0, mib, old), obj(2, 0, mib, old), obj(3, 0, mib, old)}, busy: map[byte]bool{1: true},
			want: []byte{2, 3}, level: 1},
		{name: "level 1 after level 0", objs: []Object{obj(1, 1, mib, old), obj(2, 1, mib, old), obj(3, 0, mib, now)},
			want: []byte{1, 2}, level: 2},
		{name: "level 1 waits twice as long", objs: []Object{obj(1, 1, mib, now.Add(-3*time.Minute)), obj(2, 1, mib, now.Add(-3*time.Minute))}, want: nil},
		{name: "tiers at level 2: no merge that does not double", objs: []Object{obj(1, 2, 8*mib, old), obj(2, 2, mib, old)}, want: nil},
		{name: "tiers at level 2: doubling merges", objs: []Object{obj(1, 2, 4*mib, old), obj(2, 2, 4*mib, old)}, want: []byte{1, 2}, level: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, ok := Compaction(c.objs, func(id meta.SegmentID) bool { return c.busy[id[0]] }, now, cfg)
			if ok != (c.want != nil) {
				t.Fatalf("planned %v (%+v), want %v", ok, p, c.want)
			}
			if !ok {
				return
			}
			if p.Level != c.level || len(p.Objects) != len(c.want) {
				t.Fatalf("plan %+v, want level %d objects %v", p, c.level, c.want)
			}
			for i, id := range p.Objects {
				if id[0] != c.want[i] {
					t.Fatalf("plan objects %v, want %v", p.Objects, c.want)
				}
			}
		})
	}
}

package controller

import (
	"cmp"
	"slices"
	"time"

	"sluice.dev/meta"
	"sluice.dev/meta/planner"
)

// Objects (docs/compaction.md, "Objects and references"). Meta knows
// every object an index entry points into, and how many entries do: the
// reference count. An object whose count drops to zero is dead from that
// moment; the garbage collector deletes it once it has been dead for
// Config.GCGrace. Nothing here is stored: at Open the live objects are
// rebuilt from the index (an entry's value holds its object's key, size
// and level), and objects that died before a restart are found again by
// the orphan pass, which waits a full grace period after Open before it
// names anything (jobs.go), so a restart never shortens a grace.
//
// Only the committer changes objects, in mergeLocked (under mu); readers
// take mu for reading. A dead object never comes back to life: no
// operation adds an entry that points into an existing object.

// objState is one object.
type objState struct {
	id        meta.SegmentID
	key       string
	size      int64
	level     int8
	committed int64 // unix ms, meta's clock (the id's time for objects loaded at Open)
	refs      int32 // index entries pointing into the object
	live      int64 // their bytes
	deadSince int64 // unix ms; 0 while refs > 0
	// parts hints where the object's entries are, per partition: the
	// first and last offset it ever held there. Entries may have left
	// since (trims, swaps); readers check SegmentID.
	parts []objPart
}

type objPart struct {
	tp          tpKey
	first, last int64
}

// objects is the set of known objects, in commit order for the planner.
type objects struct {
	byID  map[meta.SegmentID]*objState
	order []*objState // commit order; may hold forgotten objects (byID says)
	gone  int         // forgotten objects still in order
}

func newObjects() *objects {
	return &objects{byID: make(map[meta.SegmentID]*objState)}
}

// ensure returns the object e points into, creating it as live at level.
func (o *objects) ensure(id meta.SegmentID, key string, size int64, level int8, nowMs int64) *objState {
	if ob := o.byID[id]; ob != nil {
		return ob
	}
	ob := &objState{id: id, key: key, size: size, level: level, committed: nowMs}
	o.byID[id] = ob
	o.order = append(o.order, ob)
	return ob
}

// ref counts a new entry pointing into its object.
func (o *objects) ref(e *meta.IndexEntry, level int8, nowMs int64) {
	if e.IsMarker() {
		return // a transaction marker has no object (issue 15)
	}
	ob := o.ensure(e.SegmentID, e.ObjectKey, e.ObjectSize, level, nowMs)
	ob.refs++
	ob.live += e.Length
	ob.deadSince = 0 // (only an object born dead in this group can be dead here)
	tp := tpKey{topic: e.TopicID, part: e.Partition}
	if n := len(ob.parts); n > 0 && ob.parts[n-1].tp == tp {
		p := &ob.parts[n-1]
		p.first, p.last = min(p.first, e.BaseOffset), max(p.last, e.LastOffset)
		return
	}
	ob.parts = append(ob.parts, objPart{tp: tp, first: e.BaseOffset, last: e.LastOffset})
}

// unref drops an entry that left the index; its object dies when it was
// the last.
func (o *objects) unref(e *meta.IndexEntry, nowMs int64) {
	if e.IsMarker() {
		return
	}
	ob := o.byID[e.SegmentID]
	if ob == nil || ob.refs <= 0 {
		// Invariant: every entry in the index was counted.
		panic("BUG: meta: unref of an entry whose object has no references: " + e.SegmentID.String())
	}
	ob.refs--
	ob.live -= e.Length
	if ob.refs == 0 {
		ob.deadSince = max(nowMs, 1)
		ob.live = 0
		ob.parts = nil
	}
}

// bornDead marks an object that a commit accepted but no entry points
// into (every chunk was a duplicate or refused; a compaction whose every
// entry was refused): dead at once.
func (o *objects) bornDead(id meta.SegmentID, key string, size int64, level int8, nowMs int64) {
	ob := o.ensure(id, key, size, level, nowMs)
	if ob.refs == 0 && ob.deadSince == 0 {
		ob.deadSince = max(nowMs, 1)
	}
}

// forget drops deleted objects.
func (o *objects) forget(ids []meta.SegmentID) {
	for _, id := range ids {
		if ob := o.byID[id]; ob != nil && ob.refs == 0 {
			delete(o.byID, id)
			o.gone++
		}
	}
	if o.gone > 1024 && o.gone > len(o.order)/2 {
		o.order = slices.DeleteFunc(o.order, func(ob *objState) bool { return o.byID[ob.id] != ob })
		o.gone = 0
	}
}

// sortLoaded puts objects loaded at Open in id order, which is creation
// order up to the writers' clocks: the closest to commit order the
// store can tell.
func (o *objects) sortLoaded() {
	slices.SortFunc(o.order, func(a, b *objState) int {
		return cmp.Compare(string(a.id[:]), string(b.id[:]))
	})
}

// planInput lists the live objects in commit order for the planner.
func (o *objects) planInput() []planner.Object {
	out := make([]planner.Object, 0, len(o.byID))
	for _, ob := range o.order {
		if o.byID[ob.id] != ob || ob.refs == 0 {
			continue
		}
		out = append(out, planner.Object{ID: ob.id, Level: ob.level, Size: ob.size, LiveBytes: ob.live, Committed: msTime(ob.committed)})
	}
	return out
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

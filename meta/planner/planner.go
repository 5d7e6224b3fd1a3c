// Package planner decides which objects a compaction job rewrites
// (docs/compaction.md, "Compaction: levels"). It is pure: the controller
// hands it a snapshot of the live objects and commits what the jobs
// return; the planner reads no store and holds no state, so the same
// snapshot always yields the same plan.
package planner

import (
	"time"

	"sluice.dev/meta"
)

// Object is what the planner needs to know of one live object.
type Object struct {
	ID    meta.SegmentID
	Level int8
	// Size is the object's size; LiveBytes the bytes of index entries
	// that still point into it.
	Size      int64
	LiveBytes int64
	// Committed is when meta accepted the object (meta's clock).
	Committed time.Time
}

// Config holds the planner's thresholds.
type Config struct {
	// LargeObjectBytes: objects at least this large are never
	// rewritten (default 16 MiB).
	LargeObjectBytes int64
	// TargetObjectBytes: a job takes objects until their live bytes
	// reach this (default 80 MiB: objects come out a little over it, and
	// one GET per object of a cold catch-up read is then 12.8 GETs per
	// GiB, under the 16 the issue allows; at 64 MiB it was 16.8).
	TargetObjectBytes int64
	// MinAge: objects younger than this are left to tail readers
	// (default 30 s).
	MinAge time.Duration
	// MaxWait: a level-0 candidate waits at most this long for a job to
	// fill up to TargetObjectBytes (default 2 min); each level doubles
	// it.
	MaxWait time.Duration
	// MaxLevel caps output levels (default 8).
	MaxLevel int8
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.LargeObjectBytes == 0 {
		c.LargeObjectBytes = 16 << 20
	}
	if c.TargetObjectBytes == 0 {
		c.TargetObjectBytes = 80 << 20
	}
	if c.MinAge == 0 {
		c.MinAge = 30 * time.Second
	}
	if c.MaxWait == 0 {
		c.MaxWait = 2 * time.Minute
	}
	if c.MaxLevel == 0 {
		c.MaxLevel = 8
	}
	return c
}

// Plan is one compaction job: Objects (in commit order) are rewritten
// into one object of Level.
type Plan struct {
	Level     int8
	Objects   []meta.SegmentID
	LiveBytes int64
}

// Compaction returns the next job to run, if any. objs are the live
// objects in commit order; busy reports objects that a leased job
// already covers. Lower levels go first: they hold the most objects per
// byte.
func Compaction(objs []Object, busy func(meta.SegmentID) bool, now time.Time, cfg Config) (Plan, bool) {
	cfg = cfg.WithDefaults()
	for level := int8(0); level < cfg.MaxLevel; level++ {
		if p, ok := planLevel(objs, level, busy, now, cfg); ok {
			return p, true
		}
	}
	return Plan{}, false
}

// Candidates reports, for visibility, the live bytes that wait for
// compaction: objects smaller than LargeObjectBytes below MaxLevel.
func Candidates(objs []Object, cfg Config) (objects int, liveBytes int64) {
	cfg = cfg.WithDefaults()
	for i := range objs {
		if o := &objs[i]; o.Size < cfg.LargeObjectBytes && o.Level < cfg.MaxLevel && o.LiveBytes > 0 {
			objects++
			liveBytes += o.LiveBytes
		}
	}
	return objects, liveBytes
}

func planLevel(objs []Object, level int8, busy func(meta.SegmentID) bool, now time.Time, cfg Config) (Plan, bool) {
	wait := cfg.MaxWait << min(level, 16)
	p := Plan{Level: level + 1}
	var (
		oldest  time.Time
		largest int64
	)
	for i := range objs {
		o := &objs[i]
		if o.Level != level || o.Size >= cfg.LargeObjectBytes || o.LiveBytes <= 0 || (busy != nil && busy(o.ID)) {
			continue
		}
		if now.Sub(o.Committed) < cfg.MinAge {
			break // commit order: the rest are younger still
		}
		if len(p.Objects) == 0 {
			oldest = o.Committed
		}
		p.Objects = append(p.Objects, o.ID)
		p.LiveBytes += o.LiveBytes
		largest = max(largest, o.LiveBytes)
		if p.LiveBytes >= cfg.TargetObjectBytes {
			return p, len(p.Objects) > 1
		}
	}
	if len(p.Objects) < 2 || now.Sub(oldest) < cfg.MinAge+wait {
		return Plan{}, false
	}
	// From level 2 on, small objects merge in tiers: only when the
	// merge at least doubles the largest input, so that a slow
	// cluster's bytes are rewritten O(log n) times, not once per wait.
	if level >= 2 && p.LiveBytes < cfg.LargeObjectBytes && p.LiveBytes < 2*largest {
		return Plan{}, false
	}
	return p, true
}

package meta

import (
	"context"
	"errors"
	"time"
)

// Background jobs (issue 12; docs/compaction.md). Meta never touches the
// bucket, so every job that reads, writes or deletes objects runs on an
// agent with the jobs role: meta plans a job and leases it to one agent,
// the agent does the object-store work, and meta commits the result
// through its committer like any write.
//
// Safety never rests on the lease. A lease only spreads work: a result
// that arrives late, twice, or from an agent whose lease expired is
// checked against the state at commit time (a compaction swaps only
// entries that still point at the job's sources), so the worst a lost or
// duplicated job costs is an object nothing references, which the
// garbage collector deletes.

// JobKind names a kind of background job.
type JobKind int8

const (
	// JobCompact rewrites small objects into one larger object in which
	// each partition's data is contiguous, then swaps the index entries.
	JobCompact JobKind = 1
	// JobDelete deletes objects that no index entry has referenced for
	// the grace period.
	JobDelete JobKind = 2
	// JobOrphans lists the bucket and deletes objects that were uploaded
	// but never committed (an agent died between PUT and commit).
	JobOrphans JobKind = 3
	// JobCleanKeys cleans one partition of a compacted topic
	// (cleanup.policy=compact): the latest record of each key stays. It
	// is a CompactJob with Clean set, polled more often than size
	// compaction so that the compaction lag stays short.
	JobCleanKeys JobKind = 4
)

// LevelCleaned is the level of an object written by key cleaning. Size
// compaction never rewrites such objects (their level is above every
// planner level): the next cleaning does.
const LevelCleaned int8 = 64

func (k JobKind) String() string {
	switch k {
	case JobCompact:
		return "compact"
	case JobDelete:
		return "delete"
	case JobOrphans:
		return "orphans"
	case JobCleanKeys:
		return "clean"
	}
	return "unknown"
}

// Job is one leased unit of work. Exactly one of Compact, Delete and
// Orphans is set, as Kind says.
type Job struct {
	ID   uint64
	Kind JobKind
	// LeaseTTL is how long the job is this agent's: after it meta may
	// lease the same work to another agent. An agent that cannot finish
	// in time gives up (its result would only be refused or wasted).
	LeaseTTL time.Duration
	Compact  *CompactJob
	Delete   *DeleteJob
	Orphans  *OrphansJob
}

// CompactJob asks for Sources to be rewritten into one new object.
type CompactJob struct {
	// Level is the output object's level: 1 for objects made from
	// agents' segments (level 0), one more than its inputs' otherwise.
	Level int8
	// Output is the new object's id; its key is ObjectKey(Output). Meta
	// picks it, so that its age on meta's clock bounds how late a result
	// may come (see ErrSegmentExpired) and the orphan collector can tell
	// an abandoned output from one still being written.
	Output SegmentID
	// MaxEntryBytes bounds each index entry of the output: the agent
	// splits a partition's run at batch boundaries so that no entry is
	// longer (a fetch reads whole entries), unless one batch is.
	MaxEntryBytes int64
	// Sources are the index entries to copy, grouped by partition and in
	// offset order within one; entries of one partition that are adjacent
	// in offsets may be merged into one output entry.
	Sources []IndexEntry
	// Clean, when set (JobCleanKeys), asks for the records of Sources,
	// all of one partition and adjacent in offsets, to be cleaned by key
	// instead of copied: the output still covers exactly their offsets.
	Clean *CleanSpec
}

// CleanSpec is what a key cleaning needs beside its sources.
type CleanSpec struct {
	// DirtyStart is the first offset not cleaned before: keys are indexed
	// from it on; below it is the clean part.
	DirtyStart int64
	// TombstoneHorizon (unix ms): a tombstone in the clean part whose
	// timestamp is older goes (now - delete.retention.ms); so does a
	// commit marker there whose transaction kept no record.
	TombstoneHorizon int64
	// Aborted lists the partition's aborted transactions that overlap
	// the sources and the key sources (issue 15): their data is dropped.
	// Everything ends below the last stable offset, so every
	// transaction in them ended.
	Aborted []AbortedTxn
	// KeyEnd, when set, is the last offset whose keys the job judges
	// its sources against: a window of a pass over a log too large for
	// one job (meta's cleanPass). The key map must then be complete up
	// to KeyEnd, or the job fails: every window of a pass is judged
	// against the same keys. Unset (0), it is the sources' last offset
	// and a map that fills judges what it holds.
	KeyEnd int64
	// KeySources are the entries of [DirtyStart, KeyEnd] after the
	// sources, in offset order: the job reads their keys, and does not
	// rewrite them.
	KeySources []IndexEntry
	// FromLogStart: the sources start at the partition's log start, so
	// every transaction ending in them began in them or is gone below
	// the log start (a commit marker may go, see jobs/keycompact.go).
	FromLogStart bool
}

// CompactResult is what a compaction job wrote.
type CompactResult struct {
	JobID     uint64
	Output    SegmentID
	ObjectKey string
	Size      int64
	// Entries index the output object. Each covers exactly the offsets of
	// one or more Sources of its partition that are adjacent in offsets,
	// so meta can replace those sources by it.
	Entries   []IndexEntry
	BytesRead int64
	// CleanedUpTo, for a JobCleanKeys result, is the last offset whose
	// records were judged: the partition's next cleaning indexes from
	// the offset after it (all of the sources unless the key map filled
	// up). Ignored for other jobs.
	CleanedUpTo int64
	// Unchanged: a window of a windowed key cleaning (CleanSpec.KeyEnd
	// past the sources) kept every record of its sources in place, so
	// nothing was written: no object, no entries. Meta moves the pass on
	// as if the window were swapped in.
	Unchanged bool
}

// CompactOutcome tells what meta did with a CompactResult: entries
// swapped in, and entries refused because the index no longer held
// their sources unchanged (retention, DeleteRecords, a topic delete or
// another compaction got there first). Refused ranges are garbage in the
// output object; when nothing was swapped the whole object is.
type CompactOutcome struct {
	Swapped int
	Refused int
}

// DeleteJob asks for objects to be deleted. Every one has been
// unreferenced for at least the grace period.
type DeleteJob struct {
	Objects []ObjectRef
}

// ObjectRef names one object in the bucket.
type ObjectRef struct {
	ID   SegmentID
	Key  string
	Size int64
}

// DeleteResult reports the objects a DeleteJob deleted (a missing object
// counts as deleted).
type DeleteResult struct {
	JobID   uint64
	Deleted []SegmentID
}

// OrphansJob asks for one pass over the bucket under Prefix. The agent
// offers every object whose ModTime is older than MinAge to meta
// (CheckOrphans) and deletes those meta returns.
type OrphansJob struct {
	Prefix string
	MinAge time.Duration
}

// OrphansResult reports one pass of the orphan collector.
type OrphansResult struct {
	JobID        uint64
	Listed       int64 // objects listed
	Deleted      int64 // orphans deleted
	DeletedBytes int64
}

// JobsClient is what a jobs agent needs of the control plane, beside
// Client. Every method is safe to retry.
type JobsClient interface {
	// AcquireJob leases the next due job of one of kinds to agentID.
	// ok is false when none is due.
	AcquireJob(ctx context.Context, agentID string, kinds []JobKind) (job Job, ok bool, err error)
	// CompleteCompaction swaps the result's entries into the index
	// atomically (readers see the old entries or the new, never a gap or
	// an overlap) and makes the source objects that lost their last
	// reference eligible for deletion after the grace period.
	CompleteCompaction(ctx context.Context, r CompactResult) (CompactOutcome, error)
	// CompleteDelete forgets deleted objects.
	CompleteDelete(ctx context.Context, r DeleteResult) error
	// CheckOrphans returns the keys, among those offered, that name no
	// object meta knows and that no commit can claim any more (their id
	// is older than the grace period on meta's clock, and commits of
	// segments that old are refused). Keys that are not object keys are
	// never returned.
	CheckOrphans(ctx context.Context, jobID uint64, keys []string) ([]string, error)
	// CompleteOrphans ends an orphan pass.
	CompleteOrphans(ctx context.Context, r OrphansResult) error
	// AbandonJob gives a lease back early (the agent is stopping or the
	// job failed) so that another agent can take the work now.
	AbandonJob(ctx context.Context, jobID uint64, reason string) error
}

// ErrSegmentExpired refuses a commit (of an agent's segment or of a
// compaction's output) whose object id is older than meta accepts: the
// orphan collector may already have deleted such an object. The agent
// must upload the data again under a new id. Retriable.
var ErrSegmentExpired = errors.New("meta: segment id too old to commit (upload it again)")

// ErrJobLost answers a result or a renewal for a job meta no longer
// leases to the caller. Safe to ignore: the work was wasted, not harmful.
var ErrJobLost = errors.New("meta: job lease lost")

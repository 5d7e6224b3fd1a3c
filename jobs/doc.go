// Package jobs is the background work of agents with the jobs role
// (issue 12, docs/compaction.md): compaction of small objects into large
// ones, deletion of objects nothing references, collection of orphans,
// and the cleaning of compacted topics. Meta plans and leases the jobs
// and commits their results; this package only reads, writes and deletes
// objects, which meta cannot (it holds no bucket credentials).
//
// # Files
//
//	runner.go      Runner: asks meta for work every interval, one job at a time
//	compact.go     compaction: read source ranges, lay out per partition, PUT, report
//	gc.go          deletion of dead objects and the orphan pass over the bucket
//	clean.go       key cleaning of a compacted topic's partition (JobCleanKeys)
//	metrics.go     metrics per job kind
//	keymap.go      the key -> latest offset map of compacted topics
//	keycompact.go  the record-level cleaning of a compacted topic's range
//
// # Invariants
//
//  1. A job never deletes an object meta did not name: dead objects come
//     from a DeleteJob, orphans only from CheckOrphans' answer.
//  2. A compaction output is complete in the bucket (Put returned) before
//     meta hears of it; meta swaps entries only after that.
//  3. Memory is bounded: one job at a time per Runner, and a compaction
//     job larger than Config.MaxJobBytes is given back unread.
package jobs

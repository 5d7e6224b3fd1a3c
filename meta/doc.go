// Package meta is Sluice's control plane: topics, the offset index,
// producer state, and the commit protocol agents use to turn an uploaded
// segment object into committed offsets. It never sees a record's bytes
// (DESIGN.md invariant 5).
//
// # Files
//
//	client.go     Client, the network-shaped interface agents use
//	types.go      values that cross the agent/meta boundary, errors
//	service.go    Service (in-process Client), Config, Open/Close, reads
//	committer.go  the single writer goroutine and its group commit
//	apply.go      what each write op does: topics, segments, producer ids
//	producer.go   idempotent producer sequence checks (Kafka semantics)
//	state.go      in-memory state, the per-group overlay, the index list
//	kv.go         KV, the store interface; the embedded bbolt store
//	postgres.go   the PostgreSQL KV, leadership among replicas (fencing)
//	store.go      what is stored: buckets, keys, encodings, load
//	registry.go   live agents (in memory), leases renewed by heartbeats
//	groups.go, offsets.go, topics_admin.go, timestamps.go: see their heads
//	watch.go      commit watchers
//	metrics.go    package-level metrics
//
// # The write path
//
// Every mutation (CreateTopics, CommitSegment, InitProducerID) becomes an
// op sent to one committer goroutine. The committer takes whatever is
// queued (up to maxGroupOps), computes every op's answer against the
// committed state plus an overlay holding this group's changes, writes the
// overlay in ONE store transaction (one fsync), and only then merges the
// overlay into the in-memory state under the write lock, publishes commit
// events to watchers and answers the ops, in that order.
//
// # Invariants
//
//  1. Nothing is visible to a reader (Lookup, PartitionStates, Topics,
//     Watch, a repeated CommitSegment) before it is durable in the store.
//  2. A failed write leaves the in-memory state exactly as it was: the
//     overlay is dropped and every op of the group gets the error (their
//     answers may have depended on each other's changes).
//  3. A partition's index entries are sorted by BaseOffset and dense:
//     entry[i+1].BaseOffset == entry[i].LastOffset+1, the first holds
//     LogStartOffset (starts at it, or before it once DeleteRecords moved
//     it) and the last ends at HighWatermark-1. Open checks
//     this for every partition and refuses a store that breaks it.
//  4. Only the committer goroutine mutates state; it does so holding
//     Service.mu for writing. The committer may therefore read state
//     without the lock; everybody else takes Service.mu for reading.
//  5. Values handed to callers share no memory with the state.
//
// # Lock order
//
// Service.mu and Service.wmu are never held together: the committer
// releases mu before it publishes under wmu. Neither is held across I/O;
// the store transaction runs with no lock held (readers go on reading the
// previous state while the group is fsynced).
package meta

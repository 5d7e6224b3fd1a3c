// Package controller is the control plane's state machine: topics, the
// offset index, producer state, committed offsets and the agent registry,
// kept in memory and made durable in a meta/kv store by one committer.
// Service implements meta.Client in-process; meta/rpc puts a network in
// front of it and meta/host runs one per virtual cluster. It never sees a
// record's bytes (DESIGN.md invariant 5).
//
// # Files
//
//	service.go          Service, Config, Open/Close, reads
//	committer.go        the single writer goroutine and its group commit
//	apply.go            what each write op does: topics, segments, producer ids
//	producer.go         idempotent producer sequence checks (Kafka semantics)
//	producer_expiry.go  expiry of idle producer ids
//	state.go            in-memory state, the per-group overlay, the index list
//	store.go            what is stored: keys, encodings, load (the bucket
//	                    names are meta/kv's)
//	topics_admin.go     DeleteTopics, CreatePartitions, config changes
//	records.go          DeleteRecords
//	retention.go        retention.ms and retention.bytes
//	timestamps.go       FindTimestamp, the index scan without the lock
//	offsets.go          committed offsets of consumer groups, their expiry
//	groups.go           the group API: the meta/groups coordinator plus
//	                    offsets written through the committer
//	registry.go         live agents (in memory), leases renewed by heartbeats
//	janitors.go         the periodic background passes
//	objects.go          objects the index points into, reference counts, death
//	jobs.go             background jobs: leases, planning, completions (issue 12)
//	swap.go             the atomic swap of a compaction or cleaning result
//	watch.go            commit watchers
//	metrics.go          package-level metrics
//	txn.go              the transaction coordinator (issue 15): state,
//	                    EndTxn's markers, LSO, aborted index, timeouts
//	store_txn.go        what transactions store: txns, txnaborted, markers
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
// previous state while the group is fsynced). The group coordinator's
// locks come before Service.mu: groups.Coordinator.mu → its groups' mu →
// Service.mu (read, through groupOffsets); the committer calls into the
// coordinator (Active, AdmitNewGroup) holding no lock of its own.
package controller

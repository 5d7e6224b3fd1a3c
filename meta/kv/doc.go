// Package kv is the durable store under the control plane: KV, named
// buckets of byte keys in byte order with atomic, durable transactions,
// and its two implementations, plus the leadership among meta replicas
// that share a PostgreSQL database. What is stored in the buckets belongs
// to their writers (meta/controller/store.go, meta/host/keys.go); this
// package knows only the bucket names.
//
// # Files
//
//	kv.go        KV and KVTx; the embedded bbolt store (OpenBolt)
//	postgres.go  the PostgreSQL store (OpenPostgres): one round trip per
//	             Update, the commit sequence, settling an unknown outcome;
//	             leadership (AcquireLeadership, Lease, CurrentLeader) and
//	             the fence every write group passes
//	buckets.go   the bucket names every store holds
//
// The same test suite runs against both stores: this package's tests
// compare PostgreSQL with bbolt operation by operation, and
// SLUICE_META_STORE=postgres runs meta/controller's suite on PostgreSQL.
package kv

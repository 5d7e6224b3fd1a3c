package kv

// The buckets of a store. The bbolt store creates them all when it opens;
// the PostgreSQL store refuses any other name (checkBucket), as bbolt
// does. What goes in them, keys and encodings, belongs to the state
// machine that writes them: meta/controller/store.go for a cluster's
// store, meta/host/keys.go for the agent keys of the system store.
var (
	BucketMeta       = []byte("meta")
	BucketTopics     = []byte("topics")
	BucketPartitions = []byte("partitions")
	BucketIndex      = []byte("index")
	BucketProducers  = []byte("producers")
	BucketSegments   = []byte("segments")
	BucketOffsets    = []byte("offsets")
	// BucketKeys holds agent keys, in the system store of meta/host
	// only (hashed; see meta/host/keys.go).
	BucketKeys = []byte("keys")
	// BucketScram holds a cluster's SCRAM credentials (salt,
	// iterations, stored key, server key; never a password) and
	// BucketACLs its ACL bindings (docs/security.md).
	BucketScram = []byte("scram")
	BucketACLs  = []byte("acls")
	// Transactions (issue 15): BucketTxns holds transactional ids'
	// coordinator state, BucketTxnAborted the aborted transactions
	// index of each partition (meta/controller/store_txn.go).
	BucketTxns       = []byte("txns")
	BucketTxnAborted = []byte("txnaborted")
)

// allBuckets lists every bucket above.
var allBuckets = [][]byte{BucketMeta, BucketTopics, BucketPartitions, BucketIndex, BucketProducers, BucketSegments, BucketOffsets, BucketKeys, BucketScram, BucketACLs, BucketTxns, BucketTxnAborted}

// boltFile is the embedded store's file in its directory.
const boltFile = "meta.db"

package meta

// ListOffsets by timestamp (FindTimestamp); the scan behind it is
// meta/controller/timestamps.go.

// TimestampQuery selects what FindTimestamp looks for.
type TimestampQuery int8

const (
	// FirstAtOrAfter finds the first entry holding a record with a
	// timestamp at or after the given one (ListOffsets by timestamp).
	FirstAtOrAfter TimestampQuery = iota
	// MaxTimestamp finds the entry holding the partition's largest
	// timestamp (ListOffsets -3, KIP-734).
	MaxTimestamp
)

// TimestampResult answers FindTimestamp.
type TimestampResult struct {
	Entry          IndexEntry
	Found          bool
	LogStartOffset int64
	HighWatermark  int64
}

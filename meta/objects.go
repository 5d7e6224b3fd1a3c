package meta

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ObjectPrefix is the key prefix of every object Sluice writes to its
// bucket: agents' segments and compaction outputs alike. The orphan
// collector lists it.
const ObjectPrefix = "segments/"

// ObjectKey is where the object with this id lives in the bucket. A
// two-hex-digit hash prefix spreads objects over the store's key-range
// partitions (S3 scales request rates per prefix); the id that follows
// sorts by time.
func ObjectKey(id SegmentID) string {
	h := xxhash.Sum64(id[:])
	return fmt.Sprintf("%s%02x/%s.seg", ObjectPrefix, byte(h), hex.EncodeToString(id[:]))
}

// ParseObjectKey returns the id of the object at key, and false when key
// is not exactly what ObjectKey makes of some id (a file someone else put
// in the bucket, which the orphan collector must leave alone).
func ParseObjectKey(key string) (SegmentID, bool) {
	var id SegmentID
	rest, ok := strings.CutPrefix(key, ObjectPrefix)
	if !ok || len(rest) != 2+1+32+4 || rest[2] != '/' || !strings.HasSuffix(rest, ".seg") {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(rest[3:35])); err != nil {
		return id, false
	}
	if ObjectKey(id) != key {
		return id, false
	}
	return id, true
}

// NewSegmentID returns a fresh id whose first 8 bytes are t in unix
// nanoseconds, big-endian, so that ids sort by creation time and tell
// their age; the other 8 are random.
func NewSegmentID(t time.Time, random [8]byte) SegmentID {
	var id SegmentID
	binary.BigEndian.PutUint64(id[:8], uint64(t.UnixNano()))
	copy(id[8:], random[:])
	return id
}

// Time is when the id was made (on the clock of whoever made it).
func (id SegmentID) Time() time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(id[:8])))
}

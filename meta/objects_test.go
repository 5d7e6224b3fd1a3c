package meta

import (
	"testing"
	"time"
)

func TestObjectKeyRoundTrip(t *testing.T) {
	id := NewSegmentID(time.Unix(1700000000, 5), [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	key := ObjectKey(id)
	got, ok := ParseObjectKey(key)
	if !ok || got != id {
		t.Fatalf("ParseObjectKey(%q) = %v, %v; want %v, true", key, got, ok, id)
	}
	if !id.Time().Equal(time.Unix(1700000000, 5)) {
		t.Fatalf("Time() = %v", id.Time())
	}
	for _, bad := range []string{
		"", "segments/", key + "x", "x" + key, key[:len(key)-4] + ".tmp",
		"segments/00/" + id.String() + ".seg", // wrong hash prefix (unless it happens to be 00)
		"segments/zz/0000000000000000000000000000000g.seg",
		"other/" + key,
	} {
		if bad == key {
			continue
		}
		if _, ok := ParseObjectKey(bad); ok {
			t.Errorf("ParseObjectKey(%q) accepted a key ObjectKey never makes", bad)
		}
	}
}

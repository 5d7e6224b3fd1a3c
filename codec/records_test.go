package codec

import "testing"

func TestRecordTimestamps(t *testing.T) {
	b := appendTestBatch(nil, batchOpts{records: 5, valueSize: 3, firstTS: 1000})
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	ok := RecordTimestamps(b, h, func(d int32, ts int64) bool {
		if int64(d) != ts-1000 {
			t.Fatalf("offset delta %d at ts %d", d, ts)
		}
		got = append(got, ts)
		return true
	})
	if !ok || len(got) != 5 || got[4] != 1004 {
		t.Fatalf("ok=%v timestamps %v", ok, got)
	}
	// Stopping early, and every truncation is safe.
	n := 0
	RecordTimestamps(b, h, func(int32, int64) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("did not stop: %d", n)
	}
	for i := 0; i < len(b); i++ {
		RecordTimestamps(b[:i], h, func(int32, int64) bool { return true })
	}
	h.Attributes = 1 // gzip
	if RecordTimestamps(b, h, func(int32, int64) bool { return true }) {
		t.Fatal("compressed batch walked")
	}
}

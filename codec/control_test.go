package codec

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestControlBatch: a rendered marker is a valid v2 batch (CRC, framing,
// records as claimed) with the control and transactional bits, and its
// one record decodes, with Kafka's own message definitions, to the
// marker's type and version.
func TestControlBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		b := AppendControlBatch([]byte("prefix"), 42, 7, 3, commit, 1_700_000_000_123)[len("prefix"):]
		if len(b) != ControlBatchSize {
			t.Fatalf("size %d, want %d", len(b), ControlBatchSize)
		}
		h, err := ValidateBatch(b)
		if err != nil {
			t.Fatalf("ValidateBatch: %v", err)
		}
		if err := ValidateRecords(b, h, 1<<20); err != nil {
			t.Fatalf("ValidateRecords: %v", err)
		}
		if !h.IsControl() || !h.IsTransactional() || h.ProducerID != 7 || h.ProducerEpoch != 3 || h.BaseSequence != -1 || h.LastOffsetDelta != 0 {
			t.Fatalf("header %+v", h)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if rb.FirstOffset != 42 || rb.NumRecords != 1 || rb.FirstTimestamp != 1_700_000_000_123 {
			t.Fatalf("batch %+v", rb)
		}
		recs := rb.Records
		var r kmsg.Record
		if err := r.ReadFrom(recs); err != nil {
			t.Fatal(err)
		}
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(r.Key); err != nil {
			t.Fatal(err)
		}
		want := kmsg.ControlRecordKeyTypeAbort
		if commit {
			want = kmsg.ControlRecordKeyTypeCommit
		}
		if key.Version != 0 || key.Type != want || len(r.Value) != 6 || len(r.Headers) != 0 {
			t.Fatalf("record key %+v value %x headers %d", key, r.Value, len(r.Headers))
		}
	}
}

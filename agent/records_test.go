package agent_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kerr"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// liarBatch is the attack issue 11 reported: 61 bytes, CRC valid, claiming
// a billion records. Before records were walked it was acknowledged at
// offset 0 and the next honest batch landed at offset 1,000,000,000.
func liarBatch() []byte {
	b := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ProducerID: -1, FirstTS: time.Now().UnixMilli()})[:61]
	binary.BigEndian.PutUint32(b[23:], 1_000_000_000-1) // lastOffsetDelta
	binary.BigEndian.PutUint32(b[57:], 1_000_000_000)   // recordCount
	kafkatest.Fix(b)
	return b
}

// zstdCorrupt is an honest batch whose records are zstd-compressed and then
// damaged in the middle of the frame; the CRC is recomputed so only
// decompression can tell.
func zstdCorrupt(t *testing.T) []byte {
	t.Helper()
	plain := kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 10, ValueSize: 100, ProducerID: -1, FirstTS: time.Now().UnixMilli()})
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(plain[61:], nil)
	z[len(z)/2] ^= 0x55
	b := append(append([]byte(nil), plain[:61]...), z...)
	b[22] |= 4 // attributes: zstd
	kafkatest.Fix(b)
	return b
}

// A batch whose records are not what its header claims fails its own
// partition with INVALID_RECORD and stores nothing; the good partition of
// the same request is stored; the next honest batch to the bad partition
// lands at offset 0.
func TestLyingBatchFailsOnlyItsPartition(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	createTopic(t, c.addr(), "liar", 3)
	good := func() []byte {
		return kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 3, ValueSize: 20, ProducerID: -1, FirstTS: time.Now().UnixMilli()})
	}
	codes, offsets := produceRaw(t, c.addr(), "liar", map[int32][]byte{0: good(), 1: liarBatch(), 2: zstdCorrupt(t)})
	if codes[0] != 0 || offsets[0] != 0 {
		t.Fatalf("good partition: code %d offset %d", codes[0], offsets[0])
	}
	for p := int32(1); p <= 2; p++ {
		if codes[p] != kerr.InvalidRecord.Code {
			t.Fatalf("partition %d: code %d (%v), want INVALID_RECORD", p, codes[p], kerr.ErrorForCode(codes[p]))
		}
	}
	// A good batch after a bad one in the same partition fails with it:
	// the partition is all or nothing.
	codes, _ = produceRaw(t, c.addr(), "liar", map[int32][]byte{1: append(good(), liarBatch()...)})
	if codes[1] != kerr.InvalidRecord.Code {
		t.Fatalf("good+liar in one partition: code %d", codes[1])
	}
	// Nothing of the refused batches took offsets.
	codes, offsets = produceRaw(t, c.addr(), "liar", map[int32][]byte{1: good(), 2: good()})
	for p := int32(1); p <= 2; p++ {
		if codes[p] != 0 || offsets[p] != 0 {
			t.Fatalf("partition %d after the refused batches: code %d base offset %d, want 0 at 0", p, codes[p], offsets[p])
		}
	}
	cl := consumeClient(t, c.addr(), "liar")
	recs := pollN(t, cl, 9)
	per := map[int32]int{}
	for _, r := range recs {
		per[r.Partition]++
		if !bytes.HasPrefix(r.Key, []byte("key-")) {
			t.Fatalf("unexpected record %q", r.Key)
		}
	}
	if per[0] != 3 || per[1] != 3 || per[2] != 3 {
		t.Fatalf("records per partition %v, want 3 each", per)
	}
}

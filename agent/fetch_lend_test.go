package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/codec"
	"sluice.dev/internal/kafkatest"
)

// TestFetchLendsCachedBlocks (issue 13, target 5): fetch responses refer
// to the cached blocks for batches of at least 4 KiB instead of copying
// them, and copy the small ones. Read back raw, every batch of both kinds
// carries the offsets meta assigned and a CRC that holds; read back by
// franz-go, every record is where it was produced.
func TestFetchLendsCachedBlocks(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	createTopic(t, c.addr(), "lend", 2)
	value := func(p int32, b, i int) []byte {
		return fmt.Appendf(bytes.Repeat([]byte{'.'}, 900), "p%d-b%d-r%d", p, b, i)
	}
	const rounds, perRound = 3, 6
	records := map[int32]int{} // per partition
	for r := range rounds {
		batches := map[int32][]byte{}
		for p := range int32(2) {
			for b := range perRound {
				n := 1 // a batch of about 1 KiB: copied
				if b%2 == 1 {
					n = 16 // about 15 KiB: lent
				}
				bi := r*perRound + b
				batches[p] = kafkatest.AppendBatch(batches[p], kafkatest.BatchOpts{Records: n, ProducerID: -1,
					Value: func(i int) []byte { return value(p, bi, i) }})
				records[p] += n
			}
		}
		codes, _ := produceRaw(t, c.addr(), "lend", batches)
		for p, code := range codes {
			if code != 0 {
				t.Fatalf("produce to %d: %v", p, kerr.ErrorForCode(code))
			}
		}
	}

	lent0, copied0 := metricValue(t, "sluice_fetch_lent_bytes_total"), metricValue(t, "sluice_fetch_copied_bytes_total")
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for p := range int32(2) {
		req := fetchRequest("lend", 8<<20)
		req.Topics[0].Partitions[0].Partition = p
		resp, err := conn.RoundTrip(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		rp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if rp.ErrorCode != 0 {
			t.Fatalf("fetch %d: %v", p, kerr.ErrorForCode(rp.ErrorCode))
		}
		next := int64(0)
		if err := codec.SplitBatches(rp.RecordBatches, func(b []byte) error {
			h, err := codec.ValidateBatch(b)
			if err != nil {
				return err
			}
			if h.BaseOffset != next || h.PartitionLeaderEpoch != 0 {
				return fmt.Errorf("a batch at offset %d, epoch %d; want offset %d, epoch 0", h.BaseOffset, h.PartitionLeaderEpoch, next)
			}
			next += int64(h.LastOffsetDelta) + 1
			return nil
		}); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
		if next != int64(records[p]) {
			t.Fatalf("partition %d: %d records fetched, want %d", p, next, records[p])
		}
	}
	lent, copied := metricValue(t, "sluice_fetch_lent_bytes_total")-lent0, metricValue(t, "sluice_fetch_copied_bytes_total")-copied0
	// Nine 15 KiB batches a partition are lent, nine 1 KiB ones copied.
	if lent < 2*9*14<<10 || copied < 2*9*900 {
		t.Fatalf("lent %.0f bytes and copied %.0f; want at least %d lent and %d copied", lent, copied, 2*9*14<<10, 2*9*900)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics("lend"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type pos struct{ b, i int }
	next := map[int32]int64{}
	want := map[int32]pos{}
	for got := 0; got < records[0]+records[1]; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", got, records[0]+records[1])
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got++
			w := want[r.Partition]
			n := 1
			if w.b%2 == 1 {
				n = 16
			}
			if r.Offset != next[r.Partition] || !bytes.Equal(r.Value, value(r.Partition, w.b, w.i)) {
				t.Fatalf("partition %d offset %d (want %d): value %q, want %q", r.Partition, r.Offset, next[r.Partition],
					r.Value[len(r.Value)-12:], value(r.Partition, w.b, w.i)[900-12:])
			}
			next[r.Partition]++
			if w.i++; w.i == n {
				w = pos{b: w.b + 1}
			}
			want[r.Partition] = w
		})
	}
}

// TestFetchLendsAcrossPartitions: one fetch of 16 partitions whose batches
// lie in the same one or two objects lends each block once for the
// response. When every partition took a lease of its own, counted whole
// against the connection's share, the leases of the first partitions
// used up the share that the later partitions' reservations waited on:
// those answered empty after 5 s (a catch-up read in `make compare` ran
// at 0.8 MiB/s).
func TestFetchLendsAcrossPartitions(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	const parts = 16
	createTopic(t, c.addr(), "wide", parts)
	batches := map[int32][]byte{}
	for p := range int32(parts) {
		for range 28 { // 28 batches of about 16 KiB: 448 KiB a partition
			batches[p] = kafkatest.AppendBatch(batches[p], kafkatest.BatchOpts{Records: 16, ValueSize: 1000, ProducerID: -1})
		}
	}
	codes, _ := produceRaw(t, c.addr(), "wide", batches)
	for p, code := range codes {
		if code != 0 {
			t.Fatalf("produce to %d: %v", p, kerr.ErrorForCode(code))
		}
	}
	conn, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := fetchRequest("wide", 32<<20)
	rp := req.Topics[0].Partitions[0]
	req.Topics[0].Partitions = nil
	for p := range int32(parts) {
		rp.Partition, rp.PartitionMaxBytes = p, 1<<20
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	lent0 := metricValue(t, "sluice_fetch_lent_bytes_total")
	resp, err := conn.RoundTrip(req, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.(*kmsg.FetchResponse).Topics[0].Partitions {
		if p.ErrorCode != 0 || len(p.RecordBatches) != len(batches[p.Partition]) {
			t.Errorf("partition %d: error %d, %d bytes of %d", p.Partition, p.ErrorCode, len(p.RecordBatches), len(batches[p.Partition]))
		}
	}
	if lent := metricValue(t, "sluice_fetch_lent_bytes_total") - lent0; lent < parts*400<<10 {
		t.Fatalf("%.0f bytes lent, want nearly all %d", lent, parts*448<<10)
	}
}

package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
)

// Issue 11, item 8: an admin-made group (offsets committed from outside
// the group protocol, as kafka-consumer-groups --reset-offsets does) has
// no members; DeleteGroups deletes it and its offsets, and a second
// delete finds nothing. (On the main this branch started from, this
// already passed in-process; it guards the path now that memberless
// groups leave the coordinator's memory.)
func TestDeleteGroupOfAdminCommittedOffsets(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 50 * time.Millisecond, DefaultPartitions: 2})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "reset"); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "reset", Partition: 0, At: 5, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "reset", Partition: 1, At: 7, LeaderEpoch: -1})
	cr, err := adm.CommitOffsets(ctx, "reset-group", os)
	if err != nil || cr.Error() != nil {
		t.Fatalf("commit: %v %v", err, cr.Error())
	}
	fr, err := adm.FetchOffsets(ctx, "reset-group")
	if err != nil || fr.Error() != nil {
		t.Fatalf("fetch: %v %v", err, fr.Error())
	}
	if o, ok := fr.Lookup("reset", 1); !ok || o.At != 7 {
		t.Fatalf("fetched %v", fr.Offsets())
	}
	dr, err := adm.DeleteGroups(ctx, "reset-group")
	if err != nil {
		t.Fatal(err)
	}
	if r := dr["reset-group"]; r.Err != nil {
		t.Fatalf("delete of a group with only committed offsets: %v", r.Err)
	}
	fr, err = adm.FetchOffsets(ctx, "reset-group")
	if err != nil || fr.Error() != nil || len(fr.Offsets()) != 0 {
		t.Fatalf("fetch after delete: %v %v %v", err, fr.Error(), fr.Offsets())
	}
	if lg, err := adm.ListGroups(ctx); err != nil || len(lg) != 0 {
		t.Fatalf("groups after delete: %v %v", lg, err)
	}
	dr, err = adm.DeleteGroups(ctx, "reset-group")
	if err != nil || !errors.Is(dr["reset-group"].Err, kerr.GroupIDNotFound) {
		t.Fatalf("second delete: %v %v", dr["reset-group"].Err, err)
	}
}

// Offset metadata over 4096 bytes fails its partition with
// OFFSET_METADATA_TOO_LARGE, as in Kafka; the others commit.
func TestOffsetMetadataTooLargeKafka(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 50 * time.Millisecond, DefaultPartitions: 2})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "meta-size"); err != nil {
		t.Fatal(err)
	}
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "meta-size", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: strings.Repeat("m", 4096)})
	os.Add(kadm.Offset{Topic: "meta-size", Partition: 1, At: 7, LeaderEpoch: -1, Metadata: strings.Repeat("m", 4097)})
	cr, err := adm.CommitOffsets(ctx, "g", os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := cr.Lookup("meta-size", 0); r.Err != nil {
		t.Fatalf("partition 0 (4096 bytes): %v", r.Err)
	}
	if r, _ := cr.Lookup("meta-size", 1); !errors.Is(r.Err, kerr.OffsetMetadataTooLarge) {
		t.Fatalf("partition 1 (4097 bytes): %v", r.Err)
	}
	fr, err := adm.FetchOffsets(ctx, "g")
	if err != nil || fr.Error() != nil {
		t.Fatal(err, fr.Error())
	}
	if _, ok := fr.Lookup("meta-size", 1); ok {
		t.Fatal("the refused partition's offset was stored")
	}
	if o, ok := fr.Lookup("meta-size", 0); !ok || o.At != 5 || len(o.Metadata) != 4096 {
		t.Fatalf("partition 0: %+v %v", o, ok)
	}
}

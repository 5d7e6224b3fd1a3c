package agent_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/agent"
)

// kadm against the agent: topic configs are validated at creation and
// described with their sources; the cluster describes itself.
func TestAdminTopicConfigsAndCluster(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ret := "3600000"
	res, err := adm.CreateTopic(ctx, 3, -1, map[string]*string{"retention.ms": &ret}, "configured")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	bad := "12"
	for name, cfg := range map[string]map[string]*string{
		"unknown": {"no.such.config": &bad},
		"invalid": {"retention.ms": &[]string{"soon"}[0]},
	} {
		res, err := adm.CreateTopic(ctx, 1, -1, cfg, "bad-"+name)
		if err == nil {
			err = res.Err
		}
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Fatalf("%s config: %v, want INVALID_CONFIG", name, err)
		}
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "configured")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("configured", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe: %v %v", err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	if c := got["retention.ms"]; c.MaybeValue() != "3600000" || c.Source != 1 /* DYNAMIC_TOPIC_CONFIG */ {
		t.Fatalf("retention.ms: %+v", c)
	}
	if c := got["cleanup.policy"]; c.MaybeValue() != "delete" || c.Source != 5 /* DEFAULT_CONFIG */ {
		t.Fatalf("cleanup.policy: %+v", c)
	}

	meta, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Cluster == "" || len(meta.Brokers) != 1 || meta.Controller != meta.Brokers[0].NodeID {
		t.Fatalf("broker metadata: %+v", meta)
	}
	dc, err := adm.DescribeGroups(ctx, "nobody")
	if err != nil || dc["nobody"].State != "Dead" {
		t.Fatalf("describe unknown group: %+v %v", dc, err)
	}
}

// ListOffsets by timestamp and by max timestamp, exact to the record in
// uncompressed batches and never past the record in compressed ones.
func TestListOffsetsByTimestamp(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Recent enough that the 7-day default retention keeps it.
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		topic string
		codec kgo.CompressionCodec
		exact bool
	}{{"ts-plain", kgo.NoCompression(), true}, {"ts-zstd", kgo.ZstdCompression(), false}} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic(tc.topic), kgo.AllowAutoTopicCreation(),
			kgo.ProducerBatchCompression(tc.codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		adm := kadm.NewClient(cl)
		if _, err := adm.CreateTopic(ctx, 1, -1, nil, tc.topic); err != nil {
			t.Fatal(err)
		}
		// Ten produce calls of ten records: several batches, several
		// segments; timestamps one second apart.
		for b := 0; b < 10; b++ {
			var recs []*kgo.Record
			for i := b * 10; i < b*10+10; i++ {
				recs = append(recs, &kgo.Record{Value: []byte("x"), Timestamp: t0.Add(time.Duration(i) * time.Second)})
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		lo, err := adm.ListOffsetsAfterMilli(ctx, t0.Add(55500*time.Millisecond).UnixMilli(), tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup(tc.topic, 0)
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if tc.exact && o.Offset != 56 || !tc.exact && (o.Offset < 50 || o.Offset > 56) {
			t.Fatalf("%s: offset %d for the first timestamp at or after record 55.5", tc.topic, o.Offset)
		}
		lo, _ = adm.ListOffsetsAfterMilli(ctx, t0.Add(time.Hour).UnixMilli(), tc.topic)
		if o, _ := lo.Lookup(tc.topic, 0); o.Offset != -1 && o.Offset != 100 {
			t.Fatalf("%s: offset %d for a timestamp after every record", tc.topic, o.Offset)
		}
		lo, err = adm.ListMaxTimestampOffsets(ctx, tc.topic)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := lo.Lookup(tc.topic, 0); o.Err != nil || o.Offset != 99 || o.Timestamp != t0.Add(99*time.Second).UnixMilli() {
			t.Fatalf("%s: max timestamp at offset %d ts %d (%v)", tc.topic, o.Offset, o.Timestamp, o.Err)
		}
		cl.Close()
	}
}

// Topic administration through kadm: grow partitions, alter configs
// (validated), delete and re-create.
func TestAdminTopicLifecycle(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{FlushInterval: 20 * time.Millisecond})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("life"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, "life"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if r, err := adm.CreatePartitions(ctx, 3, "life"); err != nil || r["life"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, r)
	}
	td, err := adm.ListTopics(ctx, "life")
	if err != nil || len(td["life"].Partitions) != 5 {
		t.Fatalf("after growing: %v %+v", err, td["life"])
	}
	// A record into a new partition.
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("p4"), Partition: 4}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	ret := "86400000"
	if r, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &ret}}, "life"); err != nil || r[0].Err != nil {
		t.Fatalf("alter: %v %+v", err, r)
	}
	bad := "forever"
	if r, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &bad}}, "life"); !errors.Is(r[0].Err, kerr.InvalidConfig) {
		t.Fatalf("invalid value accepted: %+v", r)
	}
	if r, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "made.up", Value: &bad}}, "life"); !errors.Is(r[0].Err, kerr.InvalidConfig) {
		t.Fatalf("unknown config accepted: %+v", r)
	}
	rcs, _ := adm.DescribeTopicConfigs(ctx, "life")
	rc, _ := rcs.On("life", nil)
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != ret {
			t.Fatalf("retention.ms %q after alter", c.MaybeValue())
		}
	}

	if r, err := adm.DeleteTopics(ctx, "life"); err != nil || r["life"].Err != nil {
		t.Fatalf("delete: %v %+v", err, r)
	}
	td, _ = adm.ListTopics(ctx)
	if _, ok := td["life"]; ok {
		t.Fatal("deleted topic still listed")
	}
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "life"); err != nil {
		t.Fatal(err)
	}
	lo, err := adm.ListEndOffsets(ctx, "life")
	if o, _ := lo.Lookup("life", 0); err != nil || o.Offset != 0 {
		t.Fatalf("re-created topic not empty: %+v %v", o, err)
	}
}

// TestDeleteRecords: kadm's DeleteRecords moves the log start; ListOffsets
// earliest follows it, a consumer from the start begins there, a fetch
// below it is out of range, and producing goes on.
func TestDeleteRecords(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.DefaultProduceTopic("trimmed"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, -1, nil, "trimmed"); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // ten batches of ten: offsets 0..99
		var recs []*kgo.Record
		for j := range 10 {
			recs = append(recs, &kgo.Record{Value: []byte{byte(i), byte(j)}})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "trimmed", Partition: 0, At: 45})
	res, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := res.Lookup("trimmed", 0); !ok || r.Err != nil || r.LowWatermark != 45 {
		t.Fatalf("DeleteRecords answered %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "trimmed")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("trimmed", 0); o.Offset != 45 {
		t.Fatalf("earliest offset %d after deleting below 45", o.Offset)
	}
	// Beyond the high watermark: refused.
	offs = kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "trimmed", Partition: 0, At: 1000})
	if res, err := adm.DeleteRecords(ctx, offs); err != nil {
		t.Fatal(err)
	} else if r, _ := res.Lookup("trimmed", 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete beyond the high watermark: %v", r.Err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics("trimmed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []int64
	for len(got) < 55 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
	}
	if len(got) != 55 || got[0] != 45 || got[54] != 99 {
		t.Fatalf("consumed offsets %v, want 45..99", got)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

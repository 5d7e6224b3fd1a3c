package compat_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoCodecs produces with every compression codec through franz-go
// (idempotent, acks=all: its defaults) and reads everything back exactly.
// The agent's own tests use franz-go's default codec (snappy) only.
func TestFranzGoCodecs(t *testing.T) {
	c := startCluster(t)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		t.Run(name, func(t *testing.T) {
			topic := "franzgo-" + name
			const n = 500
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			p, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.AllowAutoTopicCreation(),
				kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
			if err != nil {
				t.Fatal(err)
			}
			recs := make([]*kgo.Record, n)
			for i := range recs {
				recs[i] = &kgo.Record{Topic: topic, Key: []byte(keyOf(topic, i)), Value: []byte(valueOf(topic, i))}
			}
			err = p.ProduceSync(ctx, recs...).FirstErr()
			p.Close()
			if err != nil {
				t.Fatalf("franz-go produce %s: %v", name, err)
			}
			cons, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			var got []rec
			for len(got) < n {
				fs := cons.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consumed %d of %d: %v", len(got), n, err)
				}
				fs.EachError(func(topic string, p int32, err error) { t.Errorf("fetch %s[%d]: %v", topic, p, err) })
				fs.EachRecord(func(r *kgo.Record) {
					got = append(got, rec{partition: r.Partition, offset: r.Offset, key: string(r.Key), value: string(r.Value)})
				})
			}
			checkExact(t, topic, n, got)
		})
	}
}

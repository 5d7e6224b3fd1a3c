package e2e

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAgentOnS3 runs `sluice agent --bucket s3://...` (as the README
// shows) against a real S3 protocol server on loopback, with credentials
// from the environment: records go in and come back, and the segments
// are in the bucket under the prefix.
func TestAgentOnS3(t *testing.T) {
	backend := s3mem.New()
	if err := backend.CreateBucket("sluice-agent"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
	defer srv.Close()

	dir := t.TempDir()
	m := startMeta(t, "meta", filepath.Join(dir, "meta"), "127.0.0.1:0")
	key := createKey(t, m.lines["meta"], "s3")
	bucket := "s3://sluice-agent/prod?region=us-east-1&path_style=true&endpoint=" + srv.URL
	a := startProc(t, "agent-s3", []string{
		"SLUICE_AGENT_KEY=" + key,
		"AWS_ACCESS_KEY_ID=AKIDSLUICETEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent", "AWS_EC2_METADATA_DISABLED=true",
	}, []string{"agent", "--meta-addr", m.lines["meta"], "--bucket", bucket, "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--agent-id", "agent-s3", "--flush-interval", "50ms"}, "bootstrap", "http")
	ctx := testCtx(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.lines["bootstrap"]), kgo.DefaultProduceTopic("on-s3"),
		kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("on-s3"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 500
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: []byte(strings.Repeat("s", 100) + string(rune('a'+i%26)))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(*kgo.Record) { got++ })
	}
	if got != n {
		t.Fatalf("read %d of %d records", got, n)
	}
	objs, err := backend.ListBucket("sluice-agent", &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	segs := 0
	for _, o := range objs.Contents {
		if !strings.HasPrefix(o.Key, "prod/") {
			t.Errorf("object %q outside the prefix", o.Key)
		}
		if strings.HasSuffix(o.Key, ".seg") {
			segs++
		}
	}
	if segs == 0 {
		t.Fatalf("no segment in the bucket: %+v", objs.Contents)
	}
	t.Logf("%d segments in s3://sluice-agent/prod/", segs)
	a.stop(t)
}

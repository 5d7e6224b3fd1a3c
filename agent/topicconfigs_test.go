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

// kafkaTopicConfigs lists every topic config Kafka (3.x and 4.0) defines,
// with a valid value other than the default and a value Kafka's rules
// refuse (issue 12 item 4: Terraform providers and UI tools set them).
var kafkaTopicConfigs = map[string][2]string{
	"cleanup.policy":                          {"delete", "shred"},
	"compression.type":                        {"zstd", "brotli"},
	"compression.gzip.level":                  {"5", "10"},
	"compression.lz4.level":                   {"12", "0"},
	"compression.zstd.level":                  {"-5", "23"},
	"delete.retention.ms":                     {"3600000", "-1"},
	"file.delete.delay.ms":                    {"1000", "-5"},
	"flush.messages":                          {"1000", "0"},
	"flush.ms":                                {"1000", "-1"},
	"follower.replication.throttled.replicas": {"0:1,1:2", "0-1"},
	"leader.replication.throttled.replicas":   {"*", "x:y"},
	"index.interval.bytes":                    {"8192", "-1"},
	"local.retention.bytes":                   {"1000000", "-3"},
	"local.retention.ms":                      {"60000", "-3"},
	"max.compaction.lag.ms":                   {"600000", "0"},
	"max.message.bytes":                       {"2000000", "3000000000"},
	"message.downconversion.enable":           {"false", "no"},
	"message.format.version":                  {"3.0-IV1", ""},
	"message.timestamp.after.max.ms":          {"3600000", "-1"},
	"message.timestamp.before.max.ms":         {"3600000", "-1"},
	"message.timestamp.difference.max.ms":     {"3600000", "soon"},
	"message.timestamp.type":                  {"CreateTime", "WallTime"},
	"min.cleanable.dirty.ratio":               {"0.25", "1.5"},
	"min.compaction.lag.ms":                   {"1000", "-1"},
	"min.insync.replicas":                     {"2", "0"},
	"preallocate":                             {"true", "1"},
	"remote.storage.enable":                   {"false", "yes"},
	"remote.log.copy.disable":                 {"true", "on"},
	"remote.log.delete.on.disable":            {"true", "off"},
	"retention.bytes":                         {"1073741824", "-2"},
	"retention.ms":                            {"86400000", "-2"},
	"segment.bytes":                           {"536870912", "13"},
	"segment.index.bytes":                     {"1048576", "3"},
	"segment.jitter.ms":                       {"100", "-1"},
	"segment.ms":                              {"3600000", "0"},
	"unclean.leader.election.enable":          {"false", "maybe"},
}

func TestEveryKafkaTopicConfigAccepted(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	all := map[string]*string{}
	for name, v := range kafkaTopicConfigs {
		if name == "message.format.version" {
			continue // the empty invalid value below is no value at all
		}
		all[name] = &v[0]
	}
	if res, err := adm.CreateTopic(ctx, 1, -1, all, "configured"); err != nil || res.Err != nil {
		t.Fatalf("create with every config: %v %v (%s)", err, res.Err, res.ErrMessage)
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
	for name, v := range all {
		c, ok := got[name]
		if !ok || c.MaybeValue() != *v || c.Source != 1 /* DYNAMIC_TOPIC_CONFIG */ {
			t.Errorf("%s described as %+v, want %q from DYNAMIC_TOPIC_CONFIG", name, c, *v)
		}
	}
	if c := got["message.format.version"]; c.Source != 5 /* DEFAULT_CONFIG */ {
		t.Errorf("unset message.format.version: %+v, want DEFAULT_CONFIG", c)
	}

	// Each invalid value is refused with INVALID_CONFIG naming the config.
	for name, v := range kafkaTopicConfigs {
		if name == "message.format.version" {
			continue
		}
		bad := v[1]
		res, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{name: &bad}, "bad")
		if err == nil {
			err = res.Err
		}
		if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(res.ErrMessage, name) {
			t.Errorf("%s=%q: %v (%q), want INVALID_CONFIG naming it", name, bad, err, res.ErrMessage)
		}
	}
	unknown := "1"
	res, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"segment.msec": &unknown}, "bad")
	if err == nil {
		err = res.Err
	}
	if !errors.Is(err, kerr.InvalidConfig) || !strings.Contains(res.ErrMessage, "segment.msec") {
		t.Errorf("unknown config: %v (%q)", err, res.ErrMessage)
	}

	// IncrementalAlterConfigs, as Terraform does.
	seg := "7200000"
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: &seg}}, "configured")
	if err != nil || alt[0].Err != nil {
		t.Fatalf("alter segment.ms: %v %+v", err, alt)
	}
	bad := "0"
	alt, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: &bad}}, "configured")
	if err == nil {
		err = alt[0].Err
	}
	if !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("alter min.insync.replicas=0: %v", err)
	}
}

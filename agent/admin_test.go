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

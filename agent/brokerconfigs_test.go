package agent_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
)

// Issue 11, item 8: DescribeConfigs for a BROKER resource answered with
// no configs at all, so confluent-kafka's describe_configs and UI tools
// showed an empty broker; and Metadata/DescribeCluster gave no rack, so
// zones were invisible to rack-aware clients.

// TestDescribeBrokerConfigs: kadm's DescribeBrokerConfigs shows the
// agent's effective configs under Kafka's names with their sources (a
// flag set away from its default: STATIC_BROKER_CONFIG; a default:
// DEFAULT_CONFIG); a filter by config names is honoured; another broker's
// id is INVALID_REQUEST; "" (cluster-wide dynamic defaults) is empty.
func TestDescribeBrokerConfigs(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Zone: "az-1", FlushInterval: 100 * time.Millisecond})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	node := c.agent.NodeID()
	rcs, err := adm.DescribeBrokerConfigs(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(strconv.Itoa(int(node)), nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe broker %d: %v %v", node, err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	static, def := kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDefaultConfig
	for _, w := range []struct {
		name, value string
		source      kmsg.ConfigSource
	}{
		{"broker.id", strconv.Itoa(int(node)), static},
		{"broker.rack", "az-1", static},
		{"advertised.listeners", "PLAINTEXT://" + c.addr(), static},
		{"message.max.bytes", "1048588", def},
		{"num.partitions", "16", def},
		{"auto.create.topics.enable", "true", def},
		{"log.retention.ms", "604800000", def},
		{"sluice.flush.interval.ms", "100", static},
		{"sluice.segment.max.bytes", strconv.Itoa(8 << 20), def},
	} {
		g, ok := got[w.name]
		if !ok {
			t.Errorf("%s: not described (got %d configs)", w.name, len(got))
			continue
		}
		if g.MaybeValue() != w.value || g.Source != w.source {
			t.Errorf("%s = %q from %v, want %q from %v", w.name, g.MaybeValue(), g.Source, w.value, w.source)
		}
	}

	// The raw request: a names filter, another broker, "".
	req := kmsg.NewPtrDescribeConfigsRequest()
	for _, name := range []string{strconv.Itoa(int(node)), strconv.Itoa(int(node) + 1), "", "not-a-number"} {
		r := kmsg.NewDescribeConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeBroker, name
		if name == strconv.Itoa(int(node)) {
			r.ConfigNames = []string{"broker.rack", "num.partitions", "no.such.config"}
		}
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, cl.Broker(int(node)))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Resources) != 4 {
		t.Fatalf("%d resources answered, want 4", len(resp.Resources))
	}
	var names []string
	for _, cfg := range resp.Resources[0].Configs {
		names = append(names, cfg.Name)
	}
	if resp.Resources[0].ErrorCode != 0 || len(names) != 2 || names[0] != "broker.rack" || names[1] != "num.partitions" {
		t.Errorf("filtered describe: code %d, configs %v; want broker.rack and num.partitions", resp.Resources[0].ErrorCode, names)
	}
	for _, i := range []int{1, 3} {
		if r := resp.Resources[i]; r.ErrorCode != kerr.InvalidRequest.Code || len(r.Configs) != 0 {
			t.Errorf("broker %q: code %d with %d configs, want INVALID_REQUEST", r.ResourceName, r.ErrorCode, len(r.Configs))
		}
	}
	if r := resp.Resources[2]; r.ErrorCode != 0 || len(r.Configs) != 0 {
		t.Errorf(`broker "": code %d with %d configs, want none`, r.ErrorCode, len(r.Configs))
	}
}

// TestRacksAreZones: Metadata and DescribeCluster give the agent's zone
// as its rack.
func TestRacksAreZones(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{Zone: "az-2"})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Rack == nil || *md.Brokers[0].Rack != "az-2" {
		t.Fatalf("metadata brokers %+v, want one with rack az-2", md.Brokers)
	}
	dreq := kmsg.NewPtrDescribeClusterRequest()
	dresp, err := dreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(dresp.Brokers) != 1 || dresp.Brokers[0].Rack == nil || *dresp.Brokers[0].Rack != "az-2" {
		t.Fatalf("describe cluster brokers %+v, want one with rack az-2", dresp.Brokers)
	}
}

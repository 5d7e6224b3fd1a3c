package e2e

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestConfluentKafkaPythonBrokerConfigs (issue 11, item 8):
// confluent-kafka's AdminClient.describe_configs of a BROKER resource
// shows the agent's configs with their sources (it used to be empty).
func TestConfluentKafkaPythonBrokerConfigs(t *testing.T) {
	runConfluentCompat(t, time.Minute, "broker")
}

// TestPlaygroundRacks (issue 11, item 8): a playground with zones a and b
// shows each agent's zone as its rack in Metadata, to a client of no
// zone (which is offered every agent).
func TestPlaygroundRacks(t *testing.T) {
	p := startProc(t, "playground", nil, []string{"playground", "--data-dir", t.TempDir(), "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--agents", "2", "--zones", "a,b"}, "bootstrap", "http", "agent 0", "agent 1")
	ctx := testCtx(t, time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(strings.Fields(p.lines["bootstrap"])[0], ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// The registry may take a moment to list both agents.
	var racks map[string]string // host:port -> rack
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(200 * time.Millisecond) {
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		racks = map[string]string{}
		for _, b := range md.Brokers {
			r := "<none>"
			if b.Rack != nil {
				r = *b.Rack
			}
			racks[net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))] = r
		}
		if len(racks) == 2 {
			break
		}
	}
	var got []string
	for _, r := range racks {
		got = append(got, r)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("brokers and racks %v, want two agents with racks a and b", racks)
	}
	p.stop(t)
}

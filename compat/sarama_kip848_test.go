package compat_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/meta/controller"
	"sluice.dev/meta/groups"
)

// TestSaramaDescribesKIP848Group (issue 15): sarama v1.61.1 has no
// KIP-848 consumer (no ConsumerGroupHeartbeat request at all) but sends
// ConsumerGroupDescribe (Broker.ConsumerGroupDescribe). A franz-go member
// joins with the consumer protocol (kgo.ServerSideBalancer, its default
// cooperative-sticky balancer asking for the uniform assignor); sarama,
// asking the group's coordinator, sees the group Stable with assignor
// uniform and the member owning both partitions of its subscribed topic,
// and GROUP_ID_NOT_FOUND for an unknown group.
func TestSaramaDescribesKIP848Group(t *testing.T) {
	c := startClusterWithMeta(t, controller.Config{Groups: groups.Config{ConsumerHeartbeatInterval: 200 * time.Millisecond}})
	const topic, group = "sarama-848", "sarama-848-g"
	saramaCreateTopic(t, []string{c.addr()}, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	member, err := kgo.NewClient(kgo.SeedBrokers(c.addr()), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ServerSideBalancer(), kgo.ClientID("franz-848"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	go func() {
		for {
			if fs := member.PollFetches(ctx); fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
		}
	}()

	// sarama refuses ConsumerGroupDescribe below Version 3.7 (v0) and 4.0
	// (v1); the other compat tests negotiate as 3.6.
	cfg := saramaConfig()
	cfg.Version = sarama.V4_0_0_0
	cl, err := sarama.NewClient([]string{c.addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	coord, err := cl.Coordinator(group)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(ids ...string) []sarama.ConsumerGroupDescription {
		resp, err := coord.ConsumerGroupDescribe(&sarama.ConsumerGroupDescribeRequest{Version: 1, GroupIDs: ids})
		if err != nil {
			t.Fatalf("ConsumerGroupDescribe: %v", err)
		}
		return resp.Groups
	}
	owned := func(m sarama.ConsumerGroupMemberDescription) string {
		var ps []int32
		for _, tp := range m.Assignment.TopicPartitions {
			if tp.TopicName == topic {
				ps = append(ps, tp.Partitions...)
			}
		}
		sort.Slice(ps, func(a, b int) bool { return ps[a] < ps[b] })
		return fmt.Sprint(ps)
	}
	var g sarama.ConsumerGroupDescription
	for {
		g = describe(group)[0]
		if len(g.Members) == 1 && owned(g.Members[0]) == "[0 1]" && g.GroupState == "Stable" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the group did not settle with the member owning both partitions: %+v", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := g.Members[0]
	if !errors.Is(g.ErrorCode, sarama.ErrNoError) || g.AssignorName != "uniform" || g.GroupEpoch < 1 || g.AssignmentEpoch != g.GroupEpoch {
		t.Errorf("ConsumerGroupDescribe: %+v, want no error, assignor uniform, assignment epoch = group epoch >= 1", g)
	}
	if m.ClientID != "franz-848" || fmt.Sprint(m.SubscribedTopicNames) != "["+topic+"]" || m.MemberEpoch != g.GroupEpoch || m.MemberID == "" {
		t.Errorf("member %+v: want client id franz-848, subscribed to [%s], member epoch %d", m, topic, g.GroupEpoch)
	}
	if u := describe("sarama-848-unknown")[0]; !errors.Is(u.ErrorCode, sarama.ErrGroupIDNotFound) {
		t.Errorf("ConsumerGroupDescribe of an unknown group: %v, want GROUP_ID_NOT_FOUND", u.ErrorCode)
	}
}

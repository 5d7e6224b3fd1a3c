package ctl

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkTopic fails unless topic exists (and has partition p, when p >= 0).
func checkTopic(ctx context.Context, e *env, cl *kgo.Client, topic string, p int) error {
	rctx, cancel := e.bounded(ctx)
	defer cancel()
	tds, err := kadm.NewClient(cl).ListTopics(rctx, topic)
	if err != nil {
		return explain(err, subject{}, "")
	}
	d, ok := tds[topic]
	if !ok || errors.Is(d.Err, errUnknownTopic) {
		return fmt.Errorf("topic %q does not exist (%s); create it with `sluice topic create %s`, or list topics with `sluice topic list`", topic, kerr.UnknownTopicOrPartition.Message, topic)
	}
	if d.Err != nil {
		return explain(d.Err, topicSubject(topic), "")
	}
	if _, ok := d.Partitions[int32(p)]; p >= 0 && !ok {
		return fmt.Errorf("topic %q has no partition %d (it has %d); fix -p", topic, p, len(d.Partitions))
	}
	return nil
}

package server

// Topic configurations Sluice understands, with Kafka's names, defaults
// and validation. One table serves CreateTopics (refusing what it does not
// know with INVALID_CONFIG rather than ignoring it) and DescribeConfigs.

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicConfig struct {
	def      string
	typ      kmsg.ConfigType
	doc      string
	validate func(string) error
}

func validLong(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %v", v, vals)
	}
}

// topicConfigs are the topic configurations accepted. Retention and
// compaction are enforced by background jobs of a later issue; until
// then they are stored and described, and cleanup.policy=compact is
// refused so that nobody relies on compaction that does not happen.
var topicConfigs = map[string]topicConfig{
	"retention.ms": {def: "604800000", typ: kmsg.ConfigTypeLong, validate: validLong(-1),
		doc: "How long a record is kept; -1 keeps it forever."},
	"retention.bytes": {def: "-1", typ: kmsg.ConfigTypeLong, validate: validLong(-1),
		doc: "How many bytes a partition keeps; -1 for no limit."},
	"cleanup.policy": {def: "delete", typ: kmsg.ConfigTypeList, validate: oneOf("delete"),
		doc: "delete: old records are removed by retention. compact is not supported yet."},
	"max.message.bytes": {def: strconv.Itoa(defaultMaxMessageBytes), typ: kmsg.ConfigTypeInt, validate: validLong(1),
		doc: "The largest record batch the topic accepts."},
	"message.timestamp.type": {def: "CreateTime", typ: kmsg.ConfigTypeString, validate: oneOf("CreateTime"),
		doc: "CreateTime: timestamps are the producer's. LogAppendTime is not supported yet."},
}

// checkTopicConfigs returns an error naming the first bad config.
func checkTopicConfigs(cfgs map[string]string) error {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c, ok := topicConfigs[k]
		if !ok {
			return fmt.Errorf("unknown topic config %q; supported: retention.ms, retention.bytes, cleanup.policy, max.message.bytes, message.timestamp.type", k)
		}
		if err := c.validate(cfgs[k]); err != nil {
			return fmt.Errorf("topic config %s: %v", k, err)
		}
	}
	return nil
}

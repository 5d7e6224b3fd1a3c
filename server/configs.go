package server

// Topic configurations Sluice understands, with Kafka's names, defaults
// and validation. One table serves CreateTopics (refusing what it does not
// know with INVALID_CONFIG rather than ignoring it) and DescribeConfigs.
// Below it, the agent's own (broker) configs that DescribeConfigs reports.

import (
	"fmt"
	"sort"
	"strconv"
	"time"

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

// brokerConfig is one of this agent's configs as DescribeConfigs reports
// it for a BROKER resource.
type brokerConfig struct {
	name  string
	value *string // nil: unset (Kafka answers null, e.g. broker.rack)
	// isDefault: the built-in default is in effect (DEFAULT_CONFIG);
	// otherwise a flag set it, or meta assigned it (STATIC_BROKER_CONFIG).
	isDefault bool
	typ       kmsg.ConfigType
	doc       string
}

// Built-in defaults of the agent flags behind broker configs (the flag
// defaults in cmd/sluice/flags.go, and the pipeline's).
const (
	defaultFlushInterval  = 250 * time.Millisecond
	defaultMaxSegment     = 8 << 20
	defaultMaxInFlight    = 256 << 20
	defaultMaxRequest     = 100 << 20
	defaultPartitionCount = 16
)

// brokerConfigs are this agent's effective configs under the names Kafka
// tools look for (broker.id, broker.rack, message.max.bytes, ...), plus
// Sluice's own (sluice.*), sorted by name. A value is reported as a
// default (DEFAULT_CONFIG) when it equals the built-in default, else as
// STATIC_BROKER_CONFIG: an agent's configs come from its flags at start
// and none can be altered at runtime, so every one is read-only. (A flag
// given its default value reads as DEFAULT_CONFIG: the agent does not
// keep which flags were typed.) The log.* defaults are the topic config
// defaults of topicConfigs, under their broker names.
func (s *Server) brokerConfigs() []brokerConfig {
	str := func(v string) *string { return &v }
	num := func(v int64) *string { return str(strconv.FormatInt(v, 10)) }
	node := s.nodeID.Load()
	listener := ""
	if s.addr != nil {
		listener = "PLAINTEXT://" + s.addr.String()
	}
	var rack *string
	if s.cfg.Zone != "" {
		rack = str(s.cfg.Zone)
	}
	cfgs := []brokerConfig{
		{name: "broker.id", value: num(int64(node)), typ: kmsg.ConfigTypeInt,
			doc: "This agent's node id, assigned by meta when the agent registers."},
		{name: "node.id", value: num(int64(node)), typ: kmsg.ConfigTypeInt,
			doc: "Same as broker.id (the KRaft name)."},
		{name: "broker.rack", value: rack, isDefault: rack == nil, typ: kmsg.ConfigTypeString,
			doc: "This agent's zone (--zone): rack-aware clients and tools see zones as racks."},
		{name: "listeners", value: str(listener), typ: kmsg.ConfigTypeList,
			doc: "The bound Kafka listener (--kafka-addr)."},
		{name: "advertised.listeners", value: str("PLAINTEXT://" + s.cfg.AdvertisedAddr), typ: kmsg.ConfigTypeList,
			doc: "What clients are told to dial (--advertise-addr, default the bound --kafka-addr)."},
		{name: "message.max.bytes", value: num(defaultMaxMessageBytes), isDefault: true, typ: kmsg.ConfigTypeInt,
			doc: "The largest record batch a topic accepts unless its max.message.bytes says otherwise."},
		{name: "socket.request.max.bytes", value: num(int64(s.cfg.MaxRequestBytes)),
			isDefault: s.cfg.MaxRequestBytes == defaultMaxRequest, typ: kmsg.ConfigTypeInt,
			doc: "The largest request frame accepted (--max-request-bytes); a larger one closes the connection."},
		{name: "num.partitions", value: num(int64(s.cfg.DefaultPartitions)),
			isDefault: s.cfg.DefaultPartitions == defaultPartitionCount, typ: kmsg.ConfigTypeInt,
			doc: "Partitions of auto-created topics and of CreateTopics requests that leave the count at -1 (--default-partitions)."},
		{name: "auto.create.topics.enable", value: str(strconv.FormatBool(s.cfg.AutoCreateTopics)),
			isDefault: s.cfg.AutoCreateTopics /* the flag's default is true */, typ: kmsg.ConfigTypeBoolean,
			doc: "Create unknown topics named in Metadata requests (--auto-create-topics)."},
		{name: "log.retention.ms", value: str(topicConfigs["retention.ms"].def), isDefault: true, typ: kmsg.ConfigTypeLong,
			doc: "Default retention.ms of topics."},
		{name: "log.retention.bytes", value: str(topicConfigs["retention.bytes"].def), isDefault: true, typ: kmsg.ConfigTypeLong,
			doc: "Default retention.bytes of topics."},
		{name: "log.cleanup.policy", value: str(topicConfigs["cleanup.policy"].def), isDefault: true, typ: kmsg.ConfigTypeList,
			doc: "Default cleanup.policy of topics."},
		{name: "log.message.timestamp.type", value: str(topicConfigs["message.timestamp.type"].def), isDefault: true, typ: kmsg.ConfigTypeString,
			doc: "Default message.timestamp.type of topics."},
		{name: "sluice.agent.id", value: str(s.cfg.AgentID), typ: kmsg.ConfigTypeString,
			doc: "This agent's id in meta's registry (--agent-id)."},
	}
	if s.deps.Pipeline != nil {
		pc := s.deps.Pipeline.Config()
		cfgs = append(cfgs,
			brokerConfig{name: "sluice.flush.interval.ms", value: num(pc.FlushInterval.Milliseconds()),
				isDefault: pc.FlushInterval == defaultFlushInterval, typ: kmsg.ConfigTypeLong,
				doc: "How long a segment collects batches before it is sealed and uploaded (--flush-interval)."},
			brokerConfig{name: "sluice.segment.max.bytes", value: num(int64(pc.MaxSegmentBytes)),
				isDefault: pc.MaxSegmentBytes == defaultMaxSegment, typ: kmsg.ConfigTypeInt,
				doc: "A segment is sealed early once it holds this many bytes (--max-segment-bytes)."},
			brokerConfig{name: "sluice.produce.inflight.max.bytes", value: num(pc.MaxInFlightBytes),
				isDefault: pc.MaxInFlightBytes == defaultMaxInFlight, typ: kmsg.ConfigTypeLong,
				doc: "Produce bytes admitted but not yet acknowledged; past it producers wait (--max-inflight-bytes)."},
			brokerConfig{name: "sluice.commit.timeout.ms", value: num(pc.CommitTimeout.Milliseconds()), isDefault: true, typ: kmsg.ConfigTypeLong,
				doc: "How long a sealed segment may take to commit to meta before its produce requests fail with a retriable error."},
		)
	}
	sort.Slice(cfgs, func(i, j int) bool { return cfgs[i].name < cfgs[j].name })
	return cfgs
}

package server

// Topic configurations Sluice understands, with Kafka's names, defaults
// and validation. One table serves CreateTopics (refusing what it does not
// know with INVALID_CONFIG rather than ignoring it) and DescribeConfigs.
// Below it, the agent's own (broker) configs that DescribeConfigs reports.

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type topicConfig struct {
	def      string
	typ      kmsg.ConfigType
	doc      string
	validate func(string) error
	inert    bool // accepted and described, no effect in Sluice
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

// validCleanupPolicy accepts Kafka's cleanup.policy values: delete,
// compact, or both as a list in either order.
func validCleanupPolicy(v string) error {
	parts := strings.Split(v, ",")
	seen := map[string]bool{}
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if (p != "delete" && p != "compact") || seen[p] {
			return fmt.Errorf("%q is not delete, compact or compact,delete", v)
		}
		seen[p] = true
	}
	return nil
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

// topicConfigs are the topic configurations accepted: every config
// Kafka defines for a topic (Kafka 3.x and 4.0's LogConfig, TopicConfig),
// with Kafka's defaults and validation rules, so that Terraform providers,
// UI tools and scripts that set segment.ms or min.insync.replicas work.
// Those marked inert mean nothing in Sluice (there are no local segment
// files, replicas or flushes: objects in the bucket replace them); they
// are stored and described but change nothing, and the README lists
// them. LogAppendTime is refused until it is served, so that nobody
// relies on behaviour that does not happen.
var topicConfigs = map[string]topicConfig{
	"retention.ms": {def: "604800000", typ: kmsg.ConfigTypeLong, validate: validLong(-1),
		doc: "How long a record is kept; -1 keeps it forever. Enforced by meta every --retention-check-interval, whole batches at a time."},
	"retention.bytes": {def: "-1", typ: kmsg.ConfigTypeLong, validate: validLong(-1),
		doc: "How many bytes a partition keeps; -1 for no limit. Enforced like retention.ms."},
	"cleanup.policy": {def: "delete", typ: kmsg.ConfigTypeList, validate: validCleanupPolicy,
		doc: "delete: old records are removed by retention; compact: jobs agents keep the latest record per key (records need keys); compact,delete: both."},
	"delete.retention.ms": {def: "86400000", typ: kmsg.ConfigTypeLong, validate: validLong(0),
		doc: "How long a tombstone (a record with a null value) of a compacted topic stays after its key was cleaned."},
	"max.compaction.lag.ms": {def: maxLong, typ: kmsg.ConfigTypeLong, validate: validLong(1),
		doc: "The longest a record of a compacted topic stays uncleaned; Sluice cleans dirty data within 30 s when this is larger."},
	"min.cleanable.dirty.ratio": {def: "0.5", typ: kmsg.ConfigTypeDouble, validate: validRatio,
		doc: "A compacted partition is cleaned once this share of its bytes is dirty (or its dirty data is max.compaction.lag.ms old)."},
	"min.compaction.lag.ms": {def: "0", typ: kmsg.ConfigTypeLong, validate: validLong(0),
		doc: "Records of a compacted topic younger than this are not cleaned."},
	"max.message.bytes": {def: strconv.Itoa(defaultMaxMessageBytes), typ: kmsg.ConfigTypeInt, validate: validInt(0),
		doc: "The largest record batch the topic accepts."},
	"message.timestamp.type": {def: "CreateTime", typ: kmsg.ConfigTypeString, validate: oneOf("CreateTime"),
		doc: "CreateTime: timestamps are the producer's. LogAppendTime is not supported yet."},

	// Accepted, stored and described; no effect in Sluice.
	"compression.type": inert("producer", kmsg.ConfigTypeString, oneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
		"Batches are stored as the producer compressed them."),
	"compression.gzip.level": inert("-1", kmsg.ConfigTypeInt, validIntIn(-1, -1, 1, 9), "Sluice does not recompress."),
	"compression.lz4.level":  inert("9", kmsg.ConfigTypeInt, validIntIn(1, 17), "Sluice does not recompress."),
	"compression.zstd.level": inert("3", kmsg.ConfigTypeInt, validIntIn(-131072, 22), "Sluice does not recompress."),
	"file.delete.delay.ms":   inert("60000", kmsg.ConfigTypeLong, validLong(0), "No local files."),
	"flush.messages":         inert(maxLong, kmsg.ConfigTypeLong, validLong(1), "Every acknowledged batch is in the bucket already."),
	"flush.ms":               inert(maxLong, kmsg.ConfigTypeLong, validLong(0), "Every acknowledged batch is in the bucket already."),
	"follower.replication.throttled.replicas": inert("", kmsg.ConfigTypeList, validReplicaList,
		"No replicas: the bucket replicates."),
	"leader.replication.throttled.replicas": inert("", kmsg.ConfigTypeList, validReplicaList,
		"No replicas: the bucket replicates."),
	"index.interval.bytes":            inert("4096", kmsg.ConfigTypeInt, validInt(0), "No local index files."),
	"local.retention.bytes":           inert("-2", kmsg.ConfigTypeLong, validLong(-2), "No local tier: all data is in the bucket."),
	"local.retention.ms":              inert("-2", kmsg.ConfigTypeLong, validLong(-2), "No local tier: all data is in the bucket."),
	"message.downconversion.enable":   inert("true", kmsg.ConfigTypeBoolean, validBool, "Removed in Kafka 4.0; Sluice never down-converts."),
	"message.format.version":          inert("3.0-IV1", kmsg.ConfigTypeString, validAny, "Removed in Kafka 4.0; batches are v2."),
	"message.timestamp.after.max.ms":  inert(maxLong, kmsg.ConfigTypeLong, validLong(0), "Timestamps are not checked against the clock."),
	"message.timestamp.before.max.ms": inert(maxLong, kmsg.ConfigTypeLong, validLong(0), "Timestamps are not checked against the clock."),
	"message.timestamp.difference.max.ms": inert(maxLong, kmsg.ConfigTypeLong, validLong(0),
		"Timestamps are not checked against the clock."),
	"min.insync.replicas":            inert("1", kmsg.ConfigTypeInt, validInt(1), "No replicas: an acknowledged batch is durable in the bucket."),
	"preallocate":                    inert("false", kmsg.ConfigTypeBoolean, validBool, "No local files."),
	"remote.storage.enable":          inert("false", kmsg.ConfigTypeBoolean, validBool, "All data is in the bucket already."),
	"remote.log.copy.disable":        inert("false", kmsg.ConfigTypeBoolean, validBool, "All data is in the bucket already."),
	"remote.log.delete.on.disable":   inert("false", kmsg.ConfigTypeBoolean, validBool, "All data is in the bucket already."),
	"segment.bytes":                  inert("1073741824", kmsg.ConfigTypeInt, validInt(14), "Objects are sealed by the agents' --flush-interval and --max-segment-bytes."),
	"segment.index.bytes":            inert("10485760", kmsg.ConfigTypeInt, validInt(4), "No local index files."),
	"segment.jitter.ms":              inert("0", kmsg.ConfigTypeLong, validLong(0), "Objects are sealed by the agents' --flush-interval."),
	"segment.ms":                     inert("604800000", kmsg.ConfigTypeLong, validLong(1), "Objects are sealed by the agents' --flush-interval."),
	"unclean.leader.election.enable": inert("false", kmsg.ConfigTypeBoolean, validBool, "No replicas, no leader elections."),
}

// maxLong is Kafka's default for limits that are off (Long.MAX_VALUE).
const maxLong = "9223372036854775807"

// inert is a topic config that Sluice accepts and describes but that
// changes nothing (see topicConfigs).
func inert(def string, typ kmsg.ConfigType, validate func(string) error, why string) topicConfig {
	return topicConfig{def: def, typ: typ, validate: validate, inert: true, doc: "No effect in Sluice: " + why}
}

// validInt is validLong within Java's int range.
func validInt(min int64) func(string) error {
	return validIntIn(min, math.MaxInt32)
}

// validIntIn accepts whole numbers in [lo, hi], or in any of several
// such ranges given as pairs (Kafka's gzip level is -1 or 1..9).
func validIntIn(bounds ...int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		for i := 0; i+1 < len(bounds); i += 2 {
			if n >= bounds[i] && n <= bounds[i+1] {
				return nil
			}
		}
		return fmt.Errorf("%d is out of range %v", n, bounds)
	}
}

func validBool(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("%q is not true or false", v)
	}
	return nil
}

func validAny(string) error { return nil }

func validRatio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("%q is not a number in [0, 1]", v)
	}
	return nil
}

// validReplicaList is Kafka's ThrottledReplicaListValidator: empty, "*",
// or a comma-separated list of partition:broker pairs.
func validReplicaList(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return nil
	}
	for _, pair := range strings.Split(v, ",") {
		p, b, ok := strings.Cut(strings.TrimSpace(pair), ":")
		_, e1 := strconv.ParseUint(p, 10, 31)
		_, e2 := strconv.ParseUint(b, 10, 31)
		if !ok || e1 != nil || e2 != nil {
			return fmt.Errorf("%q is not \"*\" or a list of partition:broker pairs", v)
		}
	}
	return nil
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
			return fmt.Errorf("unknown topic config %q (Kafka defines no topic config of that name)", k)
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
// defaults of topicConfigs, under their broker names. node is the broker
// id asked for: this agent's own, or one of its other broker identities
// (agents.go), which broker.id then names.
func (s *Server) brokerConfigs(node int32) []brokerConfig {
	str := func(v string) *string { return &v }
	num := func(v int64) *string { return str(strconv.FormatInt(v, 10)) }
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

package rpc

import (
	"fmt"
	"math"
	"time"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// Conversions between the meta types and their protobuf messages. Both
// directions are here so that a field added to one side is hard to miss
// on the other.
//
// Encoders cannot fail. Decoders check what the types promise and a
// protobuf message cannot: ids are exactly 16 bytes, int16 fields fit,
// enums are known, required parts are present. They keep a sticky error
// checked once at the end, so a conversion reads as a plain list of
// fields. The server turns a decode error into meta.ErrInvalidRequest;
// the client into a malformed-answer error.

type decoder struct {
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) topicID(b []byte) (id meta.TopicID) {
	if len(b) != len(id) {
		d.fail("topic id is %d bytes, want %d", len(b), len(id))
		return id
	}
	copy(id[:], b)
	return id
}

func (d *decoder) segmentID(b []byte) (id meta.SegmentID) {
	if len(b) != len(id) {
		d.fail("segment id is %d bytes, want %d", len(b), len(id))
		return id
	}
	copy(id[:], b)
	return id
}

func (d *decoder) int8(v int32, what string) int8 {
	if v < math.MinInt8 || v > math.MaxInt8 {
		d.fail("%s %d does not fit 8 bits", what, v)
		return 0
	}
	return int8(v)
}

func (d *decoder) int16(v int32, what string) int16 {
	if v < math.MinInt16 || v > math.MaxInt16 {
		d.fail("%s %d does not fit 16 bits", what, v)
		return 0
	}
	return int16(v)
}

// int clamps a count to what an int holds on any platform we build for.
func clampInt(v int64) int {
	return int(min(max(v, math.MinInt32), math.MaxInt32))
}

func encTP(tp meta.TopicPartition) *pb.TopicPartition {
	return &pb.TopicPartition{TopicId: tp.TopicID[:], Partition: tp.Partition}
}

func (d *decoder) tp(p *pb.TopicPartition) meta.TopicPartition {
	if p == nil {
		d.fail("partition missing")
		return meta.TopicPartition{}
	}
	return meta.TopicPartition{TopicID: d.topicID(p.TopicId), Partition: p.Partition}
}

func encTPs(tps []meta.TopicPartition) []*pb.TopicPartition {
	out := make([]*pb.TopicPartition, len(tps))
	for i, tp := range tps {
		out[i] = encTP(tp)
	}
	return out
}

func (d *decoder) tps(ps []*pb.TopicPartition) []meta.TopicPartition {
	if len(ps) == 0 {
		return nil
	}
	out := make([]meta.TopicPartition, len(ps))
	for i, p := range ps {
		out[i] = d.tp(p)
	}
	return out
}

func encDeleteRecords(specs []meta.DeleteRecordsSpec) []*pb.DeleteRecordsSpec {
	out := make([]*pb.DeleteRecordsSpec, len(specs))
	for i, s := range specs {
		out[i] = &pb.DeleteRecordsSpec{Partition: encTP(s.TopicPartition), Offset: s.Offset}
	}
	return out
}

func (d *decoder) deleteRecords(specs []*pb.DeleteRecordsSpec) []meta.DeleteRecordsSpec {
	out := make([]meta.DeleteRecordsSpec, len(specs))
	for i, s := range specs {
		out[i] = meta.DeleteRecordsSpec{TopicPartition: d.tp(s.GetPartition()), Offset: s.GetOffset()}
	}
	return out
}

// configs keeps meta's convention: no configs is a nil map.
func configs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func encTopic(t meta.Topic) *pb.Topic {
	return &pb.Topic{Name: t.Name, Id: t.ID[:], Partitions: t.Partitions, Configs: t.Configs}
}

// topic decodes a topic; an absent one is the zero Topic.
func (d *decoder) topic(t *pb.Topic) meta.Topic {
	if t == nil {
		return meta.Topic{}
	}
	return meta.Topic{Name: t.Name, ID: d.topicID(t.Id), Partitions: t.Partitions, Configs: configs(t.Configs)}
}

func encTopics(ts []meta.Topic) []*pb.Topic {
	out := make([]*pb.Topic, len(ts))
	for i, t := range ts {
		out[i] = encTopic(t)
	}
	return out
}

func (d *decoder) topics(ts []*pb.Topic) []meta.Topic {
	if len(ts) == 0 {
		return nil
	}
	out := make([]meta.Topic, len(ts))
	for i, t := range ts {
		out[i] = d.topic(t)
	}
	return out
}

func encTopicSpecs(specs []meta.TopicSpec) []*pb.TopicSpec {
	out := make([]*pb.TopicSpec, len(specs))
	for i, s := range specs {
		out[i] = &pb.TopicSpec{Name: s.Name, Partitions: s.Partitions, Configs: s.Configs}
	}
	return out
}

func decTopicSpecs(specs []*pb.TopicSpec) []meta.TopicSpec {
	out := make([]meta.TopicSpec, len(specs))
	for i, s := range specs {
		out[i] = meta.TopicSpec{Name: s.GetName(), Partitions: s.GetPartitions(), Configs: configs(s.GetConfigs())}
	}
	return out
}

func encTopicResults(rs []meta.TopicResult) []*pb.TopicResult {
	out := make([]*pb.TopicResult, len(rs))
	for i, r := range rs {
		out[i] = &pb.TopicResult{Name: r.Name, Topic: encTopic(r.Topic), Error: encodeErr(r.Err)}
	}
	return out
}

func (d *decoder) topicResults(rs []*pb.TopicResult) []meta.TopicResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]meta.TopicResult, len(rs))
	for i, r := range rs {
		out[i] = meta.TopicResult{Name: r.GetName(), Topic: d.topic(r.GetTopic()), Err: decodeErr(r.GetError())}
	}
	return out
}

func encPartitionStates(ss []meta.PartitionState) []*pb.PartitionState {
	out := make([]*pb.PartitionState, len(ss))
	for i, s := range ss {
		out[i] = &pb.PartitionState{TopicId: s.TopicID[:], Partition: s.Partition,
			LogStartOffset: s.LogStartOffset, HighWatermark: s.HighWatermark, Error: encodeErr(s.Err)}
	}
	return out
}

func (d *decoder) partitionStates(ss []*pb.PartitionState) []meta.PartitionState {
	if len(ss) == 0 {
		return nil
	}
	out := make([]meta.PartitionState, len(ss))
	for i, s := range ss {
		out[i] = meta.PartitionState{TopicID: d.topicID(s.GetTopicId()), Partition: s.GetPartition(),
			LogStartOffset: s.GetLogStartOffset(), HighWatermark: s.GetHighWatermark(), Err: decodeErr(s.GetError())}
	}
	return out
}

func encCommit(c meta.SegmentCommit) *pb.CommitSegmentRequest {
	chunks := make([]*pb.Chunk, len(c.Chunks))
	for i, ch := range c.Chunks {
		chunks[i] = &pb.Chunk{TopicId: ch.TopicID[:], Partition: ch.Partition, Start: ch.Start, Length: ch.Length,
			RecordCount: ch.RecordCount, FirstTimestamp: ch.FirstTimestamp, MaxTimestamp: ch.MaxTimestamp,
			ProducerId: ch.ProducerID, ProducerEpoch: int32(ch.ProducerEpoch), BaseSequence: ch.BaseSequence, Transactional: ch.Transactional}
	}
	return &pb.CommitSegmentRequest{SegmentId: c.SegmentID[:], ObjectKey: c.ObjectKey, Size: c.Size, AgentId: c.AgentID, Chunks: chunks}
}

func (d *decoder) commit(r *pb.CommitSegmentRequest) meta.SegmentCommit {
	c := meta.SegmentCommit{SegmentID: d.segmentID(r.GetSegmentId()), ObjectKey: r.GetObjectKey(), Size: r.GetSize(), AgentID: r.GetAgentId()}
	if len(r.GetChunks()) > 0 {
		c.Chunks = make([]meta.Chunk, len(r.Chunks))
	}
	for i, ch := range r.GetChunks() {
		c.Chunks[i] = meta.Chunk{TopicID: d.topicID(ch.GetTopicId()), Partition: ch.GetPartition(), Start: ch.GetStart(),
			Length: ch.GetLength(), RecordCount: ch.GetRecordCount(), FirstTimestamp: ch.GetFirstTimestamp(),
			MaxTimestamp: ch.GetMaxTimestamp(), ProducerID: ch.GetProducerId(),
			ProducerEpoch: d.int16(ch.GetProducerEpoch(), "producer epoch"), BaseSequence: ch.GetBaseSequence(),
			Transactional: ch.GetTransactional()}
	}
	return c
}

func encCommitResult(r meta.CommitResult) []*pb.ChunkResult {
	out := make([]*pb.ChunkResult, len(r.Chunks))
	for i, c := range r.Chunks {
		out[i] = &pb.ChunkResult{Status: pb.ChunkStatus(c.Status), BaseOffset: c.BaseOffset, LogStartOffset: c.LogStartOffset}
	}
	return out
}

func (d *decoder) commitResult(rs []*pb.ChunkResult) meta.CommitResult {
	if len(rs) == 0 {
		return meta.CommitResult{}
	}
	out := make([]meta.ChunkResult, len(rs))
	for i, r := range rs {
		st := r.GetStatus()
		if _, ok := pb.ChunkStatus_name[int32(st)]; !ok {
			d.fail("unknown chunk status %d", st)
		}
		out[i] = meta.ChunkResult{Status: meta.ChunkStatus(st), BaseOffset: r.GetBaseOffset(), LogStartOffset: r.GetLogStartOffset()}
	}
	return meta.CommitResult{Chunks: out}
}

func encEntry(e meta.IndexEntry) *pb.IndexEntry {
	return &pb.IndexEntry{TopicId: e.TopicID[:], Partition: e.Partition, BaseOffset: e.BaseOffset, LastOffset: e.LastOffset,
		SegmentId: e.SegmentID[:], ObjectKey: e.ObjectKey, ObjectSize: e.ObjectSize, Start: e.Start, Length: e.Length,
		MaxTimestamp: e.MaxTimestamp, Control: int32(e.Control), ProducerId: e.ProducerID, ProducerEpoch: int32(e.ProducerEpoch)}
}

// entry decodes an index entry; an absent one is the zero entry.
func (d *decoder) entry(e *pb.IndexEntry) meta.IndexEntry {
	if e == nil {
		return meta.IndexEntry{}
	}
	return meta.IndexEntry{TopicID: d.topicID(e.TopicId), Partition: e.Partition, BaseOffset: e.BaseOffset,
		LastOffset: e.LastOffset, SegmentID: d.segmentID(e.SegmentId), ObjectKey: e.ObjectKey, ObjectSize: e.ObjectSize,
		Start: e.Start, Length: e.Length, MaxTimestamp: e.MaxTimestamp,
		Control: d.control(e.Control), ProducerID: e.ProducerId, ProducerEpoch: d.int16(e.ProducerEpoch, "marker producer epoch")}
}

// control decodes a marker type (transactions, issue 15).
func (d *decoder) control(c int32) int8 {
	if c < int32(meta.ControlNone) || c > int32(meta.ControlCommit) {
		d.fail("index entry control %d", c)
		return meta.ControlNone
	}
	return int8(c)
}

func encEntries(es []meta.IndexEntry) []*pb.IndexEntry {
	out := make([]*pb.IndexEntry, len(es))
	for i, e := range es {
		out[i] = encEntry(e)
	}
	return out
}

func (d *decoder) entries(es []*pb.IndexEntry) []meta.IndexEntry {
	if len(es) == 0 {
		return nil
	}
	out := make([]meta.IndexEntry, len(es))
	for i, e := range es {
		out[i] = d.entry(e)
	}
	return out
}

func encEvents(evs []meta.CommitEvent) []*pb.CommitEvent {
	out := make([]*pb.CommitEvent, len(evs))
	for i, ev := range evs {
		if ev.ACLs {
			out[i] = &pb.CommitEvent{Acls: true}
			continue
		}
		out[i] = &pb.CommitEvent{Entry: encEntry(ev.Entry), HighWatermark: ev.HighWatermark, LogStartOffset: ev.LogStartOffset,
			Trim: ev.Trim, Swap: ev.Swap,
			// read_committed from the agent's index cache (issue 15/13).
			TxnKnown: ev.Stable.Known, LastStableOffset: ev.Stable.LastStableOffset,
			LastAbortOffset: ev.Stable.LastAbortOffset, AbortFirstOffset: ev.AbortFirstOffset}
	}
	return out
}

func (d *decoder) events(evs []*pb.CommitEvent) []meta.CommitEvent {
	out := make([]meta.CommitEvent, len(evs))
	for i, ev := range evs {
		if ev.GetAcls() {
			out[i] = meta.CommitEvent{ACLs: true}
			continue
		}
		if ev.GetEntry() == nil {
			d.fail("commit event without an index entry")
		}
		out[i] = meta.CommitEvent{Entry: d.entry(ev.GetEntry()), HighWatermark: ev.GetHighWatermark(),
			LogStartOffset: ev.GetLogStartOffset(), Trim: ev.GetTrim(), Swap: ev.GetSwap(),
			// read_committed from the agent's index cache (issue 15/13).
			Stable: meta.StableState{Known: ev.GetTxnKnown(), LastStableOffset: ev.GetLastStableOffset(),
				LastAbortOffset: ev.GetLastAbortOffset()},
			AbortFirstOffset: ev.GetAbortFirstOffset()}
	}
	return out
}

func encPartitionsSpecs(specs []meta.PartitionsSpec) []*pb.PartitionsSpec {
	out := make([]*pb.PartitionsSpec, len(specs))
	for i, s := range specs {
		out[i] = &pb.PartitionsSpec{Name: s.Name, Count: s.Count}
	}
	return out
}

func decPartitionsSpecs(specs []*pb.PartitionsSpec) []meta.PartitionsSpec {
	out := make([]meta.PartitionsSpec, len(specs))
	for i, s := range specs {
		out[i] = meta.PartitionsSpec{Name: s.GetName(), Count: s.GetCount()}
	}
	return out
}

func encConfigChanges(cs []meta.ConfigChange) []*pb.ConfigChange {
	out := make([]*pb.ConfigChange, len(cs))
	for i, c := range cs {
		out[i] = &pb.ConfigChange{Name: c.Name, Value: c.Value}
	}
	return out
}

func decConfigChanges(cs []*pb.ConfigChange) []meta.ConfigChange {
	if len(cs) == 0 {
		return nil
	}
	out := make([]meta.ConfigChange, len(cs))
	for i, c := range cs {
		out[i] = meta.ConfigChange{Name: c.GetName(), Value: c.Value}
	}
	return out
}

func (d *decoder) timestampQuery(q pb.TimestampQuery) meta.TimestampQuery {
	if _, ok := pb.TimestampQuery_name[int32(q)]; !ok {
		d.fail("unknown timestamp query %d", q)
	}
	return meta.TimestampQuery(q)
}

func encJoin(r meta.JoinGroupRequest) *pb.JoinGroupRequest {
	ps := make([]*pb.GroupProtocol, len(r.Protocols))
	for i, p := range r.Protocols {
		ps[i] = &pb.GroupProtocol{Name: p.Name, Metadata: p.Metadata}
	}
	return &pb.JoinGroupRequest{Group: r.Group, MemberId: r.MemberID, InstanceId: r.InstanceID, ClientId: r.ClientID,
		ClientHost: r.ClientHost, ProtocolType: r.ProtocolType, Protocols: ps,
		SessionTimeoutNanos: int64(r.SessionTimeout), RebalanceTimeoutNanos: int64(r.RebalanceTimeout),
		RequireKnownMember: r.RequireKnownMember}
}

func decJoin(r *pb.JoinGroupRequest) meta.JoinGroupRequest {
	out := meta.JoinGroupRequest{Group: r.GetGroup(), MemberID: r.GetMemberId(), InstanceID: r.GetInstanceId(),
		ClientID: r.GetClientId(), ClientHost: r.GetClientHost(), ProtocolType: r.GetProtocolType(),
		SessionTimeout: time.Duration(r.GetSessionTimeoutNanos()), RebalanceTimeout: time.Duration(r.GetRebalanceTimeoutNanos()),
		RequireKnownMember: r.GetRequireKnownMember()}
	if len(r.GetProtocols()) > 0 {
		out.Protocols = make([]meta.GroupProtocol, len(r.Protocols))
		for i, p := range r.Protocols {
			out.Protocols[i] = meta.GroupProtocol{Name: p.GetName(), Metadata: p.GetMetadata()}
		}
	}
	return out
}

func encJoinResult(r meta.JoinGroupResult, err error) *pb.JoinGroupResponse {
	ms := make([]*pb.GroupMember, len(r.Members))
	for i, m := range r.Members {
		ms[i] = &pb.GroupMember{MemberId: m.MemberID, InstanceId: m.InstanceID, Metadata: m.Metadata}
	}
	return &pb.JoinGroupResponse{Error: encodeErr(err), Generation: r.Generation, ProtocolType: r.ProtocolType,
		Protocol: r.Protocol, LeaderId: r.LeaderID, MemberId: r.MemberID, Members: ms}
}

func decJoinResult(r *pb.JoinGroupResponse) meta.JoinGroupResult {
	out := meta.JoinGroupResult{Generation: r.GetGeneration(), ProtocolType: r.GetProtocolType(), Protocol: r.GetProtocol(),
		LeaderID: r.GetLeaderId(), MemberID: r.GetMemberId()}
	if len(r.GetMembers()) > 0 {
		out.Members = make([]meta.GroupMember, len(r.Members))
		for i, m := range r.Members {
			out.Members[i] = meta.GroupMember{MemberID: m.GetMemberId(), InstanceID: m.GetInstanceId(), Metadata: m.GetMetadata()}
		}
	}
	return out
}

func encLeaving(ms []meta.LeavingMember) []*pb.LeavingMember {
	out := make([]*pb.LeavingMember, len(ms))
	for i, m := range ms {
		out[i] = &pb.LeavingMember{MemberId: m.MemberID, InstanceId: m.InstanceID}
	}
	return out
}

func decLeaving(ms []*pb.LeavingMember) []meta.LeavingMember {
	out := make([]meta.LeavingMember, len(ms))
	for i, m := range ms {
		out[i] = meta.LeavingMember{MemberID: m.GetMemberId(), InstanceID: m.GetInstanceId()}
	}
	return out
}

func encOffsets(os []meta.CommittedOffset) []*pb.CommittedOffset {
	out := make([]*pb.CommittedOffset, len(os))
	for i, o := range os {
		out[i] = &pb.CommittedOffset{TopicId: o.TopicID[:], Partition: o.Partition, Offset: o.Offset,
			LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: o.CommitTime}
	}
	return out
}

func (d *decoder) offsets(os []*pb.CommittedOffset) []meta.CommittedOffset {
	if len(os) == 0 {
		return nil
	}
	out := make([]meta.CommittedOffset, len(os))
	for i, o := range os {
		out[i] = meta.CommittedOffset{
			TopicPartition: meta.TopicPartition{TopicID: d.topicID(o.GetTopicId()), Partition: o.GetPartition()},
			Offset:         o.GetOffset(), LeaderEpoch: o.GetLeaderEpoch(), Metadata: o.GetMetadata(), CommitTime: o.GetCommitTime()}
	}
	return out
}

func encGroupListings(ls []meta.GroupListing) []*pb.GroupListing {
	out := make([]*pb.GroupListing, len(ls))
	for i, l := range ls {
		out[i] = &pb.GroupListing{Group: l.Group, ProtocolType: l.ProtocolType, State: l.State, Type: l.Type}
	}
	return out
}

func decGroupListings(ls []*pb.GroupListing) []meta.GroupListing {
	if len(ls) == 0 {
		return nil
	}
	out := make([]meta.GroupListing, len(ls))
	for i, l := range ls {
		out[i] = meta.GroupListing{Group: l.GetGroup(), ProtocolType: l.GetProtocolType(), State: l.GetState(), Type: l.GetType()}
	}
	return out
}

func encDescription(g meta.GroupDescription, err error) *pb.DescribeGroupResponse {
	ms := make([]*pb.GroupMemberDescription, len(g.Members))
	for i, m := range g.Members {
		ms[i] = &pb.GroupMemberDescription{MemberId: m.MemberID, InstanceId: m.InstanceID, ClientId: m.ClientID,
			ClientHost: m.ClientHost, Metadata: m.Metadata, Assignment: m.Assignment}
	}
	return &pb.DescribeGroupResponse{Error: encodeErr(err), Group: g.Group, State: g.State, ProtocolType: g.ProtocolType,
		Protocol: g.Protocol, Members: ms, Type: g.Type}
}

func decDescription(r *pb.DescribeGroupResponse) meta.GroupDescription {
	out := meta.GroupDescription{Group: r.GetGroup(), State: r.GetState(), ProtocolType: r.GetProtocolType(), Protocol: r.GetProtocol(),
		Type: r.GetType()}
	if len(r.GetMembers()) > 0 {
		out.Members = make([]meta.GroupMemberDescription, len(r.Members))
		for i, m := range r.Members {
			out.Members[i] = meta.GroupMemberDescription{MemberID: m.GetMemberId(), InstanceID: m.GetInstanceId(),
				ClientID: m.GetClientId(), ClientHost: m.GetClientHost(), Metadata: m.GetMetadata(), Assignment: m.GetAssignment()}
		}
	}
	return out
}

func encAgent(a meta.AgentInfo) *pb.AgentInfo {
	return &pb.AgentInfo{Id: a.ID, Zone: a.Zone, Group: a.Group, Roles: a.Roles, Addr: a.Addr, NodeId: a.NodeID, PeerAddr: a.PeerAddr,
		Stats: encAgentStats(a.Stats)} // console (issue 16)
}

func decAgent(a *pb.AgentInfo) meta.AgentInfo {
	return meta.AgentInfo{ID: a.GetId(), Zone: a.GetZone(), Group: a.GetGroup(), Roles: a.GetRoles(), Addr: a.GetAddr(), NodeID: a.GetNodeId(), PeerAddr: a.GetPeerAddr(),
		Stats: decAgentStats(a.GetStats())} // console (issue 16)
}

// console (issue 16): an agent's traffic counters.
func encAgentStats(s meta.AgentStats) *pb.AgentStats {
	return &pb.AgentStats{ProducedBytes: s.ProducedBytes, FetchedBytes: s.FetchedBytes, ObjectPuts: s.ObjectPuts,
		ObjectGets: s.ObjectGets, BytesPut: s.BytesPut, BytesGot: s.BytesGot}
}

func decAgentStats(s *pb.AgentStats) meta.AgentStats {
	return meta.AgentStats{ProducedBytes: s.GetProducedBytes(), FetchedBytes: s.GetFetchedBytes(), ObjectPuts: s.GetObjectPuts(),
		ObjectGets: s.GetObjectGets(), BytesPut: s.GetBytesPut(), BytesGot: s.GetBytesGot()}
}

func encAgents(as []meta.AgentInfo) []*pb.AgentInfo {
	out := make([]*pb.AgentInfo, len(as))
	for i, a := range as {
		out[i] = encAgent(a)
	}
	return out
}

func decAgents(as []*pb.AgentInfo) []meta.AgentInfo {
	if len(as) == 0 {
		return nil
	}
	out := make([]meta.AgentInfo, len(as))
	for i, a := range as {
		out[i] = decAgent(a)
	}
	return out
}

// Times travel as unix nanoseconds, the zero time as 0.
func encTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func decTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func encKeyInfo(k KeyInfo) *pb.KeyInfo {
	return &pb.KeyInfo{Id: k.ID, Cluster: k.Cluster, CreatedUnixNanos: encTime(k.Created), Revoked: k.Revoked,
		RevokedAtUnixNanos: encTime(k.RevokedAt)}
}

func decKeyInfo(k *pb.KeyInfo) KeyInfo {
	return KeyInfo{ID: k.GetId(), Cluster: k.GetCluster(), Created: decTime(k.GetCreatedUnixNanos()), Revoked: k.GetRevoked(),
		RevokedAt: decTime(k.GetRevokedAtUnixNanos())}
}

// Jobs (meta/jobs.go). Durations travel as nanoseconds, ids as 16 bytes,
// counts as int64 (an int on the Go side, clamped).

// indexEntries decodes a list of index entries in which every element
// must be present: a job's sources and a compaction's output entries name
// real ranges, and a missing one decoded as the zero entry would name
// partition 0 of the zero topic.
func (d *decoder) indexEntries(es []*pb.IndexEntry, what string) []meta.IndexEntry {
	for i, e := range es {
		if e == nil {
			d.fail("%s %d missing", what, i)
			return nil
		}
	}
	return d.entries(es)
}

// jobKind decodes a kind; JOB_NONE and kinds this side does not know
// fail.
func (d *decoder) jobKind(k pb.JobKind) meta.JobKind {
	switch k {
	case pb.JobKind_JOB_COMPACT, pb.JobKind_JOB_DELETE, pb.JobKind_JOB_ORPHANS, pb.JobKind_JOB_CLEAN_KEYS:
		return meta.JobKind(k)
	}
	d.fail("unknown job kind %d", k)
	return 0
}

func encJobKinds(ks []meta.JobKind) []pb.JobKind {
	out := make([]pb.JobKind, len(ks))
	for i, k := range ks {
		out[i] = pb.JobKind(k)
	}
	return out
}

// jobKinds decodes the kinds an agent asks for as they are, known or
// not, so that the cluster's service answers them exactly as it would in
// process (it refuses a kind it does not know); only a value that does
// not fit meta.JobKind fails here.
func (d *decoder) jobKinds(ks []pb.JobKind) []meta.JobKind {
	if len(ks) == 0 {
		return nil
	}
	out := make([]meta.JobKind, len(ks))
	for i, k := range ks {
		out[i] = meta.JobKind(d.int8(int32(k), "job kind"))
	}
	return out
}

// encJob encodes a job. The part sent is the one Kind names, so a job
// whose Kind and part disagree (a bug in meta) arrives without its part
// and the agent refuses it as malformed rather than doing other work.
func encJob(j meta.Job) *pb.Job {
	out := &pb.Job{Id: j.ID, Kind: pb.JobKind(j.Kind), LeaseTtlNanos: int64(j.LeaseTTL)}
	switch {
	case (j.Kind == meta.JobCompact || j.Kind == meta.JobCleanKeys) && j.Compact != nil:
		c := j.Compact
		cj := &pb.CompactJob{Level: int32(c.Level), Output: c.Output[:], MaxEntryBytes: c.MaxEntryBytes, Sources: encEntries(c.Sources)}
		if c.Clean != nil {
			cj.Clean = &pb.CleanSpec{DirtyStart: c.Clean.DirtyStart, TombstoneHorizon: c.Clean.TombstoneHorizon}
			for _, a := range c.Clean.Aborted {
				cj.Clean.Aborted = append(cj.Clean.Aborted, &pb.AbortedTxn{ProducerId: a.ProducerID, FirstOffset: a.FirstOffset, LastOffset: a.LastOffset})
			}
			cj.Clean.KeyEnd, cj.Clean.KeySources, cj.Clean.FromLogStart = c.Clean.KeyEnd, encEntries(c.Clean.KeySources), c.Clean.FromLogStart
		}
		out.Work = &pb.Job_Compact{Compact: cj}
	case j.Kind == meta.JobDelete && j.Delete != nil:
		out.Work = &pb.Job_Delete{Delete: &pb.DeleteJob{Objects: encObjectRefs(j.Delete.Objects)}}
	case j.Kind == meta.JobOrphans && j.Orphans != nil:
		out.Work = &pb.Job_Orphans{Orphans: &pb.OrphansJob{Prefix: j.Orphans.Prefix, MinAgeNanos: int64(j.Orphans.MinAge)}}
	}
	return out
}

// job decodes a leased job: its kind must be known and exactly the part
// it names must be present (meta.Job's promise to the agent).
func (d *decoder) job(j *pb.Job) meta.Job {
	if j == nil {
		d.fail("job missing")
		return meta.Job{}
	}
	out := meta.Job{ID: j.GetId(), Kind: d.jobKind(j.GetKind()), LeaseTTL: time.Duration(j.GetLeaseTtlNanos())}
	switch w := j.GetWork().(type) {
	case *pb.Job_Compact:
		if (out.Kind != meta.JobCompact && out.Kind != meta.JobCleanKeys) || w.Compact == nil {
			break
		}
		c := w.Compact
		out.Compact = &meta.CompactJob{Level: d.int8(c.GetLevel(), "compaction level"), Output: d.segmentID(c.GetOutput()),
			MaxEntryBytes: c.GetMaxEntryBytes(), Sources: d.indexEntries(c.GetSources(), "compaction source")}
		if cs := c.GetClean(); cs != nil {
			out.Compact.Clean = &meta.CleanSpec{DirtyStart: cs.GetDirtyStart(), TombstoneHorizon: cs.GetTombstoneHorizon()}
			for _, a := range cs.GetAborted() {
				out.Compact.Clean.Aborted = append(out.Compact.Clean.Aborted, meta.AbortedTxn{ProducerID: a.GetProducerId(), FirstOffset: a.GetFirstOffset(), LastOffset: a.GetLastOffset()})
			}
			out.Compact.Clean.KeyEnd, out.Compact.Clean.FromLogStart = cs.GetKeyEnd(), cs.GetFromLogStart()
			if len(cs.GetKeySources()) > 0 {
				out.Compact.Clean.KeySources = d.indexEntries(cs.GetKeySources(), "key cleaning key source")
			}
		}
		if (out.Kind == meta.JobCleanKeys) != (out.Compact.Clean != nil) {
			break // a cleaning without its spec, or a compaction with one
		}
		return out
	case *pb.Job_Delete:
		if out.Kind != meta.JobDelete || w.Delete == nil {
			break
		}
		out.Delete = &meta.DeleteJob{Objects: d.objectRefs(w.Delete.GetObjects())}
		return out
	case *pb.Job_Orphans:
		if out.Kind != meta.JobOrphans || w.Orphans == nil {
			break
		}
		out.Orphans = &meta.OrphansJob{Prefix: w.Orphans.GetPrefix(), MinAge: time.Duration(w.Orphans.GetMinAgeNanos())}
		return out
	}
	d.fail("%s job %d without its %s part", out.Kind, out.ID, out.Kind)
	return out
}

func encObjectRefs(rs []meta.ObjectRef) []*pb.ObjectRef {
	out := make([]*pb.ObjectRef, len(rs))
	for i, r := range rs {
		out[i] = &pb.ObjectRef{Id: r.ID[:], Key: r.Key, Size: r.Size}
	}
	return out
}

func (d *decoder) objectRefs(rs []*pb.ObjectRef) []meta.ObjectRef {
	if len(rs) == 0 {
		return nil
	}
	out := make([]meta.ObjectRef, len(rs))
	for i, r := range rs {
		if r == nil {
			d.fail("object ref missing")
			continue
		}
		out[i] = meta.ObjectRef{ID: d.segmentID(r.GetId()), Key: r.GetKey(), Size: r.GetSize()}
	}
	return out
}

func encCompactResult(r meta.CompactResult) *pb.CompleteCompactionRequest {
	return &pb.CompleteCompactionRequest{JobId: r.JobID, Output: r.Output[:], ObjectKey: r.ObjectKey, Size: r.Size,
		Entries: encEntries(r.Entries), BytesRead: r.BytesRead, CleanedUpTo: r.CleanedUpTo, Unchanged: r.Unchanged}
}

func (d *decoder) compactResult(r *pb.CompleteCompactionRequest) meta.CompactResult {
	return meta.CompactResult{JobID: r.GetJobId(), Output: d.segmentID(r.GetOutput()), ObjectKey: r.GetObjectKey(),
		Size: r.GetSize(), Entries: d.indexEntries(r.GetEntries(), "compaction output entry"), BytesRead: r.GetBytesRead(),
		CleanedUpTo: r.GetCleanedUpTo(), Unchanged: r.GetUnchanged()}
}

func encDeleteResult(r meta.DeleteResult) *pb.CompleteDeleteRequest {
	out := &pb.CompleteDeleteRequest{JobId: r.JobID, Deleted: make([][]byte, len(r.Deleted))}
	for i := range r.Deleted {
		out.Deleted[i] = r.Deleted[i][:]
	}
	return out
}

func (d *decoder) deleteResult(r *pb.CompleteDeleteRequest) meta.DeleteResult {
	out := meta.DeleteResult{JobID: r.GetJobId()}
	if len(r.GetDeleted()) > 0 {
		out.Deleted = make([]meta.SegmentID, len(r.Deleted))
		for i, id := range r.Deleted {
			out.Deleted[i] = d.segmentID(id)
		}
	}
	return out
}

func encOrphansResult(r meta.OrphansResult) *pb.CompleteOrphansRequest {
	return &pb.CompleteOrphansRequest{JobId: r.JobID, Listed: r.Listed, Deleted: r.Deleted, DeletedBytes: r.DeletedBytes}
}

func decOrphansResult(r *pb.CompleteOrphansRequest) meta.OrphansResult {
	return meta.OrphansResult{JobID: r.GetJobId(), Listed: r.GetListed(), Deleted: r.GetDeleted(), DeletedBytes: r.GetDeletedBytes()}
}

package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"sluice.dev/internal/lograte"
	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// Backend is what the server serves: the process that hosts clusters,
// their agent keys and the admin token (meta/host).
type Backend interface {
	// Agent resolves an agent key to its cluster. It is called on every
	// Meta call, so it must be cheap (keys kept in memory). Errors:
	// wrapping meta.ErrUnauthenticated (unknown or revoked key) →
	// codes.Unauthenticated; wrapping meta.ErrUnavailable (this replica
	// is not the leader, the cluster is opening) → codes.Unavailable.
	// The jobs RPCs are served when the Client returned also implements
	// meta.JobsClient, and answered codes.Unimplemented otherwise.
	Agent(ctx context.Context, key string) (meta.Client, error)
	// AdminAuth checks an admin token; an error refuses the call with
	// codes.PermissionDenied (codes.Unauthenticated when no token came).
	AdminAuth(token string) error
	// CheckKey is Agent's refusal without its work: an error when key is
	// certainly not a valid agent key (unknown, revoked, malformed), nil
	// when it may be one, including when this replica cannot tell (not
	// the leader). It runs before a call's request is read (tapCall), on
	// the connection's reader, so it must answer from memory at once.
	CheckKey(key string) error
	// CreateKey makes a new agent key for cluster.
	CreateKey(ctx context.Context, cluster string) (key string, info KeyInfo, err error)
	// ListKeys lists the keys of cluster, of every cluster when "".
	ListKeys(ctx context.Context, cluster string) ([]KeyInfo, error)
	// RevokeKey revokes key id of cluster: it stops resolving at once.
	RevokeKey(ctx context.Context, cluster, id string) error
}

// KeyInfo describes an agent key without its secret.
type KeyInfo struct {
	ID, Cluster string
	Created     time.Time
	Revoked     bool
	RevokedAt   time.Time
}

// Message size limits. Answers can be large (Topics(nil) of a cluster
// with many topics and configs, a Lookup of many entries); requests are
// bounded by what one agent commits at once, and are read before the key
// is checked, so they get the smaller bound.
const (
	maxAnswerBytes  = 64 << 20
	maxRequestBytes = 16 << 20
)

// Keepalive: the client pings every clientPingEvery so that a dead TCP
// connection (a meta host gone, a NAT dropping state) is noticed in
// seconds, not at the kernel's retransmission timeout; the server
// permits pings that often (minPingInterval) and pings idle agents itself
// so that their Watch streams end when they vanish.
const (
	clientPingEvery  = 10 * time.Second // gRPC's floor for client pings
	clientPingWait   = 5 * time.Second
	minPingInterval  = 5 * time.Second
	serverPingEvery  = 30 * time.Second
	serverPingWait   = 10 * time.Second
	keyRecheckPeriod = time.Second // how often a Watch stream re-checks its key
)

// Server serves Meta and Admin in front of a Backend.
type Server struct {
	b          Backend
	log        *slog.Logger
	refusedLog lograte.Limiter // tapCall's log lines
}

// NewServer returns a server of b. log may be nil.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{b: b, log: log}
}

// Register registers both services on g. g should be made with
// s.Options.
func (s *Server) Register(g *grpc.Server) {
	pb.RegisterMetaServer(g, &metaServer{s: s})
	pb.RegisterAdminServer(g, &adminServer{s: s})
}

// bearer returns the token of the call's "authorization: Bearer" header.
func bearer(ctx context.Context) (string, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	return bearerOf(md)
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// agent resolves the call's key to its cluster, or returns the status
// error the call must end with. The key itself is never logged.
func (s *Server) agent(ctx context.Context) (string, meta.Client, error) {
	key, ok := bearer(ctx)
	if !ok {
		return "", nil, statusErr(fmt.Errorf("%w: no agent key in the call (authorization: Bearer <key>)", meta.ErrUnauthenticated))
	}
	c, err := s.b.Agent(ctx, key)
	if err != nil {
		if errors.Is(err, meta.ErrUnauthenticated) {
			s.log.Info("meta/rpc: agent key refused", "peer", peerAddr(ctx), "err", err)
		}
		return "", nil, statusErr(err)
	}
	return key, c, nil
}

// invalid answers a request that does not decode.
func invalid(err error) *pb.Error {
	return encodeErr(fmt.Errorf("%w: %w", meta.ErrInvalidRequest, err))
}

// metaServer serves meta.Client. Each method resolves the key, decodes
// the request, calls the cluster's Client with the call's context (so a
// JoinGroup waits up to the rebalance timeout on gRPC's own goroutine)
// and encodes the answer, error included.
type metaServer struct {
	pb.UnimplementedMetaServer
	s *Server
}

func (m *metaServer) ClusterID(ctx context.Context, _ *pb.ClusterIDRequest) (*pb.ClusterIDResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	id, err := c.ClusterID(ctx)
	return &pb.ClusterIDResponse{Error: encodeErr(err), ClusterId: id}, nil
}

func (m *metaServer) CreateTopics(ctx context.Context, r *pb.CreateTopicsRequest) (*pb.CreateTopicsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.CreateTopics(ctx, decTopicSpecs(r.GetSpecs()))
	return &pb.CreateTopicsResponse{Error: encodeErr(err), Results: encTopicResults(res)}, nil
}

func (m *metaServer) Topics(ctx context.Context, r *pb.TopicsRequest) (*pb.TopicsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	names := r.GetNames()
	if r.GetAll() {
		names = nil
	} else if names == nil {
		names = []string{} // none asked for, not all
	}
	ts, err := c.Topics(ctx, names)
	return &pb.TopicsResponse{Error: encodeErr(err), Topics: encTopics(ts)}, nil
}

func (m *metaServer) TopicsByID(ctx context.Context, r *pb.TopicsByIDRequest) (*pb.TopicsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	ids := make([]meta.TopicID, len(r.GetIds()))
	for i, id := range r.GetIds() {
		ids[i] = d.topicID(id)
	}
	if d.err != nil {
		return &pb.TopicsResponse{Error: invalid(d.err)}, nil
	}
	ts, err := c.TopicsByID(ctx, ids)
	return &pb.TopicsResponse{Error: encodeErr(err), Topics: encTopics(ts)}, nil
}

func (m *metaServer) PartitionStates(ctx context.Context, r *pb.PartitionStatesRequest) (*pb.PartitionStatesResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tps := d.tps(r.GetPartitions())
	if d.err != nil {
		return &pb.PartitionStatesResponse{Error: invalid(d.err)}, nil
	}
	ss, err := c.PartitionStates(ctx, tps)
	return &pb.PartitionStatesResponse{Error: encodeErr(err), States: encPartitionStates(ss)}, nil
}

func (m *metaServer) CommitSegment(ctx context.Context, r *pb.CommitSegmentRequest) (*pb.CommitSegmentResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	sc := d.commit(r)
	if d.err != nil {
		return &pb.CommitSegmentResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.CommitSegment(ctx, sc)
	return &pb.CommitSegmentResponse{Error: encodeErr(err), Chunks: encCommitResult(res)}, nil
}

func (m *metaServer) Lookup(ctx context.Context, r *pb.LookupRequest) (*pb.LookupResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tp := d.tp(r.GetPartition())
	if d.err != nil {
		return &pb.LookupResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.Lookup(ctx, tp, r.GetOffset(), clampInt(r.GetMaxEntries()))
	return &pb.LookupResponse{Error: encodeErr(err), Entries: encEntries(res.Entries),
		LogStartOffset: res.LogStartOffset, HighWatermark: res.HighWatermark,
		// read_committed from the agent's index cache (issue 15/13).
		TxnKnown: res.Stable.Known, LastStableOffset: res.Stable.LastStableOffset, LastAbortOffset: res.Stable.LastAbortOffset}, nil
}

func (m *metaServer) InitProducerID(ctx context.Context, r *pb.InitProducerIDRequest) (*pb.InitProducerIDResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	req := meta.ProducerIDRequest{TransactionalID: r.GetTransactionalId(), ProducerID: r.GetProducerId(),
		ProducerEpoch: d.int16(r.GetProducerEpoch(), "producer epoch"), TransactionTimeoutMs: r.GetTransactionTimeoutMs()}
	if d.err != nil {
		return &pb.InitProducerIDResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.InitProducerID(ctx, req)
	return &pb.InitProducerIDResponse{Error: encodeErr(err), ProducerId: res.ProducerID, ProducerEpoch: int32(res.ProducerEpoch)}, nil
}

// Watch relays the cluster's commit events. It re-checks the key every
// keyRecheckPeriod, so a revoked key's stream ends within about a second
// (UNAUTHENTICATED); a backend that stops answering for this key (lost
// leadership) ends it with UNAVAILABLE. When the cluster drops the
// watcher (it fell behind, or the cluster closed) the stream ends with
// OK and the agent watches again.
//
// Send blocks while the agent does not read (gRPC flow control); the
// cluster's watcher buffer then fills and the cluster drops the watcher,
// so a slow agent costs meta a bounded buffer, never a waiting committer.
// While Send blocks the key is not re-checked; keepalive ends the stream
// if the agent is gone.
func (m *metaServer) Watch(_ *pb.WatchRequest, stream pb.Meta_WatchServer) error {
	ctx := stream.Context()
	key, c, err := m.s.agent(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := c.Watch(ctx)
	if err != nil {
		return stream.Send(&pb.WatchResponse{Error: encodeErr(err)})
	}
	// The first message tells the agent the watch is registered.
	if err := stream.Send(&pb.WatchResponse{}); err != nil {
		return err
	}
	tick := time.NewTicker(keyRecheckPeriod)
	defer tick.Stop()
	for {
		select {
		case evs, ok := <-ch:
			if !ok {
				return nil
			}
			if err := stream.Send(&pb.WatchResponse{Events: encEvents(evs)}); err != nil {
				return err
			}
		case <-tick.C:
			if _, err := m.s.b.Agent(ctx, key); err != nil {
				if ctx.Err() != nil {
					return status.FromContextError(ctx.Err()).Err()
				}
				if errors.Is(err, meta.ErrUnauthenticated) {
					m.s.log.Info("meta/rpc: ending a watch: its agent key no longer resolves", "peer", peerAddr(ctx), "err", err)
					err = fmt.Errorf("%w: the agent key was revoked or is no longer known; watch ended (%v)", meta.ErrUnauthenticated, err)
				}
				return statusErr(err)
			}
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (m *metaServer) DeleteTopics(ctx context.Context, r *pb.DeleteTopicsRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	errs, err := c.DeleteTopics(ctx, r.GetNames())
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) CreatePartitions(ctx context.Context, r *pb.CreatePartitionsRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	errs, err := c.CreatePartitions(ctx, decPartitionsSpecs(r.GetSpecs()))
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) AlterTopicConfigs(ctx context.Context, r *pb.AlterTopicConfigsRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	err = c.AlterTopicConfigs(ctx, r.GetTopic(), decConfigChanges(r.GetChanges()), r.GetReplace())
	return &pb.ErrorResponse{Error: encodeErr(err)}, nil
}

func (m *metaServer) FindTimestamp(ctx context.Context, r *pb.FindTimestampRequest) (*pb.FindTimestampResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tp := d.tp(r.GetPartition())
	q := d.timestampQuery(r.GetQuery())
	if d.err != nil {
		return &pb.FindTimestampResponse{Error: invalid(d.err)}, nil
	}
	res, err := c.FindTimestamp(ctx, tp, q, r.GetTimestamp())
	out := &pb.FindTimestampResponse{Error: encodeErr(err), Found: res.Found, LogStartOffset: res.LogStartOffset, HighWatermark: res.HighWatermark}
	if res.Found {
		out.Entry = encEntry(res.Entry)
	}
	return out, nil
}

func (m *metaServer) JoinGroup(ctx context.Context, r *pb.JoinGroupRequest) (*pb.JoinGroupResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.JoinGroup(ctx, decJoin(r))
	return encJoinResult(res, err), nil
}

func (m *metaServer) SyncGroup(ctx context.Context, r *pb.SyncGroupRequest) (*pb.SyncGroupResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	req := meta.SyncGroupRequest{Group: r.GetGroup(), MemberID: r.GetMemberId(), InstanceID: r.GetInstanceId(),
		Generation: r.GetGeneration(), Assignments: r.GetAssignments()}
	res, err := c.SyncGroup(ctx, req)
	return &pb.SyncGroupResponse{Error: encodeErr(err), ProtocolType: res.ProtocolType, Protocol: res.Protocol,
		Assignment: res.Assignment}, nil
}

func (m *metaServer) Heartbeat(ctx context.Context, r *pb.HeartbeatRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	err = c.Heartbeat(ctx, r.GetGroup(), r.GetMemberId(), r.GetInstanceId(), r.GetGeneration())
	return &pb.ErrorResponse{Error: encodeErr(err)}, nil
}

func (m *metaServer) LeaveGroup(ctx context.Context, r *pb.LeaveGroupRequest) (*pb.ErrorsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	errs, err := c.LeaveGroup(ctx, r.GetGroup(), decLeaving(r.GetMembers()))
	return &pb.ErrorsResponse{Error: encodeErr(err), Errors: encodeErrs(errs)}, nil
}

func (m *metaServer) CommitOffsets(ctx context.Context, r *pb.CommitOffsetsRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	req := meta.OffsetCommitRequest{Group: r.GetGroup(), MemberID: r.GetMemberId(), InstanceID: r.GetInstanceId(),
		Generation: r.GetGeneration(), Offsets: d.offsets(r.GetOffsets()), APIVersion: d.int16(r.GetApiVersion(), "api version")}
	if d.err != nil {
		return &pb.ErrorResponse{Error: invalid(d.err)}, nil
	}
	return &pb.ErrorResponse{Error: encodeErr(c.CommitOffsets(ctx, req))}, nil
}

func (m *metaServer) FetchOffsets(ctx context.Context, r *pb.FetchOffsetsRequest) (*pb.FetchOffsetsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	var tps []meta.TopicPartition
	if !r.GetAll() {
		tps = append([]meta.TopicPartition{}, d.tps(r.GetPartitions())...) // none asked for is not all
	}
	if d.err != nil {
		return &pb.FetchOffsetsResponse{Error: invalid(d.err)}, nil
	}
	offs, err := c.FetchOffsets(ctx, r.GetGroup(), tps)
	return &pb.FetchOffsetsResponse{Error: encodeErr(err), Offsets: encOffsets(offs)}, nil
}

func (m *metaServer) DeleteOffsets(ctx context.Context, r *pb.DeleteOffsetsRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	tps := d.tps(r.GetPartitions())
	if d.err != nil {
		return &pb.ErrorResponse{Error: invalid(d.err)}, nil
	}
	return &pb.ErrorResponse{Error: encodeErr(c.DeleteOffsets(ctx, r.GetGroup(), tps))}, nil
}

func (m *metaServer) DeleteGroup(ctx context.Context, r *pb.DeleteGroupRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.ErrorResponse{Error: encodeErr(c.DeleteGroup(ctx, r.GetGroup()))}, nil
}

func (m *metaServer) ListGroups(ctx context.Context, _ *pb.ListGroupsRequest) (*pb.ListGroupsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	ls, err := c.ListGroups(ctx)
	return &pb.ListGroupsResponse{Error: encodeErr(err), Groups: encGroupListings(ls)}, nil
}

func (m *metaServer) DescribeGroup(ctx context.Context, r *pb.DescribeGroupRequest) (*pb.DescribeGroupResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	g, err := c.DescribeGroup(ctx, r.GetGroup())
	return encDescription(g, err), nil
}

func (m *metaServer) RegisterAgent(ctx context.Context, r *pb.RegisterAgentRequest) (*pb.RegisterAgentResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	if r.GetAgent() == nil {
		return &pb.RegisterAgentResponse{Error: invalid(errors.New("agent missing"))}, nil
	}
	reg, err := c.RegisterAgent(ctx, decAgent(r.GetAgent()))
	return &pb.RegisterAgentResponse{Error: encodeErr(err), NodeId: reg.NodeID, TtlNanos: int64(reg.TTL)}, nil
}

func (m *metaServer) UnregisterAgent(ctx context.Context, r *pb.UnregisterAgentRequest) (*pb.ErrorResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.ErrorResponse{Error: encodeErr(c.UnregisterAgent(ctx, r.GetId()))}, nil
}

func (m *metaServer) Agents(ctx context.Context, _ *pb.AgentsRequest) (*pb.AgentsResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	as, err := c.Agents(ctx)
	return &pb.AgentsResponse{Error: encodeErr(err), Agents: encAgents(as)}, nil
}

func (m *metaServer) DeleteRecords(ctx context.Context, r *pb.DeleteRecordsRequest) (*pb.PartitionStatesResponse, error) {
	_, c, err := m.s.agent(ctx)
	if err != nil {
		return nil, err
	}
	var d decoder
	specs := d.deleteRecords(r.GetSpecs())
	if d.err != nil {
		return &pb.PartitionStatesResponse{Error: invalid(d.err)}, nil
	}
	ss, err := c.DeleteRecords(ctx, specs)
	return &pb.PartitionStatesResponse{Error: encodeErr(err), States: encPartitionStates(ss)}, nil
}

// jobs resolves the call's key exactly as agent does (the jobs calls are
// agent calls: the same key, refused the same way when unknown or
// revoked) and returns the cluster's jobs service; codes.Unimplemented
// when the cluster's service does not run jobs. The client maps that to
// meta.ErrUnsupported, which it does not retry.
func (s *Server) jobs(ctx context.Context, method string) (meta.JobsClient, error) {
	_, c, err := s.agent(ctx)
	if err != nil {
		return nil, err
	}
	jc, ok := c.(meta.JobsClient)
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "meta: %s: this cluster's control plane does not run background jobs (its service implements no meta.JobsClient)", method)
	}
	return jc, nil
}

func (m *metaServer) AcquireJob(ctx context.Context, r *pb.AcquireJobRequest) (*pb.AcquireJobResponse, error) {
	jc, err := m.s.jobs(ctx, "AcquireJob")
	if err != nil {
		return nil, err
	}
	var d decoder
	kinds := d.jobKinds(r.GetKinds())
	if d.err != nil {
		return &pb.AcquireJobResponse{Error: invalid(d.err)}, nil
	}
	job, ok, err := jc.AcquireJob(ctx, r.GetAgentId(), kinds)
	out := &pb.AcquireJobResponse{Error: encodeErr(err), Ok: ok}
	if ok {
		out.Job = encJob(job)
	}
	return out, nil
}

func (m *metaServer) CompleteCompaction(ctx context.Context, r *pb.CompleteCompactionRequest) (*pb.CompleteCompactionResponse, error) {
	jc, err := m.s.jobs(ctx, "CompleteCompaction")
	if err != nil {
		return nil, err
	}
	var d decoder
	res := d.compactResult(r)
	if d.err != nil {
		return &pb.CompleteCompactionResponse{Error: invalid(d.err)}, nil
	}
	o, err := jc.CompleteCompaction(ctx, res)
	return &pb.CompleteCompactionResponse{Error: encodeErr(err), Swapped: int64(o.Swapped), Refused: int64(o.Refused)}, nil
}

func (m *metaServer) CompleteDelete(ctx context.Context, r *pb.CompleteDeleteRequest) (*pb.ErrorResponse, error) {
	jc, err := m.s.jobs(ctx, "CompleteDelete")
	if err != nil {
		return nil, err
	}
	var d decoder
	res := d.deleteResult(r)
	if d.err != nil {
		return &pb.ErrorResponse{Error: invalid(d.err)}, nil
	}
	return &pb.ErrorResponse{Error: encodeErr(jc.CompleteDelete(ctx, res))}, nil
}

func (m *metaServer) CheckOrphans(ctx context.Context, r *pb.CheckOrphansRequest) (*pb.CheckOrphansResponse, error) {
	jc, err := m.s.jobs(ctx, "CheckOrphans")
	if err != nil {
		return nil, err
	}
	keys, err := jc.CheckOrphans(ctx, r.GetJobId(), r.GetKeys())
	return &pb.CheckOrphansResponse{Error: encodeErr(err), Keys: keys}, nil
}

func (m *metaServer) CompleteOrphans(ctx context.Context, r *pb.CompleteOrphansRequest) (*pb.ErrorResponse, error) {
	jc, err := m.s.jobs(ctx, "CompleteOrphans")
	if err != nil {
		return nil, err
	}
	return &pb.ErrorResponse{Error: encodeErr(jc.CompleteOrphans(ctx, decOrphansResult(r)))}, nil
}

func (m *metaServer) AbandonJob(ctx context.Context, r *pb.AbandonJobRequest) (*pb.ErrorResponse, error) {
	jc, err := m.s.jobs(ctx, "AbandonJob")
	if err != nil {
		return nil, err
	}
	return &pb.ErrorResponse{Error: encodeErr(jc.AbandonJob(ctx, r.GetJobId(), r.GetReason()))}, nil
}

// adminServer serves the key administration.
type adminServer struct {
	pb.UnimplementedAdminServer
	s *Server
}

// auth checks the call's admin token.
func (a *adminServer) auth(ctx context.Context) error {
	tok, ok := bearer(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "meta: no admin token in the call (authorization: Bearer <token>)")
	}
	if err := a.s.b.AdminAuth(tok); err != nil {
		a.s.log.Warn("meta/rpc: admin token refused", "peer", peerAddr(ctx))
		return status.Error(codes.PermissionDenied, "meta: admin token refused")
	}
	return nil
}

func (a *adminServer) CreateKey(ctx context.Context, r *pb.CreateKeyRequest) (*pb.CreateKeyResponse, error) {
	if err := a.auth(ctx); err != nil {
		return nil, err
	}
	key, info, err := a.s.b.CreateKey(ctx, r.GetCluster())
	if err != nil {
		return &pb.CreateKeyResponse{Error: encodeErr(err)}, nil
	}
	a.s.log.Info("meta/rpc: agent key created", "cluster", info.Cluster, "id", info.ID, "peer", peerAddr(ctx))
	return &pb.CreateKeyResponse{Key: key, Info: encKeyInfo(info)}, nil
}

func (a *adminServer) ListKeys(ctx context.Context, r *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	if err := a.auth(ctx); err != nil {
		return nil, err
	}
	ks, err := a.s.b.ListKeys(ctx, r.GetCluster())
	out := &pb.ListKeysResponse{Error: encodeErr(err), Keys: make([]*pb.KeyInfo, len(ks))}
	for i, k := range ks {
		out.Keys[i] = encKeyInfo(k)
	}
	return out, nil
}

func (a *adminServer) RevokeKey(ctx context.Context, r *pb.RevokeKeyRequest) (*pb.ErrorResponse, error) {
	if err := a.auth(ctx); err != nil {
		return nil, err
	}
	err := a.s.b.RevokeKey(ctx, r.GetCluster(), r.GetId())
	if err == nil {
		a.s.log.Info("meta/rpc: agent key revoked", "cluster", r.GetCluster(), "id", r.GetId(), "peer", peerAddr(ctx))
	}
	return &pb.ErrorResponse{Error: encodeErr(err)}, nil
}

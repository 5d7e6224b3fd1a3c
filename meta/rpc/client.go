package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addrs are the meta replicas, host:port. The client uses one at a
	// time and moves to the next when a call fails with Unavailable (a
	// standby answers "not leader") or cannot connect.
	Addrs []string
	// Key is the agent key; it selects the cluster.
	Key string
	// TLS, when set, is used for every connection; nil is plaintext,
	// which Dial refuses for an address that is not loopback unless
	// Insecure is set: the key travels in every call.
	TLS *tls.Config
	// Insecure allows plaintext to addresses that are not loopback (flag
	// --meta-insecure): a network where nobody can read the traffic.
	Insecure bool
	Logger   *slog.Logger
	// Dialer, if set, opens the TCP connection (tests wrap it to see the
	// bytes on the wire).
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// Retry pacing for calls that did not reach a leader: jittered
// exponential backoff from retryFirst to retryMax, while the caller's ctx
// allows; a ctx without a deadline allows retryFor in all (so that
// cache.Index, which watches without one, learns within seconds that
// meta is down and serves its view as stale).
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 2 * time.Second
	retryFor   = 5 * time.Second
	// Watch's channel buffer: batches received and not yet taken by the
	// agent. Past it the stream stops reading, gRPC flow control pushes
	// back to meta, and meta drops the watcher.
	watchBuffer = 16
)

// Client is meta.Client over gRPC: the agent's side of the control plane
// API. All traffic is the agent's outbound connection; the client never
// listens and never tells meta where to reach it.
//
// Calls use the caller's ctx deadline. A call that fails before reaching
// the leader (connection refused or broken, a standby's "not leader")
// moves to the next replica and is tried again after a jittered backoff
// while ctx allows: every meta.Client method is safe to retry (see
// meta/client.go). What is still failing then comes back wrapping
// meta.ErrUnavailable; the end of the caller's own ctx comes back
// wrapping ctx.Err(); meta's own errors come back as meta sent them
// (errors.Is works with meta's sentinels).
type Client struct {
	addrs []string
	conns []*grpc.ClientConn
	metas []pb.MetaClient
	log   *slog.Logger

	cur    atomic.Int32 // index of the replica in use
	closed atomic.Bool
}

var (
	_ meta.Client     = (*Client)(nil)
	_ meta.JobsClient = (*Client)(nil)
)

// bearerCreds puts "authorization: Bearer <token>" on every call.
type bearerCreds struct {
	token  string
	secure bool
}

func (b bearerCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity: only when TLS is configured; plaintext is
// allowed for loopback and tests (ClientConfig.TLS says so).
func (b bearerCreds) RequireTransportSecurity() bool { return b.secure }

func dialOptions(token string, tlsCfg *tls.Config, dialer func(context.Context, string) (net.Conn, error)) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(bearerCreds{token: token, secure: tlsCfg != nil}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxAnswerBytes), grpc.MaxCallSendMsgSize(maxRequestBytes)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: clientPingEvery, Timeout: clientPingWait, PermitWithoutStream: true}),
		// gRPC's reconnect backoff grows to 2 minutes by default; a meta
		// replica that comes back should be used within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: retryMax},
			MinConnectTimeout: 5 * time.Second,
		}),
	}
	if dialer != nil {
		opts = append(opts, grpc.WithContextDialer(dialer))
	}
	return opts
}

// checkPlaintext refuses to send secret (the agent key, the admin token:
// a bearer credential in every call) without TLS to addr unless addr is
// loopback: an IP in 127.0.0.0/8 or ::1, the name "localhost", an empty
// host (":9093", which Go dials on the local host) or a unix socket.
//
// Names are not resolved: any other name counts as remote even if it
// resolves to 127.0.0.1 today, because what it resolves to can change
// between this check and the dial (and DNS answers can be forged), and
// the key would go wherever it points. Such a setup passes --meta-insecure.
func checkPlaintext(addr, secret string) error {
	if plaintextSafe(addr) {
		return nil
	}
	return fmt.Errorf("meta/rpc: refusing to send the %s in plaintext to meta at %q, which is not a loopback address: "+
		"give --meta-ca (meta's CA certificate, for TLS) or, on a network nobody else can read, --meta-insecure", secret, addr)
}

// plaintextSafe reports whether addr is loopback (see checkPlaintext).
func plaintextSafe(addr string) bool {
	// gRPC targets may carry a scheme: dns:///host:port, passthrough:///...
	if strings.HasPrefix(addr, "unix:") || strings.HasPrefix(addr, "unix-abstract:") {
		return true
	}
	if i := strings.Index(addr, ":///"); i >= 0 {
		addr = addr[i+len(":///"):]
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr // no port
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Dial returns a client of the replicas in cfg.Addrs. It does not touch
// the network: connections open on the first call.
func Dial(cfg ClientConfig) (*Client, error) {
	if len(cfg.Addrs) == 0 {
		return nil, errors.New("meta/rpc: no meta address (--meta-addr)")
	}
	if cfg.Key == "" {
		return nil, errors.New("meta/rpc: no agent key (--meta-key)")
	}
	if cfg.TLS == nil && !cfg.Insecure {
		for _, addr := range cfg.Addrs {
			if err := checkPlaintext(addr, "agent key"); err != nil {
				return nil, err
			}
		}
	}
	c := &Client{addrs: cfg.Addrs, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	opts := dialOptions(cfg.Key, cfg.TLS, cfg.Dialer)
	for _, addr := range cfg.Addrs {
		cc, err := grpc.NewClient(addr, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("meta/rpc: meta address %q: %w", addr, err)
		}
		c.conns = append(c.conns, cc)
		c.metas = append(c.metas, pb.NewMetaClient(cc))
	}
	return c, nil
}

// Close closes the connections. Calls after Close fail with
// meta.ErrClosed; open Watch channels close.
func (c *Client) Close() error {
	c.closed.Store(true)
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// failover moves off replica i after err, unless another call already
// did.
func (c *Client) failover(i int32, err error) {
	if len(c.addrs) < 2 {
		return
	}
	next := (i + 1) % int32(len(c.addrs))
	if c.cur.CompareAndSwap(i, next) {
		c.log.Info("meta/rpc: trying the next meta replica", "from", c.addrs[i], "to", c.addrs[next], "err", err)
	}
}

// rpcError marks a failure of the RPC itself (a gRPC status), as opposed
// to an error meta answered in band.
type rpcError struct{ err error }

func (e rpcError) Error() string { return e.err.Error() }

// retriable reports whether a failed attempt did not reach the leader:
// the RPC failed as unavailable (transport, or a replica refusing before
// any meta method ran), or meta answered "not leader" in band.
func retriable(err error, inBand bool) bool {
	if inBand {
		return errors.Is(err, meta.ErrNotLeader)
	}
	return errors.Is(err, meta.ErrUnavailable)
}

// call runs attempt against the replica in use, moving on and retrying as
// Client describes. attempt returns nil, the error meta answered in band,
// or an rpcError.
func (c *Client) call(ctx context.Context, method string, attempt func(pb.MetaClient) error) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: meta/rpc client", meta.ErrClosed)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(retryFor)
	}
	wait := retryFirst
	for {
		i := c.cur.Load()
		err := attempt(c.metas[i])
		if err == nil {
			return nil
		}
		var re rpcError
		inBand := !errors.As(err, &re)
		if !inBand || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			if ctx.Err() != nil {
				// The caller's own ctx ended: say so, whatever the RPC
				// saw. (An answer meta gave stands even if ctx ended
				// meanwhile.)
				return fmt.Errorf("meta/rpc %s: %w (%v)", method, ctx.Err(), err)
			}
		}
		if !inBand {
			if c.closed.Load() {
				return fmt.Errorf("%w: meta/rpc client", meta.ErrClosed)
			}
			err = fromStatus(re.err)
		}
		if !retriable(err, inBand) {
			return err
		}
		c.failover(i, err)
		// Jitter over [wait/2, wait): agents that lost meta together do
		// not come back in step.
		sleep := wait/2 + rand.N(wait/2)
		if time.Until(deadline) < sleep {
			return err
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("meta/rpc %s: %w (%v)", method, ctx.Err(), err)
		case <-t.C:
		}
		wait = min(wait*2, retryMax)
	}
}

// malformed is the error for an answer that does not decode: a meta of
// another version, or a bug. It is not retried.
func malformed(method string, err error) error {
	return fmt.Errorf("meta/rpc %s: malformed answer from meta: %w", method, err)
}

// callT is call for a method with a result: the answer of the last
// attempt, in band errors included (Lookup's bounds come with
// ErrOffsetOutOfRange); the zero value when that attempt's RPC failed.
func callT[T any](c *Client, ctx context.Context, method string, attempt func(pb.MetaClient) (T, error)) (T, error) {
	var out T
	err := c.call(ctx, method, func(mc pb.MetaClient) error {
		var err error
		out, err = attempt(mc)
		return err
	})
	return out, err
}

// ClusterID implements meta.Client.
func (c *Client) ClusterID(ctx context.Context) (string, error) {
	return callT(c, ctx, "ClusterID", func(mc pb.MetaClient) (string, error) {
		r, err := mc.ClusterID(ctx, &pb.ClusterIDRequest{})
		if err != nil {
			return "", rpcError{err}
		}
		return r.ClusterId, decodeErr(r.Error)
	})
}

// CreateTopics implements meta.Client.
func (c *Client) CreateTopics(ctx context.Context, specs []meta.TopicSpec) ([]meta.TopicResult, error) {
	req := &pb.CreateTopicsRequest{Specs: encTopicSpecs(specs)}
	return callT(c, ctx, "CreateTopics", func(mc pb.MetaClient) ([]meta.TopicResult, error) {
		r, err := mc.CreateTopics(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.topicResults(r.Results)
		if d.err != nil {
			return nil, malformed("CreateTopics", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// Topics implements meta.Client.
func (c *Client) Topics(ctx context.Context, names []string) ([]meta.Topic, error) {
	req := &pb.TopicsRequest{All: names == nil, Names: names}
	return c.topics(ctx, "Topics", func(mc pb.MetaClient) (*pb.TopicsResponse, error) {
		return mc.Topics(ctx, req)
	})
}

// TopicsByID implements meta.Client.
func (c *Client) TopicsByID(ctx context.Context, ids []meta.TopicID) ([]meta.Topic, error) {
	req := &pb.TopicsByIDRequest{Ids: make([][]byte, len(ids))}
	for i := range ids {
		req.Ids[i] = ids[i][:]
	}
	return c.topics(ctx, "TopicsByID", func(mc pb.MetaClient) (*pb.TopicsResponse, error) {
		return mc.TopicsByID(ctx, req)
	})
}

func (c *Client) topics(ctx context.Context, method string, rpc func(pb.MetaClient) (*pb.TopicsResponse, error)) ([]meta.Topic, error) {
	return callT(c, ctx, method, func(mc pb.MetaClient) ([]meta.Topic, error) {
		r, err := rpc(mc)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.topics(r.Topics)
		if d.err != nil {
			return nil, malformed(method, d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// PartitionStates implements meta.Client.
func (c *Client) PartitionStates(ctx context.Context, tps []meta.TopicPartition) ([]meta.PartitionState, error) {
	req := &pb.PartitionStatesRequest{Partitions: encTPs(tps)}
	return callT(c, ctx, "PartitionStates", func(mc pb.MetaClient) ([]meta.PartitionState, error) {
		r, err := mc.PartitionStates(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.partitionStates(r.States)
		if d.err != nil {
			return nil, malformed("PartitionStates", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// DeleteRecords implements meta.Client. A retry is safe: moving a log
// start to where it already is changes nothing.
func (c *Client) DeleteRecords(ctx context.Context, specs []meta.DeleteRecordsSpec) ([]meta.PartitionState, error) {
	req := &pb.DeleteRecordsRequest{Specs: encDeleteRecords(specs)}
	return callT(c, ctx, "DeleteRecords", func(mc pb.MetaClient) ([]meta.PartitionState, error) {
		r, err := mc.DeleteRecords(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.partitionStates(r.States)
		if d.err != nil {
			return nil, malformed("DeleteRecords", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// CommitSegment implements meta.Client. A retry after a connection broke
// mid-call is safe: meta answers a repeated SegmentID with its first
// answer.
func (c *Client) CommitSegment(ctx context.Context, sc meta.SegmentCommit) (meta.CommitResult, error) {
	req := encCommit(sc)
	return callT(c, ctx, "CommitSegment", func(mc pb.MetaClient) (meta.CommitResult, error) {
		r, err := mc.CommitSegment(ctx, req)
		if err != nil {
			return meta.CommitResult{}, rpcError{err}
		}
		var d decoder
		out := d.commitResult(r.Chunks)
		if d.err != nil {
			return meta.CommitResult{}, malformed("CommitSegment", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// Lookup implements meta.Client. ErrOffsetOutOfRange comes with the
// bounds, as from meta.
func (c *Client) Lookup(ctx context.Context, tp meta.TopicPartition, offset int64, maxEntries int) (meta.LookupResult, error) {
	req := &pb.LookupRequest{Partition: encTP(tp), Offset: offset, MaxEntries: int64(maxEntries)}
	return callT(c, ctx, "Lookup", func(mc pb.MetaClient) (meta.LookupResult, error) {
		r, err := mc.Lookup(ctx, req)
		if err != nil {
			return meta.LookupResult{}, rpcError{err}
		}
		var d decoder
		out := meta.LookupResult{Entries: d.entries(r.Entries), LogStartOffset: r.LogStartOffset, HighWatermark: r.HighWatermark,
			// read_committed from the agent's index cache (issue 15/13).
			Stable: meta.StableState{Known: r.TxnKnown, LastStableOffset: r.LastStableOffset, LastAbortOffset: r.LastAbortOffset}}
		if d.err != nil {
			return meta.LookupResult{}, malformed("Lookup", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// InitProducerID implements meta.Client.
func (c *Client) InitProducerID(ctx context.Context, preq meta.ProducerIDRequest) (meta.ProducerIDResult, error) {
	req := &pb.InitProducerIDRequest{TransactionalId: preq.TransactionalID, ProducerId: preq.ProducerID, ProducerEpoch: int32(preq.ProducerEpoch),
		TransactionTimeoutMs: preq.TransactionTimeoutMs}
	return callT(c, ctx, "InitProducerID", func(mc pb.MetaClient) (meta.ProducerIDResult, error) {
		r, err := mc.InitProducerID(ctx, req)
		if err != nil {
			return meta.ProducerIDResult{}, rpcError{err}
		}
		var d decoder
		out := meta.ProducerIDResult{ProducerID: r.ProducerId, ProducerEpoch: d.int16(r.ProducerEpoch, "producer epoch")}
		if d.err != nil {
			return meta.ProducerIDResult{}, malformed("InitProducerID", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// Watch implements meta.Client. It returns once meta has registered the
// watch (the stream's first message), so a Lookup made after Watch
// returns is kept current by the events that follow, as with the
// in-process Service. The channel is closed when ctx ends, when the
// stream breaks or meta ends it (the watcher fell behind, the cluster
// closed, the key was revoked, the replica lost leadership), when the
// client is closed, or when a message does not decode; the caller then
// treats its view as stale and watches again (cache.Index does, with
// backoff).
func (c *Client) Watch(ctx context.Context) (<-chan []meta.CommitEvent, error) {
	type open struct {
		stream pb.Meta_WatchClient
		cancel context.CancelFunc
	}
	o, err := callT(c, ctx, "Watch", func(mc pb.MetaClient) (open, error) {
		sctx, cancel := context.WithCancel(ctx)
		s, err := mc.Watch(sctx, &pb.WatchRequest{})
		if err != nil {
			cancel()
			return open{}, rpcError{err}
		}
		first, err := s.Recv()
		if err != nil {
			cancel()
			return open{}, rpcError{err}
		}
		if err := decodeErr(first.Error); err != nil {
			cancel()
			return open{}, err
		}
		return open{s, cancel}, nil
	})
	if err != nil {
		return nil, err
	}
	out := make(chan []meta.CommitEvent, watchBuffer)
	go func() {
		defer close(out)
		defer o.cancel()
		for {
			m, err := o.stream.Recv()
			if err != nil {
				if ctx.Err() == nil && !c.closed.Load() {
					c.log.Info("meta/rpc: watch stream ended", "err", fromStatus(err))
				}
				return
			}
			var d decoder
			evs := d.events(m.Events)
			if d.err != nil {
				c.log.Warn("meta/rpc: ending a watch", "err", malformed("Watch", d.err))
				return
			}
			if len(evs) == 0 {
				continue
			}
			select {
			case out <- evs:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// errorsCall runs an RPC answered by one error per item.
func (c *Client) errorsCall(ctx context.Context, method string, rpc func(pb.MetaClient) (*pb.ErrorsResponse, error)) ([]error, error) {
	return callT(c, ctx, method, func(mc pb.MetaClient) ([]error, error) {
		r, err := rpc(mc)
		if err != nil {
			return nil, rpcError{err}
		}
		return decodeErrs(r.Errors), decodeErr(r.Error)
	})
}

// errorCall runs an RPC answered by one error.
func (c *Client) errorCall(ctx context.Context, method string, rpc func(pb.MetaClient) (*pb.ErrorResponse, error)) error {
	return c.call(ctx, method, func(mc pb.MetaClient) error {
		r, err := rpc(mc)
		if err != nil {
			return rpcError{err}
		}
		return decodeErr(r.Error)
	})
}

// DeleteTopics implements meta.Client.
func (c *Client) DeleteTopics(ctx context.Context, names []string) ([]error, error) {
	req := &pb.DeleteTopicsRequest{Names: names}
	return c.errorsCall(ctx, "DeleteTopics", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.DeleteTopics(ctx, req)
	})
}

// CreatePartitions implements meta.Client.
func (c *Client) CreatePartitions(ctx context.Context, specs []meta.PartitionsSpec) ([]error, error) {
	req := &pb.CreatePartitionsRequest{Specs: encPartitionsSpecs(specs)}
	return c.errorsCall(ctx, "CreatePartitions", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.CreatePartitions(ctx, req)
	})
}

// AlterTopicConfigs implements meta.Client.
func (c *Client) AlterTopicConfigs(ctx context.Context, topic string, changes []meta.ConfigChange, replace bool) error {
	req := &pb.AlterTopicConfigsRequest{Topic: topic, Changes: encConfigChanges(changes), Replace: replace}
	return c.errorCall(ctx, "AlterTopicConfigs", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.AlterTopicConfigs(ctx, req)
	})
}

// FindTimestamp implements meta.Client.
func (c *Client) FindTimestamp(ctx context.Context, tp meta.TopicPartition, q meta.TimestampQuery, ts int64) (meta.TimestampResult, error) {
	req := &pb.FindTimestampRequest{Partition: encTP(tp), Query: pb.TimestampQuery(q), Timestamp: ts}
	return callT(c, ctx, "FindTimestamp", func(mc pb.MetaClient) (meta.TimestampResult, error) {
		r, err := mc.FindTimestamp(ctx, req)
		if err != nil {
			return meta.TimestampResult{}, rpcError{err}
		}
		var d decoder
		out := meta.TimestampResult{Entry: d.entry(r.Entry), Found: r.Found, LogStartOffset: r.LogStartOffset, HighWatermark: r.HighWatermark}
		if d.err != nil {
			return meta.TimestampResult{}, malformed("FindTimestamp", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// JoinGroup implements meta.Client. It may wait up to the rebalance
// timeout; ctx should allow that.
func (c *Client) JoinGroup(ctx context.Context, jreq meta.JoinGroupRequest) (meta.JoinGroupResult, error) {
	req := encJoin(jreq)
	return callT(c, ctx, "JoinGroup", func(mc pb.MetaClient) (meta.JoinGroupResult, error) {
		r, err := mc.JoinGroup(ctx, req)
		if err != nil {
			return meta.JoinGroupResult{}, rpcError{err}
		}
		return decJoinResult(r), decodeErr(r.Error)
	})
}

// SyncGroup implements meta.Client. A follower waits for the leader's
// assignment; ctx should allow the rebalance timeout.
func (c *Client) SyncGroup(ctx context.Context, sreq meta.SyncGroupRequest) (meta.SyncGroupResult, error) {
	req := &pb.SyncGroupRequest{Group: sreq.Group, MemberId: sreq.MemberID, InstanceId: sreq.InstanceID,
		Generation: sreq.Generation, Assignments: sreq.Assignments}
	return callT(c, ctx, "SyncGroup", func(mc pb.MetaClient) (meta.SyncGroupResult, error) {
		r, err := mc.SyncGroup(ctx, req)
		if err != nil {
			return meta.SyncGroupResult{}, rpcError{err}
		}
		return meta.SyncGroupResult{ProtocolType: r.ProtocolType, Protocol: r.Protocol, Assignment: r.Assignment}, decodeErr(r.Error)
	})
}

// Heartbeat implements meta.Client.
func (c *Client) Heartbeat(ctx context.Context, group, memberID, instanceID string, generation int32) error {
	req := &pb.HeartbeatRequest{Group: group, MemberId: memberID, InstanceId: instanceID, Generation: generation}
	return c.errorCall(ctx, "Heartbeat", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.Heartbeat(ctx, req)
	})
}

// LeaveGroup implements meta.Client.
func (c *Client) LeaveGroup(ctx context.Context, group string, members []meta.LeavingMember) ([]error, error) {
	req := &pb.LeaveGroupRequest{Group: group, Members: encLeaving(members)}
	return c.errorsCall(ctx, "LeaveGroup", func(mc pb.MetaClient) (*pb.ErrorsResponse, error) {
		return mc.LeaveGroup(ctx, req)
	})
}

// CommitOffsets implements meta.Client.
func (c *Client) CommitOffsets(ctx context.Context, oreq meta.OffsetCommitRequest) error {
	req := &pb.CommitOffsetsRequest{Group: oreq.Group, MemberId: oreq.MemberID, InstanceId: oreq.InstanceID,
		Generation: oreq.Generation, Offsets: encOffsets(oreq.Offsets), ApiVersion: int32(oreq.APIVersion)}
	return c.errorCall(ctx, "CommitOffsets", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.CommitOffsets(ctx, req)
	})
}

// FetchOffsets implements meta.Client.
func (c *Client) FetchOffsets(ctx context.Context, group string, tps []meta.TopicPartition) ([]meta.CommittedOffset, error) {
	req := &pb.FetchOffsetsRequest{Group: group, All: tps == nil, Partitions: encTPs(tps)}
	return callT(c, ctx, "FetchOffsets", func(mc pb.MetaClient) ([]meta.CommittedOffset, error) {
		r, err := mc.FetchOffsets(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		var d decoder
		out := d.offsets(r.Offsets)
		if d.err != nil {
			return nil, malformed("FetchOffsets", d.err)
		}
		return out, decodeErr(r.Error)
	})
}

// DeleteOffsets implements meta.Client.
func (c *Client) DeleteOffsets(ctx context.Context, group string, tps []meta.TopicPartition) error {
	req := &pb.DeleteOffsetsRequest{Group: group, Partitions: encTPs(tps)}
	return c.errorCall(ctx, "DeleteOffsets", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.DeleteOffsets(ctx, req)
	})
}

// DeleteGroup implements meta.Client.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	req := &pb.DeleteGroupRequest{Group: group}
	return c.errorCall(ctx, "DeleteGroup", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.DeleteGroup(ctx, req)
	})
}

// ListGroups implements meta.Client.
func (c *Client) ListGroups(ctx context.Context) ([]meta.GroupListing, error) {
	return callT(c, ctx, "ListGroups", func(mc pb.MetaClient) ([]meta.GroupListing, error) {
		r, err := mc.ListGroups(ctx, &pb.ListGroupsRequest{})
		if err != nil {
			return nil, rpcError{err}
		}
		return decGroupListings(r.Groups), decodeErr(r.Error)
	})
}

// DescribeGroup implements meta.Client.
func (c *Client) DescribeGroup(ctx context.Context, group string) (meta.GroupDescription, error) {
	req := &pb.DescribeGroupRequest{Group: group}
	return callT(c, ctx, "DescribeGroup", func(mc pb.MetaClient) (meta.GroupDescription, error) {
		r, err := mc.DescribeGroup(ctx, req)
		if err != nil {
			return meta.GroupDescription{}, rpcError{err}
		}
		return decDescription(r), decodeErr(r.Error)
	})
}

// RegisterAgent implements meta.Client.
func (c *Client) RegisterAgent(ctx context.Context, a meta.AgentInfo) (meta.AgentRegistration, error) {
	req := &pb.RegisterAgentRequest{Agent: encAgent(a)}
	return callT(c, ctx, "RegisterAgent", func(mc pb.MetaClient) (meta.AgentRegistration, error) {
		r, err := mc.RegisterAgent(ctx, req)
		if err != nil {
			return meta.AgentRegistration{}, rpcError{err}
		}
		return meta.AgentRegistration{NodeID: r.NodeId, TTL: time.Duration(r.TtlNanos)}, decodeErr(r.Error)
	})
}

// UnregisterAgent implements meta.Client.
func (c *Client) UnregisterAgent(ctx context.Context, id string) error {
	req := &pb.UnregisterAgentRequest{Id: id}
	return c.errorCall(ctx, "UnregisterAgent", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.UnregisterAgent(ctx, req)
	})
}

// Agents implements meta.Client.
func (c *Client) Agents(ctx context.Context) ([]meta.AgentInfo, error) {
	return callT(c, ctx, "Agents", func(mc pb.MetaClient) ([]meta.AgentInfo, error) {
		r, err := mc.Agents(ctx, &pb.AgentsRequest{})
		if err != nil {
			return nil, rpcError{err}
		}
		return decAgents(r.Agents), decodeErr(r.Error)
	})
}

// The jobs calls (meta.JobsClient) retry and fail over like every other
// call: each is safe to send twice. A completion that reached meta and
// lost its answer is checked again against meta's state (a swap only
// replaces entries that still point at the job's sources; a delete of a
// forgotten object is a no-op), and an AcquireJob whose answer was lost
// leaves a lease that expires, after which the work is leased again. A
// meta whose cluster does not run jobs answers meta.ErrUnsupported.

// AcquireJob implements meta.JobsClient.
func (c *Client) AcquireJob(ctx context.Context, agentID string, kinds []meta.JobKind) (meta.Job, bool, error) {
	type answer struct {
		job meta.Job
		ok  bool
	}
	req := &pb.AcquireJobRequest{AgentId: agentID, Kinds: encJobKinds(kinds)}
	a, err := callT(c, ctx, "AcquireJob", func(mc pb.MetaClient) (answer, error) {
		r, err := mc.AcquireJob(ctx, req)
		if err != nil {
			return answer{}, rpcError{err}
		}
		if !r.Ok {
			return answer{}, decodeErr(r.Error)
		}
		var d decoder
		job := d.job(r.Job)
		if d.err != nil {
			return answer{}, malformed("AcquireJob", d.err)
		}
		return answer{job, true}, decodeErr(r.Error)
	})
	return a.job, a.ok, err
}

// CompleteCompaction implements meta.JobsClient.
func (c *Client) CompleteCompaction(ctx context.Context, res meta.CompactResult) (meta.CompactOutcome, error) {
	req := encCompactResult(res)
	return callT(c, ctx, "CompleteCompaction", func(mc pb.MetaClient) (meta.CompactOutcome, error) {
		r, err := mc.CompleteCompaction(ctx, req)
		if err != nil {
			return meta.CompactOutcome{}, rpcError{err}
		}
		return meta.CompactOutcome{Swapped: clampInt(r.Swapped), Refused: clampInt(r.Refused)}, decodeErr(r.Error)
	})
}

// CompleteDelete implements meta.JobsClient.
func (c *Client) CompleteDelete(ctx context.Context, res meta.DeleteResult) error {
	req := encDeleteResult(res)
	return c.errorCall(ctx, "CompleteDelete", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.CompleteDelete(ctx, req)
	})
}

// CheckOrphans implements meta.JobsClient. A retry asks the same
// question again; meta's answer depends only on its state.
func (c *Client) CheckOrphans(ctx context.Context, jobID uint64, keys []string) ([]string, error) {
	req := &pb.CheckOrphansRequest{JobId: jobID, Keys: keys}
	return callT(c, ctx, "CheckOrphans", func(mc pb.MetaClient) ([]string, error) {
		r, err := mc.CheckOrphans(ctx, req)
		if err != nil {
			return nil, rpcError{err}
		}
		return r.Keys, decodeErr(r.Error)
	})
}

// CompleteOrphans implements meta.JobsClient.
func (c *Client) CompleteOrphans(ctx context.Context, res meta.OrphansResult) error {
	req := encOrphansResult(res)
	return c.errorCall(ctx, "CompleteOrphans", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.CompleteOrphans(ctx, req)
	})
}

// AbandonJob implements meta.JobsClient.
func (c *Client) AbandonJob(ctx context.Context, jobID uint64, reason string) error {
	req := &pb.AbandonJobRequest{JobId: jobID, Reason: reason}
	return c.errorCall(ctx, "AbandonJob", func(mc pb.MetaClient) (*pb.ErrorResponse, error) {
		return mc.AbandonJob(ctx, req)
	})
}

// AdminClient manages agent keys (sluice meta keys ...). It does not
// retry: an operator sees every failure.
type AdminClient struct {
	conn *grpc.ClientConn
	c    pb.AdminClient
}

// DialAdmin returns an admin client of the meta replica at addr. It does
// not touch the network: the connection opens on the first call. Like
// Dial, it refuses plaintext (tlsCfg nil) to an address that is not
// loopback unless insecure is set.
func DialAdmin(addr, token string, tlsCfg *tls.Config, insecure bool) (*AdminClient, error) {
	if token == "" {
		return nil, errors.New("meta/rpc: no admin token")
	}
	if tlsCfg == nil && !insecure {
		if err := checkPlaintext(addr, "admin token"); err != nil {
			return nil, err
		}
	}
	cc, err := grpc.NewClient(addr, dialOptions(token, tlsCfg, nil)...)
	if err != nil {
		return nil, fmt.Errorf("meta/rpc: meta address %q: %w", addr, err)
	}
	return &AdminClient{conn: cc, c: pb.NewAdminClient(cc)}, nil
}

// Close closes the connection.
func (a *AdminClient) Close() error { return a.conn.Close() }

// adminErr maps an admin RPC's failure; a refused token wraps
// meta.ErrUnauthenticated.
func adminErr(ctx context.Context, method string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("meta/rpc %s: %w (%v)", method, ctx.Err(), err)
	}
	return fromStatus(err)
}

// CreateKey makes a new agent key for cluster. The key is shown here
// only.
func (a *AdminClient) CreateKey(ctx context.Context, cluster string) (string, KeyInfo, error) {
	r, err := a.c.CreateKey(ctx, &pb.CreateKeyRequest{Cluster: cluster})
	if err != nil {
		return "", KeyInfo{}, adminErr(ctx, "CreateKey", err)
	}
	if err := decodeErr(r.Error); err != nil {
		return "", KeyInfo{}, err
	}
	return r.Key, decKeyInfo(r.Info), nil
}

// ListKeys lists the keys of cluster, of every cluster when "".
func (a *AdminClient) ListKeys(ctx context.Context, cluster string) ([]KeyInfo, error) {
	r, err := a.c.ListKeys(ctx, &pb.ListKeysRequest{Cluster: cluster})
	if err != nil {
		return nil, adminErr(ctx, "ListKeys", err)
	}
	if err := decodeErr(r.Error); err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(r.Keys))
	for i, k := range r.Keys {
		out[i] = decKeyInfo(k)
	}
	return out, nil
}

// RevokeKey revokes key id of cluster.
func (a *AdminClient) RevokeKey(ctx context.Context, cluster, id string) error {
	r, err := a.c.RevokeKey(ctx, &pb.RevokeKeyRequest{Cluster: cluster, Id: id})
	if err != nil {
		return adminErr(ctx, "RevokeKey", err)
	}
	return decodeErr(r.Error)
}

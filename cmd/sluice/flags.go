package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/agent"
	"sluice.dev/internal/lograte"
	"sluice.dev/internal/netlimit"
	"sluice.dev/internal/tlsconf"
	"sluice.dev/jobs"
	"sluice.dev/meta/controller"
	"sluice.dev/meta/planner"
	"sluice.dev/server"
)

// agentFlags are the flags the playground and the agent share: how an
// agent batches, bounds and caches.
type agentFlags struct {
	flush       time.Duration
	autoCreate  bool
	defParts    int
	maxReq      int
	maxSeg      int
	maxInFlight int64
	cacheBytes  int64
	earlySeals  float64
	identities  int
	sharePort   bool
	pprof       bool
	// Memory bounds of the Kafka listener (issue 11).
	maxConnInflight  int
	maxConnUnsent    int
	maxFetchInflight int64
	maxConns         int
	slowClient       time.Duration
	maxIdle          time.Duration
	// Background jobs of an agent with the jobs role (issue 12).
	compactionEvery time.Duration
	gcEvery         time.Duration
	jobsPace        int64
	// TLS on the Kafka listener and the peer port (issue 14, tls).
	kafkaTLSCert, kafkaTLSKey, kafkaTLSClientCA string
	principalRules                              string
	peerTLSCert, peerTLSKey, peerTLSCA          string
	// ACLs and the authorizer (issue 14, acl).
	authorizer string
	superUsers string
	// SASL on the Kafka listener (issue 14; saslflags.go).
	sasl saslFlags
}

func (f *agentFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.flush, "flush-interval", 250*time.Millisecond, "how long a segment collects batches before it is sealed and uploaded")
	fs.BoolVar(&f.autoCreate, "auto-create-topics", true, "create unknown topics named in Metadata requests")
	fs.IntVar(&f.defParts, "default-partitions", 16, "partition count of auto-created topics")
	bytesVar(fs, &f.maxReq, "max-request-bytes", 100<<20, "largest request frame accepted; larger frames close the connection")
	bytesVar(fs, &f.maxSeg, "max-segment-bytes", 8<<20, "seal a segment early once it holds this many bytes")
	bytesVar(fs, &f.maxInFlight, "max-inflight-bytes", 256<<20, "produce bytes admitted but not yet acknowledged; past it producers wait")
	bytesVar(fs, &f.cacheBytes, "cache-bytes", 512<<20, "read cache size in bytes")
	fs.Float64Var(&f.earlySeals, "max-early-seals-per-second", 8, "segments sealed before --flush-interval because a producer is stalled on them (five requests in flight, or requests parked and nothing sent for 15 ms) while under 2 MiB; early seals and the interval's together are at most this many plus one per --flush-interval a second (each is an object PUT), evenly spaced while producers stay stalled; 0 turns early seals off")
	fs.IntVar(&f.identities, "broker-identities", 1, "Kafka node ids each agent answers under, partition leadership spread over them, identity k on the --kafka-addr (and advertised) port + k: an idempotent producer keeps 5 requests in flight per node id, so n identities give it 5n per agent; every agent of a cluster must use the same value")
	fs.BoolVar(&f.sharePort, "broker-identities-share-port", false, "put every broker identity on the one --kafka-addr port (franz-go, Java and sarama tell them apart by node id; librdkafka 2.0 cannot and must not use such a cluster)")
	fs.BoolVar(&f.pprof, "pprof", false, pprofUsage)
	fs.IntVar(&f.maxConnInflight, "max-inflight-requests-per-conn", 32, "requests one connection may have dispatched and unanswered; past it the connection is not read until it drains")
	bytesVar(fs, &f.maxConnUnsent, "max-conn-unsent-bytes", 64<<20, "response bytes one connection may have unsent; past it the connection is not read until its client reads (also its share of --max-fetch-bytes-inflight)")
	bytesVar(fs, &f.maxFetchInflight, "max-fetch-bytes-inflight", 256<<20, "fetch-response bytes built and not yet sent, over all connections; past it fetches wait, then answer without records")
	fs.IntVar(&f.maxConns, "max-connections", 10000, "open Kafka connections; excess connections are closed on accept")
	fs.DurationVar(&f.compactionEvery, "compaction-interval", time.Minute, "how often an agent with the jobs role asks meta for compaction work (it then runs what is due, back to back)")
	fs.DurationVar(&f.gcEvery, "gc-interval", time.Minute, "how often an agent with the jobs role asks meta for objects to delete and for the pass over the bucket that finds orphans")
	bytesVar(fs, &f.jobsPace, "jobs-max-bytes-per-second", -1, "pace of compaction and key cleaning on an agent with the jobs role, bytes read and written together per second; -1: 32 MiB/s when the agent also has the produce role (so rewriting objects leaves produce its disk and memory bandwidth), unlimited on a jobs-only agent; the pace holds only while produce is in flight; 0: unlimited")
	f.sasl.register(fs) // SASL (issue 14)
	fs.DurationVar(&f.maxIdle, "connections-max-idle", 10*time.Minute, "close a connection whose client has sent nothing, with no request in progress, for this long; clients reconnect when they next need the agent (Kafka's connections.max.idle.ms); 0: never")
	fs.DurationVar(&f.slowClient, "slow-client-timeout", 30*time.Second, "close a connection whose client has read none of its unsent responses for this long (it holds fetch budget others need)")
	// TLS (issue 14, tls).
	fs.StringVar(&f.kafkaTLSCert, "kafka-tls-cert", "", "PEM certificate chain of the Kafka listener: every Kafka port then speaks TLS only (1.2+); re-read when the file changes, so certificates rotate without a restart")
	fs.StringVar(&f.kafkaTLSKey, "kafka-tls-key", "", "PEM private key of --kafka-tls-cert (re-read with it)")
	fs.StringVar(&f.kafkaTLSClientCA, "kafka-tls-client-ca", "", "PEM CA bundle: require every Kafka client to present a certificate it signed (mTLS); the principal comes from the certificate's subject")
	fs.StringVar(&f.principalRules, "ssl-principal-mapping-rules", "DEFAULT", "Kafka's ssl.principal.mapping.rules: how a client certificate's subject DN becomes the principal User:<name>, e.g. 'RULE:^CN=([^,]+),.*$/$1/L,DEFAULT'")
	fs.StringVar(&f.peerTLSCert, "peer-tls-cert", "", "PEM certificate of this agent on the zone cache's peer port (--peer-addr): peers then talk mutual TLS, on top of the peer secret's MACs; needs --peer-tls-key and --peer-tls-ca")
	fs.StringVar(&f.peerTLSKey, "peer-tls-key", "", "PEM private key of --peer-tls-cert")
	fs.StringVar(&f.peerTLSCA, "peer-tls-ca", "", "PEM CA bundle that issued every agent's --peer-tls-cert: peers are verified against it in both directions (host names are not checked)")
	// ACLs and the authorizer (issue 14, acl).
	fs.StringVar(&f.authorizer, "authorizer", "none", "none: no authorization; acl: enforce the cluster's Kafka ACLs; shadow: evaluate them, log and count each denial, but allow")
	fs.StringVar(&f.superUsers, "super-users", "", "principals allowed everything under --authorizer acl or shadow, Kafka's super.users syntax: User:alice;User:bob")
}

// kafkaTLS is the Kafka listener's TLS configuration (issue 14, tls).
func (f *agentFlags) kafkaTLS() server.TLSConfig {
	rules := f.principalRules
	if rules == "DEFAULT" {
		rules = ""
	}
	return server.TLSConfig{CertFile: f.kafkaTLSCert, KeyFile: f.kafkaTLSKey,
		ClientCAFile: f.kafkaTLSClientCA, PrincipalMappingRules: rules}
}

// peerTLS builds the zone cache's TLS configurations; nil, nil without
// --peer-tls-cert (issue 14, tls).
func (f *agentFlags) peerTLS(log *slog.Logger) (srv, client *tls.Config, err error) {
	if f.peerTLSCert == "" {
		return nil, nil, nil
	}
	return tlsconf.Peer(f.peerTLSCert, f.peerTLSKey, f.peerTLSCA, log)
}

// earlySealRate maps the flag (0 = off) to pipeline.Config's convention
// (0 = default, negative = off).
func earlySealRate(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

// jobsPace maps the flag (-1 = default, 0 = unlimited) to agent.Config's
// convention (0 = default, negative = unlimited).
func jobsPace(v int64) int64 {
	switch v {
	case -1:
		return 0
	case 0:
		return -1
	}
	return v
}

// pprofUsage is the one description of --pprof (agent, playground, meta).
const pprofUsage = "serve Go profiles at /debug/pprof/ on --http-addr (off by default: they expose memory contents and cost CPU)"

func (f *agentFlags) validate() error {
	switch {
	case f.flush <= 0:
		return fmt.Errorf("--flush-interval must be positive, got %s", f.flush)
	case f.defParts <= 0 || f.defParts > 100000:
		return fmt.Errorf("--default-partitions must be between 1 and 100000, got %d", f.defParts)
	case f.maxReq < 1<<10:
		return fmt.Errorf("--max-request-bytes must be at least 1024, got %d", f.maxReq)
	case f.maxSeg < 1<<10:
		return fmt.Errorf("--max-segment-bytes must be at least 1024, got %d", f.maxSeg)
	case f.maxInFlight < int64(f.maxSeg):
		return fmt.Errorf("--max-inflight-bytes (%d) must be at least --max-segment-bytes (%d)", f.maxInFlight, f.maxSeg)
	case f.earlySeals < 0:
		return fmt.Errorf("--max-early-seals-per-second must be 0 or more, got %g", f.earlySeals)
	case f.identities < 1 || f.identities > 64:
		return fmt.Errorf("--broker-identities must be between 1 and 64, got %d", f.identities)
	case f.cacheBytes < 1<<20:
		return fmt.Errorf("--cache-bytes must be at least 1 MiB, got %d", f.cacheBytes)
	case f.maxConnInflight < 1:
		return fmt.Errorf("--max-inflight-requests-per-conn must be at least 1, got %d", f.maxConnInflight)
	case f.maxConnUnsent < 1<<20:
		return fmt.Errorf("--max-conn-unsent-bytes must be at least 1 MiB, got %d", f.maxConnUnsent)
	case f.maxFetchInflight < int64(f.maxConnUnsent):
		return fmt.Errorf("--max-fetch-bytes-inflight (%d) must be at least --max-conn-unsent-bytes (%d)", f.maxFetchInflight, f.maxConnUnsent)
	case f.slowClient <= 0:
		return fmt.Errorf("--slow-client-timeout must be positive, got %s", f.slowClient)
	case f.maxIdle < 0:
		return fmt.Errorf("--connections-max-idle must be 0 (never) or positive, got %s", f.maxIdle)
	case f.maxConns < 1:
		return fmt.Errorf("--max-connections must be at least 1, got %d", f.maxConns)
	case f.jobsPace < -1 || (f.jobsPace > 0 && f.jobsPace < jobs.MinBytesPerSecond):
		return fmt.Errorf("--jobs-max-bytes-per-second must be -1 (default), 0 (unlimited) or at least %d (4 MiB/s), got %d", jobs.MinBytesPerSecond, f.jobsPace)
	case f.compactionEvery < time.Second || f.gcEvery < time.Second:
		return fmt.Errorf("--compaction-interval (%s) and --gc-interval (%s) must be at least 1s", f.compactionEvery, f.gcEvery)
	// TLS (issue 14, tls).
	case (f.kafkaTLSCert == "") != (f.kafkaTLSKey == ""):
		return fmt.Errorf("--kafka-tls-cert and --kafka-tls-key must be set together")
	case f.kafkaTLSClientCA != "" && f.kafkaTLSCert == "":
		return fmt.Errorf("--kafka-tls-client-ca needs --kafka-tls-cert and --kafka-tls-key: client certificates are asked for in the TLS handshake")
	case (f.peerTLSCert == "") != (f.peerTLSKey == "") || (f.peerTLSCA != "" && f.peerTLSCert == ""):
		return fmt.Errorf("--peer-tls-cert, --peer-tls-key and --peer-tls-ca must be set together")
	}
	// ACLs and the authorizer (issue 14, acl).
	if _, err := server.ParseAuthorizerMode(f.authorizer); err != nil {
		return err
	}
	if _, err := server.ParseSuperUsers(f.superUsers); err != nil {
		return err
	}
	return f.sasl.validate() // SASL (issue 14)
}

func (f *agentFlags) config(log *slog.Logger) agent.Config {
	return agent.Config{
		FlushInterval:              f.flush,
		MaxSegmentBytes:            f.maxSeg,
		EarlySealsPerSecond:        earlySealRate(f.earlySeals),
		BrokerIdentities:           f.identities,
		IdentitiesSharePort:        f.sharePort,
		MaxInFlightBytes:           f.maxInFlight,
		MaxRequestBytes:            f.maxReq,
		MaxInflightRequestsPerConn: f.maxConnInflight,
		MaxConnUnsentBytes:         f.maxConnUnsent,
		MaxFetchBytesInflight:      f.maxFetchInflight,
		MaxConnections:             f.maxConns,
		SlowClientTimeout:          f.slowClient,
		ConnectionsMaxIdle:         connectionsMaxIdle(f.maxIdle),
		CacheBytes:                 f.cacheBytes,
		AutoCreateTopics:           f.autoCreate,
		DefaultPartitions:          int32(f.defParts),
		CompactionInterval:         f.compactionEvery,
		GCInterval:                 f.gcEvery,
		JobsMaxBytesPerSecond:      jobsPace(f.jobsPace),
		Logger:                     log,
		KafkaTLS:                   f.kafkaTLS(),
		// ACLs and the authorizer (issue 14, acl); validate checked both.
		Authorizer: must(server.ParseAuthorizerMode(f.authorizer)),
		SuperUsers: must(server.ParseSuperUsers(f.superUsers)),
		SASL:       f.sasl.cfg, // issue 14
	}
}

// must unwraps a value validate already checked (ACLs, issue 14).
func must[T any](v T, err error) T {
	if err != nil {
		panic("BUG: flag not validated: " + err.Error())
	}
	return v
}

// envOr returns the flag's value, or the environment variable's when the
// flag was left empty (secrets belong in the environment, not in ps).
func envOr(flagValue, env string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv(env)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// shiftPort returns addr with its port increased by i (port 0 stays 0:
// every listener picks its own).
func shiftPort(addr string, i int) (string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port+i > 65535 {
		return "", fmt.Errorf("bad port in %q", addr)
	}
	if port == 0 {
		return addr, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(port+i)), nil
}

// startHTTP serves /metrics and /healthz on addr, and /debug/pprof/ when
// pprofOn; "" serves nothing. extra, when set, adds series to /metrics
// (an agent's own).
func startHTTP(addr, flagName string, maxConns int, extra func(io.Writer), pprofOn bool) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := listenHTTP(addr, flagName, maxConns)
	if err != nil {
		return nil, nil, err
	}
	srv := newHTTPServer(httpHandler(extra, pprofOn))
	go func() { _ = srv.Serve(ln) }()
	return srv, ln, nil
}

// newHTTPServer is the admin HTTP server's settings, shared by every
// command. ReadHeaderTimeout: a client that opens a connection and sends
// nothing holds it 5 s at most. IdleTimeout: a scraper's keep-alive
// connection left open is closed after two minutes, as the Kafka
// listener closes idle ones.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
}

// defaultHTTPMaxConns is --http-max-connections' default: a Prometheus
// server, a health checker and a few people at the console need a
// handful.
const defaultHTTPMaxConns = 256

// httpMaxConnsUsage is the one description of --http-max-connections.
const httpMaxConnsUsage = "open connections on --http-addr (metrics, health, console, profiles); more are closed on accept"

var (
	mHTTPConnsOpen    = metrics.NewGauge(`sluice_http_connections_open`, nil)
	mHTTPConnsRefused = metrics.NewCounter(`sluice_http_connections_refused_total`)
	httpRefusedLog    lograte.Limiter
)

// listenHTTP listens on addr for the admin HTTP server, closing
// connections past maxConns on accept: each holds a goroutine and
// buffers, and the address is often reachable from the whole cluster
// network (a Prometheus scrape target, the console).
func listenHTTP(addr, flagName string, maxConns int) (net.Listener, error) {
	if maxConns < 1 {
		return nil, fmt.Errorf("--http-max-connections must be at least 1, got %d", maxConns)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", flagName, addr, err)
	}
	return netlimit.Listener(ln, maxConns, netlimit.Hooks{
		Refused: func(c net.Conn) {
			mHTTPConnsRefused.Inc()
			if httpRefusedLog.Allow(time.Now(), time.Second) {
				slog.Warn("HTTP connection refused: too many open", "remote", c.RemoteAddr().String(),
					"limit", maxConns, "setting", "--http-max-connections")
			}
		},
		Opened: func() { mHTTPConnsOpen.Inc() },
		Closed: func() { mHTTPConnsOpen.Dec() },
	}), nil
}

// metaLimitFlags are the control plane's bounds on what clients can make
// it keep (issue 11), shared by `sluice meta` and the playground. Each
// applies per virtual cluster.
type metaLimitFlags struct {
	producerIDExpiration time.Duration
	maxTopics            int
	maxPartitions        int
	retentionMs          int64
	retentionBytes       int64
	retentionCheck       time.Duration
	gcGrace              time.Duration
	compactMinAge        time.Duration
	compactMaxWait       time.Duration
	compactTarget        int64
	compactLarge         int64
	orphanEvery          time.Duration
	// Transactions (issue 15).
	maxTxnTimeout time.Duration
	txnIDExpiry   time.Duration
}

func addMetaLimitFlags(fs *flag.FlagSet) *metaLimitFlags {
	f := &metaLimitFlags{}
	fs.DurationVar(&f.producerIDExpiration, "producer-id-expiration", 24*time.Hour, "forget an idempotent producer id and its sequence state after it went unused this long (Kafka's producer.id.expiration.ms); its next produce gets UNKNOWN_PRODUCER_ID and the client takes a new id")
	fs.IntVar(&f.maxTopics, "max-topics", 100_000, "topics per virtual cluster; CreateTopics past it is refused with POLICY_VIOLATION")
	fs.IntVar(&f.maxPartitions, "max-partitions", 1_000_000, "partitions per virtual cluster, all topics together; CreateTopics and CreatePartitions past it are refused with POLICY_VIOLATION")
	fs.Int64Var(&f.retentionMs, "default-retention-ms", 7*24*3600*1000, "retention.ms of topics that do not set it: data older than this becomes unreadable; -1 keeps it forever")
	bytesVar(fs, &f.retentionBytes, "default-retention-bytes", -1, "retention.bytes of topics that do not set it: a partition keeps at most this many bytes; -1 for no limit")
	fs.DurationVar(&f.retentionCheck, "retention-check-interval", 30*time.Second, "how often retention advances log start offsets past expired data")
	fs.DurationVar(&f.gcGrace, "gc-grace", 5*time.Minute, "how long an object nothing references any more stays in the bucket before it is deleted (it must outlive every reader of an old index entry); also twice the age of the oldest segment meta still accepts a commit for")
	fs.DurationVar(&f.compactMinAge, "compaction-min-age", 30*time.Second, "objects younger than this are left to tail readers, not compacted")
	fs.DurationVar(&f.compactMaxWait, "compaction-max-wait", 2*time.Minute, "a small object waits at most this long (after --compaction-min-age) for a compaction job to fill up to --compaction-target-bytes; each level waits twice as long")
	bytesVar(fs, &f.compactTarget, "compaction-target-bytes", 80<<20, "live bytes one compaction job gathers into one object")
	bytesVar(fs, &f.compactLarge, "compaction-large-bytes", 16<<20, "objects at least this large are never rewritten")
	fs.DurationVar(&f.orphanEvery, "orphan-scan-interval", 10*time.Minute, "how often a jobs agent lists the bucket to find objects uploaded but never committed")
	// Transactions (issue 15)
	fs.DurationVar(&f.maxTxnTimeout, "max-transaction-timeout", 15*time.Minute, "largest transaction.timeout.ms a transactional producer may ask for (Kafka's transaction.max.timeout.ms); InitProducerId above it gets INVALID_TRANSACTION_TIMEOUT")
	fs.DurationVar(&f.txnIDExpiry, "transactional-id-expiration", 7*24*time.Hour, "forget a transactional id with no transaction open after it went unused this long (Kafka's transactional.id.expiration.ms)")
	return f
}

func (f *metaLimitFlags) validate() error {
	switch {
	case f.gcGrace < 4*time.Second:
		return fmt.Errorf("--gc-grace must be at least 4s, got %s", f.gcGrace)
	case f.compactMinAge <= 0 || f.compactMaxWait <= 0:
		return fmt.Errorf("--compaction-min-age (%s) and --compaction-max-wait (%s) must be positive", f.compactMinAge, f.compactMaxWait)
	case f.compactLarge < 1<<20 || f.compactTarget < f.compactLarge:
		return fmt.Errorf("--compaction-large-bytes (%d) must be at least 1 MiB and --compaction-target-bytes (%d) at least that", f.compactLarge, f.compactTarget)
	case f.orphanEvery < time.Second:
		return fmt.Errorf("--orphan-scan-interval must be at least 1s, got %s", f.orphanEvery)
	case f.txnIDExpiry < time.Second:
		return fmt.Errorf("--transactional-id-expiration must be at least 1s, got %s", f.txnIDExpiry)
	case f.maxTxnTimeout < time.Millisecond || f.maxTxnTimeout.Milliseconds() > math.MaxInt32:
		return fmt.Errorf("--max-transaction-timeout must be in [1ms, %dms], got %s", math.MaxInt32, f.maxTxnTimeout)
	}
	return nil
}

func (f *metaLimitFlags) apply(c controller.Config) controller.Config {
	c.ProducerIDExpiration = f.producerIDExpiration
	c.MaxTopics = f.maxTopics
	c.MaxClusterPartitions = f.maxPartitions
	c.DefaultRetentionMs = f.retentionMs
	c.DefaultRetentionBytes = f.retentionBytes
	c.RetentionCheckInterval = f.retentionCheck
	c.GCGrace = f.gcGrace
	c.Compaction = planner.Config{MinAge: f.compactMinAge, MaxWait: f.compactMaxWait, TargetObjectBytes: f.compactTarget, LargeObjectBytes: f.compactLarge}
	c.OrphanInterval = f.orphanEvery
	c.MaxTransactionTimeoutMs = int32(f.maxTxnTimeout.Milliseconds()) // transactions (issue 15)
	c.TransactionalIDExpiration = f.txnIDExpiry
	return c
}

// connectionsMaxIdle maps --connections-max-idle to the agent's setting,
// where 0 means the default and negative never.
func connectionsMaxIdle(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"sluice.dev/agent"
	"sluice.dev/cache"
	"sluice.dev/loadtest"
	"sluice.dev/meta/rpc"
	"sluice.dev/objstore"
)

// peerSecret returns the zone cache secret: the one given, else one
// derived from the agent key. Meta stores only a SHA-256 of the key, and
// this derivation is an HMAC under a label, so meta cannot compute it.
func peerSecretFrom(given, agentKey string) []byte {
	if given != "" {
		return []byte(given)
	}
	m := hmac.New(sha256.New, []byte(agentKey))
	m.Write([]byte("sluice zone cache peer secret v1"))
	return m.Sum(nil)
}

// runAgent runs one stateless agent: a Kafka listener writing to the
// bucket, talking to a separately running meta over one outbound gRPC
// connection.
func runAgent(args []string) error {
	fs := newFlagSet("agent", "sluice agent --meta-addr ADDR --agent-key KEY [flags]")
	metaAddr := fs.String("meta-addr", "127.0.0.1:9093", "meta replicas to connect to, comma-separated host:port; the agent uses the leader and moves on when one is unreachable or a standby")
	agentKey := fs.String("agent-key", "", "the agent key of this agent's cluster (from 'sluice meta keys create'); default $SLUICE_AGENT_KEY")
	metaCA := fs.String("meta-ca", "", "PEM CA certificate to verify meta's TLS certificate; plaintext when empty")
	metaInsecure := fs.Bool("meta-insecure", false, "allow plaintext (no --meta-ca) to a --meta-addr that is not loopback: the agent key then crosses the network readable")
	bucket := fs.String("bucket", "", "where segments go: file:///path, a bare path, or s3://bucket/prefix?region=R[&endpoint=URL&path_style=true]; S3 credentials come from the AWS chain and never go to meta (required)")
	zone := fs.String("zone", "", "availability zone of this agent")
	zoneFile := fs.String("zone-file", "", "read the availability zone from this file instead of --zone (surrounding white space ignored): Kubernetes cannot pass a node label through the downward API, so the Helm chart's init container writes the node's topology.kubernetes.io/zone here")
	group := fs.String("group", "", "agent group of this agent")
	roles := fs.String("roles", "", "what this agent is offered for, comma-separated: produce, consume, jobs (default all)")
	id := fs.String("agent-id", "", "unique id of this agent process (default: host name plus a random suffix)")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "Kafka listener address; port 0 picks a free port")
	advertise := fs.String("advertise-addr", "", "host:port clients dial for this agent (default: the bound --kafka-addr)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "HTTP address serving /metrics and /healthz; port 0 picks a free port; empty disables")
	httpMaxConns := fs.Int("http-max-connections", defaultHTTPMaxConns, httpMaxConnsUsage)
	peerAddr := fs.String("peer-addr", "127.0.0.1:0", "listener of the zone cache: agents of one zone fetch blocks from each other here; empty turns the shared cache off")
	peerAdvertise := fs.String("peer-advertise-addr", "", "host:port other agents dial for --peer-addr (default: the bound address)")
	peerMaxConns := fs.Int("peer-max-connections", cache.DefaultPeerMaxConnections, "open connections on --peer-addr; more are closed on accept (each peer agent keeps at most 32)")
	peerSecret := fs.String("peer-secret", "", "secret shared by the agents of a cluster that authenticates the zone cache protocol (default $SLUICE_PEER_SECRET, else derived from the agent key: agents with different keys then need one)")
	faultInjection := fs.Bool("fault-injection", false, "for sluice loadtest and tests only: wrap the bucket in a fault injector driven at runtime by POST /debug/faults?op=put|get|all&error_rate=0.3&latency=100ms and POST /debug/faults/reset on --http-addr")
	var af agentFlags
	af.register(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if err := af.validate(); err != nil {
		return err
	}
	applyMemoryLimit(log, af.memoryBounds())
	key := envOr(*agentKey, "SLUICE_AGENT_KEY")
	switch {
	case key == "":
		return errors.New("no agent key: pass --agent-key or set SLUICE_AGENT_KEY (create one with 'sluice meta keys create --cluster NAME')")
	case *bucket == "":
		return errors.New("--bucket is required: file:///path for a local directory, or s3://bucket/prefix?region=R")
	case len(splitList(*metaAddr)) == 0:
		return errors.New("--meta-addr is empty: name at least one meta replica, host:port")
	case *faultInjection && *httpAddr == "":
		return errors.New("--fault-injection serves its controls on --http-addr: give one")
	}
	if *zoneFile != "" {
		if *zone != "" {
			return errors.New("--zone and --zone-file both given: keep one")
		}
		z, err := readZoneFile(*zoneFile)
		if err != nil {
			return err
		}
		*zone = z
	}
	for _, r := range splitList(*roles) {
		if r != "produce" && r != "consume" && r != "jobs" {
			return fmt.Errorf("--roles: unknown role %q (produce, consume, jobs)", r)
		}
	}
	agentID := *id
	if agentID == "" {
		hn, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		agentID = hn + "-" + hex.EncodeToString(b[:])
	}
	tlsCfg, err := clientTLS(*metaCA)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mc, err := rpc.Dial(rpc.ClientConfig{Addrs: splitList(*metaAddr), Key: key, TLS: tlsCfg, Insecure: *metaInsecure, Logger: log})
	if err != nil {
		return fmt.Errorf("--meta-addr %s: %w", *metaAddr, err)
	}
	defer mc.Close()

	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	raw, err := objstore.Open(octx, *bucket)
	ocancel()
	if err != nil {
		return err // names --bucket
	}
	var faults *objstore.Faulty
	if *faultInjection {
		// Instrument sits outside, so /metrics counts injected failures.
		var seed [8]byte
		rand.Read(seed[:])
		faults = objstore.NewFaulty(raw, binary.LittleEndian.Uint64(seed[:]))
		raw = faults
		log.Warn("fault injection enabled: POST /debug/faults on --http-addr makes the object store fail; for sluice loadtest and tests only")
	}
	store := objstore.Instrument(raw)
	defer store.Close()

	acfg := af.config(log)
	acfg.ID = agentID
	acfg.KafkaAddr = *kafkaAddr
	acfg.AdvertisedAddr = *advertise
	acfg.Zone = *zone
	acfg.Group = *group
	acfg.Roles = splitList(*roles)
	if *peerAddr != "" {
		acfg.PeerListen = *peerAddr
		acfg.PeerAdvertise = *peerAdvertise
		if *peerMaxConns < 1 {
			return fmt.Errorf("--peer-max-connections must be at least 1, got %d", *peerMaxConns)
		}
		acfg.PeerMaxConnections = *peerMaxConns
		acfg.PeerSecret = peerSecretFrom(envOr(*peerSecret, "SLUICE_PEER_SECRET"), key)
		if acfg.PeerTLS, acfg.PeerClientTLS, err = af.peerTLS(log); err != nil {
			return err
		}
	}
	a, err := agent.Start(ctx, acfg, mc, store)
	if err != nil {
		return fmt.Errorf("%w (meta at --meta-addr %s)", err, *metaAddr)
	}
	httpSrv, httpLn, err := startAgentHTTP(*httpAddr, *httpMaxConns, a.WriteMetrics, faults, af.pprof)
	if err != nil {
		_ = a.Stop(context.Background())
		return err
	}
	healthy.Store(true)
	log.Info("agent ready", "id", agentID, "node", a.NodeID(), "kafka", a.AdvertisedAddr(), "zone", *zone, "bucket", *bucket, "meta", *metaAddr)
	if httpLn != nil {
		fmt.Printf("http: %s\n", httpLn.Addr())
	}
	fmt.Printf("bootstrap: %s\n", a.AdvertisedAddr())

	<-ctx.Done()
	stop()
	log.Info("shutting down: finishing in-flight produce requests")
	healthy.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = a.Stop(sctx)
	if httpSrv != nil {
		_ = httpSrv.Shutdown(sctx)
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

// startAgentHTTP is startHTTP, plus the fault controls of
// --fault-injection (/debug/faults) when faults is set. Without the flag
// those paths do not exist.
func startAgentHTTP(addr string, maxConns int, extra func(io.Writer), faults *objstore.Faulty, pprofOn bool) (*http.Server, net.Listener, error) {
	if faults == nil {
		return startHTTP(addr, "--http-addr", maxConns, extra, pprofOn)
	}
	ln, err := listenHTTP(addr, "--http-addr", maxConns)
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/", httpHandler(extra, pprofOn))
	fh := loadtest.FaultHandler(faults)
	mux.Handle("/debug/faults", fh)
	mux.Handle("/debug/faults/", fh)
	srv := newHTTPServer(mux)
	go func() { _ = srv.Serve(ln) }()
	return srv, ln, nil
}

// readZoneFile reads --zone-file: one line naming the zone. An empty file
// is an error, not "no zone": it means whatever should have written it
// (the chart's init container) did not, and an agent without its zone
// would serve clients of every zone and pay for cross-zone traffic.
func readZoneFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--zone-file: %w", err)
	}
	z := strings.TrimSpace(string(b))
	if z == "" {
		return "", fmt.Errorf("--zone-file %s is empty: it should name the zone (the node's topology.kubernetes.io/zone label)", path)
	}
	return z, nil
}

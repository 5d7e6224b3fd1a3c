package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"sluice.dev/meta/console"
	"sluice.dev/meta/controller"
	"sluice.dev/meta/host"
	"sluice.dev/meta/rpc"
)

const metaUsage = `Usage:
  sluice meta [flags]                                   run the control plane
  sluice meta keys create --meta-addr ADDR --cluster NAME   print a new agent key (alone, on stdout)
  sluice meta keys list   --meta-addr ADDR [--cluster NAME]
  sluice meta keys revoke --meta-addr ADDR --cluster NAME --id KEY_ID
  sluice meta users set    --meta-addr ADDR --cluster NAME --user USER   password on stdin or in SLUICE_USER_PASSWORD
  sluice meta users list   --meta-addr ADDR --cluster NAME
  sluice meta users delete --meta-addr ADDR --cluster NAME --user USER [--mechanism M]

The keys and users commands need the admin token: --admin-token or SLUICE_ADMIN_TOKEN.
`

func runMeta(args []string) error {
	if len(args) > 0 && args[0] == "keys" {
		return runMetaKeys(args[1:])
	}
	if len(args) > 0 && args[0] == "users" { // SASL (issue 14): users.go
		return runMetaUsers(args[1:])
	}
	fs := newFlagSet("meta", metaUsage)
	listen := fs.String("listen", "127.0.0.1:9093", "address of the gRPC API agents and admins connect to; port 0 picks a free port")
	advertise := fs.String("advertise-addr", "", "this replica's address as agents reach it, recorded when it leads (default: the bound --listen address)")
	store := fs.String("store", "./data/meta", "a directory for the embedded store, or a postgres:// URL (several replicas on one PostgreSQL: one leads, the others stand by)")
	httpAddr := fs.String("http-addr", "127.0.0.1:8081", "HTTP address serving /metrics and /healthz (200 while this replica leads); empty disables")
	httpMaxConns := fs.Int("http-max-connections", defaultHTTPMaxConns, httpMaxConnsUsage)
	pprofOn := fs.Bool("pprof", false, pprofUsage)
	adminToken := fs.String("admin-token", "", "token for the admin API (agent keys); default $SLUICE_ADMIN_TOKEN; empty disables the admin API")
	tlsCert := fs.String("tls-cert", "", "PEM certificate for the gRPC listener (with --tls-key); plaintext when empty")
	tlsKey := fs.String("tls-key", "", "PEM private key for --tls-cert")
	agentTTL := fs.Duration("agent-ttl", 10*time.Second, "how long a registered agent stays live without a heartbeat")
	maxConns := fs.Int("max-connections", rpc.DefaultMaxConnections, "open gRPC connections (agents, admin commands); excess connections are closed on accept")
	maxIdle := fs.Duration("connections-max-idle", rpc.DefaultMaxIdle, "close a gRPC connection with no call in progress for this long (an agent's watch keeps its own busy; clients reconnect when they next call); 0: never")
	limits := addMetaLimitFlags(fs)
	var gf groupFlags
	gf.register(fs, 3*time.Second)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	consoleEvery := registerConsoleFlags(fs) // console (issue 16)
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
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if *maxConns < 1 {
		return fmt.Errorf("--max-connections must be at least 1, got %d", *maxConns)
	}
	if *maxIdle < 0 {
		return fmt.Errorf("--connections-max-idle must be 0 (never) or positive, got %s", *maxIdle)
	}
	if *agentTTL < time.Second {
		return fmt.Errorf("--agent-ttl must be at least 1s, got %s", *agentTTL)
	}
	if err := gf.validate(); err != nil {
		return err
	}
	if err := limits.validate(); err != nil {
		return err
	}
	applyMemoryLimit(log, 0)
	token := envOr(*adminToken, "SLUICE_ADMIN_TOKEN")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on --listen %s: %w", *listen, err)
	}
	holder := *advertise
	if holder == "" {
		holder = ln.Addr().String()
	}
	h, err := host.Open(ctx, host.Config{
		Store:      *store,
		AdminToken: token,
		Holder:     holder,
		Meta:       limits.apply(controller.Config{AgentTTL: *agentTTL, Groups: gf.config()}),
		Logger:     log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	defer h.Close()

	srv := rpc.NewServer(h, log)
	lim := rpc.Limits{MaxConnections: *maxConns, MaxIdle: *maxIdle}
	opts := srv.Options(lim)
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})))
	}
	gs := grpc.NewServer(opts...)
	srv.Register(gs)
	go func() {
		if err := gs.Serve(rpc.LimitListener(ln, lim, log)); err != nil {
			log.Error("meta: grpc server stopped", "err", err)
		}
	}()

	// console (issue 16): behind the admin token, like the Admin API.
	startConsole(ctx, console.Config{
		Source:      console.Services{Names: h.OpenClusters, Get: h.OpenCluster},
		Token:       token,
		SampleEvery: *consoleEvery,
	}, log)
	httpSrv, httpLn, err := startHTTP(*httpAddr, "--http-addr", *httpMaxConns, nil, *pprofOn)
	if err != nil {
		gs.Stop()
		return err
	}
	leading := h.Leading
	healthFn.Store(&leading)
	stats := h.JobsStats
	jobsFn.Store(&stats)
	ages := h.AgeReports
	ageFn.Store(&ages)
	healthy.Store(true)

	if httpLn != nil {
		fmt.Printf("http: %s\n", httpLn.Addr())
		fmt.Printf("console: http://%s/console/\n", httpLn.Addr()) // console (issue 16); behind the admin token
	}
	fmt.Printf("meta: %s\n", ln.Addr())
	if token == "" {
		log.Warn("no admin token: the admin API (sluice meta keys) is disabled; set --admin-token or SLUICE_ADMIN_TOKEN")
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && *tlsCert == "" && !ta.IP.IsLoopback() {
		// Agents refuse this without --meta-insecure (meta/rpc
		// checkPlaintext); say why from this side too.
		log.Warn("the gRPC listener is plaintext on an address that is not loopback: agent keys and the admin token cross the network readable; give --tls-cert and --tls-key",
			"listen", ln.Addr().String())
	}
	log.Info("meta ready", "listen", ln.Addr().String(), "store", redactStore(*store), "tls", *tlsCert != "")

	runErr := h.Run(ctx)
	stop()
	log.Info("meta: shutting down")
	healthy.Store(false)
	// Streams (Watch) never end on their own: give unary calls a moment,
	// then cut the rest.
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		gs.Stop()
	}
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = httpSrv.Shutdown(sctx)
		cancel()
	}
	if err := h.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		log.Info("meta: stopped cleanly")
	}
	return runErr
}

// redactStore hides a password in a postgres:// URL for log lines.
func redactStore(s string) string {
	if u, err := parseURL(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return s
}

// adminFlags are the flags of the admin commands (`sluice meta keys`,
// `sluice meta users`): which meta, and how to reach it.
type adminFlags struct {
	addr, token, ca *string
	insecure        *bool
}

func registerAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		addr:     fs.String("meta-addr", "127.0.0.1:9093", "address of a running sluice meta (its leader)"),
		token:    fs.String("admin-token", "", "admin token; default $SLUICE_ADMIN_TOKEN"),
		ca:       fs.String("meta-ca", "", "PEM CA certificate to verify a TLS meta; plaintext when empty"),
		insecure: fs.Bool("meta-insecure", false, "allow plaintext (no --meta-ca) to a --meta-addr that is not loopback: the admin token then crosses the network readable"),
	}
}

// dial connects to meta's admin API.
func (f adminFlags) dial() (*rpc.AdminClient, error) {
	tlsCfg, err := clientTLS(*f.ca)
	if err != nil {
		return nil, err
	}
	ac, err := rpc.DialAdmin(*f.addr, envOr(*f.token, "SLUICE_ADMIN_TOKEN"), tlsCfg, *f.insecure)
	if err != nil {
		return nil, fmt.Errorf("--meta-addr %s: %w", *f.addr, err)
	}
	return ac, nil
}

func runMetaKeys(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, metaUsage)
		return errors.New("sluice meta keys: name an action: create, list or revoke")
	}
	action := args[0]
	fs := newFlagSet("meta keys "+action, "sluice meta keys "+action+" --meta-addr ADDR --cluster NAME [flags]")
	af := registerAdminFlags(fs)
	cluster := fs.String("cluster", "", "virtual cluster name")
	id := fs.String("id", "", "key id to revoke (from list)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	ac, err := af.dial()
	if err != nil {
		return err
	}
	defer ac.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch action {
	case "create":
		if *cluster == "" {
			return errors.New("sluice meta keys create: --cluster is required")
		}
		key, _, err := ac.CreateKey(ctx, *cluster)
		if err != nil {
			return err
		}
		fmt.Println(key)
		return nil
	case "list":
		keys, err := ac.ListKeys(ctx, *cluster)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLUSTER\tCREATED\tSTATE")
		for _, k := range keys {
			state := "active"
			if k.Revoked {
				state = "revoked " + k.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Cluster, k.Created.UTC().Format(time.RFC3339), state)
		}
		return tw.Flush()
	case "revoke":
		if *cluster == "" || *id == "" {
			return errors.New("sluice meta keys revoke: --cluster and --id are required (ids come from 'sluice meta keys list')")
		}
		if err := ac.RevokeKey(ctx, *cluster, *id); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "revoked key %s of cluster %s\n", *id, *cluster)
		return nil
	default:
		fmt.Fprint(os.Stderr, metaUsage)
		return fmt.Errorf("sluice meta keys: unknown action %q", action)
	}
}

// clientTLS returns a TLS config trusting the CA in file, or nil
// (plaintext) when file is empty.
func clientTLS(file string) (*tls.Config, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--meta-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--meta-ca %s: no PEM certificate in it", file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/agent"
	"sluice.dev/meta/console"
	"sluice.dev/meta/controller"
	"sluice.dev/objstore"
)

func runPlayground(args []string) error {
	fs := newFlagSet("playground", "sluice playground [flags]")
	dataDir := fs.String("data-dir", "./data", "directory for the embedded metadata store (meta/) and the default local bucket (bucket/)")
	bucket := fs.String("bucket", "", "where segments go: file:///path, a bare path, or s3://bucket/prefix?region=R[&endpoint=URL&path_style=true]; S3 credentials come from the AWS chain and never go to meta (default file://<data-dir>/bucket)")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "Kafka listener address; port 0 picks a free port")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "HTTP address serving /metrics and /healthz; port 0 picks a free port; empty disables")
	httpMaxConns := fs.Int("http-max-connections", defaultHTTPMaxConns, httpMaxConnsUsage)
	nAgents := fs.Int("agents", 1, "agents to run in this process; the first listens on --kafka-addr and --http-addr, the others on the following ports")
	zones := fs.String("zones", "", "comma-separated zones the agents are spread over round-robin (default: one unnamed zone)")
	var af agentFlags
	af.register(fs)
	var gf groupFlags
	gf.register(fs, 0)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	limits := addMetaLimitFlags(fs)
	// SASL (issue 14): one user to try SASL with, in one command.
	bootstrapUser := fs.String("bootstrap-user", "", "NAME:PASSWORD of a user to create (or reset) at start with SCRAM-SHA-256 and SCRAM-SHA-512 credentials, for --sasl-mechanisms; default $SLUICE_BOOTSTRAP_USER")
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
	if err := af.validate(); err != nil {
		return err
	}
	applyMemoryLimit(log, af.memoryBounds())
	if err := gf.validate(); err != nil {
		return err
	}
	if err := limits.validate(); err != nil {
		return err
	}
	var bootName, bootPass string // SASL (issue 14)
	if v := envOr(*bootstrapUser, "SLUICE_BOOTSTRAP_USER"); v != "" {
		if bootName, bootPass, err = parseUserPassword(v); err != nil {
			return err
		}
	}
	if *nAgents < 1 || *nAgents > 64 {
		return fmt.Errorf("--agents must be between 1 and 64, got %d", *nAgents)
	}
	zoneList := splitList(*zones)
	if len(zoneList) == 0 {
		zoneList = []string{""}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("create --data-dir %s: %w", *dataDir, err)
	}
	m, err := controller.Open(limits.apply(controller.Config{Dir: filepath.Join(*dataDir, "meta"), Groups: gf.config(), Logger: log}))
	if err != nil {
		return fmt.Errorf("open metadata store under --data-dir %s: %w", *dataDir, err)
	}
	if bootName != "" { // SASL (issue 14)
		if err := setUser(ctx, m.AlterScramCredentials, bootName, bootPass, bothScram, scramIterations); err != nil {
			m.Close()
			return fmt.Errorf("--bootstrap-user: %w", err)
		}
		log.Info("bootstrap user ready (SCRAM-SHA-256, SCRAM-SHA-512; PLAIN checks against them)", "user", bootName)
		if len(af.sasl.cfg.Mechanisms) == 0 {
			log.Warn("--bootstrap-user is set but --sasl-mechanisms is empty: clients connect without logging in", "hint", "add --sasl-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
		}
	}
	stats := func() map[string]controller.JobsStats {
		return map[string]controller.JobsStats{"default": m.JobsStats()}
	}
	jobsFn.Store(&stats)
	ages := func(age time.Duration) map[string]controller.AgeReport {
		return map[string]controller.AgeReport{"default": m.AgeReport(age)}
	}
	ageFn.Store(&ages)
	// console (issue 16): open on loopback; elsewhere only with
	// SLUICE_ADMIN_TOKEN.
	consoleToken := envOr("", "SLUICE_ADMIN_TOKEN")
	consoleOpen := consoleToken == "" && loopbackAddr(*httpAddr)
	startConsole(ctx, console.Config{
		Source: console.Services{
			Names: func() []string { return []string{"default"} },
			Get: func(name string) *controller.Service {
				if name == "default" {
					return m
				}
				return nil
			},
		},
		Token: consoleToken, Open: consoleOpen, SampleEvery: *consoleEvery,
	}, log)
	if *httpAddr != "" && !consoleOpen && consoleToken == "" {
		log.Warn("the web console is locked: --http-addr is not loopback and SLUICE_ADMIN_TOKEN is empty; set SLUICE_ADMIN_TOKEN to open it with that token")
	}
	bucketURL := *bucket
	if bucketURL == "" {
		abs, err := filepath.Abs(filepath.Join(*dataDir, "bucket"))
		if err != nil {
			m.Close()
			return fmt.Errorf("--data-dir %s: %w", *dataDir, err)
		}
		bucketURL = "file://" + abs
	}
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	raw, err := objstore.Open(octx, bucketURL)
	ocancel()
	if err != nil {
		m.Close()
		return err // names --bucket
	}
	store := objstore.Instrument(raw)

	// Agents of one zone share their caches over an authenticated peer
	// protocol; in one process a random secret will do.
	secret := make([]byte, 32)
	rand.Read(secret)
	var agents []*agent.Agent
	var https []*http.Server
	stopAll := func(ctx context.Context) error {
		var first error
		for _, a := range agents {
			if err := a.Stop(ctx); err != nil && first == nil {
				first = err
			}
		}
		for _, h := range https {
			_ = h.Shutdown(ctx)
		}
		return first
	}
	var lines []string
	for i := range *nAgents {
		stride := 1 // the ports of agent i's broker identities come before agent i+1's
		if !af.sharePort {
			stride = af.identities
		}
		kaddr, err := shiftPort(*kafkaAddr, i*stride)
		if err != nil {
			return fmt.Errorf("--kafka-addr: %w", err)
		}
		acfg := af.config(log)
		acfg.ID = fmt.Sprintf("playground-%d", i)
		acfg.KafkaAddr = kaddr
		acfg.Zone = zoneList[i%len(zoneList)]
		if *nAgents > 1 {
			acfg.PeerListen = "127.0.0.1:0"
			acfg.PeerSecret = secret
			if acfg.PeerTLS, acfg.PeerClientTLS, err = af.peerTLS(log); err != nil {
				_ = stopAll(context.Background())
				store.Close()
				m.Close()
				return err
			}
		}
		a, err := agent.Start(ctx, acfg, m, store)
		if err != nil {
			_ = stopAll(context.Background())
			store.Close()
			m.Close()
			return fmt.Errorf("start agent %d: %w", i, err)
		}
		agents = append(agents, a)
		httpAt := ""
		if *httpAddr != "" {
			haddr, err := shiftPort(*httpAddr, i)
			if err != nil {
				_ = stopAll(context.Background())
				store.Close()
				m.Close()
				return fmt.Errorf("--http-addr: %w", err)
			}
			srv, ln, err := startHTTP(haddr, "--http-addr", *httpMaxConns, a.WriteMetrics, af.pprof)
			if err != nil {
				_ = stopAll(context.Background())
				store.Close()
				m.Close()
				return err
			}
			https = append(https, srv)
			httpAt = ln.Addr().String()
		}
		if i == 0 && httpAt != "" {
			fmt.Printf("http: %s\n", httpAt)
			fmt.Printf("console: http://%s/console/\n", httpAt) // console (issue 16)
		}
		zone := acfg.Zone
		if zone == "" {
			zone = "-"
		}
		lines = append(lines, fmt.Sprintf("%s zone=%s http=%s", a.AdvertisedAddr(), zone, httpAt))
	}
	healthy.Store(true)
	log.Info("playground ready", "agents", len(agents), "kafka", agents[0].AdvertisedAddr(), "data_dir", *dataDir, "bucket", bucketURL, "flush_interval", af.flush)
	if len(agents) == 1 {
		fmt.Printf("bootstrap: %s\n", agents[0].AdvertisedAddr())
	} else {
		addrs := make([]string, len(agents))
		for i, a := range agents {
			addrs[i] = a.AdvertisedAddr()
		}
		fmt.Printf("bootstrap: %s  [%s]\n", strings.Join(addrs, ","), strings.Join(lines, "; "))
		for i, l := range lines {
			fmt.Printf("agent %d: %s\n", i, l)
		}
	}

	<-ctx.Done()
	stop()
	log.Info("shutting down: finishing in-flight produce requests")
	healthy.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = stopAll(sctx)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		log.Info("stopped cleanly")
	}
	return err
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// httpHandler serves /metrics (the process's series, then extra's, when
// set: an agent's own) and /healthz.
func httpHandler(extra func(io.Writer), pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
		if extra != nil {
			extra(w)
		}
	})
	// Profiles for operators (go tool pprof http://ADDR/debug/pprof/profile),
	// only with --pprof: they reveal the program's insides (goroutine
	// stacks, allocation sites) and a CPU profile or trace costs the
	// process dearly, so an --http-addr opened for /metrics must not
	// offer them to whoever reaches it. /debug/pprof/cmdline is never
	// served: secrets may be given as flags (--agent-key, --admin-token,
	// --peer-secret). Registered on this mux only: net/http/pprof's init
	// also registers on http.DefaultServeMux, which no listener serves.
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ok := isHealthy()
		if r.URL.Query().Get("detail") != "" {
			// The detail: health and the background jobs per cluster.
			w.Header().Set("Content-Type", "application/json")
			if !ok {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"healthy": ok, "jobs": jobsViews()})
			return
		}
		if !ok {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/jobs", serveJobs)
	mux.HandleFunc("/console/", serveConsole) // console (issue 16)
	return mux
}

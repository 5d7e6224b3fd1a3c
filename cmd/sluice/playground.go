package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/agent"
	"sluice.dev/meta"
	"sluice.dev/objstore"
)

func runPlayground(args []string) error {
	fs := flag.NewFlagSet("playground", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "./data", "directory for the embedded metadata store (meta/) and the default local bucket (bucket/)")
	bucket := fs.String("bucket", "", "where segments go: file:///path, a bare path, or s3://bucket/prefix?region=R[&endpoint=URL&path_style=true]; S3 credentials come from the AWS chain and never go to meta (default file://<data-dir>/bucket)")
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "Kafka listener address; port 0 picks a free port")
	httpAddr := fs.String("http-addr", "127.0.0.1:8080", "HTTP address serving /metrics and /healthz; port 0 picks a free port; empty disables")
	flush := fs.Duration("flush-interval", 250*time.Millisecond, "how long a segment collects batches before it is sealed and uploaded")
	autoCreate := fs.Bool("auto-create-topics", true, "create unknown topics named in Metadata requests")
	defParts := fs.Int("default-partitions", 16, "partition count of auto-created topics")
	maxReq := fs.Int("max-request-bytes", 100<<20, "largest request frame accepted; larger frames close the connection")
	maxSeg := fs.Int("max-segment-bytes", 8<<20, "seal a segment early once it holds this many bytes")
	maxInFlight := fs.Int64("max-inflight-bytes", 256<<20, "produce bytes admitted but not yet acknowledged; past it producers wait")
	cacheBytes := fs.Int64("cache-bytes", 512<<20, "read cache size in bytes")
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
	switch {
	case *flush <= 0:
		return fmt.Errorf("--flush-interval must be positive, got %s", *flush)
	case *defParts <= 0 || *defParts > 100000:
		return fmt.Errorf("--default-partitions must be between 1 and 100000, got %d", *defParts)
	case *maxReq < 1<<10:
		return fmt.Errorf("--max-request-bytes must be at least 1024, got %d", *maxReq)
	case *maxSeg < 1<<10:
		return fmt.Errorf("--max-segment-bytes must be at least 1024, got %d", *maxSeg)
	case *maxInFlight < int64(*maxSeg):
		return fmt.Errorf("--max-inflight-bytes (%d) must be at least --max-segment-bytes (%d)", *maxInFlight, *maxSeg)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("create --data-dir %s: %w", *dataDir, err)
	}
	m, err := meta.Open(meta.Config{Dir: filepath.Join(*dataDir, "meta"), Logger: log})
	if err != nil {
		return fmt.Errorf("open metadata store under --data-dir %s: %w", *dataDir, err)
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

	var httpSrv *http.Server
	var httpLn net.Listener
	if *httpAddr != "" {
		httpLn, err = net.Listen("tcp", *httpAddr)
		if err != nil {
			store.Close()
			m.Close()
			return fmt.Errorf("listen on --http-addr %s: %w", *httpAddr, err)
		}
		httpSrv = &http.Server{Handler: httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = httpSrv.Serve(httpLn) }()
	}

	a, err := agent.Start(ctx, agent.Config{
		ID:                "playground-0",
		NodeID:            0,
		KafkaAddr:         *kafkaAddr,
		FlushInterval:     *flush,
		MaxSegmentBytes:   *maxSeg,
		MaxInFlightBytes:  *maxInFlight,
		MaxRequestBytes:   *maxReq,
		CacheBytes:        *cacheBytes,
		AutoCreateTopics:  *autoCreate,
		DefaultPartitions: int32(*defParts),
		Logger:            log,
	}, m, store)
	if err != nil {
		if httpSrv != nil {
			httpSrv.Close()
		}
		store.Close()
		m.Close()
		return err
	}
	healthy.Store(true)
	log.Info("playground ready", "kafka", a.AdvertisedAddr(), "data_dir", *dataDir, "bucket", bucketURL, "flush_interval", *flush)
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

func httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !healthy.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

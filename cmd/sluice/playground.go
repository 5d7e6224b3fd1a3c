package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
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

	httpSrv, httpLn, err := startHTTP(*httpAddr, "--http-addr")
	if err != nil {
		store.Close()
		m.Close()
		return err
	}

	acfg := af.config(log)
	acfg.ID = "playground-0"
	acfg.KafkaAddr = *kafkaAddr
	a, err := agent.Start(ctx, acfg, m, store)
	if err != nil {
		if httpSrv != nil {
			httpSrv.Close()
		}
		store.Close()
		m.Close()
		return err
	}
	healthy.Store(true)
	log.Info("playground ready", "kafka", a.AdvertisedAddr(), "data_dir", *dataDir, "bucket", bucketURL, "flush_interval", af.flush)
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
		if !isHealthy() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Command kfake runs franz-go's kfake broker (one broker) for `make
// compare`: the same load against Sluice and against kfake, in one run.
// With --data-dir it persists to disk and, with --sync, fsyncs every
// batch (as durable as a Sluice acknowledgement); without, it keeps
// everything in memory. It prints "bootstrap: ADDR" once it listens (and
// "http: ADDR" first with --http-addr) and runs until SIGTERM or SIGINT.
//
// With --http-addr it serves /metrics: the process's series
// (process_cpu_seconds_total among them), read the same way as a Sluice
// agent's, so that compare charges both brokers' CPU from their own
// exposition rather than from outside.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1; 0 picks a free one")
	dataDir := flag.String("data-dir", "", "persist to this directory (empty: in memory)")
	sync := flag.Bool("sync", false, "fsync every produced batch (needs --data-dir)")
	partitions := flag.Int("default-partitions", 16, "partitions of auto-created topics")
	httpAddr := flag.String("http-addr", "", "serve /metrics (process_cpu_seconds_total, ...) on this address; port 0 picks a free one; empty disables")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port), kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(*partitions)}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *sync {
			opts = append(opts, kfake.SyncWrites())
		}
	} else if *sync {
		fmt.Fprintln(os.Stderr, "kfake: --sync needs --data-dir")
		os.Exit(2)
	}
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kfake: --http-addr:", err)
			os.Exit(1)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			metrics.WritePrometheus(w, true)
		})
		go func() { _ = http.Serve(ln, mux) }()
		fmt.Printf("http: %s\n", ln.Addr())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfake:", err)
		os.Exit(1)
	}
	fmt.Printf("bootstrap: %s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	c.Close()
}

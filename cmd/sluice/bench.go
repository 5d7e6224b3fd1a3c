package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"sluice.dev/bench"
)

const benchUsage = `Usage:
  sluice bench produce [flags]   produce for --duration; throughput and produce (ack) latency
  sluice bench consume [flags]   consume for --duration; throughput, and end-to-end latency of
                                 records a concurrent "sluice bench produce" writes
  sluice bench e2e [flags]       both at once; end-to-end latency of every record

Works against any Kafka bootstrap address. Run "sluice bench MODE --help" for the flags.
`

// runBench parses flags into a bench.Config, runs it and prints the
// figures; the measuring is in package bench.
func runBench(args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(os.Stderr, benchUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("bench: name a mode: produce, consume or e2e")
	}
	var mode bench.Mode
	switch m := bench.Mode(args[0]); m {
	case bench.ModeProduce, bench.ModeConsume, bench.ModeE2E:
		mode = m
	default:
		fmt.Fprint(os.Stderr, benchUsage)
		return fmt.Errorf("bench: unknown mode %q", args[0])
	}

	d := bench.Defaults
	fs := newFlagSet("bench "+string(mode), "sluice bench "+string(mode)+" [flags]")
	brokers := fs.String("brokers", strings.Join(d.Brokers, ","), "Kafka bootstrap addresses, comma-separated")
	topic := fs.String("topic", d.Topic, "topic to use")
	duration := fs.Duration("duration", d.Duration, "how long to produce (produce, e2e) or consume (consume)")
	warmup := fs.Duration("warmup", 0, "leave the run's first part out of the latency and --agent-metrics figures (connections, metadata and producer ids are set up once per client); throughput counts the whole --duration")
	jsonOut := fs.Bool("json", false, "print one JSON line on stdout instead of the summary table")
	htmlOut := fs.String("html", "", "also write a self-contained HTML report with charts to this file")
	useTLS := fs.Bool("tls", false, "dial the brokers over TLS, verified against the system's CA certificates (or --tls-ca)")
	tlsCA := fs.String("tls-ca", "", "PEM CA bundle to verify the brokers' TLS certificates with; implies --tls")
	agentMetrics := fs.String("agent-metrics", "", "an agent's Prometheus /metrics URL (e.g. http://127.0.0.1:8080/metrics): report its CPU seconds and object store requests per GiB")
	var (
		partitions, recordSize, rate, producers, consumers, keys *int
		topicConfigs                                             = map[string]string{}
		acks, compression, group, from                           *string
		linger                                                   = d.Linger
		producerFlags, consumerFlags                             bool
	)
	if mode != bench.ModeConsume {
		producerFlags = true
		partitions = fs.Int("partitions", int(d.Partitions), "partition count if the topic has to be created (an existing topic keeps its own)")
		recordSize = fs.Int("record-size", d.RecordSize, "record value size in bytes (at least 8: the first 8 carry the produce time)")
		rate = fs.Int("rate", 0, "target records per second across all producers; 0 = as fast as possible")
		keys = fs.Int("keys", 0, "give records keys from a space of this many (k0, k1, ... in turn), for compacted topics; 0 = no keys")
		fs.Func("topic-config", "a config name=value for the topic if the run creates it (e.g. cleanup.policy=compact); repeat for more", func(kv string) error {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				return fmt.Errorf("want name=value, got %q", kv)
			}
			topicConfigs[name] = value
			return nil
		})
		producers = fs.Int("producers", d.Producers, "producer clients, each with its own connections")
		acks = fs.String("acks", d.Acks, "all, 1 or 0 (all keeps the idempotent producer)")
		compression = fs.String("compression", d.Compression, "none, lz4, zstd, snappy or gzip")
		fs.DurationVar(&linger, "linger", d.Linger, "how long a producer waits to fill a batch")
	}
	if mode != bench.ModeProduce {
		consumerFlags = true
		consumers = fs.Int("consumers", d.Consumers, "consumer clients; without --group partition p goes to consumer p % consumers")
		group = fs.String("group", "", "consumer group to consume in; empty assigns partitions directly (for clusters without groups)")
	}
	if mode == bench.ModeConsume {
		from = fs.String("from", d.From, "where to start: earliest or latest")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench %s: unexpected argument %q", mode, fs.Arg(0))
	}

	cfg := bench.Config{
		Topic: *topic, Duration: *duration, Warmup: *warmup, AgentMetrics: *agentMetrics, Progress: os.Stderr,
		TLS: *useTLS, TLSCA: *tlsCA,
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.Brokers = append(cfg.Brokers, b)
		}
	}
	if producerFlags {
		cfg.Partitions = int32(*partitions)
		cfg.RecordSize, cfg.Rate, cfg.Producers = *recordSize, *rate, *producers
		cfg.Acks, cfg.Compression, cfg.Linger = *acks, *compression, linger
		cfg.Keys = *keys
		if len(topicConfigs) > 0 {
			cfg.TopicConfigs = topicConfigs
		}
		if *partitions <= 0 {
			return fmt.Errorf("--partitions must be positive, got %d", *partitions)
		}
		if *recordSize <= 0 {
			return fmt.Errorf("--record-size must be positive, got %d", *recordSize)
		}
		if *producers <= 0 {
			return fmt.Errorf("--producers must be positive, got %d", *producers)
		}
	}
	if consumerFlags {
		cfg.Consumers, cfg.Group = *consumers, *group
		if *consumers <= 0 {
			return fmt.Errorf("--consumers must be positive, got %d", *consumers)
		}
	}
	if from != nil {
		cfg.From = *from
	}
	// Validate before anything connects, so a bad flag fails at once.
	if err := cfg.Validate(); err != nil {
		return err
	}
	var htmlFile *os.File
	if *htmlOut != "" {
		f, err := os.Create(*htmlOut)
		if err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		htmlFile = f
		defer f.Close()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := map[bench.Mode]func(context.Context, bench.Config) (*bench.Result, error){
		bench.ModeProduce: bench.RunProduce, bench.ModeConsume: bench.RunConsume, bench.ModeE2E: bench.RunE2E,
	}[mode]
	res, err := run(ctx, cfg)
	if res == nil {
		return err
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "interrupted: figures cover the run so far")
		err = nil
	}
	if *jsonOut {
		if werr := res.WriteJSON(os.Stdout); werr != nil {
			return werr
		}
	} else if werr := res.WriteSummary(os.Stdout); werr != nil {
		return werr
	}
	if htmlFile != nil {
		if werr := res.WriteHTML(htmlFile); werr != nil {
			return fmt.Errorf("--html: %w", werr)
		}
		if cerr := htmlFile.Close(); cerr != nil {
			return fmt.Errorf("--html: %w", cerr)
		}
		fmt.Fprintf(os.Stderr, "report written to %s\n", *htmlOut)
	}
	return err
}

package bench

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config is one benchmark run. The same struct serves produce, consume and
// e2e; fields a mode does not use are ignored. Errors from Validate name
// the `sluice bench` flag to change.
type Config struct {
	Brokers []string `json:"brokers"`
	Topic   string   `json:"topic"`
	// Partitions is the partition count used when the topic has to be
	// created; an existing topic keeps its own (Result.Partitions).
	Partitions int32 `json:"partitions"`
	// RecordSize is the value size in bytes; the first 8 carry the produce
	// time (unix nanoseconds, big endian), the rest are random capital
	// letters, which compress about as well as text.
	RecordSize int `json:"record_size"`
	// Rate is the total target in records per second across producers;
	// 0 produces as fast as the client accepts records.
	Rate int `json:"rate"`
	// Keys, when positive, gives records keys from a space of that many
	// ("k0" to "k<Keys-1>", in turn), for compacted topics; 0 sends
	// records without keys.
	Keys int `json:"keys,omitempty"`
	// TopicConfigs are set on the topic when the run creates it (for
	// example cleanup.policy=compact).
	TopicConfigs map[string]string `json:"topic_configs,omitempty"`
	Duration     time.Duration     `json:"duration_ns"`
	// Warmup is the start of the run left out of the latency figures and
	// of the agent's figures (its metrics are scraped again when it
	// ends): a client's first records wait for its connections, metadata
	// and producer id, once per client and not again. Throughput counts
	// the whole run.
	Warmup    time.Duration `json:"warmup_ns,omitempty"`
	Producers int           `json:"producers"`
	Consumers int           `json:"consumers"`
	// Acks is "all", "1" or "0". Only "all" keeps the idempotent producer
	// (franz-go's default); the others disable it, as Kafka requires.
	Acks        string        `json:"acks"`
	Compression string        `json:"compression"` // none, lz4, zstd, snappy, gzip
	Linger      time.Duration `json:"linger_ns"`
	// Group, when set, consumes through a consumer group; empty assigns
	// the partitions to the consumers directly (no group protocol needed).
	Group string `json:"group,omitempty"`
	// From is where a consume run starts: "earliest" or "latest". An e2e
	// run always starts at the end offsets read just before producing.
	From string `json:"from,omitempty"`
	// AgentMetrics is a Prometheus /metrics URL scraped before and after
	// the run; empty skips the agent figures.
	AgentMetrics string `json:"agent_metrics,omitempty"`
	// TLS dials the brokers over TLS, verifying them against the system's
	// roots, or against the PEM CA bundle TLSCA when set (flags --tls,
	// --tls-ca; a CA implies TLS).
	TLS   bool   `json:"tls,omitempty"`
	TLSCA string `json:"tls_ca,omitempty"`

	// Progress receives one line per second while the run lasts; nil
	// stays quiet.
	Progress io.Writer `json:"-"`
	// DrainTimeout bounds the wait, after the producing window, for
	// outstanding acks and (e2e) for consumers to catch up. Default 30s.
	DrainTimeout time.Duration `json:"-"`
}

// Defaults are the flag defaults of `sluice bench`, and what Validate
// fills in for zero fields.
var Defaults = Config{
	Brokers:     []string{"127.0.0.1:9092"},
	Topic:       "sluice-bench",
	Partitions:  16,   // enough to spread over a few brokers and keep 16 batches in flight
	RecordSize:  1024, // the size the project's targets are stated in
	Duration:    30 * time.Second,
	Producers:   1,
	Consumers:   1,
	Acks:        "all",
	Compression: "none",
	Linger:      5 * time.Millisecond, // franz-go's default is 0; 5 ms is what Kafka benchmarks commonly use
	From:        "earliest",
}

// minRecordSize holds the timestamp.
const minRecordSize = 8

// Validate fills defaults into zero fields and checks the rest.
func (c *Config) Validate() error {
	d := Defaults
	if len(c.Brokers) == 0 {
		return fmt.Errorf("--brokers is required")
	}
	if c.Topic == "" {
		return fmt.Errorf("--topic is required")
	}
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.RecordSize == 0 {
		c.RecordSize = d.RecordSize
	}
	if c.Producers == 0 {
		c.Producers = d.Producers
	}
	if c.Consumers == 0 {
		c.Consumers = d.Consumers
	}
	if c.Acks == "" {
		c.Acks = d.Acks
	}
	if c.Compression == "" {
		c.Compression = d.Compression
	}
	if c.From == "" {
		c.From = d.From
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	switch {
	case c.Partitions < 1 || c.Partitions > 100000:
		return fmt.Errorf("--partitions must be between 1 and 100000, got %d", c.Partitions)
	case c.RecordSize < minRecordSize || c.RecordSize > 64<<20:
		return fmt.Errorf("--record-size must be between %d (the timestamp) and 64 MiB, got %d", minRecordSize, c.RecordSize)
	case c.Keys < 0:
		return fmt.Errorf("--keys must be 0 (no keys) or positive, got %d", c.Keys)
	case c.Rate < 0:
		return fmt.Errorf("--rate must be 0 (as fast as possible) or positive, got %d", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %s", c.Duration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("--warmup must be at least 0 and less than --duration (%s), got %s", c.Duration, c.Warmup)
	case c.Producers < 1 || c.Producers > 1024:
		return fmt.Errorf("--producers must be between 1 and 1024, got %d", c.Producers)
	case c.Rate > 0 && c.Rate < c.Producers:
		return fmt.Errorf("--rate (%d) must be at least --producers (%d): each producer sends at least one record per second", c.Rate, c.Producers)
	case c.Consumers < 1 || c.Consumers > 1024:
		return fmt.Errorf("--consumers must be between 1 and 1024, got %d", c.Consumers)
	case c.Linger < 0:
		return fmt.Errorf("--linger must not be negative, got %s", c.Linger)
	case c.From != "earliest" && c.From != "latest":
		return fmt.Errorf("--from must be earliest or latest, got %q", c.From)
	}
	if _, err := c.acks(); err != nil {
		return err
	}
	if _, err := c.tlsConfig(); err != nil {
		return err
	}
	if _, err := c.codec(); err != nil {
		return err
	}
	return nil
}

func (c *Config) acks() (kgo.Acks, error) {
	switch c.Acks {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("--acks must be all, 1 or 0, got %q", c.Acks)
}

func (c *Config) codec() (kgo.CompressionCodec, error) {
	switch c.Compression {
	case "none":
		return kgo.NoCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression must be none, lz4, zstd, snappy or gzip, got %q", c.Compression)
}

// tlsConfig is the client TLS of the run; nil for plaintext.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS && c.TLSCA == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		b, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.TLSCA)
		}
	}
	return cfg, nil
}

// seedOpts are the options every client of the run starts from: the
// brokers, and TLS when asked for.
func (c *Config) seedOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if cfg, _ := c.tlsConfig(); cfg != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	return opts
}

// producerOpts are the client options of one producer.
func (c *Config) producerOpts() []kgo.Opt {
	acks, _ := c.acks()
	codec, _ := c.codec()
	opts := append(c.seedOpts(),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(c.Linger),
		// Bound the client's queue by bytes, like the Java client's
		// buffer.memory (32 MiB), rather than by franz-go's default of
		// 10000 records: small records are then limited by the broker,
		// and at --rate 0 the queueing in the client stays bounded.
		kgo.MaxBufferedBytes(32<<20),
		kgo.MaxBufferedRecords(1<<20),
	)
	if c.Acks != "all" && c.Acks != "-1" {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

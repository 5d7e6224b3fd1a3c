package ctl

// sluice produce TOPIC: one record per stdin line.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

func produce(ctx context.Context, e *env, args []string) error {
	fs := e.flags("produce")
	keyDelim := fs.String("K", "", "key delimiter: each line is KEY<delimiter>VALUE (split at the first one); empty: each line is a value without a key")
	partition := fs.Int("p", -1, "produce every record to this partition; -1: records with a key go by its hash (as Java clients do), records without one spread")
	headers := &kv{}
	fs.Var(headers, "H", "a header name=value on every record; repeat for more")
	acks := fs.String("acks", "all", "all (idempotent: no duplicates on retry), 1 or 0 (no acknowledgement, no offsets)")
	compression := fs.String("compression", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	maxLine := fs.Int("max-line-bytes", 1<<20, "longest input line accepted (bounds memory); a longer line stops the command")
	pos, err := e.parse(fs, args, "the topic to produce to", 1, 1)
	if err != nil {
		return err
	}
	topic := pos[0]
	if *partition < -1 {
		return fmt.Errorf("-p must be a partition number or -1, got %d", *partition)
	}
	if *maxLine < 1 {
		return fmt.Errorf("--max-line-bytes must be positive, got %d", *maxLine)
	}
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0)}
	if e.json() {
		// kgo measures a record's delivery timeout from its timestamp,
		// and JSON records may carry old ones: a timeout would fail them
		// at once. Bound the retries instead (about --timeout's worth of
		// kgo's backoff).
		opts = append(opts, kgo.RecordRetries(20), kgo.ProduceRequestTimeout(e.conn.timeout))
	} else {
		opts = append(opts, kgo.RecordDeliveryTimeout(e.conn.timeout))
	}
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fmt.Errorf("--acks must be all, 1 or 0, got %q", *acks)
	}
	codec, err := parseCompression(*compression)
	if err != nil {
		return err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := e.client(ctx, opts...)
	if err != nil {
		return err
	}
	// Fail fast on a missing topic or partition: kgo would otherwise wait
	// for it until --timeout, and some clusters would create it.
	if err := checkTopic(ctx, e, cl, topic, *partition); err != nil {
		return err
	}

	var (
		mu       sync.Mutex
		firstErr error
		stats    = map[int32]*partStats{}
	)
	done := func(r *kgo.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			return
		}
		s := stats[r.Partition]
		if s == nil {
			s = &partStats{Partition: r.Partition, First: r.Offset, Last: r.Offset}
			stats[r.Partition] = s
		}
		s.Records++
		s.First, s.Last = min(s.First, r.Offset), max(s.Last, r.Offset)
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}

	sc := bufio.NewScanner(e.In)
	sc.Buffer(make([]byte, 0, min(*maxLine, 64<<10)), *maxLine)
	line := 0
	for sc.Scan() && failed() == nil {
		line++
		r, err := e.lineRecord(sc.Text(), *keyDelim)
		if err != nil {
			return fmt.Errorf("stdin line %d: %w", line, err)
		}
		r.Topic = topic
		if *partition >= 0 {
			r.Partition = int32(*partition)
		}
		for _, k := range headers.order {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(headers.vals[k])})
		}
		cl.Produce(ctx, r, done)
	}
	scanErr := sc.Err()
	if errors.Is(scanErr, bufio.ErrTooLong) {
		scanErr = fmt.Errorf("stdin line %d is longer than --max-line-bytes %d", line+1, *maxLine)
	}
	if err := cl.Flush(ctx); err != nil && failed() == nil {
		return explain(err, topicSubject(topic), "")
	}
	if err := failed(); err != nil {
		return explain(err, topicSubject(topic), "")
	}
	if scanErr != nil {
		return scanErr
	}
	return printProduced(e, topic, stats, *acks == "0")
}

// lineRecord makes the record of one input line: with --format json the
// line is a record object (see recordJSON), else a value, or KEY<delim>VALUE.
func (e *env) lineRecord(line, keyDelim string) (*kgo.Record, error) {
	if e.json() {
		var j recordJSON
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			return nil, fmt.Errorf("not a JSON record object ({\"key\":...,\"value\":...}) as --format json expects: %w", err)
		}
		return fromJSON(j), nil
	}
	r := &kgo.Record{}
	if keyDelim != "" {
		if k, v, ok := strings.Cut(line, keyDelim); ok {
			r.Key, r.Value = []byte(k), []byte(v)
			return r, nil
		}
	}
	r.Value = []byte(line)
	return r, nil
}

type partStats struct {
	Partition int32 `json:"partition"`
	Records   int64 `json:"records"`
	First     int64 `json:"first_offset"`
	Last      int64 `json:"last_offset"`
}

func printProduced(e *env, topic string, stats map[int32]*partStats, noAcks bool) error {
	var rows []partStats
	var total int64
	for _, s := range stats {
		if noAcks {
			s.First, s.Last = -1, -1
		}
		rows = append(rows, *s)
		total += s.Records
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Partition < rows[j].Partition })
	if e.json() {
		if rows == nil {
			rows = []partStats{}
		}
		b, err := json.Marshal(struct {
			Topic      string      `json:"topic"`
			Records    int64       `json:"records"`
			Partitions []partStats `json:"partitions"`
		}{topic, total, rows})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.Out, "%s\n", b)
		return err
	}
	t := newTable(e.Out, "TOPIC", "PARTITION", "RECORDS", "FIRST-OFFSET", "LAST-OFFSET")
	for _, r := range rows {
		first, last := fmt.Sprint(r.First), fmt.Sprint(r.Last)
		if noAcks {
			first, last = "-", "-"
		}
		t.row(topic, r.Partition, r.Records, first, last)
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.Out, "produced %d records to %s\n", total, topic)
	return err
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--compression must be none, gzip, snappy, lz4 or zstd, got %q", s)
}

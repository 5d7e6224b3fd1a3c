package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"sluice.dev/bench"
)

// benchRun runs `sluice bench MODE --json` against addr and returns its
// result. Its per-second lines go to progress when verbose.
func (c *config) benchRun(ctx context.Context, mode, addr, topic string, extra ...string) (*bench.Result, error) {
	return c.benchRunFor(ctx, c.duration, mode, addr, topic, extra...)
}

// benchRunFor is benchRun with its own --duration.
func (c *config) benchRunFor(ctx context.Context, duration time.Duration, mode, addr, topic string, extra ...string) (*bench.Result, error) {
	args := []string{"bench", mode, "--brokers", addr, "--topic", topic, "--duration", duration.String(), "--json"}
	if mode != "consume" {
		args = append(args, "--partitions", strconv.Itoa(c.partitions), "--record-size", strconv.Itoa(c.recordSize),
			"--acks", "all", "--linger", "5ms", "--compression", "none")
	}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(ctx, duration+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.sluice, args...)
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	if c.verbose {
		cmd.Stderr = io.MultiWriter(stderr, c.progress)
	}
	raw, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sluice %v: %w\n%s", args, err, stderr.String())
	}
	var res bench.Result
	if err := json.Unmarshal(lastLine(raw), &res); err != nil {
		return nil, fmt.Errorf("sluice bench %s printed %q: %w", mode, raw, err)
	}
	if mode != "consume" && res.Produce == nil || mode != "produce" && res.Consume == nil {
		return nil, fmt.Errorf("sluice bench %s: no figures in %q", mode, raw)
	}
	for _, s := range []*bench.Side{res.Produce, res.Consume} {
		if s != nil && s.Errors > 0 {
			return &res, fmt.Errorf("sluice bench %s on %s: %d errors, the first: %s", mode, topic, s.Errors, s.FirstError)
		}
		// Every figure divides by what moved: nothing moved is a
		// failed load, not an infinite CPU-s/GiB.
		if s != nil && (s.Records == 0 || s.Bytes == 0) {
			return &res, fmt.Errorf("sluice bench %s on %s moved no records in %v", mode, topic, duration)
		}
	}
	return &res, nil
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// latency is one client's light-load produce run.
type latency struct {
	Records int64   `json:"records"`
	Errors  int64   `json:"errors"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// confluentRun produces at rate with confluent-kafka-python
// (bench/scripts/confluent_latency.py).
func (c *config) confluentRun(ctx context.Context, addr, topic string, rate int) (latency, error) {
	ctx, cancel := context.WithTimeout(ctx, c.duration+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.python, c.confluentScript, addr, topic, strconv.Itoa(rate),
		strconv.FormatFloat(c.duration.Seconds(), 'f', -1, 64), strconv.Itoa(c.recordSize),
		strconv.FormatFloat(c.warmup.Seconds(), 'f', -1, 64))
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	raw, err := cmd.Output()
	if err != nil {
		return latency{}, fmt.Errorf("%s %s: %w\n%s", c.python, c.confluentScript, err, stderr.String())
	}
	var out struct {
		latency
		FirstError string `json:"first_error"`
	}
	if err := json.Unmarshal(lastLine(raw), &out); err != nil {
		return latency{}, fmt.Errorf("%s printed %q: %w", c.confluentScript, raw, err)
	}
	if out.Errors > 0 {
		return out.latency, fmt.Errorf("confluent-kafka-python: %d errors, the first: %s", out.Errors, out.FirstError)
	}
	return out.latency, nil
}

// saramaRun produces at rate with IBM/sarama's async producer, in this
// process: idempotent (which sarama allows only with one request in
// flight per broker, Net.MaxOpenRequests = 1), acks=all, linger
// (Flush.Frequency) 5 ms, otherwise sarama's defaults. Each record is
// timed from its send on Input() to its arrival on Successes().
func (c *config) saramaRun(ctx context.Context, addr, topic string, rate int) (latency, error) {
	cfg := sarama.NewConfig()
	cfg.ClientID = "sluice-compare"
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Flush.Frequency = 5 * time.Millisecond
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		return latency{}, fmt.Errorf("sarama: %w", err)
	}
	h := bench.NewHistogram()
	var (
		n, nerr  int64
		firstErr error
		wg       sync.WaitGroup
	)
	wg.Add(2)
	start := time.Now()
	countFrom := start.Add(c.warmup) // records sent before: start-up, not counted
	go func() {
		defer wg.Done()
		for m := range p.Successes() {
			if sentAt := m.Metadata.(time.Time); !sentAt.Before(countFrom) {
				h.RecordDuration(time.Since(sentAt))
				n++
			}
		}
	}()
	go func() {
		defer wg.Done()
		for e := range p.Errors() {
			if nerr++; firstErr == nil {
				firstErr = e.Err
			}
		}
	}()
	value := sarama.ByteEncoder(bytes.Repeat([]byte{'x'}, c.recordSize))
	deadline := start.Add(c.duration)
	var sent int64
	for now := start; now.Before(deadline) && ctx.Err() == nil; now = time.Now() {
		for due := int64(now.Sub(start).Seconds() * float64(rate)); sent < due; sent++ {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Value: value, Metadata: time.Now()}
		}
		next := start.Add(time.Duration(float64(sent+1) / float64(rate) * float64(time.Second)))
		time.Sleep(min(max(time.Until(next), time.Millisecond), time.Until(deadline)))
	}
	// AsyncClose flushes what is buffered and closes both channels once
	// every record is answered.
	p.AsyncClose()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		return latency{}, errors.New("sarama: records still unanswered a minute after the run")
	}
	l := latency{Records: n, Errors: nerr, P50Ms: ms(h.ValueAt(0.5)), P99Ms: ms(h.ValueAt(0.99)), MaxMs: ms(h.Max())}
	if nerr > 0 {
		return l, fmt.Errorf("sarama: %d errors, the first: %w", nerr, firstErr)
	}
	return l, ctx.Err()
}

func ms[T ~int64](ns T) float64 { return float64(ns) / 1e6 }

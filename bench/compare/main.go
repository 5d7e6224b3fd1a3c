// Command compare runs `make compare`: the same `sluice bench e2e` load
// against Sluice's playground and against franz-go's kfake broker, durable
// (fsync per batch) and in memory, alternating A B C A B C in one run on
// one machine, and writes the ratio table into BENCHMARKS.md between the
// markers <!-- compare:begin --> and <!-- compare:end -->.
//
// Figures per run: produce throughput (acks=all, idempotent), produce p99,
// end-to-end p99, and the broker process's CPU seconds per GiB produced
// (utime+stime from /proc/PID/stat). The machine's loopback throughput,
// measured first, is the ceiling.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type target struct {
	name  string
	start func(dir string) *exec.Cmd
}

type figures struct {
	MiBPS      float64
	ProduceP99 time.Duration
	E2EP99     time.Duration
	CPUPerGiB  float64
	Errors     int64
}

// benchJSON is the part of `sluice bench --json` compare reads.
type benchJSON struct {
	Produce *struct {
		Bytes   int64   `json:"bytes"`
		Errors  int64   `json:"errors"`
		MiBPS   float64 `json:"mib_per_sec"`
		Latency struct {
			P99 time.Duration `json:"p99_ns"`
		} `json:"latency"`
	} `json:"produce"`
	Consume *struct {
		Latency struct {
			P99 time.Duration `json:"p99_ns"`
		} `json:"latency"`
	} `json:"consume"`
}

func main() {
	sluice := flag.String("sluice", "bin/sluice", "the sluice binary")
	kfake := flag.String("kfake", "bin/kfake", "the kfake program (bench/kfake)")
	duration := flag.Duration("duration", 15*time.Second, "length of each run")
	rounds := flag.Int("rounds", 2, "rounds; each runs every target once, in turn")
	out := flag.String("out", "BENCHMARKS.md", "file whose compare markers get the table; empty prints it only")
	flag.Parse()
	if err := run(*sluice, *kfake, *duration, *rounds, *out); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func run(sluice, kfake string, duration time.Duration, rounds int, out string) error {
	targets := []target{
		{"Sluice playground (local-directory bucket)", func(dir string) *exec.Cmd {
			return exec.Command(sluice, "playground", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--http-addr", "", "--log-level", "warn")
		}},
		{"kfake durable (DataDir + SyncWrites)", func(dir string) *exec.Cmd {
			return exec.Command(kfake, "--data-dir", dir, "--sync")
		}},
		{"kfake in memory", func(string) *exec.Cmd { return exec.Command(kfake) }},
	}
	loop := loopbackMiBPS(3 * time.Second)
	fmt.Printf("loopback ceiling: %.0f MiB/s\n", loop)
	results := make([][]figures, len(targets))
	for r := 1; r <= rounds; r++ {
		for i, tg := range targets {
			f, err := runOne(sluice, tg, duration)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r, tg.name, err)
			}
			fmt.Printf("round %d  %-44s %7.1f MiB/s  produce p99 %-9v e2e p99 %-9v %.2f CPU-s/GiB  errors %d\n",
				r, tg.name, f.MiBPS, f.ProduceP99.Round(time.Millisecond), f.E2EP99.Round(time.Millisecond), f.CPUPerGiB, f.Errors)
			results[i] = append(results[i], f)
		}
	}
	table := render(targets, results, loop, duration, rounds)
	fmt.Println(table)
	if out == "" {
		return nil
	}
	return writeBetween(out, table)
}

// runOne starts a broker, runs one e2e load against it and stops it.
func runOne(sluice string, tg target, duration time.Duration) (figures, error) {
	dir, err := os.MkdirTemp("", "sluice-compare-")
	if err != nil {
		return figures{}, err
	}
	defer os.RemoveAll(dir)
	cmd := tg.start(filepath.Join(dir, "data"))
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return figures{}, err
	}
	if err := cmd.Start(); err != nil {
		return figures{}, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	addr, err := bootstrapLine(stdout, 60*time.Second)
	if err != nil {
		return figures{}, err
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	cpu0, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return figures{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+2*time.Minute)
	defer cancel()
	b := exec.CommandContext(ctx, sluice, "bench", "e2e", "--brokers", addr, "--topic", "compare",
		"--partitions", "16", "--record-size", "1024", "--rate", "0", "--duration", duration.String(),
		"--producers", "1", "--acks", "all", "--linger", "5ms", "--compression", "none", "--json")
	var berr bytes.Buffer
	b.Stderr = &berr
	raw, err := b.Output()
	if err != nil {
		return figures{}, fmt.Errorf("sluice bench: %w\n%s", err, berr.String())
	}
	cpu1, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return figures{}, err
	}
	var res benchJSON
	if err := json.Unmarshal(lastLine(raw), &res); err != nil || res.Produce == nil || res.Consume == nil {
		return figures{}, fmt.Errorf("sluice bench printed %q: %v", raw, err)
	}
	f := figures{MiBPS: res.Produce.MiBPS, ProduceP99: res.Produce.Latency.P99, E2EP99: res.Consume.Latency.P99, Errors: res.Produce.Errors}
	if res.Produce.Bytes > 0 {
		f.CPUPerGiB = (cpu1 - cpu0) / (float64(res.Produce.Bytes) / (1 << 30))
	}
	return f, nil
}

func bootstrapLine(r io.Reader, within time.Duration) (string, error) {
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "bootstrap: "); ok {
				lines <- strings.Fields(v)[0]
				return
			}
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			return "", errors.New("broker exited before printing its bootstrap address")
		}
		return l, nil
	case <-time.After(within):
		return "", errors.New("broker not ready in time")
	}
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// cpuSeconds reads a process's user+system CPU time from /proc.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 (1-based), in clock ticks of 1/100 s on Linux.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse %s", raw)
	}
	return (ut + st) / 100, nil
}

// loopbackMiBPS measures one TCP stream over loopback, both ends in this
// process: the most any broker here can move.
func loopbackMiBPS(d time.Duration) float64 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- 0
			return
		}
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			break
		}
	}
	c.Close()
	n := <-got
	return float64(n) / (1 << 20) / time.Since(start).Seconds()
}

func median(fs []figures, get func(figures) float64) float64 {
	vs := make([]float64, len(fs))
	for i, f := range fs {
		vs[i] = get(f)
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func render(targets []target, results [][]figures, loop float64, d time.Duration, rounds int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Run %s on %s (%d cores, %s): `make compare` = %d rounds × %v per target, alternating; "+
		"`sluice bench e2e`, 1 producer + 1 consumer, acks=all idempotent, 1 KiB records, 16 partitions, linger 5 ms, no compression. "+
		"Medians of the rounds; the client runs on the same cores. Loopback ceiling (one TCP stream): **%.0f MiB/s**.\n\n",
		time.Now().UTC().Format("2006-01-02"), host, runtime.NumCPU(), runtime.GOARCH, rounds, d, loop)
	fmt.Fprintln(&b, "| broker | produce MiB/s | produce p99 | e2e p99 | broker CPU-s/GiB |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	med := make([][4]float64, len(targets))
	for i, tg := range targets {
		rs := results[i]
		med[i] = [4]float64{
			median(rs, func(f figures) float64 { return f.MiBPS }),
			median(rs, func(f figures) float64 { return float64(f.ProduceP99) }),
			median(rs, func(f figures) float64 { return float64(f.E2EP99) }),
			median(rs, func(f figures) float64 { return f.CPUPerGiB }),
		}
		fmt.Fprintf(&b, "| %s | %.1f | %v | %v | %.2f |\n", tg.name, med[i][0],
			time.Duration(med[i][1]).Round(time.Millisecond), time.Duration(med[i][2]).Round(time.Millisecond), med[i][3])
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| Sluice ÷ | produce throughput | produce p99 | e2e p99 | CPU-s/GiB |")
	fmt.Fprintln(&b, "|---|---|---|---|---|")
	for i := 1; i < len(targets); i++ {
		fmt.Fprintf(&b, "| %s | %.2f× | %.2f× | %.2f× | %.2f× |\n", targets[i].name,
			med[0][0]/med[i][0], med[0][1]/med[i][1], med[0][2]/med[i][2], med[0][3]/med[i][3])
	}
	return b.String()
}

// writeBetween replaces the text between the compare markers in file.
func writeBetween(file, table string) error {
	const begin, end = "<!-- compare:begin -->", "<!-- compare:end -->"
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s ... %s markers", file, begin, end)
	}
	s = s[:i+len(begin)] + "\n" + table + s[j:]
	return os.WriteFile(file, []byte(s), 0o644)
}

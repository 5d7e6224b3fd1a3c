package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compactionOff is the playground's --compaction-interval in compare:
// longer than any run.
const compactionOff = 24 * time.Hour

// brokerKind is one of the brokers compare measures.
type brokerKind struct {
	key    string // JSON key: sluice, kfake_durable, kfake_memory
	name   string // table column
	sluice bool   // has object store counters and gets the client runs
	// args are the command line, given the data directory.
	args func(c *config, dir string) (bin string, args []string)
}

func brokerKinds() []brokerKind {
	return []brokerKind{
		{key: "sluice", name: "Sluice playground", sluice: true, args: func(c *config, dir string) (string, []string) {
			return c.sluice, []string{"playground", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0",
				"--http-addr", "127.0.0.1:0", "--log-level", "warn",
				"--flush-interval", c.flush.String(), "--cache-bytes", strconv.FormatInt(c.cacheBytes, 10),
				// No compaction during the loads: once a minute it would
				// read and rewrite what the earlier loads wrote (2.8 GB in
				// one 10 s window), at whichever load's moment it falls,
				// and its GETs and CPU would count as that load's.
				// Compaction's own cost is `make bench-compaction`'s.
				"--compaction-interval", compactionOff.String()}
		}},
		{key: "kfake_durable", name: "kfake durable (fsync)", args: func(c *config, dir string) (string, []string) {
			return c.kfake, []string{"--data-dir", dir, "--sync", "--http-addr", "127.0.0.1:0"}
		}},
		{key: "kfake_memory", name: "kfake in memory", args: func(c *config, _ string) (string, []string) {
			return c.kfake, []string{"--http-addr", "127.0.0.1:0"}
		}},
	}
}

// broker is a running broker process.
type broker struct {
	kind      brokerKind
	cmd       *exec.Cmd
	dir       string
	bootstrap string
	metrics   string // its /metrics URL
	stderr    *tailBuffer
	exited    chan struct{}
}

// startBroker starts one broker in a fresh temporary directory and waits
// for it to print its addresses.
func startBroker(c *config, k brokerKind) (*broker, error) {
	dir, err := os.MkdirTemp("", "sluice-compare-")
	if err != nil {
		return nil, err
	}
	bin, args := k.args(c, filepath.Join(dir, "data"))
	b := &broker{kind: k, cmd: exec.Command(bin, args...), dir: dir, stderr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	b.cmd.Stderr = b.stderr
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := b.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { _ = b.cmd.Wait(); close(b.exited) }()
	lines := map[string]string{}
	if err := readAddrs(stdout, lines, 60*time.Second); err != nil {
		b.stop()
		return nil, fmt.Errorf("%s: %w\n%s", k.name, err, b.stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	b.bootstrap = strings.Fields(lines["bootstrap"])[0]
	b.metrics = "http://" + lines["http"] + "/metrics"
	return b, nil
}

// readAddrs reads "name: value" lines until the bootstrap line, which
// both brokers print last.
func readAddrs(r io.Reader, into map[string]string, within time.Duration) error {
	done := make(chan error, 1)
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ": ")
			if !ok {
				continue
			}
			mu.Lock()
			into[k] = v
			mu.Unlock()
			if k == "bootstrap" {
				done <- nil
				return
			}
		}
		done <- errors.New("exited before printing its bootstrap address")
	}()
	select {
	case err := <-done:
		mu.Lock()
		defer mu.Unlock()
		if err == nil && into["http"] == "" {
			return errors.New("printed no http: line (its /metrics address)")
		}
		return err
	case <-time.After(within):
		return fmt.Errorf("not ready within %v", within)
	}
}

// stop ends the broker (SIGTERM, then SIGKILL after 30 s) and removes
// its directory.
func (b *broker) stop() {
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	os.RemoveAll(b.dir)
}

// counters are the broker's series compare reads.
type counters struct {
	cpu  float64            // process_cpu_seconds_total
	reqs map[string]float64 // sluice_objstore_requests_total by op
}

func (b *broker) scrape(ctx context.Context) (counters, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.metrics, nil)
	if err != nil {
		return counters{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return counters{}, fmt.Errorf("scrape %s: %w", b.kind.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return counters{}, fmt.Errorf("scrape %s: %s", b.metrics, resp.Status)
	}
	return parseCounters(resp.Body)
}

func parseCounters(r io.Reader) (counters, error) {
	c := counters{cpu: -1, reqs: map[string]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "process_cpu_seconds_total "):
			v, err := strconv.ParseFloat(strings.Fields(line)[1], 64)
			if err != nil {
				return c, fmt.Errorf("parse %q: %w", line, err)
			}
			c.cpu = v
		case strings.HasPrefix(line, "sluice_objstore_requests_total{"):
			_, rest, _ := strings.Cut(line, `op="`)
			op, _, _ := strings.Cut(rest, `"`)
			f := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
			if len(f) == 0 {
				continue
			}
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return c, fmt.Errorf("parse %q: %w", line, err)
			}
			c.reqs[op] += v
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	if c.cpu < 0 {
		return c, errors.New("no process_cpu_seconds_total in /metrics")
	}
	return c, nil
}

// delta is what a phase cost the broker.
type delta struct {
	cpu  float64
	reqs map[string]float64
}

func (b *broker) measure(ctx context.Context, fn func() error) (delta, error) {
	before, err := b.scrape(ctx)
	if err != nil {
		return delta{}, err
	}
	if err := fn(); err != nil {
		return delta{}, err
	}
	after, err := b.scrape(ctx)
	if err != nil {
		return delta{}, err
	}
	d := delta{cpu: after.cpu - before.cpu, reqs: map[string]float64{}}
	for op, v := range after.reqs {
		d.reqs[op] = v - before.reqs[op]
	}
	return d, nil
}

// createTopics makes the run's topics up front, so that no load's window
// holds a topic creation.
func createTopics(ctx context.Context, addr string, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	// Wait until metadata lists every partition of every topic.
	for {
		md, err := adm.ListTopics(ctx, topics...)
		if err == nil {
			ok := true
			for _, t := range topics {
				if d, found := md[t]; !found || d.Err != nil || len(d.Partitions) != int(partitions) {
					ok = false
				}
			}
			if ok {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not in metadata: %w", topics, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

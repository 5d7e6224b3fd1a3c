package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"sluice.dev/internal/freeport"
	"sluice.dev/meta/rpc"
)

// readyTimeout bounds a child's start: a race-built binary on a busy
// two-core machine takes seconds, not minutes.
const readyTimeout = 60 * time.Second

// rebindTimeout bounds how long a restarted agent may keep failing to
// bind its old Kafka port. A listener without SO_REUSEADDR cannot bind a
// port that connections of the killed process still hold: FIN_WAIT2 until
// the client closes its end or 60 s pass, then TIME_WAIT for 60 s more.
const rebindTimeout = 90 * time.Second

// cluster is one meta and its agents, each a child process of this one,
// on loopback addresses chosen up front so that a restarted process comes
// back where its clients expect it.
type cluster struct {
	bin, dir string
	store    string // meta's --store
	bucket   string // the agents' --bucket
	token    string // SLUICE_ADMIN_TOKEN of meta
	name     string // the virtual cluster the agent key belongs to
	key      string // SLUICE_AGENT_KEY of the agents

	metaAddr, metaHTTP string
	meta               *child
	agents             []*agentProc
	logf               func(format string, args ...any)
}

// agentProc is one agent and the addresses it always runs on.
type agentProc struct {
	*child
	id                        string
	kafka, httpAddr, peerAddr string
}

// child is one sluice process. It is started again with the same
// arguments after a kill; its stdout and stderr append to one log file.
type child struct {
	name    string
	args    []string
	env     []string
	logPath string

	// crashed, when set, hears of an exit nobody asked for: the
	// process's state and the last lines of its log.
	crashed func(name, why string)

	mu       sync.Mutex
	cmd      *exec.Cmd     // guarded by mu; the current process, nil before the first start
	done     chan struct{} // guarded by mu; closed when cmd has exited
	stopping bool          // guarded by mu; we signalled cmd, its exit is expected
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runBucket returns the agents' bucket: a directory under dir, or the
// user's bucket with a prefix of this run's own below whatever the URL
// names (agents delete objects no segment references; a prefix shared
// with anything else would lose it).
func runBucket(given, dir, runID string) (string, error) {
	if given == "" {
		return "file://" + filepath.Join(dir, "bucket"), nil
	}
	sub := "sluice-loadtest-" + runID
	if !strings.Contains(given, "://") {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", fmt.Errorf("--bucket: %w", err)
		}
		return "file://" + filepath.Join(abs, sub), nil
	}
	u, err := url.Parse(given)
	if err != nil {
		return "", fmt.Errorf("--bucket %q: %w", given, err)
	}
	u.Path = path.Join("/", u.Path, sub)
	return u.String(), nil
}

// startCluster starts meta, creates an agent key and starts the agents.
// crashed hears of any child's exit that no fault or shutdown caused.
func startCluster(ctx context.Context, cfg Config, dir, runID string, rng *mrand.Rand, logf func(string, ...any), crashed func(name, why string)) (*cluster, error) {
	c := &cluster{bin: cfg.Binary, dir: dir, token: randHex(16), name: "loadtest-" + runID, logf: logf}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	c.store = cfg.Store
	if c.store == "" {
		c.store = filepath.Join(dir, "meta")
	}
	var err error
	if c.bucket, err = runBucket(cfg.Bucket, dir, runID); err != nil {
		return nil, err
	}
	if c.metaAddr, err = freeport.Addr(rng); err != nil {
		return nil, err
	}
	if c.metaHTTP, err = freeport.Addr(rng); err != nil {
		return nil, err
	}
	margs := []string{"meta", "--listen", c.metaAddr, "--store", c.store, "--http-addr", c.metaHTTP, "--agent-ttl", "5s"}
	margs = append(margs, metaLifecycleArgs(cfg)...)
	c.meta = &child{
		name:    "meta",
		args:    margs,
		env:     []string{"SLUICE_ADMIN_TOKEN=" + c.token},
		logPath: filepath.Join(dir, "logs", "meta.log"),
		crashed: crashed,
	}
	if err := c.meta.start(ctx, c.bin, "meta"); err != nil {
		return c, err
	}
	if c.key, err = c.createKey(ctx); err != nil {
		return c, err
	}
	for i := range cfg.Agents {
		a := &agentProc{id: fmt.Sprintf("agent-%d", i)}
		for _, p := range []*string{&a.kafka, &a.httpAddr, &a.peerAddr} {
			if *p, err = freeport.Addr(rng); err != nil {
				return c, err
			}
		}
		a.child = &child{
			name: a.id,
			args: append([]string{"agent", "--meta-addr", c.metaAddr, "--bucket", c.bucket, "--agent-id", "loadtest-" + a.id,
				"--kafka-addr", a.kafka, "--http-addr", a.httpAddr, "--peer-addr", a.peerAddr,
				"--fault-injection"}, agentLifecycleArgs(cfg, i)...),
			env:     []string{"SLUICE_AGENT_KEY=" + c.key},
			logPath: filepath.Join(dir, "logs", a.id+".log"),
			crashed: crashed,
		}
		c.agents = append(c.agents, a)
	}
	// Agents start one after another: on two cores parallel starts of a
	// race-built binary only take longer each.
	for _, a := range c.agents {
		if err := a.start(ctx, c.bin, "bootstrap", "http"); err != nil {
			return c, err
		}
	}
	return c, nil
}

// metaLifecycleArgs are meta's flags for --retention and --compaction;
// none in a plain run, which keeps meta's defaults.
func metaLifecycleArgs(cfg Config) []string {
	t := timingsFor(cfg)
	var out []string
	if cfg.Retention > 0 {
		out = append(out, "--retention-check-interval", t.retentionCheck.String())
	}
	if cfg.Lifecycle() {
		out = append(out, "--compaction-min-age", t.minAge.String(), "--compaction-max-wait", t.maxWait.String(),
			"--gc-grace", t.grace.String(), "--orphan-scan-interval", t.orphanScan.String())
	}
	return out
}

// agentLifecycleArgs are agent i's flags in lifecycle mode: everyone's
// job intervals, and the jobs role for agent-0 only, so that killing it
// (FaultKillJobsAgent) stops all background work until it is back, and
// the jobs counters it shows after its restart prove the work resumed.
func agentLifecycleArgs(cfg Config, i int) []string {
	if !cfg.Lifecycle() {
		return nil
	}
	t := timingsFor(cfg)
	out := []string{"--compaction-interval", t.interval.String(), "--gc-interval", t.interval.String()}
	if i != jobsAgent {
		out = append(out, "--roles", "produce,consume")
	}
	return out
}

// jobsAgent is the index of the one agent with the jobs role in
// lifecycle mode.
const jobsAgent = 0

// createKey asks meta's admin API for an agent key, retrying while meta
// settles (its leadership loop starts just after it listens).
func (c *cluster) createKey(ctx context.Context) (string, error) {
	ac, err := rpc.DialAdmin(c.metaAddr, c.token, nil, false)
	if err != nil {
		return "", fmt.Errorf("meta admin API at %s: %w", c.metaAddr, err)
	}
	defer ac.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		key, _, err := ac.CreateKey(cctx, c.name)
		cancel()
		if err == nil {
			return key, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return "", fmt.Errorf("create an agent key for cluster %s: %w", c.name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// bootstrap lists every agent's Kafka address.
func (c *cluster) bootstrap() []string {
	out := make([]string, len(c.agents))
	for i, a := range c.agents {
		out[i] = a.kafka
	}
	return out
}

// close stops every child: SIGTERM, then SIGKILL for whatever has not
// exited within a few seconds.
func (c *cluster) close() {
	if c == nil {
		return
	}
	var wg sync.WaitGroup
	for _, a := range c.agents {
		wg.Add(1)
		go func() { defer wg.Done(); a.stop(5 * time.Second) }()
	}
	wg.Wait()
	if c.meta != nil {
		c.meta.stop(5 * time.Second)
	}
}

// restartAgent starts a killed agent again on its addresses. Its Kafka
// port may still be held by connections in TIME_WAIT; the start is
// retried while the only complaint is that the address is in use, and how
// long that took is returned.
func (c *cluster) restartAgent(ctx context.Context, a *agentProc) (rebind time.Duration, err error) {
	start := time.Now()
	for {
		err := a.start(ctx, c.bin, "bootstrap", "http")
		if err == nil {
			return time.Since(start), nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			return time.Since(start), err
		}
		if time.Since(start) > rebindTimeout {
			return time.Since(start), fmt.Errorf("%s could not bind its Kafka address %s for %.0fs after the kill: address already in use "+
				"(the killed process's connections linger in FIN_WAIT2 and TIME_WAIT, and the Kafka listener does not set SO_REUSEADDR)",
				a.id, a.kafka, time.Since(start).Seconds())
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return time.Since(start), err
		}
	}
}

// start runs the child and waits until it has printed a "prefix: value"
// line on stdout for every prefix in want (the readiness lines of sluice
// meta and sluice agent), or until it exits, or readyTimeout.
func (ch *child) start(ctx context.Context, bin string, want ...string) (err error) {
	logFile, err := os.OpenFile(ch.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== %s: starting %s %s\n", time.Now().Format(time.RFC3339Nano), ch.name, strings.Join(ch.args, " "))
	lines := make(chan string, 64)
	cmd := exec.Command(bin, ch.args...)
	cmd.Env = append(os.Environ(), ch.env...)
	cmd.Stdout = &lineWriter{w: logFile, lines: lines}
	cmd.Stderr = logFile
	cmd.SysProcAttr = childSysProcAttr()
	done := make(chan struct{})
	started := make(chan bool, 1) // whether start succeeded, sent once it returns
	startErr := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// child exits, not the process (go.dev/issue/27505): start it
		// from a goroutine locked to its thread, which stays alive in
		// Wait until the child exits. Never unlocked: the thread ends
		// with the goroutine.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		ch.mu.Lock()
		ch.cmd, ch.done, ch.stopping = cmd, done, false
		ch.mu.Unlock()
		startErr <- nil
		_ = cmd.Wait()
		logFile.Close()
		close(done)
		ch.mu.Lock()
		expected := ch.stopping
		ch.mu.Unlock()
		// An exit before readiness is start's error to report.
		if <-started && !expected && ch.crashed != nil {
			ch.crashed(ch.name, fmt.Sprintf("%s: %s", cmd.ProcessState, lastLines(ch.logPath, 3)))
		}
	}()
	if err := <-startErr; err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", ch.name, err)
	}
	defer func() { started <- err == nil }()

	seen := map[string]bool{}
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	for len(seen) < len(want) {
		select {
		case l := <-lines:
			if k, _, ok := strings.Cut(l, ": "); ok {
				for _, w := range want {
					if w == k {
						seen[k] = true
					}
				}
			}
		case <-done:
			return fmt.Errorf("%s exited before it was ready (%s): %s", ch.name, cmd.ProcessState, lastLines(ch.logPath, 3))
		case <-timeout.C:
			ch.kill()
			return fmt.Errorf("%s not ready within %s: %s", ch.name, readyTimeout, lastLines(ch.logPath, 3))
		case <-ctx.Done():
			ch.kill()
			return ctx.Err()
		}
	}
	return nil
}

// pid is the current process's id, 0 when none runs.
func (ch *child) pid() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.cmd == nil || ch.cmd.Process == nil {
		return 0
	}
	select {
	case <-ch.done:
		return 0
	default:
		return ch.cmd.Process.Pid
	}
}

// kill sends SIGKILL and waits for the exit.
func (ch *child) kill() {
	ch.signalWait(syscall.SIGKILL, 10*time.Second)
}

// stop sends SIGTERM, waits up to grace, then kills.
func (ch *child) stop(grace time.Duration) {
	if !ch.signalWait(syscall.SIGTERM, grace) {
		ch.kill()
	}
}

// signalWait signals the running process and reports whether it exited
// within d (true when nothing was running).
func (ch *child) signalWait(sig syscall.Signal, d time.Duration) bool {
	ch.mu.Lock()
	cmd, done := ch.cmd, ch.done
	ch.stopping = true
	ch.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// lineWriter copies a child's stdout to its log and hands each complete
// line to lines while someone is listening (lines never blocks: readiness
// lines come first, and later ones are only logged).
type lineWriter struct {
	w     *os.File
	lines chan string
	buf   []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	_, _ = l.w.Write(p)
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		select {
		case l.lines <- string(l.buf[:i]):
		default:
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// lastLines returns the last n lines of a log file, joined by " | ".
func lastLines(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// Package e2e runs the sluice binary as users do: built from source,
// started as a process, stopped with signals or killed, and talked to by
// real Kafka clients (franz-go and kcat).
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sluice.dev/internal/pgtest"
)

var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-race", "-o", sluiceBin, "../cmd/sluice")
	if os.Getenv("SLUICE_E2E_NORACE") != "" {
		build = exec.Command("go", "build", "-o", sluiceBin, "../cmd/sluice")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := pgtest.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: cleanup:", err)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running sluice process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
	lines  map[string]string // "prefix: value" lines printed on stdout at startup
}

// playground is a running `sluice playground` process.
type playground struct {
	*proc
	bootstrap string
	httpAddr  string
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProc starts `sluice args...` with env added to the environment and
// waits until it has printed a "prefix: value" line for every prefix in
// want (its readiness lines: bootstrap, http, meta).
func startProc(t *testing.T, name string, env []string, args []string, want ...string) *proc {
	t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1), lines: map[string]string{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.exited <- cmd.Wait() }()
	deadline := time.After(60 * time.Second)
	ready := func() bool {
		for _, w := range want {
			if _, ok := p.lines[w]; !ok {
				return false
			}
		}
		return true
	}
	for !ready() {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before it was ready:\n%s", name, p.stderr.String())
			}
			if k, v, ok := strings.Cut(l, ": "); ok {
				p.lines[k] = v
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("%s not ready in 60s:\n%s", name, p.stderr.String())
		}
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s stderr (last 4 KiB):\n%s", name, tail(p.stderr.String(), 4096))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func startPlayground(t *testing.T, dataDir string, extra ...string) *playground {
	t.Helper()
	args := append([]string{"playground", "--data-dir", dataDir, "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0"}, extra...)
	p := startProc(t, "playground", nil, args, "bootstrap", "http")
	return &playground{proc: p, bootstrap: p.lines["bootstrap"], httpAddr: p.lines["http"]}
}

func (p *proc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("%s exit after SIGTERM: %v\n%s", p.name, err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not stop within 60s of SIGTERM:\n%s", p.name, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopped cleanly") {
		t.Fatalf("%s: no clean stop logged:\n%s", p.name, p.stderr.String())
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

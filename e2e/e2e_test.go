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
	os.RemoveAll(dir)
	os.Exit(code)
}

// playground is a running `sluice playground` process.
type playground struct {
	cmd       *exec.Cmd
	bootstrap string
	httpAddr  string
	stderr    *syncBuffer
	exited    chan error
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

func startPlayground(t *testing.T, dataDir string, extra ...string) *playground {
	t.Helper()
	args := append([]string{"playground", "--data-dir", dataDir, "--kafka-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(sluiceBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &playground{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan error, 1)}
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
	for p.bootstrap == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("playground exited before it was ready:\n%s", p.stderr.String())
			}
			if v, ok := strings.CutPrefix(l, "bootstrap: "); ok {
				p.bootstrap = v
			}
			if v, ok := strings.CutPrefix(l, "http: "); ok {
				p.httpAddr = v
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("playground not ready in 60s:\n%s", p.stderr.String())
		}
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *playground) kill() {
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
func (p *playground) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("playground exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("playground did not stop within 60s of SIGTERM:\n%s", p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean stop logged:\n%s", p.stderr.String())
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

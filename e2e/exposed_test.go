package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11, item 9: exposed surfaces.

// httpStatus GETs path on addr and returns the status code.
func httpStatus(t *testing.T, addr, path string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestPprofOnlyWithFlag: /debug/pprof/ is 404 on every HTTP listener
// (meta, agent, playground) unless --pprof is given, then 200; /metrics
// is served either way, and /debug/pprof/cmdline (flags may hold
// secrets) never is.
func TestPprofOnlyWithFlag(t *testing.T) {
	dir := t.TempDir()
	for _, on := range []bool{false, true} {
		var extra []string
		if on {
			extra = []string{"--pprof"}
		}
		name := map[bool]string{false: "-default", true: "-pprof"}[on]
		m := startProc(t, "meta"+name, []string{"SLUICE_ADMIN_TOKEN=" + adminToken},
			append([]string{"meta", "--listen", "127.0.0.1:0", "--store", filepath.Join(dir, "meta"+name), "--http-addr", "127.0.0.1:0"}, extra...),
			"meta", "http")
		maddr := m.lines["meta"]
		key := createKey(t, maddr, "pprof")
		a := startAgent(t, "agent"+name, maddr, key, "file://"+filepath.Join(dir, "bucket"+name), extra...)
		pg := startPlayground(t, filepath.Join(dir, "pg"+name), extra...)

		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		for who, addr := range map[string]string{"meta": m.lines["http"], "agent": a.lines["http"], "playground": pg.httpAddr} {
			if got := httpStatus(t, addr, "/debug/pprof/"); got != want {
				t.Errorf("%s (pprof flag %v): /debug/pprof/ answered %d, want %d", who, on, got, want)
			}
			if got := httpStatus(t, addr, "/debug/pprof/goroutine?debug=1"); got != want {
				t.Errorf("%s (pprof flag %v): /debug/pprof/goroutine answered %d, want %d", who, on, got, want)
			}
			if got := httpStatus(t, addr, "/debug/pprof/cmdline"); got != http.StatusNotFound {
				t.Errorf("%s (pprof flag %v): /debug/pprof/cmdline answered %d, want 404", who, on, got)
			}
			if got := httpStatus(t, addr, "/metrics"); got != http.StatusOK {
				t.Errorf("%s: /metrics answered %d", who, got)
			}
		}
		pg.stop(t)
		a.stop(t)
		m.stop(t)
	}
}

// runSluice runs the binary to completion (bounded) and returns its
// combined output and error.
func runSluice(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("sluice %s: still running after 60s:\n%s", strings.Join(args, " "), out)
	}
	return string(out), err
}

// TestPlaintextMetaKeyRefused: without --meta-ca, an agent refuses to
// send its key to a meta address that is not loopback (it used to send
// it in plaintext to anything), and `sluice meta keys` its admin token;
// the error names --meta-ca and --meta-insecure. 192.0.2.1 (TEST-NET-1)
// is never dialled: the refusal comes first.
func TestPlaintextMetaKeyRefused(t *testing.T) {
	const remote = "192.0.2.1:9093"
	out, err := runSluice(t, []string{"SLUICE_AGENT_KEY=sk_never_sent"}, "agent", "--meta-addr", remote,
		"--bucket", "file://"+t.TempDir(), "--kafka-addr", "127.0.0.1:0", "--http-addr", "")
	if err == nil || !strings.Contains(out, "--meta-ca") || !strings.Contains(out, "--meta-insecure") || !strings.Contains(out, remote) {
		t.Fatalf("agent with a plaintext non-loopback meta: err %v, output:\n%s", err, tail(out, 2048))
	}
	out, err = runSluice(t, []string{"SLUICE_ADMIN_TOKEN=never-sent"}, "meta", "keys", "list", "--meta-addr", remote)
	if err == nil || !strings.Contains(out, "--meta-ca") || !strings.Contains(out, "--meta-insecure") {
		t.Fatalf("keys list with a plaintext non-loopback meta: err %v, output:\n%s", err, tail(out, 2048))
	}
}

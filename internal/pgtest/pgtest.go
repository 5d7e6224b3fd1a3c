// Package pgtest gives tests a PostgreSQL database of their own.
//
// URL creates a fresh, empty database on a shared server and returns its
// URL. The server is the one SLUICE_TEST_POSTGRES names (a URL of a
// server where the user may CREATE DATABASE), or else one this package
// starts once per test binary: initdb into a temporary directory, then
// postgres listening on 127.0.0.1 on a free port, trust authentication.
// As root (CI runs as root, and PostgreSQL refuses to) the server runs as
// the postgres system user.
//
// A test binary that uses URL should call Main from its TestMain: it
// stops the server (or drops the databases made on an external one) and
// removes its directory after the tests. Without Main the server still
// dies with the test binary (parent-death signal), but its directory is
// left behind.
//
// If no server can be had, URL fails the test, unless SLUICE_SKIP_POSTGRES=1
// is set: then it skips it. A check that silently does not run must not
// look like a check that passed.
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable with the URL of an external server.
const EnvURL = "SLUICE_TEST_POSTGRES"

// EnvSkip, set to 1, makes URL skip the test when no server can be had.
const EnvSkip = "SLUICE_SKIP_POSTGRES"

var (
	mu      sync.Mutex
	srv     *server // nil until the first URL
	srvErr  error   // why the server could not be had; sticky
	created []string
	nextDB  int
)

type server struct {
	admin    string // URL of the maintenance database ("postgres")
	external bool

	// A server of our own.
	dir    string
	proc   *os.Process
	exited chan struct{} // closed when the postmaster has exited
}

// URL returns the URL of a new, empty database for t. See the package
// doc.
func URL(t testing.TB) string {
	t.Helper()
	s, err := get()
	if err != nil {
		if os.Getenv(EnvSkip) == "1" {
			t.Skipf("pgtest: no PostgreSQL (%s=1): %v", EnvSkip, err)
		}
		t.Fatalf("pgtest: no PostgreSQL (set %s to a server's URL, or %s=1 to skip): %v", EnvURL, EnvSkip, err)
	}
	mu.Lock()
	nextDB++
	// The time tells runs apart whose databases were left behind (a
	// killed test binary) on an external server.
	name := fmt.Sprintf("sluice_test_%d_%d_%d", time.Now().Unix(), os.Getpid(), nextDB)
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, s.admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	mu.Lock()
	created = append(created, name)
	mu.Unlock()
	u, err := withDatabase(s.admin, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Main runs the tests, then stops the server (or drops the databases
// created on an external one), and exits with the tests' code. A failure
// to clean up is printed; it does not fail the tests.
func Main(m *testing.M) {
	code := m.Run()
	if err := Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: cleanup:", err)
	}
	os.Exit(code)
}

// Stop stops the server this package started and removes its directory,
// or drops the databases it created on an external server. URL fails
// afterwards.
func Stop() error {
	mu.Lock()
	defer mu.Unlock()
	s := srv
	if s == nil {
		return nil
	}
	srv, srvErr = nil, errors.New("stopped")
	if s.external {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var errs []error
		for _, name := range created {
			// WITH (FORCE) (PostgreSQL 13) ends sessions a test left open.
			errs = append(errs, adminExec(ctx, s.admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"))
		}
		return errors.Join(errs...)
	}
	return s.stop()
}

func get() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if srv != nil || srvErr != nil {
		return srv, srvErr
	}
	if u := os.Getenv(EnvURL); u != "" {
		srv, srvErr = external(u)
	} else {
		srv, srvErr = start()
	}
	return srv, srvErr
}

func external(u string) (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	conn.Close(ctx)
	return &server{admin: u, external: true}, nil
}

func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connection string s naming database db instead.
func withDatabase(s, db string) (string, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String(), nil
	}
	// keyword=value form: a later keyword wins.
	return s + " dbname=" + db, nil
}

// binDir finds the PostgreSQL programs: initdb on PATH, or the newest
// /usr/lib/postgresql/<version>/bin (Debian keeps them off PATH).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", errors.New("initdb not found on PATH nor in /usr/lib/postgresql/*/bin (install postgresql)")
	}
	version := func(p string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(p))))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	return filepath.Dir(dirs[0]), nil
}

// start runs initdb and a postmaster of our own.
func start() (s *server, err error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	removeStale()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.Env = childEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}

	// The port is free when picked but may be taken before postgres
	// binds it; then try another.
	for attempt := 1; ; attempt++ {
		s, err := startPostmaster(bin, dir, data, cred)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "could not bind") {
			return s, err
		}
	}
}

func startPostmaster(bin, dir, data string, cred *syscall.Credential) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=on", "-c", "synchronous_commit=on",
		"-c", "max_connections=200", "-c", "shared_buffers=64MB",
		"-c", "logging_collector=off")
	cmd.Dir = dir
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		// Its own process group: a ^C to go test reaches the tests,
		// and Main stops the server in order.
		Setpgid: true,
		// If the test binary dies without Main (a panic, a timeout),
		// the kernel tells the postmaster to shut down at once.
		Pdeathsig: syscall.SIGQUIT,
	}
	s := &server{
		admin:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		dir:    dir,
		exited: make(chan struct{}),
	}
	// The parent-death signal fires when the thread that started the
	// child exits, not the process (go.dev/issue/27505): start it from
	// a goroutine locked to its thread, which stays alive (in Wait)
	// until the postmaster exits.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread exits with the goroutine, after the
		// postmaster has.
		if err := cmd.Start(); err != nil {
			started <- err
			close(s.exited)
			return
		}
		s.proc = cmd.Process
		started <- nil
		cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.admin)
		if err == nil {
			conn.Close(ctx)
			cancel()
			return s, nil
		}
		cancel()
		select {
		case <-s.exited:
			return nil, fmt.Errorf("postgres exited at start:\n%s", tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("postgres not ready after 60s: %v\n%s", err, tail(logPath))
		}
	}
}

// stop shuts the server down (fast: sessions end, a clean checkpoint),
// killing it if that takes too long, and removes its directory.
func (s *server) stop() error {
	var err error
	if s.proc != nil {
		s.proc.Signal(syscall.SIGINT)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			syscall.Kill(-s.proc.Pid, syscall.SIGKILL) // the whole group
			<-s.exited
			err = errors.New("postgres did not stop in 30s; killed")
		}
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

const (
	dirPrefix = "sluice-pgtest-"
	ownerFile = "owner.pid" // the pid of the test binary that made the directory
)

// removeStale removes the directories of servers whose test binary died
// without Main (the server died with it).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being made, or not ours
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		os.RemoveAll(d)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is the environment of initdb and postgres: ours without the
// PG* variables (a PGDATA or PGPORT of the developer's must not steer
// the test server), in the C locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG=") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// tail returns the end of the file at path, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

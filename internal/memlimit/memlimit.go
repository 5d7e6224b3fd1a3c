// Package memlimit gives the Go runtime a soft memory limit from the
// container's: the memory limit of the process's cgroup (v2 memory.max,
// v1 memory.limit_in_bytes), the lowest one set on its cgroup or any
// ancestor.
//
// Why: the agent's memory is bounded by its flags (block cache, produce
// and fetch bytes in flight), but with the runtime's default GOGC=100 the
// heap may grow to twice what is live before the collector runs. An agent
// holding 1 GiB live in a 2 GiB container (the Helm chart's sizing) would
// then be killed by the kernel at its busiest moment instead of collecting
// sooner. With a soft limit the collector works harder as the heap nears
// it (runtime/debug.SetMemoryLimit).
//
// GOMEMLIMIT, when set, is the operator's choice and is left alone.
package memlimit

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the container's limit given to the runtime. The rest is
// for what the runtime's limit does not count and the kernel charges to
// the cgroup: socket buffers, page cache of the files the agent writes
// and reads, and memory freed but not yet returned.
const Fraction = 0.9

// Setting says where the runtime's memory limit came from.
type Setting struct {
	// Container is the cgroup's memory limit in bytes, 0 when none was
	// found (no cgroup memory controller, or no limit set).
	Container int64
	// Source is the file Container was read from.
	Source string
	// Limit is the runtime's soft limit now (math.MaxInt64: none).
	Limit int64
	// FromEnv is set when GOMEMLIMIT chose Limit.
	FromEnv bool
}

// String describes the setting for a log line.
func (s Setting) String() string {
	switch {
	case s.FromEnv:
		return fmt.Sprintf("Go memory limit %d bytes from GOMEMLIMIT", s.Limit)
	case s.Container == 0:
		return "no container memory limit found; the Go runtime has no memory limit (set GOMEMLIMIT to give one)"
	default:
		return fmt.Sprintf("Go memory limit %d bytes, %.0f%% of the container's %d (%s; set GOMEMLIMIT to choose another)",
			s.Limit, Fraction*100, s.Container, s.Source)
	}
}

// Apply sets the runtime's soft memory limit to Fraction of the
// container's memory limit, unless GOMEMLIMIT is set or no limit is
// found. It reads the process's cgroups from /proc/self/cgroup and the
// limits under /sys/fs/cgroup.
func Apply() (Setting, error) {
	return apply(os.DirFS("/"), os.Getenv("GOMEMLIMIT"))
}

func apply(root fs.FS, env string) (Setting, error) {
	if env != "" {
		return Setting{Limit: debug.SetMemoryLimit(-1), FromEnv: true}, nil
	}
	limit, src, err := Container(root)
	if err != nil {
		return Setting{Limit: debug.SetMemoryLimit(-1)}, err
	}
	if limit == 0 {
		return Setting{Limit: debug.SetMemoryLimit(-1)}, nil
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return Setting{Container: limit, Source: src, Limit: soft}, nil
}

// Container returns the lowest memory limit set on the process's cgroup
// or an ancestor, and the file it was read from; 0 when there is none.
// root is the file system root ("/" in production).
func Container(root fs.FS) (int64, string, error) {
	f, err := root.Open("proc/self/cgroup")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, "", nil // not Linux, or no /proc: no limit to find
		}
		return 0, "", fmt.Errorf("memlimit: %w", err)
	}
	defer f.Close()
	var best int64
	var bestSrc string
	consider := func(dir, file string, unlimited func(string) bool, cg string) error {
		// The cgroup's own directory and each ancestor's, and the
		// mount's root for a cgroup namespace (the path in
		// /proc/self/cgroup is then "/").
		for p := path.Clean("/" + cg); ; p = path.Dir(p) {
			name := strings.TrimPrefix(path.Join(dir, p, file), "/")
			b, err := fs.ReadFile(root, name)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return fmt.Errorf("memlimit: %w", err)
			default:
				s := strings.TrimSpace(string(b))
				if !unlimited(s) {
					n, err := strconv.ParseInt(s, 10, 64)
					if err != nil || n <= 0 {
						return fmt.Errorf("memlimit: %s: %q is not a memory limit", "/"+name, s)
					}
					if best == 0 || n < best {
						best, bestSrc = n, "/"+name
					}
				}
			}
			if p == "/" {
				return nil
			}
		}
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		id, controllers, cg := parts[0], parts[1], parts[2]
		switch {
		case id == "0" && controllers == "":
			// cgroup v2, mounted at /sys/fs/cgroup (unified) or, on
			// hybrid hosts, /sys/fs/cgroup/unified.
			for _, dir := range []string{"sys/fs/cgroup", "sys/fs/cgroup/unified"} {
				if err := consider(dir, "memory.max", func(s string) bool { return s == "max" }, cg); err != nil {
					return 0, "", err
				}
			}
		case hasController(controllers, "memory"):
			// cgroup v1: "no limit" is a page-rounded MaxInt64.
			if err := consider("sys/fs/cgroup/memory", "memory.limit_in_bytes", func(s string) bool {
				n, err := strconv.ParseInt(s, 10, 64)
				return err == nil && n >= math.MaxInt64/2
			}, cg); err != nil {
				return 0, "", err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, "", fmt.Errorf("memlimit: /proc/self/cgroup: %w", err)
	}
	return best, bestSrc, nil
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

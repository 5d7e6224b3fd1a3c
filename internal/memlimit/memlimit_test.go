package memlimit

import (
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"testing/fstest"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func TestContainer(t *testing.T) {
	const v1unlimited = "9223372036854771712\n"
	for _, c := range []struct {
		name string
		fs   fstest.MapFS
		want int64
		src  string
	}{
		{"v2 namespaced", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("2147483648\n"),
		}, 2 << 30, "/sys/fs/cgroup/memory.max"},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("max\n"),
		}, 0, ""},
		{"v2 path, the pod's limit lower than the container's", fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("max\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("1073741824\n"),
			"sys/fs/cgroup/kubepods/memory.max":          file("8589934592\n"),
		}, 1 << 30, "/sys/fs/cgroup/kubepods/pod1/memory.max"},
		{"v1 (this machine's layout)", fstest.MapFS{
			"proc/self/cgroup": file("9:name=systemd:/\n4:memory:/process_api/abc\n3:cpuset:/\n0::/\n"),
			"sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": file("536870912\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":                 file(v1unlimited),
		}, 512 << 20, "/sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes"},
		{"v1 unlimited", fstest.MapFS{
			"proc/self/cgroup": file("4:cpu,memory:/x\n"),
			"sys/fs/cgroup/memory/x/memory.limit_in_bytes": file(v1unlimited),
			"sys/fs/cgroup/memory/memory.limit_in_bytes":   file(v1unlimited),
		}, 0, ""},
		{"no cgroup files", fstest.MapFS{"proc/self/cgroup": file("0::/a/b\n")}, 0, ""},
		{"no /proc", fstest.MapFS{}, 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, src, err := Container(c.fs)
			if err != nil || got != c.want || src != c.src {
				t.Fatalf("Container = %d, %q, %v; want %d, %q", got, src, err, c.want, c.src)
			}
		})
	}
	bad := fstest.MapFS{"proc/self/cgroup": file("0::/\n"), "sys/fs/cgroup/memory.max": file("lots\n")}
	if _, _, err := Container(bad); err == nil || !strings.Contains(err.Error(), "/sys/fs/cgroup/memory.max") {
		t.Fatalf("a limit that is not a number: %v", err)
	}
}

func TestApply(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	fsys := fstest.MapFS{"proc/self/cgroup": file("0::/\n"), "sys/fs/cgroup/memory.max": file("1000000000\n")}

	s, err := apply(fsys, "")
	if err != nil || s.Container != 1e9 || s.Limit != 9e8 || debug.SetMemoryLimit(-1) != 9e8 {
		t.Fatalf("from the cgroup: %+v %v; runtime limit %d", s, err, debug.SetMemoryLimit(-1))
	}
	if !strings.Contains(s.String(), "GOMEMLIMIT") {
		t.Errorf("the log line does not say how to override it: %s", s)
	}

	// GOMEMLIMIT wins: the runtime read it at start; Apply changes nothing.
	debug.SetMemoryLimit(123 << 20)
	s, err = apply(fsys, "123MiB")
	if err != nil || !s.FromEnv || s.Limit != 123<<20 || debug.SetMemoryLimit(-1) != 123<<20 {
		t.Fatalf("with GOMEMLIMIT: %+v %v", s, err)
	}

	// No limit found: the runtime's is left as it was.
	debug.SetMemoryLimit(math.MaxInt64)
	s, err = apply(fstest.MapFS{}, "")
	if err != nil || s.Container != 0 || s.Limit != math.MaxInt64 {
		t.Fatalf("without a cgroup limit: %+v %v", s, err)
	}
}

// TestThisMachine reads the real cgroup files; it must not fail to parse
// them (what it finds depends on the machine).
func TestThisMachine(t *testing.T) {
	limit, src, err := Container(os.DirFS("/"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("container memory limit %d (%s)", limit, src)
}

package hugepage

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// thpMode is the system's transparent huge page setting ("always",
// "madvise" or "never").
func thpMode(t *testing.T) string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return "never"
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		t.Fatalf("unexpected THP setting %q", s)
	}
	return s[i+1 : j]
}

// hugeKiB returns the AnonHugePages of the mapping holding addr, from
// /proc/self/smaps.
func hugeKiB(t *testing.T, addr uintptr) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x ", &lo, &hi); n == 2 && strings.Contains(line[:strings.IndexByte(line, ' ')], "-") {
			in = lo <= addr && addr < hi
			continue
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			v, err := strconv.Atoi(strings.Fields(line)[1])
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return 0
}

// TestAdviseBacksWithHugePages: an advised buffer, once written, is
// backed by at least one huge page where the system allows THP.
func TestAdviseBacksWithHugePages(t *testing.T) {
	if Advise(make([]byte, MinBytes-1)) {
		t.Fatal("advised a buffer under MinBytes")
	}
	mode := thpMode(t)
	if mode == "never" {
		t.Skip("transparent huge pages are off on this machine")
	}
	// The kernel may find no free 2 MiB page at a fault (fragmented
	// memory): try a few buffers.
	for try := range 3 {
		b := make([]byte, 0, 16<<20)
		if !Advise(b) {
			t.Fatal("Advise refused a 16 MiB buffer")
		}
		b = b[:cap(b)]
		for i := range b {
			b[i] = byte(i)
		}
		mid := uintptr(unsafe.Pointer(&b[len(b)/2]))
		if kib := hugeKiB(t, mid); kib >= Size>>10 {
			t.Logf("THP %s: %d KiB of huge pages in the buffer's mapping (try %d)", mode, kib, try)
			return
		}
	}
	t.Fatalf("THP %s: advised buffers are not backed by huge pages", mode)
}

package host

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMetaHasNoObjectStorePath: nothing the control plane is built from
// can read a bucket or a record. `sluice meta` runs meta/host, meta/rpc
// and meta; none of them may depend, even indirectly, on the object
// store, the AWS SDK, the read cache, the produce pipeline or the record
// codec.
func TestMetaHasNoObjectStorePath(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "sluice.dev/meta/host", "sluice.dev/meta/rpc").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed %d packages: %q", len(deps), out)
	}
	forbidden := []string{"sluice.dev/objstore", "github.com/aws/", "sluice.dev/cache", "sluice.dev/pipeline", "sluice.dev/codec", "sluice.dev/server", "sluice.dev/agent"}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("meta depends on %s", d)
			}
		}
	}
}

package meta

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestAgentsImportOnlyTheContract keeps the cut of issue 12 item 8: the
// agent's data path (server, pipeline, cache) knows the control plane
// only through this package, the contract, and the contract itself pulls
// in no store, no database driver and no RPC stack. A package that
// reaches behind the contract (meta/controller, meta/kv, meta/groups,
// meta/rpc, ...) or links bbolt, pgx or gRPC into the data path fails
// here; cmd/sluice and agent wire the control plane in, and tests may.
func TestAgentsImportOnlyTheContract(t *testing.T) {
	pkgs := []string{"sluice.dev/meta", "sluice.dev/server", "sluice.dev/pipeline", "sluice.dev/cache", "sluice.dev/jobs"}
	forbidden := []string{
		"sluice.dev/meta/",
		"go.etcd.io/bbolt",
		"github.com/jackc/pgx",
		"google.golang.org/grpc",
		"google.golang.org/protobuf",
	}
	for _, pkg := range pkgs {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list -deps %s printed %d packages: %q", pkg, len(deps), out)
		}
		if pkg != "sluice.dev/meta" && !slices.Contains(deps, "sluice.dev/meta") {
			// The walk must see the contract, or it proves nothing.
			t.Errorf("%s does not depend on sluice.dev/meta: is the package list stale?", pkg)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}

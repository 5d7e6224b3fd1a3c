package host

import (
	"context"

	"sluice.dev/meta"
)

// ClusterClient returns a cluster's Client for the Admin service's user
// calls (SASL, issue 14: `sluice meta users`); it opens the cluster like
// an agent's first call would.
func (h *Host) ClusterClient(ctx context.Context, cluster string) (meta.Client, error) {
	return h.Cluster(ctx, cluster)
}

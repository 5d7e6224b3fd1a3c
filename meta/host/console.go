package host

import "sluice.dev/meta/controller"

// The web console (meta/console, issue 16) shows the clusters that are
// open; it never opens one (a name in a URL must not create a store).

// OpenClusters names the clusters open now (none while standing by).
func (h *Host) OpenClusters() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.clusters))
	for name := range h.clusters {
		out = append(out, name)
	}
	return out
}

// OpenCluster returns an open cluster's Service, or nil.
func (h *Host) OpenCluster(name string) *controller.Service {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clusters[name]
}

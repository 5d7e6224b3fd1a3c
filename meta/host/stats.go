package host

import (
	"time"

	"sluice.dev/meta/controller"
)

// JobsStats reports the objects and background jobs of every open
// cluster, by name (empty while this replica does not lead).
func (h *Host) JobsStats() map[string]controller.JobsStats {
	h.mu.Lock()
	clusters := make(map[string]*controller.Service, len(h.clusters))
	for name, s := range h.clusters {
		clusters[name] = s
	}
	h.mu.Unlock()
	out := make(map[string]controller.JobsStats, len(clusters))
	for name, s := range clusters {
		out[name] = s.JobsStats()
	}
	return out
}

// AgeReports reports, per open cluster, how its bytes older than age lie
// (controller.Service.AgeReport).
func (h *Host) AgeReports(age time.Duration) map[string]controller.AgeReport {
	h.mu.Lock()
	clusters := make(map[string]*controller.Service, len(h.clusters))
	for name, s := range h.clusters {
		clusters[name] = s
	}
	h.mu.Unlock()
	out := make(map[string]controller.AgeReport, len(clusters))
	for name, s := range clusters {
		out[name] = s.AgeReport(age)
	}
	return out
}

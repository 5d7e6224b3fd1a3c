package host

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics of the replica itself, for the control-plane dashboard
// (deploy/grafana/meta.json): whether this process leads, and with which
// store. Tests open several hosts in one process, so the gauges sum over
// the open ones instead of holding one host's value.
var openHosts sync.Map // *Host -> struct{}

func init() {
	// sluice_meta_leader is 1 while this replica serves (the embedded
	// store always does; with PostgreSQL exactly one replica should
	// show 1: two would mean a split brain the lease is meant to stop).
	metrics.NewGauge(`sluice_meta_leader`, func() float64 {
		var n float64
		openHosts.Range(func(k, _ any) bool {
			if k.(*Host).Leading() {
				n++
			}
			return true
		})
		return n
	})
	metrics.NewGauge(`sluice_meta_store_postgres`, func() float64 {
		var n float64
		openHosts.Range(func(k, _ any) bool {
			if k.(*Host).pool != nil {
				n++
			}
			return true
		})
		return n
	})
	metrics.NewGauge(`sluice_meta_clusters_open`, func() float64 {
		var n float64
		openHosts.Range(func(k, _ any) bool {
			h := k.(*Host)
			h.mu.Lock()
			n += float64(len(h.clusters))
			h.mu.Unlock()
			return true
		})
		return n
	})
}

package server

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	mConnsOpened    = metrics.NewCounter(`sluice_kafka_connections_opened_total`)
	mConnsClosed    = metrics.NewCounter(`sluice_kafka_connections_closed_total`)
	mBadConns       = metrics.NewCounter(`sluice_kafka_connections_rejected_total`)
	mBadRequests    = metrics.NewCounter(`sluice_kafka_bad_requests_total`)
	mProduceBytes   = metrics.NewCounter(`sluice_produce_bytes_total`)
	mProduceBatches = metrics.NewCounter(`sluice_produce_batches_total`)
	mProduceErrors  = metrics.NewCounter(`sluice_produce_partition_errors_total`)
	mFetchBytes     = metrics.NewCounter(`sluice_fetch_bytes_total`)
)

// producesParked counts acks=1/all produce requests appended to the
// pipeline and not yet answered, over all connections: requests clients
// have in flight at once while a segment fills. An idempotent client
// keeps at most five per broker, so it shows what broker identities
// (agents.go) give it.
var producesParked atomic.Int64

var _ = metrics.NewGauge(`sluice_produce_requests_parked`, func() float64 { return float64(producesParked.Load()) })

// Limits hit (issue 11): each counts one time a bound held something back.
var (
	mConnsRefused      = metrics.NewCounter(`sluice_kafka_connections_refused_total{reason="max_connections"}`)
	mSlowClientsClosed = metrics.NewCounter(`sluice_kafka_slow_clients_closed_total`)
	// mStallsQuiet counts connections seen stalled by their silence with
	// produce parked (stall.go); each asked for an early seal.
	mStallsQuiet         = metrics.NewCounter(`sluice_produce_stalls_quiet_total`)
	mConnInflightLimited = metrics.NewCounter(`sluice_kafka_conn_limited_total{limit="inflight_requests"}`)
	mConnUnsentLimited   = metrics.NewCounter(`sluice_kafka_conn_limited_total{limit="unsent_bytes"}`)
	mFetchBudgetRefused  = metrics.NewCounter(`sluice_fetch_budget_refused_total`)
	mFetchMaxBytesCapped = metrics.NewCounter(`sluice_fetch_max_bytes_capped_total`)
	mGroupWaitCapped     = metrics.NewCounter(`sluice_group_wait_capped_total`)
)

// Request counters and latency histograms per API, created up front so
// the hot path does no map lookups or string formatting.
var (
	reqCounters  [128]*metrics.Counter
	reqDurations [128]*metrics.Histogram
)

func init() {
	for key := int16(0); key < int16(len(reqCounters)); key++ {
		name := kmsg.NameForKey(key)
		if name == "" || name == "Unknown" {
			continue
		}
		reqCounters[key] = metrics.NewCounter(`sluice_kafka_requests_total{api="` + name + `"}`)
		reqDurations[key] = metrics.NewHistogram(`sluice_kafka_request_duration_seconds{api="` + name + `"}`)
	}
}

func observeRequest(key int16, start time.Time) {
	if key < 0 || int(key) >= len(reqCounters) || reqCounters[key] == nil {
		return
	}
	reqCounters[key].Inc()
	reqDurations[key].UpdateDuration(start)
}

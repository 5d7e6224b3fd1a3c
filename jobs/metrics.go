package jobs

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/meta"
)

// kindMetrics are the counters of one job kind, as the issue's
// visibility item asks: runs, failures, the last success, bytes read and
// written, objects deleted.
type kindMetrics struct {
	runs, failures       *metrics.Counter
	lastSuccess          *metrics.Gauge // unix seconds, set on success
	bytesRead, written   *metrics.Counter
	objectsDeleted       *metrics.Counter
	bytesDeleted         *metrics.Counter
	entriesSwapped       *metrics.Counter // compaction only
	entriesRefused       *metrics.Counter // compaction only
	orphansFound, listed *metrics.Counter // orphans only
}

var stats = map[meta.JobKind]*kindMetrics{}

// Key cleaning's records that were not superseded versions: the data of
// aborted transactions, and the commit markers of transactions whose
// records were all superseded (issue 15).
var (
	mAbortedDropped = metrics.NewCounter(`sluice_jobs_clean_aborted_records_dropped_total`)
	mMarkersDropped = metrics.NewCounter(`sluice_jobs_clean_markers_dropped_total`)
)

// mPacedSeconds is the time jobs spent waiting for their pace (pace.go):
// growing fast means the pace, not the work, sets how far compaction
// keeps up.
var mPacedSeconds = metrics.NewFloatCounter(`sluice_jobs_paced_seconds_total`)

func init() {
	for _, k := range []meta.JobKind{meta.JobCompact, meta.JobDelete, meta.JobOrphans, meta.JobCleanKeys} {
		l := fmt.Sprintf(`{kind=%q}`, k.String())
		stats[k] = &kindMetrics{
			runs:           metrics.NewCounter(`sluice_jobs_runs_total` + l),
			failures:       metrics.NewCounter(`sluice_jobs_failures_total` + l),
			lastSuccess:    metrics.NewGauge(`sluice_jobs_last_success_seconds`+l, nil),
			bytesRead:      metrics.NewCounter(`sluice_jobs_read_bytes_total` + l),
			written:        metrics.NewCounter(`sluice_jobs_written_bytes_total` + l),
			objectsDeleted: metrics.NewCounter(`sluice_jobs_objects_deleted_total` + l),
			bytesDeleted:   metrics.NewCounter(`sluice_jobs_deleted_bytes_total` + l),
			entriesSwapped: metrics.NewCounter(`sluice_jobs_entries_swapped_total` + l),
			entriesRefused: metrics.NewCounter(`sluice_jobs_entries_refused_total` + l),
			orphansFound:   metrics.NewCounter(`sluice_jobs_orphans_total` + l),
			listed:         metrics.NewCounter(`sluice_jobs_objects_listed_total` + l),
		}
	}
}

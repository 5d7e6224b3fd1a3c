package bench

import (
	"fmt"
	"strings"
	"time"
)

// Result is what a run measured. It is also the JSON line of `--json`.
type Result struct {
	Mode       Mode          `json:"mode"`
	Config     Config        `json:"config"`
	Partitions int32         `json:"partitions"` // of the topic as found or created
	Start      time.Time     `json:"start"`
	Elapsed    time.Duration `json:"elapsed_ns"`

	// Produce: latency is Produce call → acknowledgement.
	Produce *Side `json:"produce,omitempty"`
	// Consume: latency is the record's timestamp → receipt (end to end).
	Consume *Side `json:"consume,omitempty"`
	// Agent is set with --agent-metrics.
	Agent *AgentFigures `json:"agent,omitempty"`

	// Intervals are one a second (the last one may be shorter).
	Intervals []Interval `json:"intervals"`
	// ProduceDist and E2EDist are the cumulative latency-by-percentile
	// curves the HTML report draws.
	ProduceDist []PercentilePoint `json:"produce_distribution,omitempty"`
	E2EDist     []PercentilePoint `json:"e2e_distribution,omitempty"`
}

// Side is one direction's totals.
type Side struct {
	Sent       int64       `json:"sent,omitempty"` // produce: records handed to the client
	Records    int64       `json:"records"`        // acknowledged, or consumed
	Bytes      int64       `json:"bytes"`          // record values only
	Errors     int64       `json:"errors"`
	Aborted    int64       `json:"aborted,omitempty"` // produce: failed because the run was interrupted
	FirstError string      `json:"first_error,omitempty"`
	Seconds    float64     `json:"seconds"` // the window the rates divide by
	RecordsPS  float64     `json:"records_per_sec"`
	MiBPS      float64     `json:"mib_per_sec"`
	Latency    Percentiles `json:"latency"`
}

func (s *Side) rates() {
	if s.Seconds > 0 {
		s.RecordsPS = float64(s.Records) / s.Seconds
		s.MiBPS = float64(s.Bytes) / (1 << 20) / s.Seconds
	}
}

// Interval is one second of the run.
type Interval struct {
	End             float64       `json:"t_s"`   // seconds from the start to the end of the interval
	Len             float64       `json:"len_s"` // its length in seconds
	ProducedRecords int64         `json:"produced"`
	ProducedBytes   int64         `json:"produced_bytes"`
	ConsumedRecords int64         `json:"consumed"`
	ConsumedBytes   int64         `json:"consumed_bytes"`
	Errors          int64         `json:"errors"`
	ProduceP50      time.Duration `json:"produce_p50_ns"`
	ProduceP99      time.Duration `json:"produce_p99_ns"`
	ProduceMax      time.Duration `json:"produce_max_ns"`
	E2EP50          time.Duration `json:"e2e_p50_ns"`
	E2EP99          time.Duration `json:"e2e_p99_ns"`
	E2EMax          time.Duration `json:"e2e_max_ns"`
}

// sample closes an interval every second until stop is closed, then a
// last one, so every recorded latency reaches the cumulative histograms.
func (r *runner) sample(res *Result, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prev Interval // running totals at the previous tick
	last := r.start
	tick := func(now time.Time) {
		cur := Interval{
			ProducedRecords: r.acked.Load(), ProducedBytes: r.ackedB.Load(),
			ConsumedRecords: r.consumed.Load(), ConsumedBytes: r.consumedB.Load(),
			Errors: r.prodErrs.Load() + r.consErrs.Load(),
		}
		pi, ei := r.prodLat.Rotate(), r.e2eLat.Rotate()
		iv := Interval{
			End: now.Sub(r.start).Seconds(), Len: now.Sub(last).Seconds(),
			ProducedRecords: cur.ProducedRecords - prev.ProducedRecords,
			ProducedBytes:   cur.ProducedBytes - prev.ProducedBytes,
			ConsumedRecords: cur.ConsumedRecords - prev.ConsumedRecords,
			ConsumedBytes:   cur.ConsumedBytes - prev.ConsumedBytes,
			Errors:          cur.Errors - prev.Errors,
			ProduceP50:      time.Duration(pi.ValueAt(0.5)),
			ProduceP99:      time.Duration(pi.ValueAt(0.99)),
			ProduceMax:      time.Duration(pi.Max()),
			E2EP50:          time.Duration(ei.ValueAt(0.5)),
			E2EP99:          time.Duration(ei.ValueAt(0.99)),
			E2EMax:          time.Duration(ei.Max()),
		}
		prev, last = cur, now
		res.Intervals = append(res.Intervals, iv)
		if r.cfg.Progress != nil {
			fmt.Fprintln(r.cfg.Progress, r.progressLine(iv, cur.Errors))
		}
	}
	for {
		select {
		case now := <-t.C:
			tick(now)
		case <-stop:
			if now := time.Now(); now.Sub(last) > 0 {
				tick(now)
			}
			return
		}
	}
}

// progressLine is the live line: this second's rates, and p99 so far.
func (r *runner) progressLine(iv Interval, errs int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs", iv.End)
	if iv.Len <= 0 {
		iv.Len = 1
	}
	if r.mode != ModeConsume {
		fmt.Fprintf(&b, "  produce %9.0f rec/s %8.2f MiB/s p99 %-9s", float64(iv.ProducedRecords)/iv.Len,
			float64(iv.ProducedBytes)/(1<<20)/iv.Len, fmtDur(time.Duration(r.prodLat.Total().ValueAt(0.99))))
	}
	if r.mode != ModeProduce {
		fmt.Fprintf(&b, "  consume %9.0f rec/s %8.2f MiB/s e2e p99 %-9s", float64(iv.ConsumedRecords)/iv.Len,
			float64(iv.ConsumedBytes)/(1<<20)/iv.Len, fmtDur(time.Duration(r.e2eLat.Total().ValueAt(0.99))))
	}
	fmt.Fprintf(&b, "  errors %d", errs)
	return b.String()
}

// fmtDur prints a latency with three significant digits in a fitting
// unit: 812µs, 4.21ms, 251ms, 1.20s.
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return sig3(float64(d)/1e3) + "µs"
	case d < time.Second:
		return sig3(float64(d)/1e6) + "ms"
	default:
		return sig3(float64(d)/1e9) + "s"
	}
}

func sig3(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

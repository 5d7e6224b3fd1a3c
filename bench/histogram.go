package bench

import (
	"math"
	"math/bits"
	"time"
)

// Histogram is a log-linear (HDR-style) histogram of non-negative int64
// values, here nanoseconds. Recording is O(1) and never allocates; two
// histograms merge by adding their counts; percentiles are read back with
// a relative error of at most 1/(2·subBuckets), about 0.4%.
//
// Layout. Values below subBuckets (128) each have a bucket of their own
// and are exact. Above that, every power-of-two range [2^k, 2^(k+1)) is
// cut into 128 equal buckets, so a bucket is never wider than 1/128 of the
// smallest value it holds. With e = bits.Len64(v) - 8 (the number of low
// bits dropped) a value v ≥ 128 lands in bucket
//
//	e·128 + v>>e        (v>>e is in [128, 256))
//
// which continues the exact region without a gap: 127 → 127, 128 → 128,
// 255 → 255, 256 → 256 (e = 1), 258 → 257, ... The whole int64 range takes
// 56·128+128 = 7296 buckets (57 KiB), allocated once by NewHistogram.
//
// The tracked maximum is exact, and percentiles are clamped to it, so the
// top of the distribution is never reported above the largest sample.
//
// A Histogram is not safe for concurrent use; Recorder adds the locking
// and the per-interval rotation the benchmark needs.
type Histogram struct {
	counts   []uint64
	total    uint64
	sum      float64 // for the mean; float to avoid overflow over long runs
	min, max int64
}

const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits // buckets per power of two
	numBuckets    = (63-subBucketBits)*subBuckets + subBuckets
)

// NewHistogram returns an empty histogram covering 0 to math.MaxInt64.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucketOf returns the index of the bucket holding v (v ≥ 0).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < subBuckets {
		return int(u)
	}
	e := bits.Len64(u) - subBucketBits - 1
	return e*subBuckets + int(u>>e)
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width int64) {
	if i < 2*subBuckets {
		return int64(i), 1
	}
	e := i/subBuckets - 1
	m := int64(i - e*subBuckets) // in [128, 256)
	return m << e, 1 << e
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// RecordDuration adds one duration.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Reset empties h, keeping its buckets.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.total, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest value recorded, exactly; 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Min is the smallest value recorded, exactly; 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Mean is the average of the values recorded, exactly (up to float
// rounding); 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// ValueAt returns the value at quantile q in [0, 1] by nearest rank: the
// smallest recorded value with at least q·Count values at or below it,
// reported as the middle of its bucket (clamped to the exact min and max;
// the last rank is the exact max). 0 when empty.
func (h *Histogram) ValueAt(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	if rank == h.total {
		return h.max
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			return min(max(lo+(w-1)/2, h.min), h.max)
		}
	}
	return h.max // not reached: the counts add up to total
}

// Percentiles is the summary every figure in a report uses.
type Percentiles struct {
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Percentiles reads the standard percentiles of a histogram of
// nanoseconds.
func (h *Histogram) Percentiles() Percentiles {
	return Percentiles{
		Count: h.total,
		Mean:  time.Duration(h.Mean()),
		P50:   time.Duration(h.ValueAt(0.50)),
		P90:   time.Duration(h.ValueAt(0.90)),
		P99:   time.Duration(h.ValueAt(0.99)),
		P999:  time.Duration(h.ValueAt(0.999)),
		Max:   time.Duration(h.max),
	}
}

// PercentilePoint is one point of a latency-by-percentile curve.
type PercentilePoint struct {
	Quantile float64       `json:"q"`
	Value    time.Duration `json:"ns"`
}

// Distribution samples the curve from the median up to the maximum on a
// log scale of 1/(1-q) (50%, 90%, 99%, 99.9%, ... ), ten points per
// decade, the way HDR percentile charts are drawn. It stops at the
// quantile where fewer than one sample remains above it, then adds the
// maximum at q = 1.
func (h *Histogram) Distribution() []PercentilePoint {
	if h.total == 0 {
		return nil
	}
	var pts []PercentilePoint
	// x = log10(1/(1-q)); x = log10(2) is the median.
	last := math.Log10(float64(h.total))
	for x := math.Log10(2); x < last; x += 0.1 {
		q := 1 - math.Pow(10, -x)
		pts = append(pts, PercentilePoint{Quantile: q, Value: time.Duration(h.ValueAt(q))})
	}
	return append(pts, PercentilePoint{Quantile: 1, Value: time.Duration(h.max)})
}

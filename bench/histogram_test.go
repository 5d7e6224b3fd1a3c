package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactAt is the nearest-rank percentile of sorted samples, the definition
// ValueAt approximates.
func exactAt(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestBucketLayout(t *testing.T) {
	// Every bucket's range maps back to it, and buckets tile the line.
	next := int64(0)
	for i := 0; i < numBuckets; i++ {
		lo, w := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if bucketOf(lo) != i || bucketOf(lo+w-1) != i {
			t.Fatalf("bucket %d [%d,+%d): bucketOf(lo)=%d bucketOf(hi)=%d", i, lo, w, bucketOf(lo), bucketOf(lo+w-1))
		}
		if i >= subBuckets && float64(w)/float64(lo) > 1.0/subBuckets {
			t.Fatalf("bucket %d [%d,+%d) wider than 1/%d of its start", i, lo, w, subBuckets)
		}
		next = lo + w
		if next < 0 { // wrapped past MaxInt64: the last bucket
			if i != numBuckets-1 {
				t.Fatalf("bucket %d reaches MaxInt64 but %d buckets exist", i, numBuckets)
			}
		}
	}
	if bucketOf(math.MaxInt64) != numBuckets-1 {
		t.Fatalf("MaxInt64 in bucket %d, want %d", bucketOf(math.MaxInt64), numBuckets-1)
	}
}

func TestHistogramAccuracy(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	dists := map[string]func() int64{
		"uniform-small": func() int64 { return rng.Int64N(1000) },
		"uniform-ms":    func() int64 { return rng.Int64N(int64(time.Second)) },
		// Latency-like: log-normal around 5 ms with a long tail.
		"lognormal": func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5 + math.Log(5e6))) },
		"bimodal": func() int64 {
			if rng.IntN(100) == 0 {
				return 250e6 + rng.Int64N(50e6)
			}
			return 1e6 + rng.Int64N(1e5)
		},
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			h := NewHistogram()
			vals := make([]int64, 100_000)
			for i := range vals {
				vals[i] = gen()
				h.Record(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(len(vals)) || h.Max() != vals[len(vals)-1] || h.Min() != vals[0] {
				t.Fatalf("seed %d: count/min/max %d/%d/%d, want %d/%d/%d", seed, h.Count(), h.Min(), h.Max(), len(vals), vals[0], vals[len(vals)-1])
			}
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
				got, want := h.ValueAt(q), exactAt(vals, q)
				// The bucket holding want is at most want/128 wide and
				// ValueAt reports its middle.
				if tol := float64(want) / (2 * subBuckets); math.Abs(float64(got-want)) > tol+0.5 {
					t.Errorf("seed %d: q=%v got %d want %d (tolerance %.1f)", seed, q, got, want, tol)
				}
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if m := sum / float64(len(vals)); math.Abs(h.Mean()-m) > m*1e-9 {
				t.Errorf("mean %f want %f", h.Mean(), m)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := 0; i < 50_000; i++ {
		v := rng.Int64N(1e9)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	a.Merge(NewHistogram()) // merging an empty histogram changes nothing
	if !slices.Equal(a.counts, all.counts) || a.Count() != all.Count() || a.Min() != all.Min() || a.Max() != all.Max() {
		t.Fatalf("seed %d: merged histogram differs from the one that saw every value", seed)
	}
	if a.Percentiles() != all.Percentiles() {
		t.Fatalf("seed %d: percentiles %+v, want %+v", seed, a.Percentiles(), all.Percentiles())
	}
	a.Reset()
	if a.Count() != 0 || a.ValueAt(0.5) != 0 || a.Max() != 0 || a.Min() != 0 {
		t.Fatalf("after Reset: %+v", a.Percentiles())
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.ValueAt(0.99) != 0 || h.Distribution() != nil {
		t.Fatal("empty histogram should read 0 and no distribution")
	}
	h.Record(-5) // clamps to 0
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.ValueAt(1) != math.MaxInt64 {
		t.Fatalf("min %d max %d p100 %d", h.Min(), h.Max(), h.ValueAt(1))
	}
	one := NewHistogram()
	one.Record(12345678)
	if p := one.Percentiles(); p.P50 != 12345678 || p.P999 != 12345678 || p.Max != 12345678 {
		t.Fatalf("one sample: %+v", p)
	}
	// The distribution ends at the maximum and never goes down.
	for i := 1; i <= 10000; i++ {
		one.Record(int64(i) * 1000)
	}
	d := one.Distribution()
	if d[len(d)-1].Quantile != 1 || d[len(d)-1].Value != 12345678 {
		t.Fatalf("last point %+v", d[len(d)-1])
	}
	for i := 1; i < len(d); i++ {
		if d[i].Value < d[i-1].Value || d[i].Quantile <= d[i-1].Quantile {
			t.Fatalf("distribution not monotonic at %d: %+v %+v", i, d[i-1], d[i])
		}
	}
}

func TestRecorderRotate(t *testing.T) {
	r := NewRecorder()
	for i := 1; i <= 100; i++ {
		r.Record(time.Duration(i) * time.Millisecond)
	}
	iv := r.Rotate()
	if iv.Count() != 100 || iv.Max() != int64(100*time.Millisecond) {
		t.Fatalf("first interval: %+v", iv.Percentiles())
	}
	r.Record(time.Second)
	iv = r.Rotate()
	if iv.Count() != 1 || iv.Max() != int64(time.Second) {
		t.Fatalf("second interval: %+v", iv.Percentiles())
	}
	if tot := r.Total(); tot.Count() != 101 || tot.Max() != int64(time.Second) {
		t.Fatalf("total: %+v", tot.Percentiles())
	}
	if r.Rotate().Count() != 0 {
		t.Fatal("empty interval should be empty")
	}
}

// BenchmarkHistogramRecord: recording must stay O(1) and allocation-free.
func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 1024)
	for i := range vals {
		vals[i] = rng.Int64N(int64(time.Second))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Record(vals[i&1023])
	}
}

func BenchmarkRecorderRecord(b *testing.B) {
	r := NewRecorder()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(3 * time.Millisecond)
		}
	})
}

package bench

import (
	"sync"
	"time"
)

// Recorder is a latency histogram shared by many goroutines, read once per
// interval. Record goes into the current interval's histogram; Rotate
// hands that one back (to be summarised and merged into the cumulative
// histogram) and swaps in the spare, so nothing allocates after
// NewRecorder.
//
// Recording takes a mutex: callbacks of a franz-go client already run one
// partition at a time, so it is rarely contended, and one uncontended
// lock costs less than the time.Now each sample needs anyway.
type Recorder struct {
	mu    sync.Mutex
	cur   *Histogram // guarded by mu; being recorded into
	spare *Histogram // guarded by mu; the one returned by the last Rotate, reset by the next

	total *Histogram // owned by the goroutine calling Rotate
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{cur: NewHistogram(), spare: NewHistogram(), total: NewHistogram()}
}

// Record adds one latency.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	r.cur.Record(int64(d))
	r.mu.Unlock()
}

// Rotate ends the current interval: it merges the interval into the
// cumulative histogram and returns the interval's histogram, valid until
// the next Rotate. Only one goroutine may call Rotate and Total.
func (r *Recorder) Rotate() *Histogram {
	r.mu.Lock()
	r.spare.Reset()
	iv := r.cur
	r.cur, r.spare = r.spare, iv
	r.mu.Unlock()
	r.total.Merge(iv)
	return iv
}

// Total is the cumulative histogram of every interval rotated so far.
func (r *Recorder) Total() *Histogram { return r.total }

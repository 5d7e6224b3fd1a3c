package objstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// opMetrics are one operation's series. They are package-level: every
// instrumented store of the process adds to the same series, which is what
// /metrics should show (an agent has one bucket).
type opMetrics struct {
	requests *metrics.Counter
	errors   *metrics.Counter
	bytes    *metrics.Counter // put and get only; nil otherwise
	duration *metrics.Histogram
}

func newOpMetrics(op Op) opMetrics {
	label := `{op="` + op.String() + `"}`
	m := opMetrics{
		requests: metrics.NewCounter("sluice_objstore_requests_total" + label),
		errors:   metrics.NewCounter("sluice_objstore_errors_total" + label),
		duration: metrics.NewHistogram("sluice_objstore_request_duration_seconds" + label),
	}
	if op == OpPut || op == OpGet {
		m.bytes = metrics.NewCounter("sluice_objstore_bytes_total" + label)
	}
	return m
}

var opStats = [numOps]opMetrics{
	OpPut:    newOpMetrics(OpPut),
	OpGet:    newOpMetrics(OpGet),
	OpHead:   newOpMetrics(OpHead),
	OpDelete: newOpMetrics(OpDelete),
	OpList:   newOpMetrics(OpList),
}

// Instrument wraps s so that every call is counted in
// sluice_objstore_requests_total, sluice_objstore_errors_total,
// sluice_objstore_bytes_total (put, get) and timed in
// sluice_objstore_request_duration_seconds, each labelled op="put", "get",
// "head", "delete" or "list". Wrap a store once; wrapping twice counts
// twice.
//
// Two outcomes are not counted as errors, so that the error rate stays an
// alarm for the bucket: ErrNotFound, which is an answer (a Head to see
// whether an object exists, a GetRange racing a deletion), and
// context.Canceled, which is the caller walking away (a client gone, a
// coalesced read abandoned). A deadline running out does count: that is
// the bucket being slow.
func Instrument(s Store) Store { return instrumented{s} }

type instrumented struct{ s Store }

func (in instrumented) done(op Op, start time.Time, n int, err error) {
	m := &opStats[op]
	m.requests.Inc()
	m.duration.UpdateDuration(start)
	if err != nil {
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
			m.errors.Inc()
		}
		return
	}
	if m.bytes != nil {
		m.bytes.Add(n)
	}
}

func (in instrumented) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := in.s.Put(ctx, key, data)
	in.done(OpPut, start, len(data), err)
	return err
}

// PutReader counts as a put of size bytes.
func (in instrumented) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	start := time.Now()
	err := in.s.PutReader(ctx, key, r, size)
	in.done(OpPut, start, int(size), err)
	return err
}

func (in instrumented) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	start := time.Now()
	b, err := in.s.GetRange(ctx, key, off, length)
	in.done(OpGet, start, len(b), err)
	return b, err
}

func (in instrumented) Head(ctx context.Context, key string) (ObjectInfo, error) {
	start := time.Now()
	info, err := in.s.Head(ctx, key)
	in.done(OpHead, start, 0, err)
	return info, err
}

func (in instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := in.s.Delete(ctx, key)
	in.done(OpDelete, start, 0, err)
	return err
}

// List counts one request per call, however many keys it walks; the
// duration includes the time fn takes.
func (in instrumented) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	err := in.s.List(ctx, prefix, fn)
	in.done(OpList, start, 0, err)
	return err
}

func (in instrumented) Close() error { return in.s.Close() }

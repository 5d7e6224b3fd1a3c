package objstore

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

func TestFaultyFailNext(t *testing.T) {
	ctx := context.Background()
	f := NewFaulty(NewMemory(), 1)
	if err := f.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	f.FailNext(OpGet, 2)
	for i := range 2 {
		if b, err := f.GetRange(ctx, "k", 0, -1); !errors.Is(err, ErrInjected) || b != nil {
			t.Fatalf("call %d: %q, %v; want ErrInjected and no data", i+1, b, err)
		}
	}
	if b, err := f.GetRange(ctx, "k", 0, -1); err != nil || string(b) != "v" {
		t.Fatalf("third call: %q, %v", b, err)
	}
	if f.Calls(OpGet) != 3 || f.Injected(OpGet) != 2 || f.Calls(OpPut) != 1 {
		t.Fatalf("counts: get %d calls %d injected, put %d calls", f.Calls(OpGet), f.Injected(OpGet), f.Calls(OpPut))
	}
	// Other operations are untouched.
	if _, err := f.Head(ctx, "k"); err != nil {
		t.Fatal(err)
	}
}

// Without AfterEffect a failed Put never reaches the store; with it the
// object is stored and the caller still sees an error.
func TestFaultyAfterEffect(t *testing.T) {
	ctx := context.Background()
	inner := NewMemory()
	f := NewFaulty(inner, 1)
	errTimeout := errors.New("timeout")
	f.SetRule(OpPut, Rule{FailNext: 1, Err: errTimeout})
	if err := f.Put(ctx, "before", []byte("v")); !errors.Is(err, errTimeout) {
		t.Fatalf("Put: %v, want errTimeout", err)
	}
	if _, err := inner.Head(ctx, "before"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a failed Put reached the store: %v", err)
	}
	f.SetRule(OpPut, Rule{FailNext: 1, AfterEffect: true})
	if err := f.Put(ctx, "after", []byte("v")); !errors.Is(err, ErrInjected) {
		t.Fatalf("Put: %v, want ErrInjected", err)
	}
	if _, err := inner.Head(ctx, "after"); err != nil {
		t.Fatalf("an after-effect Put did not reach the store: %v", err)
	}
}

// The same seed gives the same decisions.
func TestFaultyDeterministic(t *testing.T) {
	ctx := context.Background()
	run := func(seed uint64) []bool {
		f := NewFaulty(NewMemory(), seed)
		f.SetRule(OpHead, Rule{FailRate: 0.5})
		var out []bool
		for range 64 {
			_, err := f.Head(ctx, "k")
			out = append(out, errors.Is(err, ErrInjected))
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 replayed differently at call %d", i)
		}
		if a[i] {
			fails++
		}
	}
	if fails < 10 || fails > 54 {
		t.Fatalf("FailRate 0.5 failed %d of 64 calls", fails)
	}
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Fatal("seeds 7 and 8 made identical decisions")
	}
}

func TestFaultyLatencyRespectsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewFaulty(NewMemory(), 1)
		f.SetLatency(OpGet, time.Hour)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := f.GetRange(ctx, "k", 0, -1)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("GetRange: %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("returned after %v, want 1s", d)
		}
		f.SetLatency(OpGet, 10*time.Millisecond)
		start = time.Now()
		if _, err := f.GetRange(context.Background(), "k", 0, -1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetRange: %v, want ErrNotFound from the inner store", err)
		}
		if d := time.Since(start); d != 10*time.Millisecond {
			t.Fatalf("latency %v, want 10ms", d)
		}
	})
}

func TestInstrumentCounts(t *testing.T) {
	ctx := context.Background()
	get := func(name string) uint64 { return metrics.GetOrCreateCounter(name).Get() }
	const (
		putReq  = `sluice_objstore_requests_total{op="put"}`
		getReq  = `sluice_objstore_requests_total{op="get"}`
		headReq = `sluice_objstore_requests_total{op="head"}`
		getErr  = `sluice_objstore_errors_total{op="get"}`
		headErr = `sluice_objstore_errors_total{op="head"}`
		putB    = `sluice_objstore_bytes_total{op="put"}`
		getB    = `sluice_objstore_bytes_total{op="get"}`
	)
	names := []string{putReq, getReq, headReq, getErr, headErr, putB, getB}
	before := map[string]uint64{}
	for _, n := range names {
		before[n] = get(n)
	}
	f := NewFaulty(NewMemory(), 1)
	s := Instrument(f)
	if err := s.Put(ctx, "k", make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRange(ctx, "k", 10, 30); err != nil {
		t.Fatal(err)
	}
	f.FailNext(OpGet, 1)
	if _, err := s.GetRange(ctx, "k", 0, -1); err == nil {
		t.Fatal("injected failure did not surface")
	}
	if _, err := s.Head(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	want := map[string]uint64{putReq: 1, getReq: 2, headReq: 1, getErr: 1, headErr: 0, putB: 100, getB: 30}
	for _, n := range names {
		if d := get(n) - before[n]; d != want[n] {
			t.Errorf("%s grew by %d, want %d", n, d, want[n])
		}
	}
}

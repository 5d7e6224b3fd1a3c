package bench

import (
	"testing"
	"time"
)

func TestSummaryPercentiles(t *testing.T) {
	var l Latencies
	for i := 1000; i >= 1; i-- { // out of order on purpose
		l.Record(time.Duration(i) * time.Millisecond)
	}
	s := l.Summary()
	want := Summary{Count: 1000, P50: 500 * time.Millisecond, P90: 900 * time.Millisecond,
		P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: 1000 * time.Millisecond}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	var empty Latencies
	if s := empty.Summary(); s.Count != 0 {
		t.Fatalf("empty: %+v", s)
	}
	one := Latencies{}
	one.Record(time.Second)
	if s := one.Summary(); s.P50 != time.Second || s.Max != time.Second {
		t.Fatalf("one sample: %+v", s)
	}
}

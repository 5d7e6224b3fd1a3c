package pipeline_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"sluice.dev/objstore"
	"sluice.dev/pipeline"
)

// waitAnswered sleeps (in the bubble's time) in steps of step until a is
// answered, and fails after limit.
func waitAnswered(t *testing.T, a *ack, step, limit time.Duration) {
	t.Helper()
	for end := time.Now().Add(limit); !a.called(); time.Sleep(step) {
		if time.Now().After(end) {
			t.Fatalf("not answered within %v", limit)
		}
		synctest.Wait()
	}
}

// A small early seal waits until requests stop arriving (2 ms without
// one, at most 10 ms after the stall), so that clients answered together
// by the last seal, whose next requests arrive a few milliseconds apart,
// share the next one too instead of splitting into cohorts a round apart.
func TestEarlySealGathersArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 4)
		mem := objstore.NewMemory()
		p := e.start(pipeline.Config{FlushInterval: time.Minute, EarlySealsPerSecond: 8}, mem, nil)

		b := e.batch(0, 1, 10)
		first := mustAppend(t, p, []pipeline.Batch{b})
		p.SealIfAtLeast(1 << 20)
		tags := []int64{tagOf(b)}
		for part := range int32(3) {
			time.Sleep(time.Millisecond)
			b := e.batch(part+1, 1, 10)
			mustAppend(t, p, []pipeline.Batch{b})
			tags = append(tags, tagOf(b))
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if first.called() || len(listSegments(t, mem)) != 0 {
			t.Fatal("sealed 1 ms after a request arrived: the seal did not wait for the rest")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		segs := listSegments(t, mem)
		if len(segs) != 1 || !first.called() {
			t.Fatalf("%d segments 2 ms after the last request, want 1 (answered: %v)", len(segs), first.called())
		}
		for _, tag := range tags {
			if !segs[0].has(tag) {
				t.Errorf("batch %d not in the early-sealed segment", tag)
			}
		}

		// Requests that never stop: the seal waits at most 10 ms.
		stallAt := time.Now()
		b = e.batch(0, 1, 10)
		first = mustAppend(t, p, []pipeline.Batch{b})
		p.SealIfAtLeast(1 << 20)
		for !first.called() {
			if time.Since(stallAt) > 11*time.Millisecond {
				t.Fatalf("a stalled client waited %v for its seal while requests kept arriving", time.Since(stallAt))
			}
			time.Sleep(time.Millisecond)
			mustAppend(t, p, []pipeline.Batch{e.batch(1, 1, 10)})
			synctest.Wait()
		}
	})
}

// Past the budget's burst, a stalled client's small segments are sealed
// as the budget refills, evenly, rather than at the flush interval; and
// seals in all (early and interval) stay within the budget:
// EarlySealsPerSecond + 1/FlushInterval a second, after a burst of one
// second's worth.
func TestEarlySealsPacedAtTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, 4)
		mem := objstore.NewMemory()
		const (
			interval = 250 * time.Millisecond
			early    = 8
			rate     = early + float64(time.Second/interval) // 12 a second
			run      = 10 * time.Second
		)
		p := e.start(pipeline.Config{FlushInterval: interval, EarlySealsPerSecond: early}, mem, nil)

		// A client with one request in flight that stalls on every one
		// (sarama's idempotent producer, or librdkafka's partitions).
		pacedBefore := pacedSeals(t)
		start := time.Now()
		rounds := 0
		var slowest time.Duration
		for time.Since(start) < run {
			sent := time.Now()
			a := mustAppend(t, p, []pipeline.Batch{e.batch(int32(rounds%4), 1, 10)})
			p.SealIfAtLeast(1 << 20)
			waitAnswered(t, a, time.Millisecond, time.Second)
			if rounds >= int(rate) { // past the burst
				slowest = max(slowest, time.Since(sent))
			}
			rounds++
		}
		elapsed := time.Since(start)
		segs := len(listSegments(t, mem))
		if ceiling := int(rate) + int(rate*elapsed.Seconds()) + 1; segs > ceiling {
			t.Errorf("%d segments in %v, over the budget's %d", segs, elapsed, ceiling)
		}
		// The interval alone would have answered about 4 a second.
		if floor := int(rate * run.Seconds() * 0.9); segs < floor {
			t.Errorf("%d segments in %v, want at least %d: the budget was not spent", segs, elapsed, floor)
		}
		// A round takes one token's time (83 ms), plus the gathering.
		if limit := time.Second/time.Duration(rate) + 12*time.Millisecond; slowest > limit {
			t.Errorf("slowest round past the burst %v, want at most %v (paced, not the %v interval)", slowest, limit, interval)
		}
		// Every seal past the burst waited for the budget, and says so.
		if paced := pacedSeals(t) - pacedBefore; paced < segs-int(rate)-2 || paced > segs {
			t.Errorf("sluice_early_seals_paced_total rose by %d for %d segments after a burst of %d", paced, segs, int(rate))
		}
		t.Logf("%d rounds, %d segments in %v; slowest round past the burst %v", rounds, segs, elapsed, slowest)
	})
}

// pacedSeals reads sluice_early_seals_paced_total.
func pacedSeals(t *testing.T) int {
	t.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "sluice_early_seals_paced_total "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("sluice_early_seals_paced_total %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("sluice_early_seals_paced_total not exported")
	return 0
}

package pipeline

import (
	"testing"
	"time"
)

// The early-seal budget: a burst of one second's worth (at least one),
// then rate a second; off when the rate is not positive.
func TestTokenBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b tokenBucket
	for i := range 4 {
		if !b.take(t0, 4) {
			t.Fatalf("burst take %d refused", i)
		}
	}
	if b.take(t0, 4) {
		t.Fatal("fifth take in the same instant allowed at 4 a second")
	}
	if b.take(t0.Add(200*time.Millisecond), 4) {
		t.Fatal("a token after 200 ms at 4 a second")
	}
	if !b.take(t0.Add(260*time.Millisecond), 4) {
		t.Fatal("no token after 260 ms at 4 a second")
	}
	// Idle for a minute: the burst is still one second's worth.
	n := 0
	for b.take(t0.Add(time.Minute), 4) {
		n++
	}
	if n != 4 {
		t.Fatalf("%d tokens after a minute idle, want 4", n)
	}
	var slow tokenBucket
	if !slow.take(t0, 0.01) || slow.take(t0.Add(time.Second), 0.01) {
		t.Fatal("rate 0.01: want one token, then none a second later")
	}
	var off tokenBucket
	if off.take(t0, -1) || off.take(t0, 0) {
		t.Fatal("a token with the budget off")
	}

	// spend goes into debt; wait says when the next take succeeds.
	var d tokenBucket
	d.spend(t0, 4) // from the burst of 4: 3 left
	d.spend(t0, 4)
	d.spend(t0, 4)
	d.spend(t0, 4)
	d.spend(t0, 4) // one in debt
	if w := d.wait(t0, 4); w <= 499*time.Millisecond || w > 501*time.Millisecond {
		t.Fatalf("wait %v one token in debt at 4 a second, want 500 ms", w)
	}
	if d.take(t0.Add(499*time.Millisecond), 4) || !d.take(t0.Add(501*time.Millisecond), 4) {
		t.Fatal("take before or after the wait")
	}
	if w := d.wait(t0.Add(501*time.Millisecond), 4); w <= 0 {
		t.Fatalf("wait %v with no token, want more than 0", w)
	}
}

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
}

// wait says how long until take succeeds: 0 with a token, the time to the
// next one without, -1 with the budget off; it takes nothing.
func TestTokenBucketWait(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var b tokenBucket
	if w := b.wait(t0, 4); w != 0 {
		t.Fatalf("full bucket: wait %v, want 0", w)
	}
	for range 4 {
		b.take(t0, 4)
	}
	w := b.wait(t0, 4)
	if w < 250*time.Millisecond || w > 260*time.Millisecond {
		t.Fatalf("empty bucket at 4 a second: wait %v, want about 250 ms", w)
	}
	if b.take(t0.Add(w-2*time.Millisecond), 4) {
		t.Fatal("a token before the wait was over")
	}
	if !b.take(t0.Add(w), 4) {
		t.Fatal("no token once the wait was over")
	}
	var off tokenBucket
	if off.wait(t0, 0) != -1 || off.wait(t0, -1) != -1 {
		t.Fatal("budget off: want -1")
	}
}

package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Op names a Store operation, for fault rules and metric labels.
type Op uint8

// The operations of Store (Close is never faulted or counted).
const (
	OpPut Op = iota
	OpGet    // GetRange
	OpHead
	OpDelete
	OpList
	numOps
)

var opNames = [numOps]string{"put", "get", "head", "delete", "list"}

func (o Op) String() string {
	if o < numOps {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// ErrInjected is what a failing call of a Faulty store returns unless its
// Rule names another error.
var ErrInjected = errors.New("objstore: injected fault")

// Rule says how one operation of a Faulty store misbehaves. The zero Rule
// passes every call through untouched.
type Rule struct {
	// FailNext fails the next FailNext calls; it counts down as they fail.
	FailNext int
	// FailRate fails each further call with this probability (0 to 1),
	// drawn from the store's seeded generator.
	FailRate float64
	// Err is what a failed call returns (wrapped); ErrInjected when nil.
	Err error
	// AfterEffect makes a failing call run on the inner store first and
	// then report failure, as when S3 applied a PUT and the reply was lost.
	// Without it a failing call never reaches the inner store.
	AfterEffect bool
	// Latency is added before every call, failing or not. A call whose
	// context ends during the wait returns the context's error.
	Latency time.Duration
}

// Faulty wraps a Store and injects errors and latency per operation, for
// tests in any package. Decisions come from a generator seeded by the
// caller, so a single-goroutine test replays exactly; with concurrent
// callers the sequence of decisions is the same but which call gets which
// depends on scheduling.
//
// Calls counts every call that reached the wrapper, failed or not, which
// makes Faulty double as the counting store tests need.
type Faulty struct {
	inner Store

	mu    sync.Mutex
	rng   *rand.Rand   // guarded by mu
	rules [numOps]Rule // guarded by mu

	calls    [numOps]atomic.Int64
	injected [numOps]atomic.Int64
}

var _ Store = (*Faulty)(nil)

// NewFaulty wraps inner. seed fixes the sequence of FailRate decisions;
// print it when a randomised test fails.
func NewFaulty(inner Store, seed uint64) *Faulty {
	return &Faulty{inner: inner, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetRule replaces the rule for op.
func (f *Faulty) SetRule(op Op, r Rule) {
	f.mu.Lock()
	f.rules[op] = r
	f.mu.Unlock()
}

// FailNext makes the next n calls of op fail with ErrInjected (or the
// rule's Err), keeping the rest of op's rule.
func (f *Faulty) FailNext(op Op, n int) {
	f.mu.Lock()
	f.rules[op].FailNext = n
	f.mu.Unlock()
}

// SetLatency sets the latency added to every call of op, keeping the rest
// of op's rule.
func (f *Faulty) SetLatency(op Op, d time.Duration) {
	f.mu.Lock()
	f.rules[op].Latency = d
	f.mu.Unlock()
}

// Reset clears every rule (counters are kept).
func (f *Faulty) Reset() {
	f.mu.Lock()
	f.rules = [numOps]Rule{}
	f.mu.Unlock()
}

// Calls returns how many calls of op reached the wrapper.
func (f *Faulty) Calls(op Op) int64 { return f.calls[op].Load() }

// Injected returns how many calls of op were made to fail.
func (f *Faulty) Injected(op Op) int64 { return f.injected[op].Load() }

// Inner returns the wrapped store.
func (f *Faulty) Inner() Store { return f.inner }

// before counts the call, waits out the latency and decides its fate:
// a non-nil fault means fail (after the inner call when after is set).
func (f *Faulty) before(ctx context.Context, op Op) (fault error, after bool, err error) {
	f.calls[op].Add(1)
	f.mu.Lock()
	r := &f.rules[op]
	latency := r.Latency
	fail := false
	switch {
	case r.FailNext > 0:
		r.FailNext--
		fail = true
	case r.FailRate > 0:
		fail = f.rng.Float64() < r.FailRate
	}
	if fail {
		fault = r.Err
		if fault == nil {
			fault = ErrInjected
		}
		after = r.AfterEffect
	}
	f.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false, ctx.Err()
		}
	}
	if fault != nil {
		f.injected[op].Add(1)
		fault = fmt.Errorf("objstore: faulty %s: %w", op, fault)
	}
	return fault, after, nil
}

// Put implements Store.
func (f *Faulty) Put(ctx context.Context, key string, data []byte) error {
	fault, after, err := f.before(ctx, OpPut)
	if err != nil {
		return err
	}
	if fault != nil && !after {
		return fault
	}
	if err := f.inner.Put(ctx, key, data); err != nil {
		return err
	}
	return fault
}

// PutReader implements Store under OpPut's rule: a fault without
// AfterEffect fails it before r is read.
func (f *Faulty) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	fault, after, err := f.before(ctx, OpPut)
	if err != nil {
		return err
	}
	if fault != nil && !after {
		return fault
	}
	if err := f.inner.PutReader(ctx, key, r, size); err != nil {
		return err
	}
	return fault
}

// GetRange implements Store.
func (f *Faulty) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	fault, after, err := f.before(ctx, OpGet)
	if err != nil {
		return nil, err
	}
	if fault != nil && !after {
		return nil, fault
	}
	b, err := f.inner.GetRange(ctx, key, off, length)
	if err != nil {
		return nil, err
	}
	if fault != nil {
		return nil, fault // reads are never partial, faulty or not
	}
	return b, nil
}

// Head implements Store.
func (f *Faulty) Head(ctx context.Context, key string) (ObjectInfo, error) {
	fault, after, err := f.before(ctx, OpHead)
	if err != nil {
		return ObjectInfo{}, err
	}
	if fault != nil && !after {
		return ObjectInfo{}, fault
	}
	info, err := f.inner.Head(ctx, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if fault != nil {
		return ObjectInfo{}, fault
	}
	return info, nil
}

// Delete implements Store.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	fault, after, err := f.before(ctx, OpDelete)
	if err != nil {
		return err
	}
	if fault != nil && !after {
		return fault
	}
	if err := f.inner.Delete(ctx, key); err != nil {
		return err
	}
	return fault
}

// List implements Store. With AfterEffect, fn sees the whole listing and
// List then fails, as when a paginated listing breaks on its last page.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	fault, after, err := f.before(ctx, OpList)
	if err != nil {
		return err
	}
	if fault != nil && !after {
		return fault
	}
	if err := f.inner.List(ctx, prefix, fn); err != nil {
		return err
	}
	return fault
}

// Close closes the inner store; it is never faulted.
func (f *Faulty) Close() error { return f.inner.Close() }

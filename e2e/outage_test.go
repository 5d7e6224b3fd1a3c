package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/loadtest"
)

// produceTimes is a franz-go hook that records, for every produce request
// on the wire, how long the agent took to answer it (from the end of the
// write to the end of the read: the client's own queueing is left out),
// and which requests got no answer at all.
type produceTimes struct {
	mu       sync.Mutex
	n        int
	max      time.Duration
	noAnswer []error
}

func (p *produceTimes) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	if key != 0 { // Produce
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.WriteErr != nil {
		return // never sent: nothing for the agent to answer
	}
	p.n++
	if e.ReadErr != nil {
		p.noAnswer = append(p.noAnswer, e.ReadErr)
		return
	}
	p.max = max(p.max, e.ReadWait+e.TimeToRead)
}

func (p *produceTimes) snapshot() (n int, longest time.Duration, noAnswer []error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.max, append([]error(nil), p.noAnswer...)
}

// TestMetaOutageManyProducers (issue 11, item 7): six idempotent
// producers keep writing to six partitions of an agent while its meta is
// killed for 22 s and started again. Every produce request the agent
// receives is answered within the request's timeout (plus slack for a
// loaded machine), even those queued behind other segments during the
// outage (before the fix, the n-th queued segment was answered after n
// commit timeouts, ~10 s apart); nothing is acknowledged that is not in
// the log after meta returns, offsets stay dense; and produce succeeds
// again within 5 s of meta's return.
func TestMetaOutageManyProducers(t *testing.T) {
	t.Parallel() // mostly waiting on meta's outage: runs beside the load tests (see TestLoadtest)
	const (
		producers  = 6
		partitions = 6
		// Longer than the agent's 10 s commit timeout, so it is the
		// agent's bound on queued segments that answers, not the
		// request's own timer (both are exercised by pipeline tests).
		reqTimeout = 12 * time.Second
		slack      = 3 * time.Second
		outage     = 22 * time.Second
		topic      = "outage-many"
	)
	dir := t.TempDir()
	store, maddr := filepath.Join(dir, "meta"), freePort(t)
	m := startMeta(t, "meta", store, maddr)
	key := createKey(t, maddr, "outage-many")
	a := startAgent(t, "agent-outage-many", maddr, key, "file://"+filepath.Join(dir, "bucket"))
	bootstrap := a.lines["bootstrap"]
	ctx := testCtx(t, 3*time.Minute)

	admin, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}

	oracle := &loadtest.Oracle{}
	timing := &produceTimes{}
	var ackMu sync.Mutex
	var lastAck time.Time
	var acked, failed int
	var firstFail error // the first failure other than our own cancellation at the end
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
			kgo.ProduceRequestTimeout(reqTimeout), kgo.RequestTimeoutOverhead(10*time.Second),
			kgo.RecordDeliveryTimeout(50*time.Second), kgo.ProducerLinger(time.Second),
			kgo.MaxBufferedRecords(2000), kgo.WithHooks(timing))
		// A 1 s linger makes each client send a request about every
		// second, so during the outage its five in-flight requests sit in
		// five different segments queued one behind the other (a short
		// linger puts them all in one segment and hides the bug).
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() { <-stop; cancel() }()
			var inflight sync.WaitGroup
			for i := 0; pctx.Err() == nil; i++ {
				inflight.Add(1)
				cl.Produce(pctx, &kgo.Record{Value: fmt.Appendf(nil, "p%d-%07d", w, i)}, func(r *kgo.Record, err error) {
					defer inflight.Done()
					ackMu.Lock()
					defer ackMu.Unlock()
					if err != nil {
						failed++
						if !errors.Is(err, context.Canceled) && firstFail == nil {
							firstFail = err
						}
						return
					}
					acked++
					lastAck = time.Now()
					oracle.Ack(loadtest.TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.Value)
				})
				time.Sleep(4 * time.Millisecond)
			}
			// Whatever is buffered finishes (or fails) within its
			// delivery timeout.
			inflight.Wait()
		}()
	}
	acks := func() (int, int, time.Time) {
		ackMu.Lock()
		defer ackMu.Unlock()
		return acked, failed, lastAck
	}

	time.Sleep(2 * time.Second)
	if n, _, _ := acks(); n == 0 {
		t.Fatal("nothing acknowledged before the outage")
	}
	m.kill()
	down := time.Now()
	time.Sleep(outage)
	beforeReturn, failedDuring, _ := acks()
	m = startMeta(t, "meta-restarted", store, maddr)
	back := time.Now()
	t.Logf("meta down for %v; %d acknowledged, %d failed so far", back.Sub(down).Round(100*time.Millisecond), beforeReturn, failedDuring)

	// Produce resumes: a record acknowledged after meta's return.
	var resumed time.Duration
	for {
		if _, _, last := acks(); last.After(back) {
			resumed = last.Sub(back)
			break
		}
		if time.Since(back) > 30*time.Second {
			t.Fatalf("no produce acknowledged in 30 s after meta returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Let the backlog drain, then stop producing.
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	n, longest, noAnswer := timing.snapshot()
	total, totalFailed, _ := acks()
	ackMu.Lock()
	ff := firstFail
	ackMu.Unlock()
	// Records still buffered when the producers stop fail with
	// context.Canceled; any other failure is reported (a record that
	// failed was never acknowledged, so it cannot break the oracle).
	t.Logf("%d produce requests, longest answer %v, %d without an answer; %d records acknowledged, %d failed (first not cancelled: %v); produce resumed %v after meta returned",
		n, longest.Round(10*time.Millisecond), len(noAnswer), total, totalFailed, ff, resumed.Round(10*time.Millisecond))
	if len(noAnswer) > 0 {
		t.Errorf("%d produce requests got no answer, first: %v", len(noAnswer), noAnswer[0])
	}
	if longest > reqTimeout+slack {
		t.Errorf("a produce request was answered after %v: past its %v timeout (+%v slack)", longest, reqTimeout, slack)
	}
	if resumed > 5*time.Second {
		t.Errorf("produce resumed %v after meta returned, want within 5 s", resumed)
	}
	verify(t, oracle, consumeAll(t, bootstrap, topic))
	a.stop(t)
	m.stop(t)
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"sluice.dev/loadtest"
)

// produceUntil produces to topic until stop is closed, telling the oracle
// about every record whose produce was acknowledged. It returns how many
// were acknowledged and how many failed.
func produceUntil(t *testing.T, bootstrap, topic string, stop <-chan struct{}, oracle *loadtest.Oracle) (int, int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordRetries(3), kgo.RequestTimeoutOverhead(2*time.Second), kgo.RecordDeliveryTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var mu sync.Mutex
	acked, failed := 0, 0
	var wg sync.WaitGroup
	// Produce blocks while the client's buffer is full (a dead agent);
	// stopping cancels that wait.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	sent := 0
	for ctx.Err() == nil {
		v := fmt.Sprintf("v-%08d", sent)
		sent++
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				return
			}
			acked++
			oracle.Ack(loadtest.TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.Offset, r.Value)
		})
		if sent%200 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// Records in flight when the agent died fail within their delivery
	// timeout; closing the client fails whatever is left. Either way they
	// were not acknowledged.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cl.Close()
		<-done
	}
	return acked, failed
}

// consumeAll reads a topic from the start until no record arrives for a
// while, returning records by partition in offset order.
func consumeAll(t *testing.T, bootstrap, topic string) map[loadtest.TopicPartition][]loadtest.Consumed {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[loadtest.TopicPartition][]loadtest.Consumed{}
	idle := 0
	deadline := time.Now().Add(90 * time.Second)
	for idle < 4 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		f := cl.PollFetches(ctx)
		cancel()
		f.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		if f.NumRecords() == 0 {
			idle++
			continue
		}
		idle = 0
		f.EachRecord(func(r *kgo.Record) {
			tp := loadtest.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			out[tp] = append(out[tp], loadtest.Consumed{Offset: r.Offset, Value: r.Value})
		})
	}
	return out
}

// verify fails the test on any loss, gap or changed record.
func verify(t *testing.T, oracle *loadtest.Oracle, log map[loadtest.TopicPartition][]loadtest.Consumed) {
	t.Helper()
	if errs := oracle.Verify(log, nil, 10); len(errs) > 0 {
		t.Fatalf("%d problems, first: %v", len(errs), errs)
	}
}

// TestKill9KeepsAcknowledged kills the playground with SIGKILL in the
// middle of a produce load, restarts it on the same data directory, and
// checks that every acknowledged record is there at its offset and that
// offsets stay dense, then that producing resumes after them.
func TestKill9KeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	pg := startPlayground(t, dir, "--default-partitions", "8")
	stop := make(chan struct{})
	go func() {
		time.Sleep(3 * time.Second)
		pg.cmd.Process.Signal(syscall.SIGKILL)
		close(stop)
	}()
	var oracle loadtest.Oracle
	acked, failed := produceUntil(t, pg.bootstrap, "crash", stop, &oracle)
	<-pg.exited
	t.Logf("before kill -9: %d acknowledged, %d failed", acked, failed)
	if acked < 100 {
		t.Fatalf("only %d records acknowledged before the kill: load too light to test anything", acked)
	}

	pg2 := startPlayground(t, dir, "--default-partitions", "8")
	got := consumeAll(t, pg2.bootstrap, "crash")
	verify(t, &oracle, got)
	total := 0
	for _, recs := range got {
		total += len(recs)
	}
	t.Logf("after restart: %d records stored (%d acknowledged)", total, acked)

	// The log goes on from where it was.
	stop2 := make(chan struct{})
	go func() { time.Sleep(time.Second); close(stop2) }()
	more, _ := produceUntil(t, pg2.bootstrap, "crash", stop2, &oracle)
	if more == 0 {
		t.Fatal("no produce acknowledged after restart")
	}
	verify(t, &oracle, consumeAll(t, pg2.bootstrap, "crash"))
}

// TestSigtermRestartKeepsEverything stops the playground with SIGTERM while
// producers are active; it exits cleanly, and after a restart every topic
// and every acknowledged record is there.
func TestSigtermRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	pg := startPlayground(t, dir, "--default-partitions", "4")
	stop := make(chan struct{})
	var stopped sync.WaitGroup
	stopped.Add(1)
	go func() {
		defer stopped.Done()
		time.Sleep(2 * time.Second)
		pg.stop(t)
		close(stop)
	}()
	var oracle loadtest.Oracle
	acked, _ := produceUntil(t, pg.bootstrap, "graceful", stop, &oracle)
	stopped.Wait()
	if acked == 0 {
		t.Fatal("nothing acknowledged")
	}
	pg2 := startPlayground(t, dir, "--default-partitions", "4")
	got := consumeAll(t, pg2.bootstrap, "graceful")
	if len(got) != 4 {
		t.Fatalf("data in %d partitions after restart, want 4", len(got))
	}
	verify(t, &oracle, got)
}

// The reproduction of issue 11 finding 1: an idempotent producer (franz-go
// defaults) writes to a topic, a group commits offsets for it, kadm
// deletes it, the playground stops with SIGTERM and must start again on
// the same data directory (it refused with "store corrupt: key ... names
// no partition"), with the other topic's data intact.
func TestDeleteTopicThenRestart(t *testing.T) {
	dir := t.TempDir()
	pg := startPlayground(t, dir, "--default-partitions", "2")
	ctx := testCtx(t, 60*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(pg.bootstrap), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, topic := range []string{"doomed", "kept"} {
		for i := range 20 {
			r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%d", topic, i)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", topic, err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "doomed", Partition: 0, At: 5})
	offs.Add(kadm.Offset{Topic: "kept", Partition: 0, At: 5})
	if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatalf("commit offsets: %v", err)
	}
	if rs, err := adm.DeleteTopics(ctx, "doomed"); err != nil || rs["doomed"].Err != nil {
		t.Fatalf("DeleteTopics: %v %v", err, rs)
	}
	cl.Close()
	pg.stop(t)

	pg2 := startPlayground(t, dir, "--default-partitions", "2")
	if !strings.Contains(pg2.stderr.String(), "dropped records") {
		// Nothing to drop: the delete removed everything itself.
		t.Logf("restart logged no leftovers, as expected")
	} else {
		t.Errorf("the delete left records behind:\n%s", pg2.stderr.String())
	}
	got := consumeAll(t, pg2.bootstrap, "kept")
	n := 0
	for _, recs := range got {
		n += len(recs)
	}
	if n != 20 {
		t.Fatalf("kept topic: %d records after restart, want 20", n)
	}
	cl2, err := kgo.NewClient(kgo.SeedBrokers(pg2.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	fo, err := kadm.NewClient(cl2).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fo.Lookup("doomed", 0); ok {
		t.Errorf("offsets of the deleted topic survived: %+v", fo)
	}
	if o, ok := fo.Lookup("kept", 0); !ok || o.At != 5 {
		t.Errorf("offsets of the kept topic: %+v", fo)
	}
}

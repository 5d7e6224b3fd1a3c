// Command sarama_latency measures produce latency of an IBM/sarama async
// producer against a Kafka bootstrap address: sarama's defaults (acks=1,
// not idempotent, five requests in flight per broker) except a 5 ms
// flush frequency (its linger), 1 KiB values keyed over 64 keys into a
// fresh 16-partition topic at a fixed rate. Each record is timed from
// when it is due (before a send that sarama may block) to its success;
// the first -warmup is not counted. Prints one
// line with n, errors, p50, p99 and max.
//
//	go run ./bench/scripts/sarama_latency -brokers 127.0.0.1:9092 -rate 5000
//
// Used for BENCHMARKS.md "Produce latency with idempotent clients".
package main

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap address")
	rate := flag.Int("rate", 5000, "records a second")
	dur := flag.Duration("duration", 15*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "time before measuring")
	parts := flag.Int("partitions", 16, "partitions of the fresh topic")
	size := flag.Int("size", 1024, "value bytes")
	linger := flag.Duration("linger", 5*time.Millisecond, "Producer.Flush.Frequency")
	idem := flag.Bool("idempotent", false, "Producer.Idempotent (needs MaxOpenRequests 1 and acks=all)")
	flag.Parse()

	cfg := sarama.NewConfig()
	cfg.Producer.Flush.Frequency = *linger
	cfg.Producer.Return.Successes = true // needed to see acknowledgements
	if *idem {
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.MaxOpenRequests = 1
		cfg.Version = sarama.V2_8_0_0
	}
	topic := fmt.Sprintf("sarlat-%08x", rand.Uint32())
	adm, err := sarama.NewClusterAdmin([]string{*brokers}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(*parts), ReplicationFactor: 1}, false); err != nil {
		log.Fatal(err)
	}
	_ = adm.Close()
	time.Sleep(time.Second) // the agents' metadata views
	p, err := sarama.NewAsyncProducer([]string{*brokers}, cfg)
	if err != nil {
		log.Fatal(err)
	}
	value := make([]byte, *size)
	// One goroutine takes every acknowledgement while the loop below
	// sends. The loop used to take them itself between non-blocking
	// sends, waiting up to a millisecond for one whenever sarama's
	// (unbuffered) Input was not ready: that capped it at 1,000 to 2,000
	// records a second against any broker, kfake in memory included, so
	// its figures measured the harness more than the broker.
	var lat []time.Duration
	errs := 0
	start := time.Now()
	countFrom := start.Add(*warmup)
	end := countFrom.Add(*dur)
	acked := make(chan struct{})
	var nAcked atomic.Int64
	go func() {
		defer close(acked)
		succ, fail := p.Successes(), p.Errors()
		for succ != nil || fail != nil {
			select {
			case m, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				if t0 := m.Metadata.(time.Time); !t0.Before(countFrom) {
					lat = append(lat, time.Since(t0))
				}
				nAcked.Add(1)
			case _, ok := <-fail:
				if !ok {
					fail = nil
					continue
				}
				errs++
				nAcked.Add(1)
			}
		}
	}()
	// Each record is stamped when it is due, before a send that may block
	// (sarama's backpressure counts as latency), and sent in order.
	sent := 0
	for now := time.Now(); now.Before(end); now = time.Now() {
		due := int(now.Sub(start).Seconds() * float64(*rate))
		for ; sent < due; sent++ {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("k%02d", sent%64)), Value: sarama.ByteEncoder(value), Metadata: time.Now()}
		}
		next := start.Add(time.Duration(float64(sent+1) / float64(*rate) * float64(time.Second)))
		time.Sleep(min(max(time.Until(next), 100*time.Microsecond), time.Until(end)))
	}
	took := time.Since(start)
	p.AsyncClose() // flushes, then closes Successes and Errors
	select {
	case <-acked:
	case <-time.After(time.Minute):
		log.Fatalf("%d of %d acknowledged a minute after the run", nAcked.Load(), sent)
	}
	if over := took - (*warmup + *dur); over > time.Second {
		log.Printf("sending took %v, %v longer than asked: sarama pushed back", took, over)
	}
	slices.Sort(lat)
	q := func(x float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(x*float64(len(lat))))]
	}
	fmt.Printf("sarama idempotent=%v rate=%d n=%d errors=%d p50_ms=%d p99_ms=%d max_ms=%d\n", *idem, *rate, len(lat), errs,
		q(0.5).Milliseconds(), q(0.99).Milliseconds(), q(1).Milliseconds())
	if errs > 0 {
		os.Exit(1)
	}
}

package agent_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// vmRSS reads the process's resident set size from /proc/self/status.
func vmRSS(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse %s: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// metricValue reads one series of the process's /metrics.
func metricValue(t *testing.T, series string) float64 {
	t.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	return 0
}

// fetchRequest is a Fetch v11 for partition 0 of topic from offset 0,
// answering at once (MaxWait 0) with up to maxBytes.
func fetchRequest(topic string, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(11)
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = 0
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = maxBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// Issue 11, part 2: a client that pipelines requests and never reads the
// answers grew the agent without bound (5,000 pipelined 1 MiB Fetches made
// 5,000 goroutines, and every built response stayed on the heap in
// conn.pending and gnet's outbound buffer: 2,000 of them grew the RSS by
// about 2 GiB, and another client's requests took seconds). Now the
// connection stops being served at 32 requests in flight or 64 MiB unsent,
// fetch responses hold budget until they leave the outbound buffer, and
// the other client is served as usual; once the flooding client reads, it
// gets every answer in order.
func TestPipelinedFetchesNeverRead(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 5 GB through loopback")
	}
	const (
		cacheBytes    = 128 << 20
		inflightBytes = 64 << 20
		fetchBytes    = 1 << 20
		// The agent's default per-connection bound on unsent bytes.
		connUnsent = 64 << 20
	)
	requests := 5000
	if raceEnabled {
		requests = 300 // still five times the per-connection bound
	}
	// The flooding client reads only at the end: not a slow client to close.
	c := startCluster(t, t.TempDir(), agent.Config{CacheBytes: cacheBytes, MaxInFlightBytes: inflightBytes, SlowClientTimeout: 10 * time.Minute})
	createTopic(t, c.addr(), "flood", 1)
	// 2 MiB of records, in 64 KiB batches: every fetch from offset 0
	// answers about 1 MiB.
	for range 4 {
		var recs []byte
		for range 8 {
			recs = kafkatest.AppendBatch(recs, kafkatest.BatchOpts{Records: 16, ValueSize: 4 << 10, ProducerID: -1})
		}
		codes, _ := produceRaw(t, c.addr(), "flood", map[int32][]byte{0: recs})
		if codes[0] != 0 {
			t.Fatalf("produce: %v", kerr.ErrorForCode(codes[0]))
		}
	}
	// One fetch warms the cache, so the baseline holds the cached blocks.
	warm, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	r, err := warm.RoundTrip(fetchRequest("flood", fetchBytes), 10*time.Second)
	warm.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.(*kmsg.FetchResponse).Topics[0].Partitions[0].RecordBatches); got < fetchBytes/2 {
		t.Fatalf("warm-up fetch returned %d bytes", got)
	}

	runtime.GC()
	debug.FreeOSMemory()
	base := vmRSS(t, "VmRSS")
	// Reset the peak (VmHWM) so it measures from here (Linux 4.0+).
	hwm := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	baseGoroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap, baseLive := int64(ms.HeapInuse), int64(ms.HeapAlloc)
	limitedBefore := metricValue(t, `sluice_kafka_conn_limited_total{limit="unsent_bytes"}`) +
		metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`)

	// The flood: every request written, nothing read.
	flood, err := net.DialTimeout("tcp", c.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	var frames []byte
	for i := range requests {
		frames = appendRequest(frames, int32(i+1), fetchRequest("flood", fetchBytes))
	}
	_ = flood.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := flood.Write(frames); err != nil {
		t.Fatalf("write %d pipelined fetches: %v", requests, err)
	}

	// Sample memory and goroutines from here to the end.
	var peakRSS, peakHeap, peakG atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if v := vmRSS(t, "VmRSS"); v > peakRSS.Load() {
				peakRSS.Store(v)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if h := int64(ms.HeapInuse); h > peakHeap.Load() {
				peakHeap.Store(h)
			}
			if g := int64(runtime.NumGoroutine()); g > peakG.Load() {
				peakG.Store(g)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Wait until the agent has stopped serving the flood (a bound was
	// hit), then give it a moment in that state.
	deadline := time.Now().Add(30 * time.Second)
	for metricValue(t, `sluice_kafka_conn_limited_total{limit="unsent_bytes"}`)+
		metricValue(t, `sluice_kafka_conn_limited_total{limit="inflight_requests"}`) == limitedBefore {
		if time.Now().After(deadline) {
			t.Fatal("the flooding connection never reached a bound")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Meanwhile another client produces and fetches as usual.
	other, err := kafkatest.Dial(c.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for i := range 5 {
		preq := kmsg.NewPtrProduceRequest()
		preq.SetVersion(9)
		preq.Acks = -1
		preq.TimeoutMillis = 10000
		pt := kmsg.NewProduceRequestTopic()
		pt.Topic = "flood"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Records = kafkatest.AppendBatch(nil, kafkatest.BatchOpts{Records: 1, ValueSize: 100, ProducerID: -1})
		pt.Partitions = append(pt.Partitions, pp)
		preq.Topics = append(preq.Topics, pt)
		presp, err := other.RoundTrip(preq, 10*time.Second)
		if err != nil {
			t.Fatalf("produce %d beside the flood: %v", i, err)
		}
		if code := presp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != 0 {
			t.Fatalf("produce %d beside the flood: %v", i, kerr.ErrorForCode(code))
		}
		fresp, err := other.RoundTrip(fetchRequest("flood", 64<<10), 10*time.Second)
		if err != nil {
			t.Fatalf("fetch %d beside the flood: %v", i, err)
		}
		fp := fresp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
		if fp.ErrorCode != 0 || len(fp.RecordBatches) == 0 {
			t.Fatalf("fetch %d beside the flood: %v, %d bytes", i, kerr.ErrorForCode(fp.ErrorCode), len(fp.RecordBatches))
		}
	}
	time.Sleep(time.Second) // the stuck state, sampled
	stuckRSS, stuckG := peakRSS.Load(), peakG.Load()
	// What the stuck connection keeps reachable, without the garbage
	// collector's slack: its unsent bytes, and at most one response past
	// them (the oldest request may exceed its share, fetch.go).
	runtime.GC()
	runtime.ReadMemStats(&ms)
	stuckLive := int64(ms.HeapAlloc) - baseLive
	if stuckLive > connUnsent+2*fetchBytes+16<<20 {
		t.Errorf("the stuck connection keeps %d MiB reachable, bound %d MiB + 2 responses + 16 MiB", stuckLive>>20, connUnsent>>20)
	}

	// The flood's client reads now: every answer, in order.
	withData := 0
	var hdr [4]byte
	body := make([]byte, 0, 2*fetchBytes)
	for i := range requests {
		_ = flood.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.ReadFull(flood, hdr[:]); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > 2*fetchBytes {
			t.Fatalf("response %d is %d bytes", i+1, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(flood, body); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		if corr := int32(binary.BigEndian.Uint32(body)); corr != int32(i+1) {
			t.Fatalf("response %d has correlation id %d", i+1, corr)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(11)
		if err := resp.UnsafeReadFrom(body[4:]); err != nil {
			t.Fatalf("response %d: %v", i+1, err)
		}
		p := resp.Topics[0].Partitions[0]
		if resp.ErrorCode != 0 || p.ErrorCode != 0 {
			t.Fatalf("response %d: %v / %v", i+1, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(p.ErrorCode))
		}
		if len(p.RecordBatches) >= fetchBytes/2 {
			withData++
		}
	}
	close(stop)
	wg.Wait()
	peak := peakRSS.Load()
	if hwm {
		peak = max(peak, vmRSS(t, "VmHWM"))
	}
	bound := int64(cacheBytes + inflightBytes + 100<<20)
	t.Logf("RSS: base %d MiB, peak while stuck +%d MiB, peak overall +%d MiB (bound +%d MiB); Go heap in use: peak +%d MiB, reachable while stuck +%d MiB; goroutines: base %d, peak while stuck %d, peak %d; %d of %d answers carried records",
		base>>20, (stuckRSS-base)>>20, (peak-base)>>20, bound>>20, (peakHeap.Load()-baseHeap)>>20, stuckLive>>20,
		baseGoroutines, stuckG, peakG.Load(), withData, requests)
	if raceEnabled {
		// The race detector's shadow memory is in the RSS, not the heap.
		if grew := peakHeap.Load() - baseHeap; grew > bound {
			t.Errorf("Go heap grew by %d MiB, bound %d MiB", grew>>20, bound>>20)
		}
	} else if peak-base > bound {
		t.Errorf("RSS grew by %d MiB, bound %d MiB", (peak-base)>>20, bound>>20)
	}
	if peakG.Load() >= 1000 {
		t.Errorf("%d goroutines, want under 1000", peakG.Load())
	}
	// A fetch that waited for budget longer than fetchBudgetWait was
	// answered without records (how many depends on the machine's speed,
	// so only logged above); the first ones found the budget free.
	if withData == 0 {
		t.Errorf("no fetch carried records")
	}
}

// appendRequest frames one request (header v1, or v2 when flexible).
func appendRequest(dst []byte, corr int32, req kmsg.Request) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.Key()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(req.GetVersion()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len("flood")))
	dst = append(dst, "flood"...)
	if req.IsFlexible() {
		dst = append(dst, 0)
	}
	dst = req.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

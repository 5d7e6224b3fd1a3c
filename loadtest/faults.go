package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FaultEvent is one injected fault: when, what it hit, and what happened.
type FaultEvent struct {
	Kind   string        `json:"kind"`
	Target string        `json:"target"`
	At     time.Duration `json:"-"` // since the load started
	Took   time.Duration `json:"-"` // until the fault was undone
	AtS    float64       `json:"at_s"`
	TookS  float64       `json:"took_s"`
	Detail string        `json:"detail"`
	Err    string        `json:"error,omitempty"`
}

// runFaults injects the configured faults round robin, one every
// FaultEvery from the start of the load, each running to its end before
// the next begins. No fault starts at or after end; one that started
// before runs to completion (the load goes on until it has).
func (r *runner) runFaults(ctx context.Context, end time.Time) {
	kinds := r.cfg.Faults
	if len(kinds) == 0 {
		return
	}
	next := r.start.Add(r.cfg.FaultEvery)
	for i := 0; next.Before(end); i++ {
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		ev := r.inject(ctx, kinds[i%len(kinds)])
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
		next = next.Add(r.cfg.FaultEvery)
		if now := time.Now(); next.Before(now) {
			next = now
		}
	}
}

// inject runs one fault and describes it.
func (r *runner) inject(ctx context.Context, kind string) FaultEvent {
	ev := FaultEvent{Kind: kind, At: time.Since(r.start)}
	r.current.Store(&kind)
	defer r.current.Store(nil)
	var err error
	switch kind {
	case FaultKillAgent:
		err = r.killAgent(ctx, &ev)
	case FaultRestartMeta:
		err = r.restartMeta(ctx, &ev)
	case FaultStoreErrors:
		err = r.storeErrors(ctx, &ev)
	case FaultStallClient:
		err = r.stallClient(ctx, &ev)
	case FaultKillJobsAgent:
		err = r.killJobsAgent(ctx, &ev)
	}
	ev.Took = time.Since(r.start) - ev.At
	ev.AtS, ev.TookS = ev.At.Seconds(), ev.Took.Seconds()
	if err != nil {
		ev.Err = err.Error()
		if ctx.Err() == nil {
			r.problem("fault %s at %.1fs (%s): %v", kind, ev.AtS, ev.Target, err)
		}
	}
	r.logf("fault %s on %s done after %.1fs: %s%s", kind, ev.Target, ev.TookS, ev.Detail, errSuffix(err))
	return ev
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return "; error: " + err.Error()
}

func (r *runner) pickAgent() *agentProc {
	return r.c.agents[r.rng.IntN(len(r.c.agents))]
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// killAgent: SIGKILL an agent, start it again on the same addresses.
func (r *runner) killAgent(ctx context.Context, ev *FaultEvent) error {
	a := r.pickAgent()
	ev.Target = a.id
	pid := a.pid()
	r.logf("fault kill-agent: SIGKILL %s (pid %d, kafka %s); restart in %s", a.id, pid, a.kafka, r.holds.agentDown)
	a.kill()
	killed := time.Now()
	if err := sleepCtx(ctx, r.holds.agentDown); err != nil {
		return err
	}
	wait, err := r.c.restartAgent(ctx, a)
	ev.Detail = fmt.Sprintf("SIGKILL pid %d; restarted on %s, ready %.1fs after the kill", pid, a.kafka, time.Since(killed).Seconds())
	if err != nil {
		ev.Detail = fmt.Sprintf("SIGKILL pid %d; restart on %s failed", pid, a.kafka)
		return err
	}
	if wait > 5*time.Second {
		note := fmt.Sprintf("%s could not bind its Kafka address %s for %.0fs after the kill (address in use: the killed process's connections linger, and the Kafka listener does not set SO_REUSEADDR)", a.id, a.kafka, wait.Seconds())
		ev.Detail += "; " + note
		r.warn("%s", note)
	}
	return nil
}

// restartMeta: SIGKILL meta, start it again on its --listen and --store;
// the agents find it again on their own.
func (r *runner) restartMeta(ctx context.Context, ev *FaultEvent) error {
	m := r.c.meta
	ev.Target = "meta"
	pid := m.pid()
	r.logf("fault restart-meta: SIGKILL meta (pid %d, %s); restart in %s", pid, r.c.metaAddr, r.holds.metaDown)
	m.kill()
	killed := time.Now()
	if err := sleepCtx(ctx, r.holds.metaDown); err != nil {
		return err
	}
	if err := m.start(ctx, r.c.bin, "meta"); err != nil {
		ev.Detail = fmt.Sprintf("SIGKILL pid %d; restart on %s failed", pid, r.c.metaAddr)
		return err
	}
	back := time.Now()
	ev.Detail = fmt.Sprintf("SIGKILL pid %d; restarted on %s, ready %.1fs after the kill", pid, r.c.metaAddr, back.Sub(killed).Seconds())
	// The agents reconnect by themselves: a produce acknowledged after
	// meta came back shows they did (an ack needs a commit to meta).
	for time.Since(back) < r.holds.hold+10*time.Second && ctx.Err() == nil {
		if time.Unix(0, r.w.lastAckNs.Load()).After(back) {
			ev.Detail += fmt.Sprintf("; first ack %.1fs after its return", time.Since(back).Seconds())
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ctx.Err() == nil {
		ev.Detail += "; no ack since its return"
		r.warn("no produce was acknowledged within %s of meta's return", r.holds.hold+10*time.Second)
	}
	return nil
}

// storeErrors: for a while, one agent's object store fails 30 % of its
// requests and adds 100 ms to each.
func (r *runner) storeErrors(ctx context.Context, ev *FaultEvent) error {
	a := r.pickAgent()
	ev.Target = a.id
	q := url.Values{"op": {"all"}, "error_rate": {"0.3"}, "latency": {"100ms"}}
	before, err := postFaults(ctx, a.httpAddr, "/debug/faults", q)
	if err != nil {
		return err
	}
	r.logf("fault store-errors: %s's object store fails 30%% of requests, +100ms each, for %s", a.id, r.holds.hold)
	_ = sleepCtx(ctx, r.holds.hold)
	after, err := postFaults(context.WithoutCancel(ctx), a.httpAddr, "/debug/faults/reset", nil)
	if err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	c0, i0 := before.Totals()
	c1, i1 := after.Totals()
	ev.Detail = fmt.Sprintf("30%% of object store requests failed, +100ms each, for %.0fs: %d of %d requests failed (put %d, get %d)",
		r.holds.hold.Seconds(), i1-i0, c1-c0, after["put"].Injected-before["put"].Injected, after["get"].Injected-before["get"].Injected)
	return nil
}

// stallClient: two misbehaving clients on one agent for a while. One
// sends the header of a large Produce request and then nothing; the
// other sends Fetch requests and never reads a response. The other
// clients must not notice: produce acknowledgements go on meanwhile.
func (r *runner) stallClient(ctx context.Context, ev *FaultEvent) error {
	a := r.pickAgent()
	ev.Target = a.id
	acked0 := r.w.acked.Load()
	rss0 := rssMiB(a.pid())
	rssPeak := rss0
	r.logf("fault stall-client: half a request and an unread fetch stream on %s for %s", a.id, r.holds.hold)
	res, err := stall(ctx, a.kafka, r.topic, r.cfg.Partitions, r.holds.hold, func() { rssPeak = max(rssPeak, rssMiB(a.pid())) })
	if err != nil {
		return err
	}
	acked := r.w.acked.Load() - acked0
	ev.Detail = fmt.Sprintf("half a 16 MiB Produce: %s; %d Fetch requests never read: %s; meanwhile %d records acknowledged",
		res.half, res.fetchSent, res.fetch, acked)
	if rss0 > 0 && rssPeak > 0 {
		ev.Detail += fmt.Sprintf("; agent RSS %.0f MiB before, %.0f MiB at most during", rss0, rssPeak)
		if rssPeak-rss0 > 128 {
			r.warn("stall-client: %s's memory grew by %.0f MiB while one client did not read its responses: unsent responses look unbounded", a.id, rssPeak-rss0)
		}
	}
	if acked == 0 && ctx.Err() == nil {
		r.problem("stall-client: no produce was acknowledged for %.0fs while a client stalled %s: one client held up the others", r.holds.hold.Seconds(), a.id)
	}
	return nil
}

type stallResult struct {
	half      string // what became of the connection with half a request
	fetch     string // what became of the connection that never reads
	fetchSent int
}

// stall runs the two stalled connections against addr for hold, calling
// sample between two requests on the connection that never reads.
func stall(ctx context.Context, addr, topic string, partitions int32, hold time.Duration, sample func()) (stallResult, error) {
	var res stallResult
	d := net.Dialer{Timeout: 5 * time.Second}
	half, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return res, err
	}
	defer half.Close()
	never, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return res, err
	}
	defer never.Close()
	start := time.Now()
	deadline := start.Add(hold)

	// Half a request: a frame announcing 16 MiB (under the default
	// --max-request-bytes, so it is a legal frame), a complete Produce v9
	// request header and the first fields of its body, then silence.
	_ = half.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := half.Write(halfProduce(16 << 20)); err != nil {
		return res, fmt.Errorf("write half a request: %w", err)
	}
	halfDone := make(chan string, 1)
	go func() {
		_ = half.SetReadDeadline(deadline)
		_, err := io.Copy(io.Discard, half)
		switch {
		case err == nil || errors.Is(err, syscall.ECONNRESET):
			halfDone <- fmt.Sprintf("agent closed it after %.1fs", time.Since(start).Seconds())
		case errors.Is(err, os.ErrDeadlineExceeded):
			halfDone <- "agent kept it open until we closed it"
		default:
			halfDone <- fmt.Sprintf("read: %v", err)
		}
	}()

	// Never reading: a Fetch of every partition from offset 0 every 100 ms,
	// each answer up to 1 MiB per partition, and no read at all.
	fetch := fetchFrame(topic, partitions)
	res.fetch = "agent still reading our requests at the end"
	for time.Now().Before(deadline) && ctx.Err() == nil {
		_ = never.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := never.Write(fetch); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				res.fetch = fmt.Sprintf("agent stopped reading after %.1fs (backpressure)", time.Since(start).Seconds())
			} else {
				res.fetch = fmt.Sprintf("agent closed it after %.1fs", time.Since(start).Seconds())
			}
			break
		}
		res.fetchSent++
		sample()
		time.Sleep(100 * time.Millisecond)
	}
	sample()
	_ = sleepCtx(ctx, time.Until(deadline))
	half.Close()
	res.half = <-halfDone
	return res, ctx.Err()
}

const stallClientID = "sluice-loadtest-stall"

// appendHeader appends a request header v1 (v2 for flexible requests).
func appendHeader(dst []byte, key, version int16, corr int32, flexible bool) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(stallClientID)))
	dst = append(dst, stallClientID...)
	if flexible {
		dst = append(dst, 0) // no tagged fields
	}
	return dst
}

// halfProduce is the start of a Produce v9 frame that claims size bytes:
// length, header, then a null transactional id, acks=-1 and a timeout.
func halfProduce(size uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, size)
	b = appendHeader(b, 0, 9, 1, true)
	b = append(b, 0)                             // transactional id: null (compact)
	b = binary.BigEndian.AppendUint16(b, 0xffff) // acks -1
	b = binary.BigEndian.AppendUint32(b, 30000)  // timeout ms
	return b
}

// fetchFrame is a whole Fetch v11 frame for every partition of topic from
// offset 0.
func fetchFrame(topic string, partitions int32) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11
	req.ReplicaID = -1
	req.MaxWaitMillis = 500
	req.MinBytes = 1
	req.MaxBytes = 64 << 20
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = topic
	for p := range partitions {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		fp.CurrentLeaderEpoch = -1
		fp.LogStartOffset = -1
		fp.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, fp)
	}
	req.Topics = append(req.Topics, t)
	b := make([]byte, 4, 256)
	b = appendHeader(b, req.Key(), req.Version, 2, req.IsFlexible())
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// rssMiB is a process's resident memory in MiB, from /proc (Linux); 0
// where that cannot be read.
func rssMiB(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

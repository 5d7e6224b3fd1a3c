package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// lookKcat returns kcat's path, failing the test (not skipping it) when
// it is not installed.
func lookKcat(t *testing.T) string {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatal("kcat not found: install it (apt-get install kcat) or run .ci/run, which does")
	}
	return kcat
}

// TestKcatRoundTrip produces lines with kcat (librdkafka) and reads them
// back with kcat.
func TestKcatRoundTrip(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "1")
	var in bytes.Buffer
	var want []string
	for i := 0; i < 1000; i++ {
		line := fmt.Sprintf("key-%d:value number %d %s", i, i, strings.Repeat("x", i%50))
		want = append(want, line)
		in.WriteString(line + "\n")
	}
	ctx := testCtx(t, time.Minute)
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "kcat-topic", "-K:",
		"-X", "acks=all", "-X", "enable.idempotence=true")
	prod.Stdin = &in
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}
	cons := exec.CommandContext(ctx, kcat, "-C", "-b", pg.bootstrap, "-t", "kcat-topic", "-o", "beginning",
		"-e", "-q", "-f", "%k:%s\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v\n%s", err, pg.stderr.String())
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("kcat read %d lines, wrote %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, got[i], want[i])
		}
	}
	// kcat's metadata view: the topic, its partition, this broker.
	meta, err := exec.CommandContext(ctx, kcat, "-L", "-b", pg.bootstrap, "-t", "kcat-topic").CombinedOutput()
	if err != nil || !strings.Contains(string(meta), `topic "kcat-topic" with 1 partitions`) {
		t.Fatalf("kcat -L: %v\n%s", err, meta)
	}
}

// TestKcatConsumerGroup consumes with a librdkafka consumer group (kcat
// -G): two runs of the same group, the second starting from what the
// first committed.
func TestKcatConsumerGroup(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	ctx := testCtx(t, 2*time.Minute)
	produce := func(from, n int) {
		var in bytes.Buffer
		for i := from; i < from+n; i++ {
			fmt.Fprintf(&in, "m%d\n", i)
		}
		p := exec.CommandContext(ctx, kcat, "-P", "-b", pg.bootstrap, "-t", "kg")
		p.Stdin = &in
		if out, err := p.CombinedOutput(); err != nil {
			t.Fatalf("kcat produce: %v\n%s", err, out)
		}
	}
	consume := func(want int) map[string]int {
		got := map[string]int{}
		// -G joins the group; -e exits once every assigned partition is
		// at its end; offsets are committed as it goes and on exit. (No
		// -o: in group mode it would override the committed offsets.)
		c := exec.CommandContext(ctx, kcat, "-b", pg.bootstrap, "-G", "kcat-group", "-X", "auto.offset.reset=earliest",
			"-e", "-q", "-X", "auto.commit.interval.ms=100", "kg")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("kcat -G: %v\n%s", err, pg.stderr.String())
		}
		for _, l := range strings.Fields(string(out)) {
			got[l]++
		}
		if len(got) != want {
			t.Fatalf("kcat -G read %d distinct records, want %d", len(got), want)
		}
		return got
	}
	produce(0, 200)
	first := consume(200)
	produce(200, 100)
	second := consume(100)
	for k := range second {
		if first[k] > 0 {
			t.Fatalf("record %s read again by the second run: committed offsets not used", k)
		}
	}
}

// kcatValue is the value of record i of topic: compressible (the topic
// and index repeated), 200 bytes to 3 KiB, no spaces, colons or newlines.
func kcatValue(topic string, i int) string {
	n := 200 + (i*37)%3000
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "%s/%d;", topic, i)
	}
	return b.String()[:n]
}

// kcatProduce produces records from..from+n-1 of topic with kcat -P
// (key "k%06d", kcatValue), librdkafka's default partitioner spreading
// the keys over the partitions; args are extra kcat arguments. It returns
// kcat's output (librdkafka's log).
func kcatProduce(ctx context.Context, t *testing.T, kcat, bootstrap, topic string, from, n int, args ...string) string {
	t.Helper()
	var in bytes.Buffer
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&in, "k%06d:%s\n", i, kcatValue(topic, i))
	}
	p := exec.CommandContext(ctx, kcat, append([]string{"-P", "-b", bootstrap, "-t", topic, "-K:",
		"-X", "acks=all", "-X", "enable.idempotence=true"}, args...)...)
	p.Stdin = &in
	out, err := p.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat produce %s %s: %v\n%s", topic, args, err, tail(string(out), 4096))
	}
	return string(out)
}

// kcatRec is a record as kcat printed it with -f '%p %o %k %S %s\n'.
type kcatRec struct {
	partition int32
	offset    int64
	index     int // from the key
}

// parseKcatRec parses one '%p %o %k %S %s' line and checks the value
// against kcatValue.
func parseKcatRec(topic, line string) (kcatRec, error) {
	f := strings.Fields(line)
	if len(f) != 5 || !strings.HasPrefix(f[2], "k") {
		return kcatRec{}, fmt.Errorf("unparsable kcat line %q", line)
	}
	p, err1 := strconv.ParseInt(f[0], 10, 32)
	o, err2 := strconv.ParseInt(f[1], 10, 64)
	i, err3 := strconv.Atoi(f[2][1:])
	if err1 != nil || err2 != nil || err3 != nil {
		return kcatRec{}, fmt.Errorf("unparsable kcat line %q", line)
	}
	if want := kcatValue(topic, i); f[4] != want || f[3] != strconv.Itoa(len(want)) {
		return kcatRec{}, fmt.Errorf("%s[%d]@%d: value of k%06d differs (length %s, want %d)", topic, p, o, i, f[3], len(want))
	}
	return kcatRec{partition: int32(p), offset: o, index: i}, nil
}

// librdkafkaCodecs is what librdkafka 2.0.2 (kcat 1.7.1 and Debian's
// python3-confluent-kafka 1.7.0) does with each compression.codec against
// Sluice: the codec of the batches it sends, which the agent stores as
// they come. librdkafka uses gzip, snappy or lz4 only if the broker's
// ApiVersions range for Produce reaches down to v0 (librdkafka#4956), and
// otherwise sends them uncompressed, logging "Broker does not support
// compression type CODEC: not compressing batch". Sluice therefore
// advertises Produce from v0, as Apache Kafka 4.0 does (KAFKA-18659;
// server/api_versions.go), and every codec is used.
var librdkafkaCodecs = []struct {
	name   string
	stored uint8 // compression codec in the stored batches' attributes
}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

// notCompressing is librdkafka's message for a codec it does not use.
const notCompressing = "Broker does not support compression type %s: not compressing batch"

// batchCodecs is a franz-go hook counting the fetched record batches by
// the compression codec in their attributes.
type batchCodecs struct {
	mu      sync.Mutex
	batches map[uint8]int
}

func (b *batchCodecs) OnFetchBatchRead(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.FetchBatchMetrics) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches[m.CompressionType]++
}

// storedCodecs reads the n records of topic with franz-go and returns how
// many of the batches served carry each compression codec: the codec the
// producer used, since the agent serves batches as they were produced.
func storedCodecs(ctx context.Context, t *testing.T, bootstrap, topic string, n int) map[uint8]int {
	t.Helper()
	hook := &batchCodecs{batches: map[uint8]int{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.WithHooks(hook),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for got := 0; got < n; {
		fs := cl.PollFetches(fctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("%s: franz-go fetch after %d of %d records: %v", topic, got, n, err)
		}
		got += fs.NumRecords()
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	return hook.batches
}

// checkStoredCodec asserts that every stored batch of topic carries the
// codec librdkafka 2.0.2 sends for compression.codec=codec, and that it
// logged notCompressing (notices times) exactly when it fell back.
func checkStoredCodec(ctx context.Context, t *testing.T, bootstrap, topic, codec string, stored uint8, n, notices int) {
	t.Helper()
	batches := storedCodecs(ctx, t, bootstrap, topic, n)
	if len(batches) != 1 || batches[stored] == 0 {
		t.Errorf("%s: stored batches by codec %v, want all %d (if librdkafka now compresses %s, update librdkafkaCodecs and COMPATIBILITY.md)",
			topic, batches, stored, codec)
	}
	if fellBack := codec != "none" && stored == 0; fellBack != (notices > 0) {
		t.Errorf("%s: librdkafka said %q %d times; falling back to no compression: %v", topic,
			fmt.Sprintf(notCompressing, codec), notices, fellBack)
	}
	if stored == 0 && codec != "none" {
		t.Logf("%s: %d records in %d batches, sent uncompressed (librdkafka: %q)", topic, n, batches[0], fmt.Sprintf(notCompressing, codec))
	} else {
		t.Logf("%s: %d records in %d batches with codec %d", topic, n, batches[stored], stored)
	}
}

// TestKcatCodecs produces with kcat using each compression.codec,
// idempotent with acks=all, into a 4-partition topic; checks the codec of
// the stored batches (librdkafkaCodecs: gzip, snappy and lz4 are sent
// uncompressed, and kcat's debug log says so); and consumes with kcat -C
// -e, asserting every record exactly once with its exact value, offsets
// dense from 0 in each partition and produce order kept.
func TestKcatCodecs(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	ctx := testCtx(t, 2*time.Minute)
	const n = 500
	for _, c := range librdkafkaCodecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "kcat-" + c.name
			// -d msg: librdkafka logs its per-batch codec decision.
			log := kcatProduce(ctx, t, kcat, pg.bootstrap, topic, 0, n, "-X", "compression.codec="+c.name, "-d", "msg")
			checkStoredCodec(ctx, t, pg.bootstrap, topic, c.name, c.stored, n,
				strings.Count(log, fmt.Sprintf(notCompressing, c.name)))

			out, err := exec.CommandContext(ctx, kcat, "-C", "-b", pg.bootstrap, "-t", topic, "-o", "beginning",
				"-e", "-q", "-f", "%p %o %k %S %s\n").Output()
			if err != nil {
				t.Fatalf("kcat consume: %v", err)
			}
			seen := make(map[int]bool, n)
			byPart := map[int32][]kcatRec{}
			for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
				r, err := parseKcatRec(topic, l)
				if err != nil {
					t.Fatal(err)
				}
				if r.index < 0 || r.index >= n || seen[r.index] {
					t.Fatalf("%s[%d]@%d: record k%06d unexpected or twice", topic, r.partition, r.offset, r.index)
				}
				seen[r.index] = true
				byPart[r.partition] = append(byPart[r.partition], r)
			}
			if len(seen) != n {
				t.Fatalf("kcat read %d records, produced %d", len(seen), n)
			}
			if len(byPart) != 4 {
				t.Errorf("records in %d partitions, want 4", len(byPart))
			}
			for p, rs := range byPart {
				for j, r := range rs { // kcat prints each partition in offset order
					if r.offset != int64(j) {
						t.Fatalf("%s[%d]: offset %d at position %d, want dense offsets from 0", topic, p, r.offset, j)
					}
					if j > 0 && rs[j-1].index >= r.index {
						t.Fatalf("%s[%d]@%d: k%06d after k%06d: produce order lost", topic, p, r.offset, r.index, rs[j-1].index)
					}
				}
			}
		})
	}
}

// kcatMember is a running `kcat -G` consumer group member. It follows
// its assignment from kcat's "% Group ... rebalanced" lines on stderr and
// collects the records it prints.
type kcatMember struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}

	mu       sync.Mutex
	assigned map[int32]bool
	recs     []kcatRec
	stderr   strings.Builder
	bad      error // an unparsable or wrong record
}

func startKcatMember(t *testing.T, kcat, name, bootstrap, group, topic string) *kcatMember {
	t.Helper()
	m := &kcatMember{name: name, exited: make(chan struct{}), assigned: map[int32]bool{}}
	// -u: unbuffered output, records are printed as they arrive. No -o:
	// in group mode it would override the committed offsets.
	m.cmd = exec.Command(kcat, "-b", bootstrap, "-G", group, "-u", "-f", "%p %o %k %S %s\n",
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100",
		"-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", topic)
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := m.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r, err := parseKcatRec(topic, sc.Text())
			m.mu.Lock()
			if err != nil && m.bad == nil {
				m.bad = fmt.Errorf("kcat member %s: %w", name, err)
			} else if err == nil {
				m.recs = append(m.recs, r)
			}
			m.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			l := sc.Text()
			m.mu.Lock()
			m.stderr.WriteString(l + "\n")
			for _, kind := range []string{"assigned", "revoked"} {
				_, list, ok := strings.Cut(l, "): "+kind+": ")
				if !strings.HasPrefix(l, "% Group ") || !ok {
					continue
				}
				for _, tp := range strings.Split(list, ", ") {
					if strings.TrimSpace(tp) == "" {
						continue // an empty assignment
					}
					_, ps, _ := strings.Cut(tp, "[")
					p, err := strconv.Atoi(strings.TrimSuffix(ps, "]"))
					if err != nil {
						m.bad = fmt.Errorf("%s: unparsable rebalance line %q", name, l)
						continue
					}
					if kind == "assigned" {
						m.assigned[int32(p)] = true
					} else {
						delete(m.assigned, int32(p))
					}
				}
			}
			m.mu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		_ = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		_ = m.cmd.Process.Kill()
		<-m.exited
		if t.Failed() {
			t.Logf("kcat member %s stderr:\n%s", name, tail(m.String(), 4096))
		}
	})
	return m
}

func (m *kcatMember) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.String()
}

// parts returns the member's current assignment, sorted.
func (m *kcatMember) parts() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []int32
	for p := range m.assigned {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

func (m *kcatMember) records() []kcatRec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// stop sends SIGTERM: kcat closes its consumer, which commits the
// offsets of what it printed and leaves the group.
func (m *kcatMember) stop(t *testing.T) {
	t.Helper()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("kcat member %s did not exit within 20s of SIGTERM:\n%s", m.name, m.String())
	}
	if !m.cmd.ProcessState.Success() {
		t.Fatalf("kcat member %s: %v after SIGTERM:\n%s", m.name, m.cmd.ProcessState, m.String())
	}
}

// TestKcatGroupMembers runs two concurrent `kcat -G` members of one group
// on a 4-partition topic: both get partitions (disjoint, covering all 4)
// and share the records; one stops on SIGTERM with its committed offsets
// exactly one past what it printed, and the other takes its partitions
// over from there; a new member joins, the two split the partitions again
// and resume from the committed offsets. Every record is delivered, in
// offset order and, since both hand-overs happen with everything
// committed (at-least-once would allow re-delivery only past the last
// commit), exactly once.
func TestKcatGroupMembers(t *testing.T) {
	kcat := lookKcat(t)
	pg := startPlayground(t, t.TempDir(), "--default-partitions", "4")
	ctx := testCtx(t, 2*time.Minute)
	const topic, group = "kcat-members", "kcat-members-group"
	cl, err := kgo.NewClient(kgo.SeedBrokers(pg.bootstrap))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil {
		t.Fatal(err) // kcat -G exits if the topic does not exist yet
	}
	all := []int32{0, 1, 2, 3}

	waitFor := func(what string, members []*kcatMember, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			for _, m := range members {
				select {
				case <-m.exited:
					t.Fatalf("%s: kcat member %s exited: %v\n%s", what, m.name, m.cmd.ProcessState, m.String())
				default:
				}
				m.mu.Lock()
				bad := m.bad
				m.mu.Unlock()
				if bad != nil {
					t.Fatal(bad)
				}
			}
			if time.Now().After(deadline) {
				var state []string
				for _, m := range members {
					state = append(state, fmt.Sprintf("%s: assigned %v, %d records", m.name, m.parts(), len(m.records())))
				}
				t.Fatalf("%s: not within 30s (%s)", what, strings.Join(state, "; "))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	split := func(ms ...*kcatMember) bool {
		var union []int32
		for _, m := range ms {
			ps := m.parts()
			if len(ps) == 0 {
				return false
			}
			union = append(union, ps...)
		}
		slices.Sort(union)
		return slices.Equal(union, all) // disjoint and covering
	}
	distinct := func(lo, hi int, ms ...*kcatMember) int {
		seen := map[int]bool{}
		for _, m := range ms {
			for _, r := range m.records() {
				if r.index >= lo && r.index < hi {
					seen[r.index] = true
				}
			}
		}
		return len(seen)
	}
	count := func(lo, hi int, m *kcatMember) int { return distinct(lo, hi, m) }

	start := time.Now()
	a := startKcatMember(t, kcat, "a", pg.bootstrap, group, topic)
	b := startKcatMember(t, kcat, "b", pg.bootstrap, group, topic)
	waitFor("a and b split the partitions", []*kcatMember{a, b}, func() bool { return split(a, b) })
	aParts, bParts := a.parts(), b.parts()
	t.Logf("%v: a has %v, b has %v", time.Since(start).Round(time.Millisecond), aParts, bParts)

	// Phase 1: 400 records shared by a and b.
	kcatProduce(ctx, t, kcat, pg.bootstrap, topic, 0, 400)
	waitFor("a and b read 400 records", []*kcatMember{a, b}, func() bool { return distinct(0, 400, a, b) == 400 })
	if count(0, 400, a) == 0 || count(0, 400, b) == 0 {
		t.Fatalf("records not shared: a read %d, b read %d", count(0, 400, a), count(0, 400, b))
	}
	for _, r := range a.records() {
		if !slices.Contains(aParts, r.partition) {
			t.Fatalf("a read partition %d outside its assignment %v", r.partition, aParts)
		}
	}

	// a stops cleanly: its commits are exactly one past what it printed.
	a.stop(t)
	last := map[int32]int64{}
	for _, r := range a.records() {
		last[r.partition] = max(last[r.partition], r.offset+1)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range aParts {
		o, ok := committed.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != last[p] {
			t.Fatalf("after a stopped: partition %d committed %+v, a printed up to offset %d", p, o, last[p]-1)
		}
	}

	// Phase 2: b takes all partitions over and reads 200 more.
	waitFor("b takes over all partitions", []*kcatMember{b}, func() bool { return slices.Equal(b.parts(), all) })
	kcatProduce(ctx, t, kcat, pg.bootstrap, topic, 400, 200)
	waitFor("600 records read after a stopped", []*kcatMember{b}, func() bool { return distinct(0, 600, a, b) == 600 })
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("b commits up to the high watermarks", []*kcatMember{b}, func() bool {
		c, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range all {
			e, _ := ends.Lookup(topic, p)
			o, ok := c.Lookup(topic, p)
			if !ok || o.At != e.Offset {
				return false
			}
		}
		return true
	})

	// A new member (a restarted a) joins; b and c split the partitions
	// and both resume from the committed offsets.
	c := startKcatMember(t, kcat, "c", pg.bootstrap, group, topic)
	waitFor("b and c split the partitions", []*kcatMember{b, c}, func() bool { return split(b, c) })
	cParts := c.parts()
	kcatProduce(ctx, t, kcat, pg.bootstrap, topic, 600, 200)
	waitFor("800 records read after c joined", []*kcatMember{b, c}, func() bool { return distinct(0, 800, a, b, c) == 800 })
	if count(600, 800, b) == 0 || count(600, 800, c) == 0 {
		t.Fatalf("new records not shared: b read %d, c read %d", count(600, 800, b), count(600, 800, c))
	}
	if n := count(0, 600, c); n != 0 {
		t.Fatalf("c re-read %d records committed before it joined", n)
	}
	b.stop(t)
	c.stop(t)

	// The union: every record once; per partition, offsets dense from 0
	// and produce order kept.
	times := map[int]int{}
	byPart := map[int32][]kcatRec{}
	for _, m := range []*kcatMember{a, b, c} {
		for _, r := range m.records() {
			times[r.index]++
			byPart[r.partition] = append(byPart[r.partition], r)
		}
	}
	for i := 0; i < 800; i++ {
		if times[i] != 1 {
			t.Errorf("record k%06d delivered %d times", i, times[i])
		}
	}
	if len(times) != 800 {
		t.Errorf("%d distinct records delivered, want 800", len(times))
	}
	for p, rs := range byPart {
		slices.SortFunc(rs, func(x, y kcatRec) int { return int(x.offset - y.offset) })
		for j, r := range rs {
			if r.offset != int64(j) {
				t.Fatalf("partition %d: offset %d at position %d, want dense offsets from 0", p, r.offset, j)
			}
			if j > 0 && rs[j-1].index >= r.index {
				t.Fatalf("partition %d@%d: k%06d after k%06d: produce order lost", p, r.offset, r.index, rs[j-1].index)
			}
		}
	}
	t.Logf("%v: a %v read %d, b %v read %d, c %v read %d (of the last 200: b %d, c %d), 0 re-delivered",
		time.Since(start).Round(time.Millisecond), aParts, len(a.records()), bParts, len(b.records()),
		cParts, len(c.records()), count(600, 800, b), count(600, 800, c))
}

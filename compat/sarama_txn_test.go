package compat_test

// Transactions (issue 15) with IBM/sarama: its transactional producer
// committing and aborting across two agents, a ReadCommitted consumer,
// the last stable offset of an open transaction, consume-transform-produce
// with a sarama consumer group (AddMessageToTxn, AddOffsetsToTxn), and
// fencing by a second producer with the same transactional id.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaTxnCluster is a cluster of two agents on one meta and bucket:
// sarama finds its transaction coordinator on either while the
// partitions' writes are spread over both.
func saramaTxnCluster(t *testing.T) []string {
	t.Helper()
	c := startCluster(t)
	b := c.AddAgent(t, 1)
	return []string{c.addr(), b.AdvertisedAddr()}
}

// saramaTxnConfig is the transactional producer's configuration sarama
// requires: idempotent, acks=all, one request in flight per broker.
func saramaTxnConfig(txnID string) *sarama.Config {
	cfg := saramaConfig()
	cfg.ClientID = "compat-sarama-txn"
	cfg.Producer.Transaction.ID = txnID
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.IsolationLevel = sarama.ReadCommitted
	return cfg
}

func saramaTxnProducer(t *testing.T, addrs []string, txnID string) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer(addrs, saramaTxnConfig(txnID))
	if err != nil {
		t.Fatalf("transactional producer %s: %v", txnID, err)
	}
	return p
}

func saramaCreateTopic(t *testing.T, addrs []string, topic string, partitions int32) {
	t.Helper()
	adm, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// saramaSendTxn runs one transaction writing n records valued prefix-i,
// record i to partition i%partitions, and commits or aborts it.
func saramaSendTxn(t *testing.T, p sarama.SyncProducer, topic, prefix string, n int, partitions int32, commit bool) {
	t.Helper()
	if err := p.BeginTxn(); err != nil {
		t.Fatalf("BeginTxn: %v", err)
	}
	for i := range n {
		msg := &sarama.ProducerMessage{Topic: topic, Partition: int32(i) % partitions,
			Key: sarama.StringEncoder(fmt.Sprint(i)), Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i))}
		if _, _, err := p.SendMessage(msg); err != nil {
			t.Fatalf("send %s-%d: %v", prefix, i, err)
		}
	}
	end := p.AbortTxn
	if commit {
		end = p.CommitTxn
	}
	if err := end(); err != nil {
		t.Fatalf("end transaction %s (commit=%v): %v", prefix, commit, err)
	}
}

// saramaReadPartition reads topic[partition] from the oldest offset with
// the given isolation level until it has want records, and returns them.
func saramaReadPartition(t *testing.T, addrs []string, topic string, partition int32, iso sarama.IsolationLevel, want int) []rec {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.IsolationLevel = iso
	cons, err := sarama.NewConsumer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	pc, err := cons.ConsumePartition(topic, partition, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	timeout := time.After(30 * time.Second)
	var out []rec
	for len(out) < want {
		select {
		case m := <-pc.Messages():
			out = append(out, rec{partition: m.Partition, offset: m.Offset, key: string(m.Key), value: string(m.Value)})
		case err := <-pc.Errors():
			t.Fatalf("consume %s[%d]: %v", topic, partition, err)
		case <-timeout:
			t.Fatalf("consume %s[%d] (isolation %d): %d of %d records before the deadline: %v", topic, partition, iso, len(out), want, out)
		}
	}
	return out
}

// checkOffsets asserts that got's values and offsets are exactly want
// (value@offset pairs, in order).
func checkOffsets(t *testing.T, what string, got []rec, want []string) {
	t.Helper()
	var g []string
	for _, r := range got {
		g = append(g, fmt.Sprintf("%s@%d", r.value, r.offset))
	}
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %v\nwant %v", what, g, want)
	}
}

// saramaListOffset asks topic[partition]'s leader for its latest offset
// with the isolation level given: the high watermark (read_uncommitted)
// or the last stable offset (read_committed). sarama's Client.GetOffset
// has no isolation level, so the request is built here.
func saramaListOffset(t *testing.T, addrs []string, topic string, partition int32, iso sarama.IsolationLevel) int64 {
	t.Helper()
	cl, err := sarama.NewClient(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leader, err := cl.Leader(topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	req := &sarama.OffsetRequest{Version: 4, IsolationLevel: iso}
	req.AddBlock(topic, partition, sarama.OffsetNewest, 1)
	resp, err := leader.GetAvailableOffsets(req)
	if err != nil {
		t.Fatal(err)
	}
	b := resp.GetBlock(topic, partition)
	if b == nil || !errors.Is(b.Err, sarama.ErrNoError) {
		t.Fatalf("ListOffsets %s[%d]: %+v", topic, partition, b)
	}
	return b.Offset
}

// TestSaramaTxnCommitAbort: sarama's transactional SyncProducer writes a
// committed, an aborted and a committed transaction over two partitions
// (led by two agents). A ReadCommitted PartitionConsumer reads exactly
// the committed records, in order, the aborted ones absent between them
// (so the consumer read past them); ReadUncommitted reads all of them.
// Offsets are dense with one control batch after each transaction: per
// partition 5 committed (0-4), marker 5, 3 aborted (6-8), marker 9, 2
// committed (10-11), marker 12. While a fourth transaction is open the
// last stable offset stays at its first record; after its commit it is
// the high watermark.
func TestSaramaTxnCommitAbort(t *testing.T) {
	addrs := saramaTxnCluster(t)
	const topic = "sarama-txn"
	saramaCreateTopic(t, addrs, topic, 2)
	p := saramaTxnProducer(t, addrs, "sarama-txn-1")
	defer p.Close()
	saramaSendTxn(t, p, topic, "c1", 10, 2, true)
	saramaSendTxn(t, p, topic, "a2", 6, 2, false)
	saramaSendTxn(t, p, topic, "c3", 4, 2, true)

	for part := int32(0); part < 2; part++ {
		var committed, all []string
		for i := int(part); i < 10; i += 2 {
			committed = append(committed, fmt.Sprintf("c1-%d@%d", i, i/2))
		}
		all = append(all, committed...)
		for i := int(part); i < 6; i += 2 {
			all = append(all, fmt.Sprintf("a2-%d@%d", i, 6+i/2))
		}
		for i := int(part); i < 4; i += 2 {
			c3 := fmt.Sprintf("c3-%d@%d", i, 10+i/2)
			committed = append(committed, c3)
			all = append(all, c3)
		}
		got := saramaReadPartition(t, addrs, topic, part, sarama.ReadCommitted, len(committed))
		checkOffsets(t, fmt.Sprintf("read_committed %s[%d]", topic, part), got, committed)
		got = saramaReadPartition(t, addrs, topic, part, sarama.ReadUncommitted, len(all))
		checkOffsets(t, fmt.Sprintf("read_uncommitted %s[%d]", topic, part), got, all)
		if hw := saramaListOffset(t, addrs, topic, part, sarama.ReadUncommitted); hw != 13 {
			t.Errorf("%s[%d]: high watermark %d, want 13 (10 records, 3 markers)", topic, part, hw)
		}
	}

	// An open transaction holds the last stable offset at its first
	// record; read_uncommitted's end offset moves past it.
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder("open-0")}); err != nil {
		t.Fatal(err)
	}
	if lso := saramaListOffset(t, addrs, topic, 0, sarama.ReadCommitted); lso != 13 {
		t.Errorf("last stable offset with a transaction open at 13: %d, want 13", lso)
	}
	if hw := saramaListOffset(t, addrs, topic, 0, sarama.ReadUncommitted); hw != 14 {
		t.Errorf("high watermark with a transaction open: %d, want 14", hw)
	}
	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	if lso := saramaListOffset(t, addrs, topic, 0, sarama.ReadCommitted); lso != 15 {
		t.Errorf("last stable offset after the commit: %d, want 15 (the high watermark)", lso)
	}
	got := saramaReadPartition(t, addrs, topic, 0, sarama.ReadCommitted, 8)
	if last := got[len(got)-1]; last.value != "open-0" || last.offset != 13 {
		t.Errorf("after the commit read_committed ends with %q@%d, want open-0@13", last.value, last.offset)
	}
}

// ctpHandler hands every claimed message to the test goroutine and keeps
// the session (its member id and generation) for the transaction.
type ctpHandler struct {
	msgs chan *sarama.ConsumerMessage
	mu   sync.Mutex
	sess sarama.ConsumerGroupSession // the latest generation's
}

func (h *ctpHandler) Setup(s sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.sess = s
	h.mu.Unlock()
	return nil
}

func (h *ctpHandler) session() sarama.ConsumerGroupSession {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sess
}
func (h *ctpHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *ctpHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			select {
			case h.msgs <- m:
			case <-s.Context().Done():
				return nil
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// TestSaramaTxnConsumeTransformProduce: a sarama consumer group member
// (ReadCommitted, auto-commit off) reads 20 input records over two
// partitions; a transactional producer writes one transformed record per
// input and adds the consumed positions to the transaction. The first
// round (AddMessageToTxn) is aborted: the group's committed offsets stay
// unset and read_committed sees no output. The second member reads the
// same 20 again and commits them (AddOffsetsToTxn with the session's
// member id and generation): the committed offsets are the input's high
// watermarks and the output read with read_committed holds each
// transformed record exactly once.
func TestSaramaTxnConsumeTransformProduce(t *testing.T) {
	addrs := saramaTxnCluster(t)
	const in, out, group, n = "sarama-ctp-in", "sarama-ctp-out", "sarama-ctp", 20
	saramaCreateTopic(t, addrs, in, 2)
	saramaCreateTopic(t, addrs, out, 2)
	saramaProduce(t, addrs[0], in, sarama.CompressionNone, 0, n)
	p := saramaTxnProducer(t, addrs, "sarama-ctp-txn")
	defer p.Close()

	// round consumes all n input records with a fresh group member, then
	// runs the transaction while the member's session is live.
	round := func(commit bool) {
		cfg := saramaConfig()
		cfg.Consumer.IsolationLevel = sarama.ReadCommitted
		cfg.Consumer.Offsets.AutoCommit.Enable = false
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cg, err := sarama.NewConsumerGroup(addrs, group, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cg.Close()
		h := &ctpHandler{msgs: make(chan *sarama.ConsumerMessage)}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := cg.Consume(ctx, []string{in}, h); err != nil && ctx.Err() == nil {
					t.Errorf("Consume: %v", err)
					return
				}
			}
		}()
		defer func() { cancel(); wg.Wait() }()
		var got []*sarama.ConsumerMessage
		for len(got) < n {
			select {
			case m := <-h.msgs:
				got = append(got, m)
			case <-ctx.Done():
				t.Fatalf("commit=%v: consumed %d of %d input records", commit, len(got), n)
			}
		}
		sess := h.session() // set by Setup before any claim's messages
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		offsets := map[string][]*sarama.PartitionOffsetMetadata{}
		next := map[int32]int64{}
		for _, m := range got {
			msg := &sarama.ProducerMessage{Topic: out, Partition: m.Partition, Key: sarama.ByteEncoder(m.Key),
				Value: sarama.StringEncoder("out:" + string(m.Key))}
			if _, _, err := p.SendMessage(msg); err != nil {
				t.Fatal(err)
			}
			if !commit {
				if err := p.AddMessageToTxn(m, group, nil); err != nil {
					t.Fatalf("AddMessageToTxn: %v", err)
				}
			}
			next[m.Partition] = max(next[m.Partition], m.Offset+1)
		}
		if commit {
			for part, o := range next {
				offsets[in] = append(offsets[in], &sarama.PartitionOffsetMetadata{Partition: part, Offset: o})
			}
			md := &sarama.ConsumerGroupMetadata{GroupID: group, GenerationID: sess.GenerationID(), MemberID: sess.MemberID()}
			if err := p.AddOffsetsToTxnWithGroupMetadata(offsets, md); err != nil {
				t.Fatalf("AddOffsetsToTxn: %v", err)
			}
			if err := p.CommitTxn(); err != nil {
				t.Fatalf("CommitTxn: %v", err)
			}
		} else if err := p.AbortTxn(); err != nil {
			t.Fatalf("AbortTxn: %v", err)
		}
		keys := map[string]int{}
		for _, m := range got {
			keys[string(m.Key)]++
		}
		if len(keys) != n {
			t.Errorf("commit=%v: the member read %d distinct input keys, want %d", commit, len(keys), n)
		}
	}

	adm, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committedOffsets := func() map[int32]int64 {
		resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{in: {0, 1}})
		if err != nil {
			t.Fatal(err)
		}
		o := map[int32]int64{}
		for part, b := range resp.Blocks[in] {
			o[part] = b.Offset
		}
		return o
	}

	round(false)
	if o := committedOffsets(); o[0] != -1 || o[1] != -1 {
		t.Errorf("committed offsets after the aborted transaction: %v, want none (-1)", o)
	}
	round(true)
	o := committedOffsets()
	for part := int32(0); part < 2; part++ {
		hw := saramaListOffset(t, addrs, in, part, sarama.ReadUncommitted)
		if o[part] != hw {
			t.Errorf("committed offset of %s[%d] = %d, want the high watermark %d", in, part, o[part], hw)
		}
	}

	// The output: the aborted round's copies are in the log (read
	// uncommitted), the committed round's once each (read committed).
	var outCommitted, outAll []rec
	per := map[int32]int{}
	for part := int32(0); part < 2; part++ {
		hw := saramaListOffset(t, addrs, out, part, sarama.ReadUncommitted)
		// n0 records per round in this partition, two markers.
		per[part] = int(hw-2) / 2
		outCommitted = append(outCommitted, saramaReadPartition(t, addrs, out, part, sarama.ReadCommitted, per[part])...)
		outAll = append(outAll, saramaReadPartition(t, addrs, out, part, sarama.ReadUncommitted, 2*per[part])...)
	}
	if per[0]+per[1] != n {
		t.Errorf("output partitions hold %d+%d records per round, want %d in all", per[0], per[1], n)
	}
	seen := map[string]int{}
	for _, r := range outCommitted {
		seen[r.value]++
	}
	for i := range n {
		if v := "out:" + keyOf(in, i); seen[v] != 1 {
			t.Errorf("read_committed output holds %q %d times, want once", v, seen[v])
		}
	}
	// In each partition the committed round's records come after the
	// aborted round's and its marker: read_committed starts past them.
	sort.Slice(outCommitted, func(a, b int) bool { return outCommitted[a].offset < outCommitted[b].offset })
	for _, r := range outCommitted {
		if r.offset <= int64(per[r.partition]) {
			t.Errorf("read_committed returned %q at offset %d of partition %d: an aborted copy", r.value, r.offset, r.partition)
		}
	}
	if len(outAll) != 2*n {
		t.Errorf("read_uncommitted output: %d records, want %d (both rounds)", len(outAll), 2*n)
	}
}

// TestSaramaTxnFencing: a second sarama producer with the same
// transactional id initialises while the first has a transaction open.
// The first's commit fails as fenced (sarama reports Kafka's
// PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH from an older protocol
// version) and its record is never visible to read_committed: the new
// instance's committed record is read and the zombie's is not before it.
func TestSaramaTxnFencing(t *testing.T) {
	addrs := saramaTxnCluster(t)
	const topic = "sarama-fence"
	saramaCreateTopic(t, addrs, topic, 1)
	p1 := saramaTxnProducer(t, addrs, "sarama-fence-txn")
	defer p1.Close()
	if err := p1.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p1.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("zombie")}); err != nil {
		t.Fatal(err)
	}
	p2 := saramaTxnProducer(t, addrs, "sarama-fence-txn")
	defer p2.Close()
	err := p1.CommitTxn()
	if !errors.Is(err, sarama.ErrProducerFenced) && !errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		t.Fatalf("the fenced producer's commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	t.Logf("fenced producer's commit: %v (status %v)", err, p1.TxnStatus())
	if p1.TxnStatus()&sarama.ProducerTxnFlagFatalError == 0 {
		t.Errorf("fenced producer's status %v, want a fatal error", p1.TxnStatus())
	}
	saramaSendTxn(t, p2, topic, "after", 1, 1, true)
	got := saramaReadPartition(t, addrs, topic, 0, sarama.ReadCommitted, 1)
	if got[0].value != "after-0" {
		t.Errorf("read_committed read %q@%d first, want after-0 (the zombie's record is aborted)", got[0].value, got[0].offset)
	}
	all := saramaReadPartition(t, addrs, topic, 0, sarama.ReadUncommitted, 2)
	checkOffsets(t, "read_uncommitted "+topic, all, []string{"zombie@0", "after-0@2"})
}

// TestSaramaTxnAdmin: sarama's TransactionClusterAdmin (KIP-664) against
// an open transaction over two partitions: DescribeTransactions answers
// Ongoing with both partitions and the producer id, ListTransactions
// lists it (and not under a filter for Empty), DescribeProducers shows
// the producer with the transaction's first offset in the partition.
// After the commit the transaction is no longer Ongoing (Sluice answers
// Empty; Kafka keeps CompleteCommit until the next transaction) and the
// producer has no current transaction (-1).
func TestSaramaTxnAdmin(t *testing.T) {
	addrs := saramaTxnCluster(t)
	const topic, id = "sarama-txn-admin", "sarama-admin-txn"
	saramaCreateTopic(t, addrs, topic, 2)
	p := saramaTxnProducer(t, addrs, id)
	defer p.Close()
	saramaSendTxn(t, p, topic, "before", 4, 2, true) // offsets 0-1, marker 2 per partition
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	for part := range int32(2) {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Partition: part, Value: sarama.StringEncoder("open")}); err != nil {
			t.Fatal(err)
		}
	}
	adm, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	tadm := adm.(sarama.TransactionClusterAdmin)

	desc, err := tadm.DescribeTransactions([]string{id})
	if err != nil {
		t.Fatalf("DescribeTransactions: %v", err)
	}
	d := desc[id]
	if !errors.Is(d.ErrorCode, sarama.ErrNoError) || d.TransactionState != "Ongoing" || d.ProducerID < 0 {
		t.Fatalf("DescribeTransactions with a transaction open: %+v, want Ongoing with a producer id", d)
	}
	var parts []int32
	for _, tp := range d.Topics {
		if tp.Topic == topic {
			parts = append(parts, tp.Partitions...)
		}
	}
	sort.Slice(parts, func(a, b int) bool { return parts[a] < parts[b] })
	if fmt.Sprint(parts) != "[0 1]" {
		t.Errorf("DescribeTransactions partitions of %s: %v, want [0 1] (%+v)", topic, parts, d.Topics)
	}

	list, err := tadm.ListTransactions(nil, nil, -1)
	if err != nil {
		t.Fatalf("ListTransactions: %v", err)
	}
	found := false
	for _, l := range list {
		if l.TransactionalID == id {
			found = true
			if l.TransactionState != "Ongoing" || l.ProducerID != d.ProducerID {
				t.Errorf("ListTransactions: %+v, want Ongoing with producer id %d", l, d.ProducerID)
			}
		}
	}
	if !found {
		t.Errorf("ListTransactions %+v does not list %s", list, id)
	}
	empty, err := tadm.ListTransactions([]string{"Empty"}, nil, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range empty {
		if l.TransactionalID == id {
			t.Errorf("ListTransactions(state Empty) lists the ongoing %s", id)
		}
	}

	producerOf := func() *sarama.ProducerState {
		prods, err := tadm.DescribeProducers(map[string][]int32{topic: {0}})
		if err != nil {
			t.Fatalf("DescribeProducers: %v", err)
		}
		pp := prods[topic][0]
		if !errors.Is(pp.ErrorCode, sarama.ErrNoError) {
			t.Fatalf("DescribeProducers %s[0]: %v", topic, pp.ErrorCode)
		}
		for i := range pp.ActiveProducers {
			if pp.ActiveProducers[i].ProducerID == d.ProducerID {
				return &pp.ActiveProducers[i]
			}
		}
		t.Fatalf("DescribeProducers %s[0]: %+v has no producer %d", topic, pp.ActiveProducers, d.ProducerID)
		return nil
	}
	if ps := producerOf(); ps.CurrentTxnStartOffset != 3 || int16(ps.ProducerEpoch) != d.ProducerEpoch {
		t.Errorf("DescribeProducers with the transaction open: %+v, want current transaction start 3 and epoch %d", ps, d.ProducerEpoch)
	}

	if err := p.CommitTxn(); err != nil {
		t.Fatal(err)
	}
	desc, err = tadm.DescribeTransactions([]string{id})
	if err != nil {
		t.Fatal(err)
	}
	if s := desc[id].TransactionState; s != "CompleteCommit" {
		t.Errorf("DescribeTransactions after the commit: %q, want CompleteCommit", s)
	}
	if ps := producerOf(); ps.CurrentTxnStartOffset != -1 {
		t.Errorf("DescribeProducers after the commit: current transaction start %d, want -1", ps.CurrentTxnStartOffset)
	}
}

// TestSaramaTxnTimeout: a sarama transaction with
// Producer.Transaction.Timeout = 1s left open is aborted by meta's
// janitor (DescribeTransactions no longer says Ongoing, the last stable
// offset passes the abort marker); the producer's commit is then refused
// as fenced and its record never reaches ReadCommitted.
func TestSaramaTxnTimeout(t *testing.T) {
	addrs := saramaTxnCluster(t)
	const topic, id = "sarama-txn-timeout", "sarama-timeout-txn"
	saramaCreateTopic(t, addrs, topic, 1)
	cfg := saramaTxnConfig(id)
	cfg.Producer.Transaction.Timeout = time.Second
	p, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTxn(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("late")}); err != nil {
		t.Fatal(err)
	}
	adm, err := sarama.NewClusterAdmin(addrs, saramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds, err := adm.(sarama.TransactionClusterAdmin).DescribeTransactions([]string{id})
		if err != nil {
			t.Fatal(err)
		}
		if s := ds[id].TransactionState; s != "Ongoing" {
			t.Logf("state after the timeout: %s", s)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the transaction was not aborted by its 1 s timeout within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lso := saramaListOffset(t, addrs, topic, 0, sarama.ReadCommitted); lso != 2 {
		t.Errorf("last stable offset after the timeout abort: %d, want 2 (the record and the abort marker)", lso)
	}
	err = p.CommitTxn()
	if !errors.Is(err, sarama.ErrProducerFenced) && !errors.Is(err, sarama.ErrInvalidProducerEpoch) {
		t.Fatalf("commit after the timeout abort: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	t.Logf("commit after the timeout abort: %v", err)
	all := saramaReadPartition(t, addrs, topic, 0, sarama.ReadUncommitted, 1)
	checkOffsets(t, "read_uncommitted "+topic, all, []string{"late@0"})
	// A committed record from a new producer is read by ReadCommitted;
	// the timed-out one before it is not.
	p2 := saramaTxnProducer(t, addrs, id+"-2")
	defer p2.Close()
	saramaSendTxn(t, p2, topic, "after", 1, 1, true)
	got := saramaReadPartition(t, addrs, topic, 0, sarama.ReadCommitted, 1)
	checkOffsets(t, "read_committed "+topic, got, []string{"after-0@2"})
}

package loadtest

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TxnStats counts a transactions run's outcomes and what the verifier
// checked.
type TxnStats struct {
	RecordsPerTxn int `json:"records_per_txn"`
	AbortEvery    int `json:"abort_every"`

	Committed        int64 `json:"committed"`          // EndTxn(commit) succeeded
	AbortedOnPurpose int64 `json:"aborted_on_purpose"` // every AbortEvery-th
	Failed           int64 `json:"failed"`             // a produce failed: aborted, commit never asked
	Unknown          int64 `json:"unknown"`            // EndTxn(commit) returned an error
	UnknownCommitted int64 `json:"unknown_committed"`  // ... and its records turned out visible
	UnknownAborted   int64 `json:"unknown_aborted"`    // ... and they turned out hidden
	Reinits          int64 `json:"reinits"`            // clients given up and started again (new epoch)
	Fenced           int64 `json:"fenced"`             // PRODUCER_FENCED / INVALID_PRODUCER_EPOCH errors seen

	// RecordsVisible are the records read_committed returned, each
	// checked against its transaction; RecordsHidden are records of
	// aborted transactions present in the read_uncommitted log and
	// hidden from read_committed; Markers are the control batches in the
	// read_uncommitted log.
	RecordsVisible int64 `json:"records_visible"`
	RecordsHidden  int64 `json:"records_hidden"`
	Markers        int64 `json:"markers"`
}

// txnCheck is what the transactions verifier reads: the log read with
// read_uncommitted and with read_committed (control records kept in
// both), the high watermarks and the last stable offsets, listed once
// every transactional id was fenced.
type txnCheck struct {
	topic      string
	partitions int32
	unc, com   map[TopicPartition][]Consumed
	ends, lsos map[int32]int64
}

// verifyTxn is the exactly-once oracle. With every transaction ended:
//
//   - every partition's last stable offset is its high watermark, and
//     both reads reach it;
//   - read_uncommitted: offsets are dense from 0 across data and markers
//     (markers take offsets), and every acknowledged record, of any
//     transaction, committed or aborted, is at its offset with its value
//     (Oracle.Verify); no value is stored twice, and each producer's
//     records rise with the offset per partition (checkValues);
//   - read_committed: no record of a transaction aborted on purpose or
//     failed (commit never asked) is visible; every record of a committed
//     transaction is visible exactly once, at its acknowledged offset;
//     an unknown-outcome transaction is wholly visible, once, or wholly
//     hidden; no record is visible twice; whatever is visible is what
//     read_uncommitted holds at that offset.
func verifyTxn(o *Oracle, txns []*txnRec, in txnCheck, p *problems) TxnStats {
	var st TxnStats
	for part := range in.partitions {
		end, lso := in.ends[part], in.lsos[part]
		if lso != end {
			p.addf("%s/%d: last stable offset %d is not the high watermark %d once every transaction ended", in.topic, part, lso, end)
		}
		for _, view := range []struct {
			name string
			log  map[TopicPartition][]Consumed
		}{{"read_uncommitted", in.unc}, {"read_committed", in.com}} {
			recs := view.log[TopicPartition{in.topic, part}]
			next := int64(0)
			if len(recs) > 0 {
				next = recs[len(recs)-1].Offset + 1
			}
			if next < end {
				p.addf("%s/%d: reading with %s from 0 stops at offset %d, but the high watermark is %d", in.topic, part, view.name, next, end)
			}
		}
	}
	// read_uncommitted, markers included: dense, every acknowledged
	// record in place.
	for _, err := range o.Verify(in.unc, nil, p.limit) {
		p.addf("read_uncommitted: %v", err)
	}
	data := map[TopicPartition][]Consumed{}
	uncAt := map[TopicPartition]map[int64]string{}
	for tp, recs := range in.unc {
		at := make(map[int64]string, len(recs))
		for _, r := range recs {
			if r.Control {
				st.Markers++
				continue
			}
			data[tp] = append(data[tp], r)
			at[r.Offset] = string(r.Value)
		}
		uncAt[tp] = at
	}
	checkValues(data, p)

	ix := newTxnIndex(txns)
	visible := map[*txnRec]int{}
	seen := map[string]bool{}
	comAt := map[TopicPartition]map[int64]string{}
	for _, tp := range slices.SortedFunc(maps.Keys(in.com), compareTP) {
		at := map[int64]string{}
		comAt[tp] = at
		prev := int64(-1)
		for _, r := range in.com[tp] {
			if r.Offset <= prev {
				p.addf("read_committed %s/%d: offset %d after offset %d: read twice or out of order", tp.Topic, tp.Partition, r.Offset, prev)
			}
			prev = max(prev, r.Offset)
			if r.Control {
				continue
			}
			v := string(r.Value)
			st.RecordsVisible++
			at[r.Offset] = v
			if u, ok := uncAt[tp][r.Offset]; !ok || u != v {
				p.addf("read_committed %s/%d offset %d holds %q, read_uncommitted %q", tp.Topic, tp.Partition, r.Offset, v, u)
			}
			if seen[v] {
				p.addf("read_committed: %q visible twice (again at %s/%d offset %d)", v, tp.Topic, tp.Partition, r.Offset)
				continue
			}
			seen[v] = true
			prod, seq, ok := parseValue(r.Value)
			tx := ix.find(prod, seq)
			if !ok || tx == nil {
				p.addf("read_committed %s/%d offset %d: %q belongs to no transaction of this run", tp.Topic, tp.Partition, r.Offset, v)
				continue
			}
			visible[tx]++
			if tx.outcome != txnCommitted && tx.outcome != txnUnknown {
				p.addf("read_committed %s/%d offset %d: %q of producer %d's transaction %d (%s) is visible", tp.Topic, tp.Partition, r.Offset, v, tx.producer, tx.n, tx.outcome)
			}
		}
	}
	for _, tx := range txns {
		n := visible[tx]
		switch tx.outcome {
		case txnCommitted:
			st.Committed++
			if n != tx.count {
				p.addf("producer %d's committed transaction %d (records %d-%d): %d of its %d records visible to read_committed", tx.producer, tx.n, tx.firstSeq, tx.firstSeq+int64(tx.count)-1, n, tx.count)
			}
			for _, a := range tx.acked {
				if v, ok := comAt[a.tp][a.offset]; !ok || v != string(appendValue(nil, tx.producer, a.seq)) {
					p.addf("%s/%d offset %d: committed record p%02d-%012d not visible there to read_committed (found %q)", a.tp.Topic, a.tp.Partition, a.offset, tx.producer, a.seq, v)
				}
			}
		case txnUnknown:
			st.Unknown++
			switch n {
			case 0:
				st.UnknownAborted++
			case tx.count:
				st.UnknownCommitted++
			default:
				p.addf("producer %d's transaction %d of unknown outcome is half visible: %d of its %d records", tx.producer, tx.n, n, tx.count)
			}
		case txnAborted:
			st.AbortedOnPurpose++
			st.RecordsHidden += int64(len(tx.acked))
		default:
			st.Failed++
			st.RecordsHidden += int64(len(tx.acked))
		}
	}
	return st
}

// txnViews are the reads the transactions oracle checks: the last
// stable offsets and both views of the log from offset 0, control
// records kept, all taken once every transactional id was fenced.
type txnViews struct {
	ends, lsos map[int32]int64
	unc, com   map[TopicPartition][]Consumed
}

// readTxnViews lists the last stable offsets and reads the log from
// offset 0 with read_uncommitted and with read_committed. An error means
// the harness could not read at all.
func (r *runner) readTxnViews(ctx context.Context, adm *kadm.Client, seeds []string, ends map[int32]int64) (*txnViews, error) {
	v := &txnViews{ends: ends}
	var err error
	if v.lsos, err = listStableOffsets(ctx, adm, r.topic); err != nil {
		return nil, err
	}
	zero := map[int32]int64{}
	if v.unc, err = readLog(ctx, seeds, r.topic, zero, ends, kgo.KeepControlRecords(), kgo.FetchIsolationLevel(kgo.ReadUncommitted())); err != nil {
		return nil, err
	}
	if v.com, err = readLog(ctx, seeds, r.topic, zero, ends, kgo.KeepControlRecords(), kgo.FetchIsolationLevel(kgo.ReadCommitted())); err != nil {
		return nil, err
	}
	return v, nil
}

// committedOffsets are, per partition, the offsets of the data records
// read_committed shows: what a read_committed group must receive.
func (v *txnViews) committedOffsets() map[int32][]int64 {
	out := map[int32][]int64{}
	for tp, recs := range v.com {
		offs := []int64{}
		for _, c := range recs {
			if !c.Control {
				offs = append(offs, c.Offset)
			}
		}
		out[tp.Partition] = offs
	}
	return out
}

// verifyTxn runs the oracle on the views and checks the read_committed
// groups against them.
func (r *runner) verifyTxn(v *txnViews, ps *problems) *TxnStats {
	t := r.w.txn
	st := verifyTxn(r.w.oracle, t.all(), txnCheck{topic: r.topic, partitions: r.cfg.Partitions, unc: v.unc, com: v.com, ends: v.ends, lsos: v.lsos}, ps)
	st.RecordsPerTxn, st.AbortEvery = t.txnSize, t.every
	st.Reinits, st.Fenced = t.reinits.Load(), t.fenced.Load()
	checkTxnGroups(r.w.groups, r.topic, r.cfg.Partitions, v.com, ps)
	return &st
}

// checkTxnGroups checks what each read_committed group received while
// the transactions ran against the read_committed read at the end: every
// record of it, with its value (redeliveries are fine), and nothing else:
// an offset the read does not show as a record (an aborted record, a
// marker, an open transaction's record) is a problem.
func checkTxnGroups(groups []*group, topic string, partitions int32, com map[TopicPartition][]Consumed, p *problems) {
	for _, g := range groups {
		missing, extra := 0, 0
		for part := range partitions {
			tp := TopicPartition{topic, part}
			isData := map[int64]bool{}
			for _, c := range com[tp] {
				if c.Control {
					continue
				}
				isData[c.Offset] = true
				switch h := g.valueAt(tp.Partition, c.Offset); {
				case h == 0:
					if missing++; missing <= 3 {
						p.addf("read_committed group %s never received committed record %q (%s/%d offset %d)", g.name, c.Value, tp.Topic, tp.Partition, c.Offset)
					}
				case h != valueHash(c.Value):
					p.addf("read_committed group %s received another value than %q at %s/%d offset %d", g.name, c.Value, tp.Topic, tp.Partition, c.Offset)
				}
			}
			g.mu.Lock()
			var got []int64
			if b := g.seen[tp.Partition]; b != nil {
				for i, w := range b.w {
					for j := range 64 {
						if w&(1<<j) != 0 {
							got = append(got, int64(i)<<6+int64(j))
						}
					}
				}
			}
			g.mu.Unlock()
			for _, off := range got {
				if !isData[off] {
					if extra++; extra <= 3 {
						p.addf("read_committed group %s received offset %d of %s/%d, which is no committed record", g.name, off, tp.Topic, tp.Partition)
					}
				}
			}
		}
		if missing > 3 {
			p.addf("read_committed group %s never received %d committed records in all", g.name, missing)
		}
		if extra > 3 {
			p.addf("read_committed group %s received %d offsets that are no committed record in all", g.name, extra)
		}
		g.mu.Lock()
		for _, c := range g.conflicts {
			p.addf("group %s: %s", g.name, c)
		}
		g.mu.Unlock()
	}
}

package controller

import (
	"crypto/rand"
	"fmt"
	"maps"
	"math"
	"time"

	"sluice.dev/meta"
)

// apply computes o's answer against the group (committed state plus the
// changes of the ops before o in this group) and records o's changes in
// the group. It runs on the committer goroutine only. now is the group's
// commit time in unix nanoseconds.
func (s *Service) apply(g *group, o *op, now int64) {
	g.nowMs = now / 1e6
	switch o.kind {
	case opCreateTopics:
		o.topicResults = s.applyCreateTopics(g, o.specs)
	case opCommitSegment:
		o.commitResult, o.err = applyCommit(g, o.commit, now, s.commitMaxAge())
	case opInitProducerID:
		if o.pidReq.TransactionalID != "" {
			o.pidResult, o.err = applyInitTxnProducer(g, o.pidReq, s.cfg.MaxTransactionTimeoutMs)
			break
		}
		o.pidResult, o.err = applyInitProducerID(g, o.pidReq)
	case opCommitOffsets:
		o.err = s.applyCommitOffsets(g, o.offs, now)
	case opTopicAdmin:
		o.adminErrs = s.applyTopicAdmin(g, o.admin)
	case opDeleteRecords:
		o.deleteResults = applyDeleteRecords(g, o.deletes)
	case opRetention:
		o.count = s.applyRetention(g)
	case opSwap:
		o.swapOutcome, o.err = s.applySwap(g, o.swap, now)
	case opCheckOrphans:
		o.orphans = s.applyCheckOrphans(g, o.orphanKeys, now)
	case opForgetObjects:
		g.forget = append(g.forget, o.forgetIDs...)
	case opACLs:
		o.aclsDeleted, o.adminErrs = applyACLs(g, o.acl)
	case opExpireProducers:
		o.count = applyExpireProducers(g, s.cfg.ProducerIDExpiration)
	// SASL (issue 14)
	case opScram:
		o.adminErrs = s.applyScram(g, o.scram)
	// Transactions (issue 15)
	case opTxn:
		s.applyTxn(g, o)
	default:
		panic(fmt.Sprintf("BUG: meta: op kind %d", o.kind))
	}
}

// maxTopicName is Kafka's limit (Topic.MAX_NAME_LENGTH).
const maxTopicName = 249

// validTopicName checks a name the way Kafka's Topic.validate does.
func validTopicName(name string) error {
	if name == "" || len(name) > maxTopicName {
		return fmt.Errorf("%w: %q: length must be 1..%d", meta.ErrInvalidTopic, name, maxTopicName)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q", meta.ErrInvalidTopic, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q: only ASCII letters, digits, '.', '_' and '-'", meta.ErrInvalidTopic, name)
		}
	}
	return nil
}

func (s *Service) applyCreateTopics(g *group, specs []meta.TopicSpec) []meta.TopicResult {
	res := make([]meta.TopicResult, len(specs))
	for i, sp := range specs {
		res[i].Name = sp.Name
		if err := validTopicName(sp.Name); err != nil {
			res[i].Err = err
			continue
		}
		n := sp.Partitions
		if n == -1 {
			n = s.cfg.DefaultPartitions
		}
		if n < 1 || n > s.cfg.MaxPartitions {
			res[i].Err = fmt.Errorf("%w: %d, must be 1..%d", meta.ErrInvalidPartitions, sp.Partitions, s.cfg.MaxPartitions)
			continue
		}
		if g.topicByName(sp.Name) != nil {
			res[i].Err = fmt.Errorf("%w: %q", meta.ErrTopicExists, sp.Name)
			continue
		}
		if err := s.checkLimits(g, 1, n); err != nil {
			res[i].Err = fmt.Errorf("topic %q: %w", sp.Name, err)
			continue
		}
		t := meta.Topic{Name: sp.Name, ID: g.newTopicID(), Partitions: n}
		if len(sp.Configs) > 0 {
			t.Configs = maps.Clone(sp.Configs)
		}
		g.addTopic(newTopicState(t))
		res[i].Topic = copyTopic(t)
	}
	return res
}

// checkLimits refuses addTopics new topics with addParts new partitions
// in all when the cluster would exceed Config.MaxTopics or
// MaxClusterPartitions. It counts the committed state and this group's
// changes: O(topics), on admin ops only.
func (s *Service) checkLimits(g *group, addTopics int, addParts int32) error {
	topics, parts := len(g.st.topicsByID), 0
	for _, t := range g.st.topicsByID {
		parts += len(t.parts)
	}
	for id, t := range g.topicsByID {
		if old := g.st.topicsByID[id]; old != nil {
			topics--
			parts -= len(old.parts)
		}
		if t != nil {
			topics++
			parts += len(t.parts)
		}
	}
	if topics+addTopics > s.cfg.MaxTopics {
		return fmt.Errorf("%w: the cluster has %d topics, at most %d (meta's --max-topics)", meta.ErrLimit, topics, s.cfg.MaxTopics)
	}
	if int64(parts)+int64(addParts) > int64(s.cfg.MaxClusterPartitions) {
		return fmt.Errorf("%w: the cluster has %d partitions, %d more would pass %d (meta's --max-partitions)", meta.ErrLimit, parts, addParts, s.cfg.MaxClusterPartitions)
	}
	return nil
}

// newTopicID returns a random topic id that is not all zero (Kafka's
// "no topic id") and not in use.
func (g *group) newTopicID() meta.TopicID {
	for {
		var id meta.TopicID
		rand.Read(id[:])
		if id != (meta.TopicID{}) && g.topicByID(id) == nil {
			return id
		}
	}
}

// applyCommit assigns offsets to the chunks of c (see CommitSegment in
// client.go and the rules in producer.go) and returns the answer.
//
// A segment id older than maxAge (half the GC grace; 0: no limit) on
// meta's clock is refused with meta.ErrSegmentExpired, unless its answer
// is kept: then the repeat gets it.
func applyCommit(g *group, c *meta.SegmentCommit, now int64, maxAge time.Duration) (meta.CommitResult, error) {
	if enc, ok := g.segment(c.SegmentID); ok {
		r, err := decodeCommitResult(enc)
		if err != nil {
			// Encoded by this process or checked by Open.
			panic(fmt.Sprintf("BUG: meta: stored answer of segment %s: %v", c.SegmentID, err))
		}
		return r, nil
	}
	if maxAge > 0 && c.SegmentID.Time().UnixNano() < now-maxAge.Nanoseconds() {
		// The orphan collector may have deleted the object already
		// (docs/compaction.md, "No commit can claim an orphan").
		return meta.CommitResult{}, fmt.Errorf("%w: segment %s was made at %s, more than %v (half of --gc-grace) before meta's clock: meta was unreachable that long, or the agent's clock is behind",
			meta.ErrSegmentExpired, c.SegmentID, c.SegmentID.Time().UTC().Format(time.RFC3339Nano), maxAge)
	}
	g.seq++
	g.objsNew = append(g.objsNew, bornObj{id: c.SegmentID, key: c.ObjectKey, size: c.Size})
	res := make([]meta.ChunkResult, len(c.Chunks))
	for i := range c.Chunks {
		ch := &c.Chunks[i]
		r := &res[i]
		t := g.topicByID(ch.TopicID)
		if t == nil || ch.Partition < 0 || int(ch.Partition) >= len(t.parts) {
			r.Status = meta.ChunkUnknownPartition
			continue
		}
		ps := t.parts[ch.Partition]
		r.LogStartOffset = ps.logStart
		if d, ok := g.parts[ps]; ok {
			r.LogStartOffset = d.logStart // moved earlier in this group
		}
		r.Status, r.BaseOffset = g.appendChunk(ps, c, ch)
		if r.Status != meta.ChunkAppended {
			// A refused chunk breaks the partition's run: the next
			// chunk's offsets would not follow the bytes before it.
			if d := g.parts[ps]; d != nil {
				d.runSeq = 0
			}
		}
	}
	g.addSegment(c.SegmentID, appendCommitResult(make([]byte, 0, 2+len(res)*4), res), now)
	return meta.CommitResult{Chunks: res}, nil
}

// appendChunk checks one chunk of c on partition ps and, if it is to be
// appended, assigns its offsets and adds it to the index.
func (g *group) appendChunk(ps *partState, c *meta.SegmentCommit, ch *meta.Chunk) (meta.ChunkStatus, int64) {
	// Metadata that cannot be right refuses this chunk only: the others
	// in the segment may belong to other clients (DESIGN.md invariant 8).
	if ch.RecordCount < 1 || ch.Length < 1 || ch.Start < 0 || ch.Start > c.Size-int64(ch.Length) || c.ObjectKey == "" {
		return meta.ChunkInvalid, 0
	}
	var (
		pk     pidTP
		pp     prodPart
		havePP bool
	)
	if ch.ProducerID >= 0 {
		pk = pidTP{pid: ch.ProducerID, tp: ps.tp}
		pp, havePP = g.prodPart(pk)
		pidEpoch, havePID := g.epoch(ch.ProducerID)
		if !havePID && ch.ProducerID < g.nextPID {
			// Handed out, then expired (producer_expiry.go). An id meta
			// never handed out is accepted, as a Kafka partition leader
			// accepts any idempotent producer's first batch.
			return meta.ChunkUnknownProducer, 0
		}
		if ch.Transactional {
			if st := g.checkTxnChunk(ch, ps.tp); st != meta.ChunkAppended {
				return st, 0
			}
		}
		st, dupBase := checkSequence(&pp, havePP, pidEpoch, havePID, ch)
		if st != meta.ChunkAppended {
			return st, dupBase
		}
	}
	d := g.part(ps)
	if d.next > math.MaxInt64-int64(ch.RecordCount) {
		return meta.ChunkInvalid, 0
	}
	base := d.next
	d.next += int64(ch.RecordCount)
	if ch.ProducerID >= 0 {
		pp.record(havePP, ch, base)
		g.prodParts[pk] = pp
		g.touchPID(ch.ProducerID)
		if ch.Transactional {
			g.noteTxnWrite(ch.ProducerID, ps.tp, base)
		}
	}

	// Extend the open run when this chunk's bytes follow its bytes.
	if d.runSeq == g.seq {
		if e := &d.entries[len(d.entries)-1]; e.Start+e.Length == ch.Start {
			e.Length += int64(ch.Length)
			e.LastOffset = d.next - 1
			e.MaxTimestamp = max(e.MaxTimestamp, ch.MaxTimestamp)
			return meta.ChunkAppended, base
		}
	}
	d.entries = append(d.entries, meta.IndexEntry{
		TopicID:      ps.tp.topic,
		Partition:    ps.tp.part,
		BaseOffset:   base,
		LastOffset:   d.next - 1,
		SegmentID:    c.SegmentID,
		ObjectKey:    c.ObjectKey,
		ObjectSize:   c.Size,
		Start:        ch.Start,
		Length:       int64(ch.Length),
		MaxTimestamp: ch.MaxTimestamp,
	})
	d.runSeq = g.seq
	return meta.ChunkAppended, base
}

// applyInitProducerID implements InitProducerID for idempotent producers.
func applyInitProducerID(g *group, req meta.ProducerIDRequest) (meta.ProducerIDResult, error) {
	if req.ProducerID == -1 {
		return g.allocPID(), nil
	}
	epoch, ok := g.epoch(req.ProducerID)
	if req.ProducerID < 0 || !ok || req.ProducerEpoch != epoch {
		return meta.ProducerIDResult{}, fmt.Errorf("%w: producer id %d epoch %d", meta.ErrInvalidProducerEpoch, req.ProducerID, req.ProducerEpoch)
	}
	if epoch == math.MaxInt16 {
		// Epochs are exhausted; like Kafka, carry on under a new id.
		return g.allocPID(), nil
	}
	g.epochs[req.ProducerID] = epoch + 1
	g.pidUse[req.ProducerID] = g.nowMs
	return meta.ProducerIDResult{ProducerID: req.ProducerID, ProducerEpoch: epoch + 1}, nil
}

func (g *group) allocPID() meta.ProducerIDResult {
	pid := g.nextPID
	g.nextPID++
	g.pidChanged = true
	g.epochs[pid] = 0
	g.pidUse[pid] = g.nowMs
	return meta.ProducerIDResult{ProducerID: pid, ProducerEpoch: 0}
}

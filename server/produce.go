package server

// Produce, versions 3–13 (record batch v2 only; v13 names topics by id).
//
// Each partition's records are split into batches and validated (magic 2,
// CRC-32C, lengths, max.message.bytes), then every batch's records are
// walked, decompressed if need be (codec.ValidateRecords): the record count,
// dense offset deltas and timestamps the header claims must be what the
// records hold. A bad batch fails its partition alone with CORRUPT_MESSAGE
// (bytes damaged), INVALID_RECORD (records not as claimed) or the matching
// code, nothing of that partition is stored, and the other partitions of
// the request go on. Valid batches of the whole request go
// into the pipeline together and land in one segment. acks=1 and acks=all
// are answered only after that segment is uploaded and committed in meta,
// so an acknowledged record is durable either way; acks=0 gets no response
// (and, as in Kafka, a closed connection when the request fails, since that
// is the only way to tell the client).
//
// Transactions (issue 15): a request with a transactional id needs WRITE
// on it; its transactional batches are checked by meta at commit (an
// ongoing transaction of that epoch holding the partition, else
// INVALID_TXN_STATE or INVALID_PRODUCER_EPOCH). A transactional batch in a
// request without a transactional id, and every control batch (only the
// coordinator makes markers), is INVALID_RECORD.
//
// Left out: LogAppendTime topics.

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/codec"
	"sluice.dev/meta"
	"sluice.dev/pipeline"
)

func init() { register(int16(kmsg.Produce), 3, 13, handleProduce) }

// defaultMaxMessageBytes is Kafka's message.max.bytes default: the largest
// record batch a topic accepts unless its max.message.bytes says otherwise.
const defaultMaxMessageBytes = 1048588

// produceSlot remembers where a partition's batches sit in the pipeline
// call so results can be folded back per partition.
type produceSlot struct {
	rp     *kmsg.ProduceResponseTopicPartition
	first  int // index of the partition's first batch in batches
	nBatch int
}

func handleProduce(s *Server, rc *reqCtx, r kmsg.Request) {
	req := r.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	acks := req.Acks

	txnal := req.TransactionID != nil && *req.TransactionID != ""
	if txnal && !s.authorize(rc, meta.OpWrite, meta.ResourceTransactionalID, *req.TransactionID) {
		failAllProduce(resp, req, kerr.TransactionalIDAuthorizationFailed.Code)
		finishProduce(s, rc, resp, acks, true)
		return
	}
	if acks != 0 && acks != 1 && acks != -1 {
		failAllProduce(resp, req, kerr.InvalidRequiredAcks.Code)
		finishProduce(s, rc, resp, acks, true)
		return
	}

	// The topic names alias the frame, which goes back to a pool once
	// the pipeline has laid out its batches (frames.go), possibly before
	// the response is encoded; the response and the topic cache keep
	// names. One small copy per topic, never per record.
	for i := range req.Topics {
		req.Topics[i].Topic = strings.Clone(req.Topics[i].Topic)
	}

	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)

	topics, err := s.topics.resolve(ctx, len(req.Topics), rc.version >= 13,
		func(i int) string { return req.Topics[i].Topic },
		func(i int) meta.TopicID { return req.Topics[i].TopicID })
	if err != nil {
		cancel()
		failAllProduce(resp, req, errorCode(err))
		finishProduce(s, rc, resp, acks, true)
		return
	}

	var batches []pipeline.Batch
	var slots []produceSlot
	anyErr := false
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		ot := &resp.Topics[ti]
		*ot = kmsg.NewProduceResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		ot.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		t, known := topics[ti]
		name := rt.Topic
		if known {
			name = t.Name
		}
		// WRITE on the topic (authz.go); checked before existence, as
		// Kafka does, so that a denied client learns nothing of it.
		denied := !(!known && rc.version >= 13) && !s.authorize(rc, meta.OpWrite, meta.ResourceTopic, name)
		maxBytes := defaultMaxMessageBytes
		validate := codec.ValidateRecords
		if known {
			maxBytes = maxMessageBytes(t)
			if compacted(t) {
				validate = codec.ValidateKeyedRecords
			}
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			op := &ot.Partitions[pi]
			*op = kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
			switch {
			case !known && rc.version >= 13:
				op.ErrorCode = kerr.UnknownTopicID.Code
			case denied:
				op.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case !known || rp.Partition < 0 || rp.Partition >= t.Partitions:
				op.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			if op.ErrorCode != 0 {
				anyErr = true
				continue
			}
			first := len(batches)
			code := int16(0)
			err := codec.SplitBatches(rp.Records, func(b []byte) error {
				h, err := codec.ValidateBatch(b)
				if err != nil {
					code = errorCode(err)
					return err
				}
				switch {
				case len(b) > maxBytes:
					code = kerr.MessageTooLarge.Code
				case h.IsControl() || h.IsTransactional() && (!txnal || h.ProducerID < 0):
					code = kerr.InvalidRecord.Code
				}
				if code != 0 {
					return kerr.ErrorForCode(code)
				}
				// The CRC vouches for the bytes, not for the header's
				// claims: walk the records (decompressing if need be)
				// before anything of the batch is stored.
				if err := validate(b, h, maxBytes*codec.MaxDecompressedRatio); err != nil {
					code = errorCode(err)
					return err
				}
				batches = append(batches, pipeline.Batch{TopicID: t.ID, Partition: rp.Partition, Data: b, Header: h})
				return nil
			})
			if err == nil && len(batches) == first {
				code, err = kerr.CorruptMessage.Code, codec.ErrCorrupt // no batch at all
			}
			if err != nil {
				if code == 0 {
					code = errorCode(err)
				}
				batches = batches[:first] // the partition fails as a whole
				op.ErrorCode = code
				anyErr = true
				mProduceErrors.Inc()
				s.log.Debug("produce: partition rejected", "remote", rc.c.remote,
					"topic", rt.Topic, "partition", rp.Partition, "err", err)
				continue
			}
			slots = append(slots, produceSlot{rp: op, first: first, nBatch: len(batches) - first})
		}
	}

	if len(batches) == 0 {
		cancel()
		finishProduce(s, rc, resp, acks, anyErr)
		return
	}
	var n int
	for i := range batches {
		n += len(batches[i].Data)
	}
	mProduceBytes.Add(n)
	s.producedBytes.Add(int64(n)) // console (issue 16)
	mProduceBatches.Add(len(batches))

	done := func(results []pipeline.Result) {
		rc.c.pendingProduces.Add(-1)
		producesParked.Add(-1)
		cancel()
		failed := anyErr
		for _, sl := range slots {
			for i := sl.first; i < sl.first+sl.nBatch; i++ {
				res := results[i]
				code := errorCode(res.Err)
				if res.Err == nil {
					code = chunkStatusCode(res.Status)
				}
				if code != 0 {
					sl.rp.ErrorCode = code
					sl.rp.BaseOffset = -1
					failed = true
					mProduceErrors.Inc()
					break
				}
				if i == sl.first {
					sl.rp.BaseOffset = res.BaseOffset
					sl.rp.LogStartOffset = res.LogStartOffset
				}
			}
		}
		if acks != 0 {
			rc.respond(resp)
		} else if failed {
			s.log.Info("closing connection: acks=0 produce failed", "remote", rc.c.remote)
			rc.c.close()
		}
	}
	if acks == 0 {
		// Nothing is written back; later requests need not wait.
		rc.skip()
	}
	rc.c.pendingProduces.Add(1)
	producesParked.Add(1)
	// The batches alias the frame: the pipeline holds a reference of its
	// own until it has laid them out (frames.go).
	rc.frame.retain()
	if err := s.deps.Pipeline.AppendRelease(ctx, batches, done, rc.frame.release); err != nil {
		rc.frame.release()
		rc.c.pendingProduces.Add(-1)
		producesParked.Add(-1)
		cancel()
		code := errorCode(err)
		for _, sl := range slots {
			sl.rp.ErrorCode = code
		}
		if acks != 0 {
			rc.respond(resp)
		} else {
			rc.c.close()
		}
		return
	}
	switch {
	case acks == 0:
	case rc.c.pendingProduces.Load() >= clientPipelineDepth:
		s.deps.Pipeline.SealIfAtLeast(minEarlySealBytes)
	default:
		s.watchStall(rc.c, rc.start) // stall.go
	}
}

// clientPipelineDepth is how many produce requests an idempotent Kafka
// producer keeps in flight per broker (Kafka allows at most five). With
// that many waiting on the open segment the client is stalled on us.
const clientPipelineDepth = 5

// minEarlySealBytes is the smallest segment sealed before its flush
// interval because a client is stalled on it: at 2 MiB an object PUT costs
// about $0.0025 per GiB ingested at S3 list prices, while a light producer
// (whose segments never get this big) keeps the interval's low object
// count.
const minEarlySealBytes = 2 << 20

// maxMessageBytes is the topic's max.message.bytes (validated when set,
// see configs.go), or Kafka's default.
func maxMessageBytes(t meta.Topic) int {
	if n, err := strconv.Atoi(t.Configs["max.message.bytes"]); err == nil && n > 0 {
		return n
	}
	return defaultMaxMessageBytes
}

// compacted reports whether the topic's cleanup.policy includes compact:
// then every record needs a key (Kafka refuses keyless records there with
// INVALID_RECORD).
func compacted(t meta.Topic) bool {
	for _, p := range strings.Split(t.Configs["cleanup.policy"], ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

func failAllProduce(resp *kmsg.ProduceResponse, req *kmsg.ProduceRequest, code int16) {
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		ot := kmsg.NewProduceResponseTopic()
		ot.Topic, ot.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			op := kmsg.NewProduceResponseTopicPartition()
			op.Partition = rp.Partition
			op.ErrorCode = code
			op.BaseOffset, op.LogAppendTime, op.LogStartOffset = -1, -1, -1
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics[i] = ot
	}
}

func finishProduce(s *Server, rc *reqCtx, resp *kmsg.ProduceResponse, acks int16, failed bool) {
	if acks != 0 {
		rc.respond(resp)
		return
	}
	rc.skip()
	if failed {
		s.log.Info("closing connection: acks=0 produce failed", "remote", rc.c.remote)
		rc.c.close()
	}
}

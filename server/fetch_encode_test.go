package server

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse builds a response with what handleFetch fills in:
// topics, partitions with errors, watermarks, aborted transactions (nil,
// empty or some) and record sets (nil, empty, small, over inlineRecords).
func randomFetchResponse(rng *rand.Rand, version int16) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	resp.ThrottleMillis = rng.Int32N(100)
	if rng.IntN(5) == 0 {
		resp.ErrorCode = int16(rng.IntN(100))
	}
	resp.SessionID = rng.Int32()
	for range rng.IntN(4) {
		t := kmsg.NewFetchResponseTopic()
		t.Topic = string(bytes.Repeat([]byte{'a' + byte(rng.IntN(26))}, rng.IntN(300)))
		for i := range t.TopicID {
			t.TopicID[i] = byte(rng.Uint32())
		}
		for range rng.IntN(6) {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = rng.Int32()
			p.ErrorCode = int16(rng.IntN(3))
			p.HighWatermark, p.LastStableOffset, p.LogStartOffset = rng.Int64(), rng.Int64(), rng.Int64()
			p.PreferredReadReplica = -1
			switch rng.IntN(3) {
			case 1:
				p.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			case 2:
				// Up to many: the framing's size must count each one
				// whatever slack the other fields leave.
				for range 1 + rng.IntN(40) {
					a := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					a.ProducerID, a.FirstOffset = rng.Int64(), rng.Int64()
					p.AbortedTransactions = append(p.AbortedTransactions, a)
				}
			}
			switch rng.IntN(4) {
			case 0:
				p.RecordBatches = nil
			case 1:
				p.RecordBatches = []byte{}
			case 2:
				p.RecordBatches = make([]byte, 1+rng.IntN(inlineRecords))
			default:
				p.RecordBatches = make([]byte, inlineRecords+1+rng.IntN(200<<10))
			}
			for i := range p.RecordBatches {
				p.RecordBatches[i] = byte(rng.Uint32())
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

// TestFetchVecMatchesKmsg: for every version served, the vector's pieces
// written one after another are byte for byte what kmsg encodes, and
// exactly the large record sets are pieces of their own, marked for
// release (and nothing else is).
func TestFetchVecMatchesKmsg(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	grew := mFetchFramingGrew.Get()
	defer func() {
		if g := mFetchFramingGrew.Get() - grew; g != 0 {
			t.Errorf("%d framings outgrew their computed size", g)
		}
	}()
	for version := int16(4); version <= 17; version++ {
		for range 200 {
			resp := randomFetchResponse(rng, version)
			corr := rng.Int32()
			flex := resp.IsFlexible()
			want := frameResponse(corr, flex, resp.AppendTo, 0).b
			vec, ok := encodeFetchVec(resp, corr, nil)
			if !ok {
				t.Fatalf("v%d: an eligible response was refused", version)
			}
			var got []byte
			large := 0
			for _, p := range vec {
				got = append(got, p.b...)
				if p.release {
					large++
					if len(p.b) <= inlineRecords {
						t.Fatalf("v%d: a piece of %d bytes is marked for release", version, len(p.b))
					}
				}
			}
			wantLarge := 0
			for _, tp := range resp.Topics {
				for _, p := range tp.Partitions {
					if len(p.RecordBatches) > inlineRecords {
						wantLarge++
					}
				}
			}
			if large != wantLarge {
				t.Fatalf("v%d: %d pieces marked for release, want %d", version, large, wantLarge)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Fatalf("v%d: vector encodes %d bytes, kmsg %d; first difference at byte %d", version, len(got), len(want), i)
			}
		}
	}
}

// TestFetchVecRefusesTaggedFields: what the vector does not write sends
// the response to kmsg.
func TestFetchVecRefusesTaggedFields(t *testing.T) {
	for name, set := range map[string]func(*kmsg.FetchResponse){
		"current leader":  func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].CurrentLeader.LeaderID = 3 },
		"diverging epoch": func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].DivergingEpoch.Epoch = 1 },
		"snapshot id":     func(r *kmsg.FetchResponse) { r.Topics[0].Partitions[0].SnapshotID.EndOffset = 9 },
		"brokers":         func(r *kmsg.FetchResponse) { r.Brokers = append(r.Brokers, kmsg.NewFetchResponseBroker()) },
	} {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(16)
		tp := kmsg.NewFetchResponseTopic()
		tp.Partitions = append(tp.Partitions, kmsg.NewFetchResponseTopicPartition())
		resp.Topics = append(resp.Topics, tp)
		if _, ok := encodeFetchVec(resp, 1, nil); !ok {
			t.Fatalf("%s: the plain response was refused", name)
		}
		set(resp)
		if _, ok := encodeFetchVec(resp, 1, nil); ok {
			t.Errorf("%s: encoded as a vector, which leaves it out", name)
		}
	}
}

package rpc

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"sluice.dev/meta"
	pb "sluice.dev/meta/metapb"
)

// TestMalformedRequests sends what the Client never would: ids of the
// wrong size, missing parts, values out of range. Each is refused as an
// invalid request, in band, and the server keeps serving.
func TestMalformedRequests(t *testing.T) {
	e := newEnv(t)
	ctx := withAuth(ctxT(t, 30*time.Second), "Bearer "+testKey)
	mc := pb.NewMetaClient(rawConn(t, e.addr))
	id16 := make([]byte, 16)
	calls := map[string]func() (*pb.Error, error){
		"CommitSegment 15-byte topic id": func() (*pb.Error, error) {
			r, err := mc.CommitSegment(ctx, &pb.CommitSegmentRequest{SegmentId: id16, ObjectKey: "k", Size: 10,
				Chunks: []*pb.Chunk{{TopicId: make([]byte, 15), Length: 1, RecordCount: 1}}})
			return r.GetError(), err
		},
		"CommitSegment 17-byte segment id": func() (*pb.Error, error) {
			r, err := mc.CommitSegment(ctx, &pb.CommitSegmentRequest{SegmentId: make([]byte, 17), ObjectKey: "k"})
			return r.GetError(), err
		},
		"CommitSegment no segment id": func() (*pb.Error, error) {
			r, err := mc.CommitSegment(ctx, &pb.CommitSegmentRequest{ObjectKey: "k"})
			return r.GetError(), err
		},
		"CommitSegment epoch over int16": func() (*pb.Error, error) {
			r, err := mc.CommitSegment(ctx, &pb.CommitSegmentRequest{SegmentId: id16, ObjectKey: "k", Size: 10,
				Chunks: []*pb.Chunk{{TopicId: id16, Length: 1, RecordCount: 1, ProducerEpoch: 1 << 20}}})
			return r.GetError(), err
		},
		"TopicsByID empty id": func() (*pb.Error, error) {
			r, err := mc.TopicsByID(ctx, &pb.TopicsByIDRequest{Ids: [][]byte{id16, nil}})
			return r.GetError(), err
		},
		"PartitionStates nil partition": func() (*pb.Error, error) {
			r, err := mc.PartitionStates(ctx, &pb.PartitionStatesRequest{Partitions: []*pb.TopicPartition{nil}})
			return r.GetError(), err
		},
		"Lookup no partition": func() (*pb.Error, error) {
			r, err := mc.Lookup(ctx, &pb.LookupRequest{})
			return r.GetError(), err
		},
		"FindTimestamp unknown query": func() (*pb.Error, error) {
			r, err := mc.FindTimestamp(ctx, &pb.FindTimestampRequest{Partition: &pb.TopicPartition{TopicId: id16}, Query: 7})
			return r.GetError(), err
		},
		"InitProducerID epoch over int16": func() (*pb.Error, error) {
			r, err := mc.InitProducerID(ctx, &pb.InitProducerIDRequest{ProducerId: 1, ProducerEpoch: 40000})
			return r.GetError(), err
		},
		"CommitOffsets 3-byte topic id": func() (*pb.Error, error) {
			r, err := mc.CommitOffsets(ctx, &pb.CommitOffsetsRequest{Group: "g", Generation: -1, Offsets: []*pb.CommittedOffset{{TopicId: []byte{1, 2, 3}}}})
			return r.GetError(), err
		},
		"FetchOffsets 20-byte topic id": func() (*pb.Error, error) {
			r, err := mc.FetchOffsets(ctx, &pb.FetchOffsetsRequest{Group: "g", Partitions: []*pb.TopicPartition{{TopicId: make([]byte, 20)}}})
			return r.GetError(), err
		},
		"DeleteOffsets 1-byte topic id": func() (*pb.Error, error) {
			r, err := mc.DeleteOffsets(ctx, &pb.DeleteOffsetsRequest{Group: "g", Partitions: []*pb.TopicPartition{{TopicId: []byte{0}}}})
			return r.GetError(), err
		},
		"RegisterAgent no agent": func() (*pb.Error, error) {
			r, err := mc.RegisterAgent(ctx, &pb.RegisterAgentRequest{})
			return r.GetError(), err
		},
	}
	for name, call := range calls {
		perr, err := call()
		if err != nil {
			t.Errorf("%s: RPC failed: %v", name, err)
			continue
		}
		if perr.GetCode() != pb.ErrorCode_ERR_INVALID_REQUEST || !errors.Is(decodeErr(perr), meta.ErrInvalidRequest) {
			t.Errorf("%s: answered %v, want ERR_INVALID_REQUEST", name, perr)
		}
	}
	// Nothing was committed, and the server still serves.
	if r, err := mc.ClusterID(ctx, &pb.ClusterIDRequest{}); err != nil || r.ClusterId == "" {
		t.Fatalf("ClusterID after malformed requests: %v %v", r, err)
	}
	if ts, _ := e.svc.Topics(ctx, nil); len(ts) != 0 {
		t.Fatalf("topics appeared: %+v", ts)
	}
}

// TestRequestSizeLimit: a request over the server's limit is refused,
// and the client does not retry it as if the server were unavailable.
func TestRequestSizeLimit(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t, 30*time.Second)
	names := make([]string, 0, 1<<12)
	long := string(make([]byte, 8<<10))
	for range cap(names) {
		names = append(names, long) // 32 MiB in all
	}
	start := time.Now()
	_, err := e.rc.Topics(ctx, names)
	if err == nil || errors.Is(err, meta.ErrUnavailable) || time.Since(start) > 5*time.Second {
		t.Fatalf("Topics with a 32 MiB request: %v after %v", err, time.Since(start))
	}
	if _, err := e.rc.ClusterID(ctx); err != nil {
		t.Fatalf("ClusterID after an oversized request: %v", err)
	}
}

// FuzzDecode feeds arbitrary bytes to the decoders of every message with
// fixed-size ids, the jobs API's included. A decoded message must encode
// back to itself; nothing may panic.
func FuzzDecode(f *testing.F) {
	id := make([]byte, 16)
	seeds := []proto.Message{
		&pb.CommitSegmentRequest{SegmentId: id, ObjectKey: "k", Size: 9, AgentId: "a",
			Chunks: []*pb.Chunk{{TopicId: id, Partition: 1, Start: 2, Length: 3, RecordCount: 4, FirstTimestamp: 5, MaxTimestamp: 6, ProducerId: 7, ProducerEpoch: 8, BaseSequence: 9}}},
		&pb.CommitSegmentRequest{SegmentId: id, Chunks: []*pb.Chunk{{TopicId: id[:15]}}},
		&pb.WatchResponse{Events: []*pb.CommitEvent{{Entry: &pb.IndexEntry{TopicId: id, SegmentId: id, ObjectKey: "k", BaseOffset: 1, LastOffset: 2}, HighWatermark: 3}}},
		&pb.FetchOffsetsResponse{Offsets: []*pb.CommittedOffset{{TopicId: id, Partition: 2, Offset: 3, Metadata: "m"}}},
		&pb.AcquireJobResponse{Ok: true, Job: &pb.Job{Id: 1, Kind: pb.JobKind_JOB_COMPACT, LeaseTtlNanos: 5, Work: &pb.Job_Compact{
			Compact: &pb.CompactJob{Level: 1, Output: id, MaxEntryBytes: 9, Sources: []*pb.IndexEntry{{TopicId: id, SegmentId: id, ObjectKey: "k"}}}}}},
		&pb.CompleteCompactionRequest{JobId: 1, Output: id, ObjectKey: "k", Size: 3, BytesRead: 4,
			Entries: []*pb.IndexEntry{{TopicId: id, SegmentId: id, BaseOffset: 1, LastOffset: 2}}},
	}
	for i, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	unmarshal := proto.UnmarshalOptions{DiscardUnknown: true}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		switch kind % 6 {
		case 0, 1:
			var r pb.CommitSegmentRequest
			if unmarshal.Unmarshal(b, &r) != nil {
				return
			}
			var d decoder
			c := d.commit(&r)
			if d.err == nil && !proto.Equal(encCommit(c), &r) {
				t.Fatalf("commit round trip:\n%v\n%v", &r, encCommit(c))
			}
		case 2:
			var r pb.WatchResponse
			if unmarshal.Unmarshal(b, &r) != nil {
				return
			}
			var d decoder
			evs := d.events(r.Events)
			if d.err == nil && !proto.Equal(&pb.WatchResponse{Events: encEvents(evs)}, &pb.WatchResponse{Events: r.Events}) {
				t.Fatalf("events round trip:\n%v\n%v", r.Events, encEvents(evs))
			}
		case 3:
			var r pb.FetchOffsetsResponse
			if unmarshal.Unmarshal(b, &r) != nil {
				return
			}
			var d decoder
			offs := d.offsets(r.Offsets)
			if d.err == nil && !proto.Equal(&pb.FetchOffsetsResponse{Offsets: encOffsets(offs)}, &pb.FetchOffsetsResponse{Offsets: r.Offsets}) {
				t.Fatalf("offsets round trip:\n%v\n%v", r.Offsets, encOffsets(offs))
			}
		case 4:
			var r pb.AcquireJobResponse
			if unmarshal.Unmarshal(b, &r) != nil || r.Job == nil {
				return
			}
			var d decoder
			job := d.job(r.Job)
			if d.err == nil && !proto.Equal(encJob(job), r.Job) {
				t.Fatalf("job round trip:\n%v\n%v", r.Job, encJob(job))
			}
		case 5:
			var r pb.CompleteCompactionRequest
			if unmarshal.Unmarshal(b, &r) != nil {
				return
			}
			var d decoder
			res := d.compactResult(&r)
			if d.err == nil && !proto.Equal(encCompactResult(res), &r) {
				t.Fatalf("compaction result round trip:\n%v\n%v", &r, encCompactResult(res))
			}
		}
	})
}

package server

import (
	"encoding/binary"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// frameOf encodes a request the way a client does, without the size prefix.
func frameOf(req kmsg.Request, corrID int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corrID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func seedRequests() []kmsg.Request {
	var out []kmsg.Request
	for _, k := range supportedKeys() {
		h := handlers[k]
		for v := h.min; v <= h.max; v++ {
			r := kmsg.RequestForKey(k)
			r.SetVersion(v)
			switch x := r.(type) {
			case *kmsg.ProduceRequest:
				t := kmsg.NewProduceRequestTopic()
				t.Topic = "t"
				p := kmsg.NewProduceRequestTopicPartition()
				p.Records = []byte{1, 2, 3}
				t.Partitions = append(t.Partitions, p)
				x.Topics = append(x.Topics, t)
			case *kmsg.FetchRequest:
				t := kmsg.NewFetchRequestTopic()
				t.Topic = "t"
				t.Partitions = append(t.Partitions, kmsg.NewFetchRequestTopicPartition())
				x.Topics = append(x.Topics, t)
			case *kmsg.MetadataRequest:
				t := kmsg.NewMetadataRequestTopic()
				n := "t"
				t.Topic = &n
				x.Topics = append(x.Topics, t)
			}
			out = append(out, r)
		}
	}
	return out
}

func TestParseRequestRoundTrip(t *testing.T) {
	for _, r := range seedRequests() {
		f := frameOf(r, 42, "client-1")
		hdr, got, err := parseRequest(f)
		if err != nil {
			t.Fatalf("%s v%d: %v", kmsg.NameForKey(r.Key()), r.GetVersion(), err)
		}
		if hdr.corrID != 42 || hdr.clientID != "client-1" || hdr.key != r.Key() || hdr.version != r.GetVersion() {
			t.Fatalf("%s v%d: header %+v", kmsg.NameForKey(r.Key()), r.GetVersion(), hdr)
		}
		if got.Key() != r.Key() {
			t.Fatalf("key %d != %d", got.Key(), r.Key())
		}
	}
}

// Every prefix of a valid frame is an error, never a panic.
func TestParseRequestTruncated(t *testing.T) {
	for _, r := range seedRequests() {
		f := frameOf(r, 1, "c")
		for i := 0; i < len(f); i++ {
			_, _, _ = parseRequest(f[:i])
		}
	}
}

func TestParseRequestUnsupported(t *testing.T) {
	r := kmsg.NewPtrFetchRequest()
	r.SetVersion(3) // record batch v2 needs v4+
	if _, _, err := parseRequest(frameOf(r, 1, "")); err == nil {
		t.Fatal("fetch v3 accepted")
	}
	f := frameOf(kmsg.NewPtrApiVersionsRequest(), 1, "")
	binary.BigEndian.PutUint16(f[0:], 9999)
	if _, _, err := parseRequest(f); err == nil {
		t.Fatal("unknown API key accepted")
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, r := range seedRequests() {
		f.Add(frameOf(r, 7, "fuzz"))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, _, _ = parseRequest(frame)
	})
}

// BenchmarkParseProduceRequest decodes a Produce v9 frame carrying 16
// partitions × one 64 KiB batch: the per-request decode cost on the produce
// path (the record bytes alias the frame and are not copied).
func BenchmarkParseProduceRequest(b *testing.B) {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "bench"
	batch := make([]byte, 64<<10)
	for p := int32(0); p < 16; p++ {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = batch
		t.Partitions = append(t.Partitions, rp)
	}
	req.Topics = append(req.Topics, t)
	frame := frameOf(req, 1, "bench-client")
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseRequest(frame); err != nil {
			b.Fatal(err)
		}
	}
}

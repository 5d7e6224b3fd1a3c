package server

import (
	"fmt"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kmsg"

	"sluice.dev/internal/bufpool"
)

// frameBuf is one request frame (without its size prefix) and who still
// needs its bytes.
//
// Produce frames come from a pool (frames): they are the megabytes per
// request that a fresh allocation made the agent fault in page by page
// (BENCHMARKS.md, "Produce CPU per GiB"). Every other frame is a plain
// allocation, left to the garbage collector: their handlers may keep
// strings that alias the frame (kmsg's UnsafeReadFrom) for as long as
// they like (a long-polling fetch, a group join), and they are small.
//
// Ownership of a pooled frame, the invariant that makes reuse safe: the
// buffer goes back to the pool when refs drops to zero, and every holder
// of a reference to its bytes holds one count:
//
//   - the connection, from OnTraffic cutting it until dispatch returns
//     (queued, decoded, handled), or until the connection closes with the
//     frame still queued;
//   - the pipeline, for a produce request it admitted: its batches alias
//     the frame until the segment holding them has been laid out
//     (pipeline.AppendRelease calls release then).
//
// Nothing else may keep the bytes: handleProduce clones the topic names
// (the only strings of a ProduceRequest that outlive the handler: the
// response and the topic cache keep them), and the response is encoded
// from that clone and from values, never from the frame.
type frameBuf struct {
	b      []byte
	pooled bool
	refs   atomic.Int32
}

// frames is the pool of produce frames, shared by every connection of
// the process. framePoolBytes bounds what it keeps free: in steady state
// frames come back at the rate segments are laid out, so a few segments'
// worth (the pipeline's default is 8 MiB) keeps every reuse warm, and an
// idle agent holds no more than this.
var frames = bufpool.New(framePoolBytes)

// How often a produce frame found a warm buffer: reused ÷ gets near 1 is
// the pool doing its job; a low ratio under load says framePoolBytes is
// too small for the traffic.
var (
	_ = metrics.NewGauge(`sluice_kafka_frame_pool_gets_total`, func() float64 { g, _, _ := frames.Stats(); return float64(g) })
	_ = metrics.NewGauge(`sluice_kafka_frame_pool_reused_total`, func() float64 { _, h, _ := frames.Stats(); return float64(h) })
	_ = metrics.NewGauge(`sluice_kafka_frame_pool_free_bytes`, func() float64 { _, _, b := frames.Stats(); return float64(b) })
)

const framePoolBytes = 64 << 20

// newFrame returns a frame of size bytes for a request with API key key,
// holding the connection's reference.
func newFrame(size int, key int16) *frameBuf {
	f := &frameBuf{}
	if key == int16(kmsg.Produce) {
		f.b = frames.Get(size)
		f.pooled = true
	} else {
		f.b = make([]byte, size)
	}
	f.refs.Store(1)
	return f
}

// retain adds a holder.
func (f *frameBuf) retain() {
	if f.refs.Add(1) <= 1 {
		panic("BUG: server: frame retained after its release")
	}
}

// release drops a holder; the last one gives a pooled buffer back.
func (f *frameBuf) release() {
	switch n := f.refs.Add(-1); {
	case n > 0:
	case n == 0:
		if f.pooled {
			frames.Put(f.b)
		}
		f.b = nil
	default:
		panic(fmt.Sprintf("BUG: server: frame released %d times too often", -n))
	}
}

// Large responses (fetches: sizeHint says how large) are encoded into
// buffers from their own pool and given back by conn.written once the
// transport has taken their bytes (sent, or copied into gnet's outbound
// buffer). A fetch response is megabytes; encoded into fresh memory it was
// written at page-fault speed (BENCHMARKS.md, catch-up read).
//
// Ownership: a response buffer has one holder at a time (the encoder,
// then the connection's queue, then the transport) and nothing keeps a
// reference once it is written, so written may put back every piece
// marked release (a whole buffer, never a slice of another): bufpool.Put
// takes only buffers whose capacity is exactly one of its classes, and a
// response that outgrew its hint was reallocated by append to another
// capacity (then the garbage collector takes it, as it takes a response
// dropped with its connection).
const (
	responsePoolBytes = 64 << 20
	responsePoolMin   = 64 << 10
)

var responses = bufpool.New(responsePoolBytes)

var (
	_ = metrics.NewGauge(`sluice_kafka_response_pool_gets_total`, func() float64 { g, _, _ := responses.Stats(); return float64(g) })
	_ = metrics.NewGauge(`sluice_kafka_response_pool_reused_total`, func() float64 { _, h, _ := responses.Stats(); return float64(h) })
	_ = metrics.NewGauge(`sluice_kafka_response_pool_free_bytes`, func() float64 { _, _, b := responses.Stats(); return float64(b) })
)

// newResponse returns an empty response buffer with the 8 bytes of size
// and correlation id, with room for sizeHint bytes in all.
func newResponse(sizeHint int) []byte {
	if sizeHint < responsePoolMin {
		return make([]byte, 8, max(64, sizeHint))
	}
	return responses.Get(sizeHint)[:8]
}

// newFetchData returns an empty buffer with room for want bytes, for the
// record batches of one partition of a fetch response. The same pool as
// the responses': a large record set is a piece of the written response
// and goes back with it (releaseResponses); a small one, or one encoded
// by kmsg, is copied and goes back once encoded (releaseFetchData).
func newFetchData(want int) []byte {
	if want < responsePoolMin {
		return make([]byte, 0, want)
	}
	return responses.Get(want)[:0]
}

// releaseFetchData gives back a partition's copy buffer (recordSet.buf)
// once nothing refers to it. It holds copies of cached bytes
// (copyEntries), never the cache's own.
func releaseFetchData(b []byte) {
	if cap(b) >= responsePoolMin {
		responses.Put(b)
	}
}

// releaseResponses gives the written pieces of responses that are whole
// buffers of their own back to their pool.
func releaseResponses(bufs []outBuf) {
	for i := range bufs {
		if w := bufs[i].wholeBuf(); bufs[i].release && cap(w) >= responsePoolMin {
			responses.Put(w)
		}
		for _, l := range bufs[i].leases {
			l.release()
		}
	}
}

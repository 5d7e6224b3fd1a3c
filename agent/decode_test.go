package agent_test

import (
	"encoding/binary"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"sluice.dev/agent"
	"sluice.dev/internal/kafkatest"
)

// claimingProduceV3 is issue 11's frame: Produce v3, no transactional id,
// acks, timeout, then a topics count of 8M (two bytes each is all kmsg
// asked for) and 16 MiB of zeros.
func claimingProduceV3(size int) []byte {
	f := make([]byte, 4, size+4)
	f = binary.BigEndian.AppendUint16(f, 0) // Produce
	f = binary.BigEndian.AppendUint16(f, 3)
	f = binary.BigEndian.AppendUint32(f, 1)      // correlation id
	f = binary.BigEndian.AppendUint16(f, 1)      // client id length
	f = append(f, 'c')                           // client id
	f = binary.BigEndian.AppendUint16(f, 0xffff) // null transactional id
	f = binary.BigEndian.AppendUint16(f, 1)      // acks
	f = binary.BigEndian.AppendUint32(f, 1000)   // timeout
	claim := (size + 4 - len(f) - 4) / 2
	f = binary.BigEndian.AppendUint32(f, uint32(claim))
	f = append(f, make([]byte, size+4-len(f))...)
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	return f
}

// Three connections each send a 16 MiB frame that used to make kmsg
// allocate 512 MiB (1.3–1.6 GiB of RSS for the three, issue 11). Each is
// now closed, and the agent allocates a few copies of the frames, not
// gigabytes.
func TestClaimingFramesDoNotAllocate(t *testing.T) {
	c := startCluster(t, t.TempDir(), agent.Config{})
	frame := claimingProduceV3(16 << 20)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := kafkatest.Dial(c.addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(frame); err != nil {
				t.Error(err)
				return
			}
			// The agent closes the connection: the read ends without a
			// response.
			if n, err := io.Copy(io.Discard, conn); err != nil || n != 0 {
				t.Errorf("read %d bytes, err %v; want the connection closed without a response", n, err)
			}
		}()
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("3 × 16 MiB claiming frames: %d MiB allocated in the process", got>>20)
	// Decoding now allocates next to nothing (server's
	// TestDecodeGuardIssueFrames). What is left, about 100 MiB per frame
	// measured, is buffering on the way in: gnet's ring buffer doubling
	// up to the frame (its old buffers are garbage), Peek copying a
	// wrapped frame, and the frame's own copy. Before: 1.9 GiB for the
	// three.
	if got > 768<<20 { // 300–400 MiB measured, with and without -race
		t.Fatalf("3 × 16 MiB claiming frames allocated %d MiB", got>>20)
	}
}

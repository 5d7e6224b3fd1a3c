// Package kafkatest holds helpers shared by tests: a hand-rolled record
// batch encoder (so tests do not trust the code under test to build their
// input) and a raw Kafka connection for sending exactly the bytes a test
// wants.
package kafkatest

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BatchOpts describes a v2 record batch.
type BatchOpts struct {
	Records       int
	ValueSize     int
	FirstTS       int64
	ProducerID    int64 // -1 for none
	ProducerEpoch int16
	BaseSeq       int32
	Attrs         int16
	Value         func(i int) []byte // overrides ValueSize when set
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendBatch appends a valid uncompressed v2 batch.
func AppendBatch(dst []byte, o BatchOpts) []byte {
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, 0)
	dst = be.AppendUint32(dst, 0) // batchLength, patched below
	dst = be.AppendUint32(dst, 0xffffffff)
	dst = append(dst, 2)
	dst = be.AppendUint32(dst, 0) // crc, patched below
	dst = be.AppendUint16(dst, uint16(o.Attrs))
	dst = be.AppendUint32(dst, uint32(o.Records-1))
	dst = be.AppendUint64(dst, uint64(o.FirstTS))
	dst = be.AppendUint64(dst, uint64(o.FirstTS+int64(max(o.Records-1, 0))))
	dst = be.AppendUint64(dst, uint64(o.ProducerID))
	dst = be.AppendUint16(dst, uint16(o.ProducerEpoch))
	dst = be.AppendUint32(dst, uint32(o.BaseSeq))
	dst = be.AppendUint32(dst, uint32(o.Records))
	var body []byte
	for i := 0; i < o.Records; i++ {
		key := fmt.Appendf(nil, "key-%d", i)
		var val []byte
		if o.Value != nil {
			val = o.Value(i)
		} else {
			val = make([]byte, o.ValueSize)
			for j := range val {
				val[j] = byte(i + j)
			}
		}
		body = body[:0]
		body = append(body, 0)
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(i))
		body = binary.AppendVarint(body, int64(len(key)))
		body = append(body, key...)
		body = binary.AppendVarint(body, int64(len(val)))
		body = append(body, val...)
		body = binary.AppendVarint(body, 0)
		dst = binary.AppendVarint(dst, int64(len(body)))
		dst = append(dst, body...)
	}
	Fix(dst[start:])
	return dst
}

// Fix recomputes a batch's length and CRC after a test edited it.
func Fix(b []byte) {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

// Conn is a raw Kafka connection.
type Conn struct {
	net.Conn
	corr int32
}

// Dial connects to a Kafka listener.
func Dial(addr string) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{Conn: c}, nil
}

// Send writes one request frame and returns its correlation id.
func (c *Conn) Send(req kmsg.Request) (int32, error) {
	return c.SendAll(req)
}

// SendAll writes the request frames in one write, as a client's pipeline
// does when it has them all ready (a test that means "sent together"
// must not depend on two writes arriving within some time of each
// other), and returns the first's correlation id; the others follow it.
func (c *Conn) SendAll(reqs ...kmsg.Request) (int32, error) {
	b := make([]byte, 0, 256)
	first := c.corr + 1
	for _, req := range reqs {
		c.corr++
		start := len(b)
		b = append(b, 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
		b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
		b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
		b = binary.BigEndian.AppendUint16(b, uint16(len("kafkatest")))
		b = append(b, "kafkatest"...)
		if req.IsFlexible() {
			b = append(b, 0)
		}
		b = req.AppendTo(b)
		binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	}
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Write(b)
	return first, err
}

// Receive reads one response frame into resp (whose version must be set).
func (c *Conn) Receive(corr int32, resp kmsg.Response, timeout time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 256<<20 {
		return fmt.Errorf("response of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		return fmt.Errorf("correlation id %d, want %d", got, corr)
	}
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != int16(kmsg.ApiVersions) {
		// Skip the response header's tagged fields (always empty from us).
		if len(body) == 0 || body[0] != 0 {
			return fmt.Errorf("unexpected response header tags")
		}
		body = body[1:]
	}
	return resp.ReadFrom(body)
}

// RoundTrip sends req and reads its response.
func (c *Conn) RoundTrip(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	corr, err := c.Send(req)
	if err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	return resp, c.Receive(corr, resp, timeout)
}

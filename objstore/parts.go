package objstore

import (
	"io"
)

// Parts is an object held as a vector of byte slices, in order: what a
// compaction lays out from the batches it read, without copying them into
// one new buffer. Pass a *Parts to PutReader: Local writes each slice
// straight into its file (no copy in user space), S3 reads it like any
// reader into its part buffers. Reading consumes it.
type Parts struct {
	bufs [][]byte
	size int64
}

// NewParts returns the vector of bufs (not copied: they must stay
// unmodified until the Put returns).
func NewParts(bufs [][]byte) *Parts {
	var n int64
	for _, b := range bufs {
		n += int64(len(b))
	}
	return &Parts{bufs: bufs, size: n}
}

// Len is the number of bytes left to read.
func (p *Parts) Len() int64 { return p.size }

// Read implements io.Reader.
func (p *Parts) Read(dst []byte) (int, error) {
	n := 0
	for n < len(dst) && len(p.bufs) > 0 {
		c := copy(dst[n:], p.bufs[0])
		n += c
		p.bufs[0] = p.bufs[0][c:]
		if len(p.bufs[0]) == 0 {
			p.bufs = p.bufs[1:]
		}
	}
	p.size -= int64(n)
	if n == 0 && len(dst) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo implements io.WriterTo: one Write per slice.
func (p *Parts) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(p.bufs) > 0 {
		n, err := w.Write(p.bufs[0])
		total += int64(n)
		p.size -= int64(n)
		p.bufs[0] = p.bufs[0][n:]
		if err != nil {
			return total, err
		}
		if len(p.bufs[0]) > 0 {
			return total, io.ErrShortWrite
		}
		p.bufs = p.bufs[1:]
	}
	return total, nil
}

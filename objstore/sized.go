package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"sluice.dev/internal/uninit"
)

// errSizeMismatch is wrapped by every error of a PutReader whose reader
// yields a different number of bytes than its size said.
var errSizeMismatch = errors.New("reader length differs from the size given")

// readSized reads exactly size bytes of r into a new slice and checks that
// r ends there; the errors are PutReader's.
func readSized(r io.Reader, size int64) ([]byte, error) {
	if size < 0 {
		return nil, fmt.Errorf("negative size %d", size)
	}
	// Not cleared (internal/uninit): ReadFull fills it or it is dropped.
	buf := uninit.Bytes(int(size))[:size]
	if n, err := io.ReadFull(r, buf); err != nil {
		return nil, shortRead(int64(n), err)
	}
	if err := checkDrained(r, size); err != nil {
		return nil, err
	}
	return buf, nil
}

// shortRead turns the error of a read that got n bytes, fewer than asked,
// into PutReader's.
func shortRead(n int64, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: it ended after %d bytes: %w", errSizeMismatch, n, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("reading the object's data: %w", err)
}

// checkDrained reports an error unless r is at its end after read bytes.
func checkDrained(r io.Reader, read int64) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: it holds more than %d bytes", errSizeMismatch, read)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the object's data: %w", err)
		}
	}
}

// ctxReader fails reads once ctx is done, so that a long copy from a
// reader stops when its caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

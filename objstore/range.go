package objstore

import (
	"errors"
	"fmt"
	"io"
)

// errInvalidRange is returned for a negative offset; it is a caller bug,
// unlike a range past the end, which may be a stale size.
var errInvalidRange = errors.New("objstore: invalid range")

// resolveRange checks the range [off, off+length) of an object of size
// bytes and returns the number of bytes to read. length < 0 means "to the
// end". Every implementation goes through it so that they agree on the
// edge cases the shared suite pins down: an empty range at the very end is
// fine, anything reaching past the end wraps io.ErrUnexpectedEOF.
func resolveRange(key string, size, off, length int64) (int64, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: %q offset %d", errInvalidRange, key, off)
	}
	if off > size {
		return 0, fmt.Errorf("objstore: %q offset %d past end (size %d): %w", key, off, size, io.ErrUnexpectedEOF)
	}
	if length < 0 {
		return size - off, nil
	}
	// Written as a subtraction so that a huge length cannot overflow.
	if length > size-off {
		return 0, fmt.Errorf("objstore: %q range [%d, +%d) past end (size %d): %w", key, off, length, size, io.ErrUnexpectedEOF)
	}
	return length, nil
}

package objstore

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// Count sees every request of the store it wraps, in the classes the
// console prices: PUT-class (Put, PutReader, List), GET-class (GetRange,
// Head); failed GETs are requests too (they are billed), their bytes are
// not.
func TestCountCountsRequestsAndBytes(t *testing.T) {
	ctx := context.Background()
	var c Counts
	s := Count(NewMemory(), &c)
	if err := s.Put(ctx, "a", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReader(ctx, "b", bytes.NewReader([]byte("abc")), 3); err != nil {
		t.Fatal(err)
	}
	if b, err := s.GetRange(ctx, "a", 1, 3); err != nil || string(b) != "ell" {
		t.Fatalf("GetRange: %q %v", b, err)
	}
	if _, err := s.GetRange(ctx, "missing", 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetRange of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := s.Head(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.List(ctx, "", func(ObjectInfo) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if p, g, bp, bg := c.Puts.Load(), c.Gets.Load(), c.BytesPut.Load(), c.BytesGot.Load(); p != 3 || g != 3 || bp != 8 || bg != 3 {
		t.Fatalf("counted %d puts, %d gets, %d bytes put, %d bytes got; want 3, 3, 8, 3", p, g, bp, bg)
	}
}

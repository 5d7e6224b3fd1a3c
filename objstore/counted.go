package objstore

import (
	"context"
	"io"
	"sync/atomic"
)

// Counts are the requests one user of a store made, in the two classes
// object stores bill by (S3, GCS and Azure alike): PUT-class requests
// (Put, PutReader, List) and GET-class requests (GetRange, Head). Delete
// is free on the stores Sluice targets and is not counted. An agent
// reports its Counts to meta with every heartbeat, and the web console
// prices them (issue 16).
//
// They are per wrapped store, unlike Instrument's process-wide series,
// because a playground runs several agents over one store and each must
// report its own.
type Counts struct {
	Puts, Gets         atomic.Int64
	BytesPut, BytesGot atomic.Int64
}

// Count wraps s so that every request it passes on is counted in c.
func Count(s Store, c *Counts) Store { return counted{s, c} }

type counted struct {
	s Store
	c *Counts
}

var _ Store = counted{}

func (cs counted) Put(ctx context.Context, key string, data []byte) error {
	err := cs.s.Put(ctx, key, data)
	cs.c.Puts.Add(1)
	if err == nil {
		cs.c.BytesPut.Add(int64(len(data)))
	}
	return err
}

func (cs counted) PutReader(ctx context.Context, key string, r io.Reader, size int64) error {
	err := cs.s.PutReader(ctx, key, r, size)
	cs.c.Puts.Add(1)
	if err == nil {
		cs.c.BytesPut.Add(size)
	}
	return err
}

func (cs counted) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b, err := cs.s.GetRange(ctx, key, off, length)
	cs.c.Gets.Add(1)
	cs.c.BytesGot.Add(int64(len(b)))
	return b, err
}

func (cs counted) Head(ctx context.Context, key string) (ObjectInfo, error) {
	cs.c.Gets.Add(1)
	return cs.s.Head(ctx, key)
}

func (cs counted) Delete(ctx context.Context, key string) error { return cs.s.Delete(ctx, key) }

func (cs counted) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	cs.c.Puts.Add(1)
	return cs.s.List(ctx, prefix, fn)
}

func (cs counted) Close() error { return cs.s.Close() }

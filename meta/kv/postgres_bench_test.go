package kv

import (
	"encoding/binary"
	"testing"
)

// BenchmarkPGView loads a cluster of 400,000 index-sized pairs (24-byte
// keys, 64-byte values: about a month of index entries at the defaults,
// meta/controller/month_bench_test.go) the way Open does.
//
//	go test -run '^$' -bench BenchmarkPGView -benchtime 5x ./meta/kv/
func BenchmarkPGView(b *testing.B) {
	const rows, batch = 400_000, 20_000
	pool := newPool(b)
	p := openPG(b, pool, "bench", nil)
	var key [24]byte
	val := make([]byte, 64)
	for i := 0; i < rows; i += batch {
		err := p.Update(func(tx KVTx) error {
			for j := i; j < i+batch; j++ {
				binary.BigEndian.PutUint64(key[:], uint64(j%64))
				binary.BigEndian.PutUint64(key[8:], uint64(j))
				binary.BigEndian.PutUint64(val, uint64(j))
				if err := tx.Put(BucketIndex, key[:], val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := p.View(func(tx KVTx) error {
			return tx.ForEach(BucketIndex, func(k, v []byte) error {
				n++
				return nil
			})
		})
		if err != nil || n != rows {
			b.Fatalf("view: %d rows, %v", n, err)
		}
	}
}

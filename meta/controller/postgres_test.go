package controller

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/internal/pgtest"

	"sluice.dev/meta"
	"sluice.dev/meta/kv"
)

// The PostgreSQL store's own tests are in meta/kv; this one runs a
// Service on it in either store mode (SLUICE_META_STORE=postgres runs
// the whole suite on PostgreSQL).

// newPool opens a pool on this test binary's PostgreSQL database.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestPostgresServiceReopen: a Service on PostgreSQL, written, closed and
// reopened has the same state; a second cluster in the same database is
// separate.
func TestPostgresServiceReopen(t *testing.T) {
	pool := newPool(t)
	open := func(cluster string) *Service {
		t.Helper()
		store, err := kv.OpenPostgres(ctxT(t), pool, cluster, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Store: store, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open("one")
	other := open("two")
	defer other.Close()
	a := createTopic(t, s, "a", 3)
	createTopic(t, other, "a", 1)
	p, err := s.InitProducerID(ctxT(t), meta.ProducerIDRequest{ProducerID: -1, ProducerEpoch: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range int32(30) {
		commit(t, s, newSegment().addP(a.ID, i%3, 2, 20, p.ProducerID, p.ProducerEpoch, i/3*2).add(a.ID, (i+1)%3, 1, 10))
	}
	if _, err := s.DeleteTopics(ctxT(t), []string{"nope"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open("one")
	defer s.Close()
	if after := snapshot(s); !reflect.DeepEqual(before, after) {
		t.Fatalf("state after reopen differs:\nbefore %+v\nafter  %+v", before, after)
	}
	if o := snapshot(other); len(o.Topics) != 1 || o.Topics[0].Partitions != 1 || o.ClusterID == before.ClusterID {
		t.Fatalf("the other cluster: %+v", o)
	}
	cc := pool.Config().ConnConfig
	if got, want := s.kv.String(), fmt.Sprintf("postgres %s:%d/%s cluster=one", cc.Host, cc.Port, cc.Database); got != want {
		t.Fatalf("String %q, want %q", got, want)
	}
}

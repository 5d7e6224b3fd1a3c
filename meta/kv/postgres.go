package kv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"sluice.dev/meta"
)

// The PostgreSQL store: a KV kept in one database, which several meta
// replicas share, and the leader election among them.
//
// # Schema
//
//	sluice_kv       (cluster, bucket, key) -> value: the buckets of every
//	                cluster kept in this database; bytea compares byte by
//	                byte, so ORDER BY key is bbolt's order
//	sluice_cluster  cluster -> seq, writer: how many groups have been
//	                committed to the cluster, and by which KV (a random
//	                id); see "Commit sequence" below
//	sluice_leader   one row: the fencing epoch, its holder, since when
//	sluice_fence()  the check at the start of every group's transaction
//
// # An Update is one round trip
//
// Update buffers the group's writes as their net effect, one entry per
// key in first-write order plus the prefix deletes, and sends them as one
// pgx.Batch: the fence, the prefix deletes, one multi-row DELETE, one
// multi-row upsert. A batch is one pipeline with one Sync, so it runs as
// one implicit transaction, and PostgreSQL's commit at the Sync is the
// group's fsync. Sending the net effect instead of the writes in order is
// equivalent: a key's last Put or Delete wins, and a prefix delete drops
// the buffered writes it covers, so that running the prefix deletes first
// and the single-key writes after them gives the final state of the
// sequence. It also keeps a multi-row upsert free of duplicate keys, which
// PostgreSQL refuses ("ON CONFLICT DO UPDATE command cannot affect row a
// second time").
//
// # Commit sequence
//
// A network store adds a failure an embedded file barely has: the
// connection breaks after the batch was sent, and the client cannot tell
// whether the server committed it. The Service then drops the group and
// keeps its in-memory state, so a group that did commit would leave the
// state behind the database, and the next groups would build on the stale
// state (reusing offsets the database already gave out). To settle such
// an outcome, every group advances sluice_cluster.seq from the value this
// KV last saw to the next, inside its transaction (sluice_fence): the row
// lock serialises writers, and a group built on a stale sequence fails.
// After an unknown outcome, the KV locks the row from another connection
// (waiting for the lost transaction, if the server still runs it) and
// reads it: seq advanced by this KV's id means the group committed, and
// Update returns nil after all; seq not advanced means it did not, and
// the KV advances seq itself (a "burn") so that the lost transaction can
// never commit later. If the database cannot be asked, Update fails and
// the question is settled before the next Update; if the answer then is
// "committed", the state the caller holds is behind the database and the
// KV refuses every further write (errStoreBehind): the process must
// reopen the store, and a KV with a lease gives up the leadership, which
// makes the process do so.
//
// The same check stops a second writer of one cluster (two processes on
// one cluster without a lease, which bbolt prevents with its file lock):
// the first group of the writer whose view is stale fails.
//
// # Leadership
//
// Replicas sharing the database elect a leader with a session-level
// advisory lock, held by one dedicated connection (AcquireLeadership).
// The lock alone does not fence: a leader whose connection broke may not
// know yet, and may still be sending a group. So the winner also
// increments an epoch in sluice_leader, and every group of a KV opened
// with the lease checks in its transaction that the epoch is still its
// own, taking the row FOR SHARE. A new leader's increment waits for a
// group in flight to commit, and every later group of the old leader sees
// the new epoch and fails with ErrNotLeader; the new leader loads its
// state after its increment, so it sees every group the old leader
// committed.

// errStoreBehind: a group the KV reported as failed turned out to be
// committed, or another writer wrote the cluster; the caller's state is
// behind the database, and only reopening the store (reloading) helps.
var errStoreBehind = fmt.Errorf("%w: the database holds writes this meta replica has not loaded; it must reopen the store", meta.ErrUnavailable)

const (
	// pgTimeout bounds every statement of an Update (and the resolution
	// of an unknown outcome), so a dead database fails a group instead
	// of stalling the committer.
	pgTimeout = 10 * time.Second
	// pgLoadTimeout bounds View: reading the whole cluster takes time in
	// proportion to its size (about a second per million index entries
	// on a local server).
	pgLoadTimeout = 5 * time.Minute

	leaderPoll         = 500 * time.Millisecond // pg_try_advisory_lock while standing by
	leaderCheck        = time.Second            // the leader's health check...
	leaderCheckTimeout = 2 * time.Second        // ...and how long it may take

	// Advisory lock keys: "sluice" and a number.
	leaderLockKey int64 = 0x736c756963650001
	schemaLockKey int64 = 0x736c756963650002

	// SQLSTATEs raised by sluice_fence.
	codeNotLeader   = "SL001"
	codeOtherWriter = "SL002"
)

// schema creates the tables and the fence function; ensureSchema runs it
// under an advisory lock, since concurrent CREATE ... IF NOT EXISTS can
// still collide.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS sluice_kv (
		cluster text NOT NULL,
		bucket text NOT NULL,
		key bytea NOT NULL,
		value bytea NOT NULL,
		PRIMARY KEY (cluster, bucket, key))`,
	`CREATE TABLE IF NOT EXISTS sluice_cluster (
		cluster text PRIMARY KEY,
		seq bigint NOT NULL,
		writer bytea NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS sluice_leader (
		id int PRIMARY KEY CHECK (id = 1),
		epoch bigint NOT NULL,
		holder text NOT NULL,
		since timestamptz NOT NULL)`,
	// p_epoch NULL: no lease. Under READ COMMITTED, FOR SHARE on a row
	// another transaction is updating waits for it and then reads the
	// new version; the same holds for the UPDATE's WHERE.
	`CREATE OR REPLACE FUNCTION sluice_fence(p_cluster text, p_seq bigint, p_writer bytea, p_epoch bigint)
	RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
		cur bigint;
	BEGIN
		IF p_epoch IS NOT NULL THEN
			SELECT epoch INTO cur FROM sluice_leader WHERE id = 1 FOR SHARE;
			IF cur IS DISTINCT FROM p_epoch THEN
				RAISE EXCEPTION 'leader epoch % was superseded by %', p_epoch, cur USING ERRCODE = 'SL001';
			END IF;
		END IF;
		UPDATE sluice_cluster SET seq = seq + 1, writer = p_writer WHERE cluster = p_cluster AND seq = p_seq;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'cluster % was written by another writer after commit %', p_cluster, p_seq USING ERRCODE = 'SL002';
		END IF;
	END $$`,
}

// schemaReady checks that the schema exists, so that opening an existing
// store takes no lock and replaces nothing. A change of the fence
// function must come with a new name.
const schemaReady = `SELECT to_regclass('sluice_kv') IS NOT NULL AND to_regclass('sluice_cluster') IS NOT NULL
	AND to_regclass('sluice_leader') IS NOT NULL AND to_regprocedure('sluice_fence(text, bigint, bytea, bigint)') IS NOT NULL`

func ensureSchema(ctx context.Context, pool *pgxpool.Pool) error {
	var ready bool
	if err := pool.QueryRow(ctx, schemaReady).Scan(&ready); err != nil {
		return fmt.Errorf("meta: postgres: check schema: %w", err)
	}
	if ready {
		return nil
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLockKey); err != nil {
			return err
		}
		for _, s := range schema {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("meta: postgres: create schema: %w", err)
	}
	return nil
}

const (
	sqlFence        = `SELECT sluice_fence($1, $2, $3, $4)`
	sqlDeleteRange  = `DELETE FROM sluice_kv WHERE cluster = $1 AND bucket = $2 AND key >= $3 AND key < $4`
	sqlDeleteFrom   = `DELETE FROM sluice_kv WHERE cluster = $1 AND bucket = $2 AND key >= $3`
	sqlDeleteKeys   = `DELETE FROM sluice_kv t USING unnest($2::text[], $3::bytea[]) AS u(bucket, key) WHERE t.cluster = $1 AND t.bucket = u.bucket AND t.key = u.key`
	sqlUpsert       = `INSERT INTO sluice_kv (cluster, bucket, key, value) SELECT $1, u.bucket, u.key, u.value FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(bucket, key, value) ON CONFLICT (cluster, bucket, key) DO UPDATE SET value = EXCLUDED.value`
	sqlGet          = `SELECT value FROM sluice_kv WHERE cluster = $1 AND bucket = $2 AND key = $3`
	sqlLoad         = `SELECT bucket, key, value FROM sluice_kv WHERE cluster = $1 ORDER BY bucket, key`
	sqlSeq          = `SELECT seq FROM sluice_cluster WHERE cluster = $1`
	sqlSeqForUpdate = `SELECT seq, writer FROM sluice_cluster WHERE cluster = $1 FOR UPDATE`
	sqlBurn         = `UPDATE sluice_cluster SET seq = seq + 1, writer = $2 WHERE cluster = $1`
)

// pgKV is the PostgreSQL store of one cluster.
type pgKV struct {
	pool    *pgxpool.Pool
	cluster string
	lease   *Lease
	name    string // for String
	writer  []byte // random id of this KV, written with every group
	burn    []byte // writer id of this KV's burns (writer + "!")
	closed  atomic.Bool
	timeout time.Duration // pgTimeout; tests shorten it

	// For tests: testAfterSend sees (and may replace) the error of a
	// group's batch; testSettle runs before settle asks the database.
	testAfterSend func(error) error
	testSettle    func() error

	// mu serialises Updates and Views and guards the fields below.
	mu sync.Mutex
	// seq is the cluster's commit sequence as this KV last saw it: the
	// next group must find it unchanged.
	seq int64
	// unsettled: the group sent with sequence seq has an unknown outcome.
	unsettled bool
	// behind: the caller's state is behind the database; every Update
	// fails.
	behind error
}

// OpenPostgres returns the KV of one cluster (its rows are keyed by
// cluster name) in the database the pool points at, creating the schema
// if needed. With lease != nil every Update first checks, inside its
// transaction, that lease is still the current leadership, and fails with
// an error wrapping ErrNotLeader when it is not. Load it (open the
// Service on it) after AcquireLeadership has returned: a store loaded
// before the previous leader's last group is behind, and its first write
// fails. Close does not close the pool: the caller owns it.
func OpenPostgres(ctx context.Context, pool *pgxpool.Pool, cluster string, lease *Lease) (KV, error) {
	if cluster == "" {
		return nil, errors.New("meta: postgres: empty cluster name")
	}
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	cc := pool.Config().ConnConfig
	p := &pgKV{
		pool:    pool,
		cluster: cluster,
		lease:   lease,
		name:    fmt.Sprintf("postgres %s/%s cluster=%s", net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), cc.Database, cluster),
		writer:  []byte(newWriterID()),
		timeout: pgTimeout,
	}
	p.burn = append(slices.Clip(p.writer), '!')
	if err := ensureSchema(ctx, pool); err != nil {
		return nil, err
	}
	_, err := pool.Exec(ctx, `INSERT INTO sluice_cluster (cluster, seq, writer) VALUES ($1, 0, '') ON CONFLICT (cluster) DO NOTHING`, cluster)
	if err == nil {
		err = pool.QueryRow(ctx, sqlSeq, cluster).Scan(&p.seq)
	}
	if err != nil {
		return nil, fmt.Errorf("meta: open %s: %w", p.name, err)
	}
	return p, nil
}

func (p *pgKV) String() string { return p.name }

func (p *pgKV) Close() error {
	p.closed.Store(true)
	return nil
}

var errPGClosed = errors.New("meta: postgres store closed")

// View reads the whole cluster in one snapshot into memory and serves fn
// from it. The snapshot's commit sequence becomes the one the next
// Update must find: the caller is taken to build on what it read.
func (p *pgKV) View(fn func(KVTx) error) error {
	if p.closed.Load() {
		return errPGClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pgLoadTimeout)
	defer cancel()
	v := &pgView{buckets: make(map[string][]pgPair)}
	var seq int64
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, sqlSeq, p.cluster).Scan(&seq); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sqlLoad, p.cluster)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			bucket string
			pairs  []pgPair
			slab   pgSlab
		)
		// Keys and values are copied out of the driver's read buffer
		// into large slabs (3 allocations per row with Scan made the
		// load of a month's index GC-bound). The bucket, text, has the
		// same bytes in either format; keys and values must come in
		// binary (raw bytea), or the rows are scanned.
		fds := rows.FieldDescriptions()
		raw := len(fds) == 3 && fds[1].Format == pgx.BinaryFormatCode && fds[2].Format == pgx.BinaryFormatCode
		for rows.Next() {
			var b, k, val []byte
			if rv := rows.RawValues(); raw && rv[0] != nil && rv[1] != nil && rv[2] != nil {
				b, k, val = rv[0], slab.copy(rv[1]), slab.copy(rv[2])
			} else if b, k, val, err = scanPair(rows); err != nil {
				return err
			}
			if string(b) != bucket {
				if pairs != nil {
					v.buckets[bucket] = pairs
				}
				bucket, pairs = string(b), nil
			}
			pairs = append(pairs, pgPair{k: k, v: val})
		}
		if pairs != nil {
			v.buckets[bucket] = pairs
		}
		return rows.Err()
	})
	if err != nil {
		return fmt.Errorf("meta: postgres: load cluster %s: %w", p.cluster, err)
	}
	// Whatever happened to an unsettled group, the caller now builds on
	// this snapshot: if the group commits later still, the next Update
	// fails on the sequence (another writer), and if the next Update
	// commits first the lost group can no longer commit.
	p.seq, p.unsettled = seq, false
	return fn(v)
}

type pgPair struct{ k, v []byte }

// scanPair scans a row of sqlLoad (copies the driver makes).
func scanPair(rows pgx.Rows) (b, k, v []byte, err error) {
	err = rows.Scan(&b, &k, &v)
	return b, k, v, err
}

// pgSlab hands out copies of small byte strings from 1 MiB blocks. Each
// copy has its capacity cut to its length, so an append by whoever
// holds it reallocates instead of writing over its neighbour.
type pgSlab struct{ buf []byte }

const pgSlabBlock = 1 << 20

func (s *pgSlab) copy(b []byte) []byte {
	if len(b) > pgSlabBlock/8 {
		return append([]byte(nil), b...)
	}
	if cap(s.buf)-len(s.buf) < len(b) {
		s.buf = make([]byte, 0, pgSlabBlock)
	}
	n := len(s.buf)
	s.buf = append(s.buf, b...)
	return s.buf[n : n+len(b) : n+len(b)]
}

// pgView is a View's transaction: the cluster in memory, each bucket's
// pairs sorted by key.
type pgView struct{ buckets map[string][]pgPair }

func (v *pgView) Get(bucket, key []byte) ([]byte, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	ps := v.buckets[string(bucket)]
	i, ok := slices.BinarySearchFunc(ps, key, func(p pgPair, k []byte) int { return bytes.Compare(p.k, k) })
	if !ok {
		return nil, nil
	}
	return ps[i].v, nil
}

func (v *pgView) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	for _, p := range v.buckets[string(bucket)] {
		if err := fn(p.k, p.v); err != nil {
			return err
		}
	}
	return nil
}

var errReadOnly = errors.New("meta: postgres: write in a View")

func (v *pgView) Put(bucket, key, value []byte) error      { return errReadOnly }
func (v *pgView) Delete(bucket, key []byte) error          { return errReadOnly }
func (v *pgView) DeletePrefix(bucket, prefix []byte) error { return errReadOnly }

// checkBucket refuses a bucket meta does not have, as bbolt does: rows
// need no bucket to be created first, so a misspelt name would otherwise
// go unnoticed.
func checkBucket(name []byte) error {
	for _, b := range allBuckets {
		if string(b) == string(name) {
			return nil
		}
	}
	return fmt.Errorf("meta: no bucket %q", name)
}

// Update runs fn on a buffer of writes and commits them in one batch
// (see the top of this file).
func (p *pgKV) Update(fn func(KVTx) error) error {
	if p.closed.Load() {
		return errPGClosed
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.behind != nil {
		return p.behind
	}
	if p.lease != nil && p.lease.isLost() {
		return fmt.Errorf("%w: leader epoch %d is lost", meta.ErrNotLeader, p.lease.epoch)
	}
	if p.unsettled {
		switch err := p.settle(); {
		case err == errCommitted:
			return p.fallBehind(fmt.Errorf("%w: a commit group reported as failed did commit", errStoreBehind))
		case err != nil:
			return fmt.Errorf("%w: meta: postgres: an earlier commit group's outcome is still unknown: %w", meta.ErrUnavailable, err)
		}
	}
	u := &pgUpdate{kv: p, idx: make(map[pgKey]int)}
	if err := fn(u); err != nil {
		return err
	}
	if len(u.ents) == 0 && len(u.prefixes) == 0 {
		return nil
	}
	return p.commit(u)
}

// commit sends u's writes and the fence as one batch.
func (p *pgKV) commit(u *pgUpdate) error {
	b := &pgx.Batch{}
	var epoch *int64
	if p.lease != nil {
		epoch = &p.lease.epoch
	}
	b.Queue(sqlFence, p.cluster, p.seq, p.writer, epoch)
	for _, pr := range u.prefixes {
		if end := prefixEnd(pr.prefix); end != nil {
			b.Queue(sqlDeleteRange, p.cluster, pr.bucket, pr.prefix, end)
		} else {
			b.Queue(sqlDeleteFrom, p.cluster, pr.bucket, pr.prefix)
		}
	}
	var delB, putB []string
	var delK, putK, putV [][]byte
	for i := range u.ents {
		e := &u.ents[i]
		switch {
		case e.dropped:
		case e.del:
			delB, delK = append(delB, e.bucket), append(delK, e.key)
		default:
			putB, putK, putV = append(putB, e.bucket), append(putK, e.key), append(putV, e.value)
		}
	}
	if len(delK) > 0 {
		b.Queue(sqlDeleteKeys, p.cluster, delB, delK)
	}
	if len(putK) > 0 {
		b.Queue(sqlUpsert, p.cluster, putB, putK, putV)
	}

	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("meta: postgres: %w", err) // nothing was sent
	}
	err = sendBatch(ctx, conn.Conn(), b)
	conn.Release()
	if p.testAfterSend != nil {
		err = p.testAfterSend(err)
	}
	if err == nil {
		p.seq++
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeNotLeader {
		err := fmt.Errorf("%w: %s", meta.ErrNotLeader, pe.Message)
		p.giveUp(err)
		return err
	}
	if errors.As(err, &pe) && pe.Code == codeOtherWriter {
		return p.fallBehind(fmt.Errorf("%w: %s", errStoreBehind, pe.Message))
	}
	if !outcomeUnknown(err) {
		return fmt.Errorf("meta: postgres: %w", err)
	}
	// The batch may have committed: find out.
	p.unsettled = true
	if serr := p.settle(); serr != nil {
		switch {
		case serr == errCommitted:
			return nil
		case errors.Is(serr, errStoreBehind):
			return serr
		}
		return fmt.Errorf("meta: postgres: %w (whether the group committed is not known yet: %v)", err, serr)
	}
	return fmt.Errorf("meta: postgres: %w (the group did not commit)", err)
}

// sendBatch sends b on conn and reads every result.
func sendBatch(ctx context.Context, conn *pgx.Conn, b *pgx.Batch) error {
	br := conn.SendBatch(ctx, b)
	var first error
	for range b.Len() {
		if _, err := br.Exec(); err != nil && first == nil {
			first = err
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	return first
}

// outcomeUnknown reports whether a failed batch may have committed. An
// error the server reports at ERROR severity aborted the transaction; so
// did anything that failed before the batch was written. Anything else
// (the connection broke, the context ended while waiting for the answer,
// FATAL) leaves the outcome open.
func outcomeUnknown(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		sev := pe.SeverityUnlocalized
		if sev == "" {
			sev = pe.Severity
		}
		return sev != "ERROR"
	}
	var pre pgx.ErrPreprocessingBatch
	if errors.As(err, &pre) {
		return false
	}
	return !pgconn.SafeToRetry(err)
}

// errCommitted is settle's answer when the unsettled group committed.
var errCommitted = errors.New("committed")

// settle finds out whether the group sent with sequence p.seq committed,
// and clears p.unsettled when it knows. It returns nil when the group did
// not commit (and now never can), errCommitted when it did (p.seq then
// counts it), and any other error when it could not tell. p.mu is held.
func (p *pgKV) settle() error {
	if p.testSettle != nil {
		if err := p.testSettle(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	var verdict error
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var seq int64
		var writer []byte
		// FOR UPDATE waits for the lost transaction if the server is
		// still running it.
		if err := tx.QueryRow(ctx, sqlSeqForUpdate, p.cluster).Scan(&seq, &writer); err != nil {
			return err
		}
		switch {
		case seq == p.seq+1 && bytes.Equal(writer, p.writer):
			verdict = errCommitted
			return nil
		case seq == p.seq+1 && bytes.Equal(writer, p.burn):
			return nil // burnt by an earlier settle whose commit was lost
		case seq == p.seq:
			_, err := tx.Exec(ctx, sqlBurn, p.cluster, p.burn)
			return err
		default:
			verdict = fmt.Errorf("%w: cluster %s: commit sequence %d, this replica expected %d", errStoreBehind, p.cluster, seq, p.seq)
			return nil
		}
	})
	if err != nil {
		return err
	}
	p.unsettled = false
	switch {
	case verdict == nil:
		p.seq++ // burnt
		return nil
	case verdict == errCommitted:
		p.seq++
		return errCommitted
	default:
		return p.fallBehind(verdict)
	}
}

// fallBehind marks the KV as behind the database for good (see
// errStoreBehind), and gives up the lease: a leader that cannot write
// must let a replica (maybe itself, reopened) take over.
func (p *pgKV) fallBehind(err error) error {
	p.behind = err
	p.giveUp(err)
	return err
}

func (p *pgKV) giveUp(reason error) {
	if p.lease != nil {
		p.lease.abandon(reason)
	}
}

// prefixEnd returns the smallest key greater than every key with the
// prefix, nil when there is none (the prefix is empty or all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

type pgKey struct{ bucket, key string }

// pgEnt is the net effect of an Update on one key so far.
type pgEnt struct {
	bucket  string
	key     []byte // a copy: callers reuse their key buffers
	value   []byte // the caller's: valid until Update returns
	del     bool
	dropped bool // a later DeletePrefix covered it
}

type pgPrefix struct {
	bucket string
	prefix []byte
}

// pgUpdate is an Update's transaction: the net effect of its writes (see
// the top of this file). Get answers from it, then from the database.
type pgUpdate struct {
	kv       *pgKV
	idx      map[pgKey]int // live entries of ents
	ents     []pgEnt       // in first-write order
	prefixes []pgPrefix
}

func (u *pgUpdate) set(bucket, key, value []byte, del bool) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	if len(key) == 0 {
		return errors.New("meta: postgres: empty key")
	}
	pk := pgKey{string(bucket), string(key)}
	if i, ok := u.idx[pk]; ok {
		u.ents[i].value, u.ents[i].del = value, del
		return nil
	}
	u.idx[pk] = len(u.ents)
	u.ents = append(u.ents, pgEnt{bucket: pk.bucket, key: []byte(pk.key), value: value, del: del})
	return nil
}

func (u *pgUpdate) Put(bucket, key, value []byte) error {
	if value == nil {
		value = []byte{} // NULL is not a value
	}
	return u.set(bucket, key, value, false)
}

func (u *pgUpdate) Delete(bucket, key []byte) error { return u.set(bucket, key, nil, true) }

func (u *pgUpdate) DeletePrefix(bucket, prefix []byte) error {
	if err := checkBucket(bucket); err != nil {
		return err
	}
	b := string(bucket)
	for pk, i := range u.idx {
		if pk.bucket == b && bytes.HasPrefix(u.ents[i].key, prefix) {
			u.ents[i].dropped = true
			delete(u.idx, pk)
		}
	}
	u.prefixes = append(u.prefixes, pgPrefix{bucket: b, prefix: bytes.Clone(prefix)})
	return nil
}

func (u *pgUpdate) Get(bucket, key []byte) ([]byte, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	if i, ok := u.idx[pgKey{string(bucket), string(key)}]; ok {
		if u.ents[i].del {
			return nil, nil
		}
		return u.ents[i].value, nil
	}
	for _, pr := range u.prefixes {
		if pr.bucket == string(bucket) && bytes.HasPrefix(key, pr.prefix) {
			return nil, nil
		}
	}
	// Outside the batch's transaction, which is not begun yet: the
	// sequence check at the commit fails the group if anyone else wrote
	// the cluster in between.
	ctx, cancel := context.WithTimeout(context.Background(), u.kv.timeout)
	defer cancel()
	var v []byte
	err := u.kv.pool.QueryRow(ctx, sqlGet, u.kv.cluster, string(bucket), key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("meta: postgres: %w", err)
	}
	return v, nil
}

func (u *pgUpdate) ForEach(bucket []byte, fn func(k, v []byte) error) error {
	return errors.New("meta: postgres: ForEach in an Update")
}

// Lease is the leadership of the meta replicas sharing a database, won
// by AcquireLeadership. See the top of this file.
//
// States: held ─► lost (Lost closed). A lease is lost when its lock
// connection fails a health check, when the epoch row names another
// epoch, when a KV opened with it finds it cannot write safely, or when
// Release is called.
type Lease struct {
	epoch  int64
	holder string
	log    *slog.Logger

	conn *pgx.Conn // the lock connection; only the watch goroutine uses it

	lost     chan struct{}
	lostOnce sync.Once
	quit     chan struct{} // abandon: close the lock connection
	quitOnce sync.Once
	quitWhy  error         // set before quit is closed
	release  chan struct{} // Release: unlock and close
	relOnce  sync.Once
	done     chan struct{} // closed when watch has returned
}

// Epoch is the fencing epoch this lease won.
func (l *Lease) Epoch() int64 { return l.epoch }

// Lost is closed when the leadership is gone (see Lease), Release
// included. The process must then stop serving: its KVs refuse writes
// from then on. A lost lease needs no Release; a new leadership takes a
// new AcquireLeadership, and a store opened after it.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

func (l *Lease) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// Release steps down: it unlocks and closes the lock connection, and
// closes Lost. Calls after the first return at once.
func (l *Lease) Release() {
	l.relOnce.Do(func() { close(l.release) })
	<-l.done
}

// abandon ends the lease because a KV opened with it cannot write: the
// watch goroutine closes the lock connection, which ends its session
// and so releases the lock.
func (l *Lease) abandon(why error) {
	l.quitOnce.Do(func() {
		l.quitWhy = why
		close(l.quit)
	})
}

func (l *Lease) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

// AcquireLeadership blocks until this process is the leader of the meta
// replicas sharing the database, or ctx ends. It polls a session-level
// advisory lock about every 500ms on a connection of its own, taken out
// of the pool; on winning it increments the fencing epoch and records
// holder (free text, e.g. the replica's address) for CurrentLeader. The
// returned lease watches the lock connection until it is lost or
// released.
func AcquireLeadership(ctx context.Context, pool *pgxpool.Pool, holder string, log *slog.Logger) (*Lease, error) {
	if log == nil {
		log = slog.Default()
	}
	var (
		conn    *pgx.Conn
		lastErr error
		logged  string
	)
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	schemaDone := false
	for {
		l, err := tryLead(ctx, pool, &conn, &schemaDone, holder, log)
		if l != nil {
			conn = nil // the lease owns it now
			return l, nil
		}
		if err != nil {
			if conn != nil {
				closeConn(conn)
				conn = nil
			}
			if ctx.Err() == nil {
				lastErr = err
				if s := err.Error(); s != logged {
					log.Warn("meta: leader election: database error; retrying", "err", err)
					logged = s
				}
			}
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("meta: acquire leadership: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("meta: acquire leadership: %w", ctx.Err())
		case <-time.After(leaderPoll):
		}
	}
}

// tryLead makes one attempt: (re)connect if needed, try the lock, and on
// winning bump the epoch and start the lease.
func tryLead(ctx context.Context, pool *pgxpool.Pool, conn **pgx.Conn, schemaDone *bool, holder string, log *slog.Logger) (*Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	if !*schemaDone {
		if err := ensureSchema(ctx, pool); err != nil {
			return nil, err
		}
		*schemaDone = true
	}
	if *conn == nil {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		*conn = c.Hijack()
	}
	var won bool
	if err := (*conn).QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderLockKey).Scan(&won); err != nil {
		return nil, err
	}
	if !won {
		return nil, nil
	}
	var epoch int64
	err := (*conn).QueryRow(ctx, `INSERT INTO sluice_leader (id, epoch, holder, since) VALUES (1, 1, $1, now())
		ON CONFLICT (id) DO UPDATE SET epoch = sluice_leader.epoch + 1, holder = EXCLUDED.holder, since = EXCLUDED.since
		RETURNING epoch`, holder).Scan(&epoch)
	if err != nil {
		return nil, err // closing the connection releases the lock
	}
	l := &Lease{
		epoch:   epoch,
		holder:  holder,
		log:     log,
		conn:    *conn,
		lost:    make(chan struct{}),
		quit:    make(chan struct{}),
		release: make(chan struct{}),
		done:    make(chan struct{}),
	}
	log.Info("meta: leadership acquired", "epoch", epoch, "holder", holder)
	go l.watch()
	return l, nil
}

// watch is the lease's goroutine: it checks the lock connection and the
// epoch row every leaderCheck until the lease ends.
func (l *Lease) watch() {
	defer close(l.done)
	defer l.markLost()
	t := time.NewTicker(leaderCheck)
	defer t.Stop()
	for {
		select {
		case <-l.release:
			ctx, cancel := context.WithTimeout(context.Background(), leaderCheckTimeout)
			_, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, leaderLockKey)
			cancel()
			closeConn(l.conn)
			l.log.Info("meta: leadership released", "epoch", l.epoch, "holder", l.holder, "unlock_err", err)
			return
		case <-l.quit:
			closeConn(l.conn)
			l.log.Warn("meta: leadership given up: the store cannot write", "epoch", l.epoch, "err", l.quitWhy)
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), leaderCheckTimeout)
			var epoch int64
			err := l.conn.QueryRow(ctx, `SELECT epoch FROM sluice_leader WHERE id = 1`).Scan(&epoch)
			cancel()
			if err == nil && epoch != l.epoch {
				err = fmt.Errorf("epoch is %d now", epoch)
			}
			if err != nil {
				closeConn(l.conn)
				l.log.Warn("meta: leadership lost", "epoch", l.epoch, "holder", l.holder, "err", err)
				return
			}
		}
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// CurrentLeader returns the holder recorded by the current leader, ""
// when no replica holds the leadership (or none ever did).
func CurrentLeader(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var holder string
	// The row outlives its leader; the lock does not. Advisory locks on
	// a bigint key show in pg_locks as classid (high half), objid (low
	// half), objsubid 1.
	err := pool.QueryRow(ctx, `SELECT holder FROM sluice_leader WHERE id = 1 AND EXISTS (
		SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid = $1::bigint::oid AND objid = $2::bigint::oid)`,
		leaderLockKey>>32, leaderLockKey&0xffffffff).Scan(&holder)
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil
	case errors.As(err, &pe) && pe.Code == "42P01": // undefined_table: no replica ever ran
		return "", nil
	case err != nil:
		return "", fmt.Errorf("meta: postgres: current leader: %w", err)
	}
	return holder, nil
}

// newWriterID returns a random id that names this KV's writes in
// sluice_cluster.writer (see settle).
func newWriterID() string {
	var u [16]byte
	rand.Read(u[:])
	return base64.RawURLEncoding.EncodeToString(u[:])
}

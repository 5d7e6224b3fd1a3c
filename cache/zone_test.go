package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"sluice.dev/objstore"
)

var testSecret = []byte("zone-cache-test-secret-0123456789")

// testLogger logs into the test's output (shown on failure or -v).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// countingStore counts GETs per (key, offset): a block is one GetRange.
type countingStore struct {
	objstore.Store
	total atomic.Int64
	mu    sync.Mutex
	gets  map[string]int // guarded by mu; "key@off"
}

func newCountingStore() *countingStore {
	return &countingStore{Store: objstore.NewMemory(), gets: map[string]int{}}
}

func (s *countingStore) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	s.total.Add(1)
	s.mu.Lock()
	s.gets[fmt.Sprintf("%s@%d", key, off)]++
	s.mu.Unlock()
	return s.Store.GetRange(ctx, key, off, length)
}

// cluster is agents sharing one store, each with a BlockCache and a Zone.
type cluster struct {
	bs     int64
	store  *countingStore
	zones  []*Zone
	caches []*BlockCache
	all    []Peer // every agent, as first listed
	peers  atomic.Pointer[[]Peer]
}

// newCluster starts one agent per entry of zones (the agent's zone), with
// ids a, b, c, …, all listed by Peers.
func newCluster(t *testing.T, bs int64, zones ...string) *cluster {
	t.Helper()
	cl := &cluster{bs: bs, store: newCountingStore()}
	cl.setPeers(nil)
	for i, zone := range zones {
		c := newTestCache(t, cl.store, BlockCacheConfig{BlockSize: bs, MaxBytes: 1 << 20})
		id := string(rune('a' + i))
		z, err := StartZone(ZoneConfig{
			SelfID: id, Zone: zone, Secret: testSecret, Listen: "127.0.0.1:0",
			Peers:  func() []Peer { return *cl.peers.Load() },
			Logger: testLogger(t),
		}, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { z.Close() }) // before the cache's Close (cleanups run last first)
		cl.zones = append(cl.zones, z)
		cl.caches = append(cl.caches, c)
		cl.all = append(cl.all, Peer{ID: id, Addr: z.Addr(), Zone: zone})
	}
	cl.setPeers(cl.all)
	return cl
}

func (cl *cluster) setPeers(ps []Peer) { cl.peers.Store(&ps) }

// ownerOf returns the index of the agent owning block idx of key.
func (cl *cluster) ownerOf(key string, idx uint32) int {
	r := newRing(*cl.peers.Load(), cl.all[0].ID)
	o := r.peers[r.owner(blockHash(xxhash.Sum64String(key), idx))]
	for i, p := range cl.all {
		if p.ID == o.ID {
			return i
		}
	}
	panic("BUG: owner not in the cluster")
}

func zoneRead(t *testing.T, z *Zone, key string, obj []byte, off, length int64) {
	t.Helper()
	got, err := z.ReadRange(context.Background(), key, int64(len(obj)), off, length)
	if err != nil {
		t.Fatalf("agent %s: ReadRange(%q, [%d, +%d)): %v", z.cfg.SelfID, key, off, length, err)
	}
	if !bytes.Equal(got, obj[off:off+length]) {
		t.Fatalf("agent %s: ReadRange(%q, [%d, +%d)) differs from the object", z.cfg.SelfID, key, off, length)
	}
	if cap(got) != len(got) {
		t.Fatalf("agent %s: ReadRange(%q, [%d, +%d)) has cap %d > len %d", z.cfg.SelfID, key, off, length, cap(got), len(got))
	}
}

// edgeRanges returns every range between points at and around block
// boundaries of an object of n bytes: inside blocks, across them, whole.
func edgeRanges(n, bs int64) [][2]int64 {
	var pts []int64
	for b := int64(0); b <= n; b += bs {
		for _, p := range []int64{b - 1, b, b + 1, b + bs/2} {
			if p >= 0 && p <= n && (len(pts) == 0 || p > pts[len(pts)-1]) {
				pts = append(pts, p)
			}
		}
	}
	if pts[len(pts)-1] != n {
		pts = append(pts, n)
	}
	var rs [][2]int64
	for i, a := range pts {
		for _, b := range pts[i:] {
			rs = append(rs, [2]int64{a, b - a})
		}
	}
	return rs
}

// Tail: objects announced by Uploaded on one agent are read from every
// agent, over every kind of range, without a single object store GET.
// Non-owners keep no copy.
func TestZoneTailReadsNeedNoGet(t *testing.T) {
	const bs = 1000
	cl := newCluster(t, bs, "z1", "z1", "z1")
	a := cl.zones[0]
	objs := map[string][]byte{}
	var pushed int64
	for i, n := range []int{1, 999, 1000, 1001, 3500, 4321, 7000} {
		key := fmt.Sprintf("seg/tail/%d", i)
		objs[key] = randBytes(uint64(i), n)
		a.Uploaded(key, bytes.Clone(objs[key]))
		for idx := range (n-1)/bs + 1 {
			if cl.ownerOf(key, uint32(idx)) != 0 {
				pushed++
			}
		}
	}
	waitFor(t, "pushes", func() bool { return a.pending.Load() == 0 })
	if st := a.Stats(); st.Pushes != pushed || st.PushErrors != 0 || st.PushDropped != 0 {
		t.Fatalf("uploader: %+v; want %d pushes, no errors or drops", st, pushed)
	}
	if got := cl.zones[1].Stats().Received + cl.zones[2].Stats().Received; got != pushed {
		t.Fatalf("owners received %d blocks, %d were pushed", got, pushed)
	}
	if pushed == 0 {
		t.Fatal("no block owned by another agent: the test proves nothing")
	}
	reads := 0
	for key, obj := range objs {
		for _, rg := range edgeRanges(int64(len(obj)), bs) {
			for _, z := range cl.zones {
				zoneRead(t, z, key, obj, rg[0], rg[1])
				reads++
			}
		}
	}
	if n := cl.store.total.Load(); n != 0 {
		t.Fatalf("%d object store GETs, want 0", n)
	}
	for i, z := range cl.zones {
		st := z.Stats()
		if st.PeerGets == 0 || st.ServedGets == 0 || st.Fallbacks != 0 || st.PeerGetErrors != 0 {
			t.Errorf("agent %d: %+v; want peer gets and served gets, no fallbacks or errors", i, st)
		}
		if st.CrossZoneBytes != 0 || st.SameZoneBytes == 0 {
			t.Errorf("agent %d: same zone %d, cross zone %d bytes", i, st.SameZoneBytes, st.CrossZoneBytes)
		}
	}
	// A non-owner keeps no copy of what it read from the owner.
	for key, obj := range objs {
		for idx := range (len(obj)-1)/bs + 1 {
			o := cl.ownerOf(key, uint32(idx))
			for i, c := range cl.caches {
				held := c.cached(key, blockKey{xxhash.Sum64String(key), uint32(idx)}) != nil
				if held != (i == o) {
					t.Errorf("block %d of %q (owner %d): held by agent %d: %v", idx, key, o, i, held)
				}
			}
		}
	}
	t.Logf("%d reads, %d blocks pushed", reads, pushed)
}

// Catch-up: objects in the store only, read by every agent from several
// goroutines at once: each block is read from the store exactly once in
// all. One agent is in another zone, and its bytes count as cross-zone.
func TestZoneCatchUpOneGetPerBlock(t *testing.T) {
	const bs = 1000
	cl := newCluster(t, bs, "z1", "z1", "z2")
	objs := putObjects(t, cl.store.Store, 999, 2500, 4000, 5555, 6001)
	var blocks int64
	for _, obj := range objs {
		blocks += int64(len(obj)-1)/bs + 1
	}
	type part struct {
		key     string
		off, ln int64
	}
	var parts []part
	for key, obj := range objs {
		n := int64(len(obj))
		for off := int64(0); off < n; off += bs {
			parts = append(parts, part{key, off, min(bs, n-off)})
			if bl := min(bs, n-off); bl > 20 {
				parts = append(parts, part{key, off + 10, bl - 20})
			}
		}
		parts = append(parts, part{key, 0, n}, part{key, bs / 2, n - bs/2})
	}
	var wg sync.WaitGroup
	for zi, z := range cl.zones {
		for g := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(zi), uint64(g)))
				for _, i := range r.Perm(len(parts)) {
					p := parts[i]
					got, err := z.ReadRange(context.Background(), p.key, int64(len(objs[p.key])), p.off, p.ln)
					if err != nil {
						t.Errorf("agent %d: %v", zi, err)
						return
					}
					if !bytes.Equal(got, objs[p.key][p.off:p.off+p.ln]) {
						t.Errorf("agent %d: [%d, +%d) of %q differs", zi, p.off, p.ln, p.key)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if n := cl.store.total.Load(); n != blocks {
		t.Errorf("%d GETs for %d blocks", n, blocks)
	}
	cl.store.mu.Lock()
	for k, n := range cl.store.gets {
		if n != 1 {
			t.Errorf("%s read %d times", k, n)
		}
	}
	cl.store.mu.Unlock()
	var peerGets, served int64
	for i, z := range cl.zones {
		st := z.Stats()
		peerGets += st.PeerGets
		served += st.ServedGets
		if st.Fallbacks != 0 {
			t.Errorf("agent %d: %d fallbacks", i, st.Fallbacks)
		}
		t.Logf("agent %d: %+v", i, st)
	}
	if peerGets != served || peerGets == 0 {
		t.Errorf("%d peer gets, %d served", peerGets, served)
	}
	// a and b (zone z1) read from c (z2) across zones, and from each other
	// within; c reads across zones only.
	a, c := cl.zones[0].Stats(), cl.zones[2].Stats()
	if a.SameZoneBytes == 0 || a.CrossZoneBytes == 0 || c.SameZoneBytes != 0 || c.CrossZoneBytes == 0 {
		t.Errorf("zone bytes: a same %d cross %d; c same %d cross %d", a.SameZoneBytes, a.CrossZoneBytes, c.SameZoneBytes, c.CrossZoneBytes)
	}
}

// An owner that dies costs fallbacks to the object store, not failed
// reads; once Peers stops listing it, its blocks have new owners among
// the living and no read falls back.
func TestZoneOwnerKilled(t *testing.T) {
	const bs = 1000
	cl := newCluster(t, bs, "z1", "z1", "z1")
	objs := putObjects(t, cl.store.Store, 3000, 4500, 8000)
	readAll := func() {
		for key, obj := range objs {
			for _, rg := range [][2]int64{{0, int64(len(obj))}, {bs / 2, bs}, {int64(len(obj)) - 1, 1}} {
				for _, z := range cl.zones[:2] {
					zoneRead(t, z, key, obj, rg[0], rg[1])
				}
			}
			for off := int64(0); off < int64(len(obj)); off += bs {
				for _, z := range cl.zones[:2] {
					zoneRead(t, z, key, obj, off, min(bs, int64(len(obj))-off))
				}
			}
		}
	}
	if err := cl.zones[2].Close(); err != nil {
		t.Fatal(err)
	}
	// Still listed: reads of c's blocks fall back.
	readAll()
	a, b := cl.zones[0].Stats(), cl.zones[1].Stats()
	if a.Fallbacks == 0 || b.Fallbacks == 0 {
		t.Fatalf("fallbacks a %d, b %d; want some on both", a.Fallbacks, b.Fallbacks)
	}
	// Dead peers are skipped for a while: far fewer requests than
	// fallbacks.
	if a.PeerGetErrors >= a.Fallbacks {
		t.Errorf("a: %d peer errors for %d fallbacks: the dead peer is asked on every read", a.PeerGetErrors, a.Fallbacks)
	}
	// The registry drops c.
	cl.setPeers(cl.all[:2])
	readAll()
	a2, b2 := cl.zones[0].Stats(), cl.zones[1].Stats()
	if a2.Fallbacks != a.Fallbacks || b2.Fallbacks != b.Fallbacks {
		t.Errorf("fallbacks after the ring re-formed: a %d→%d, b %d→%d", a.Fallbacks, a2.Fallbacks, b.Fallbacks, b2.Fallbacks)
	}
	gets := a2.PeerGets - a.PeerGets + b2.PeerGets - b.PeerGets
	served := a2.ServedGets - a.ServedGets + b2.ServedGets - b.ServedGets
	if gets == 0 || gets != served || a2.PeerGetErrors != a.PeerGetErrors || b2.PeerGetErrors != b.PeerGetErrors {
		t.Errorf("after the ring re-formed: %d peer gets, %d served, errors a %d→%d b %d→%d",
			gets, served, a.PeerGetErrors, a2.PeerGetErrors, b.PeerGetErrors, b2.PeerGetErrors)
	}
	if cl.ownerOf("obj/8000", 0) == 2 {
		t.Fatal("BUG: the dropped agent still owns a block")
	}
}

// The rendezvous owner spreads blocks evenly, and a fourth agent takes
// about a quarter of them, all from the other three, moving nothing else.
func TestRendezvousSpreadAndMoves(t *testing.T) {
	mk := func(ids ...string) *ring {
		var ps []Peer
		for _, id := range ids {
			ps = append(ps, Peer{ID: id, Addr: id + ":1"})
		}
		return newRing(ps, ids[0])
	}
	three, four := mk("agent-1", "agent-2", "agent-3"), mk("agent-1", "agent-2", "agent-3", "agent-4")
	const keys, perKey = 10000, 4
	count3, count4 := make([]int, 3), make([]int, 4)
	moved := 0
	for k := range keys {
		kh := xxhash.Sum64String(fmt.Sprintf("segments/%08d.seg", k))
		for idx := range uint32(perKey) {
			bh := blockHash(kh, idx)
			o3, o4 := three.owner(bh), four.owner(bh)
			count3[o3]++
			count4[o4]++
			if o3 != o4 {
				moved++
				if o4 != 3 {
					t.Fatalf("a block moved from agent %d to %d, not to the new agent", o3, o4)
				}
			}
		}
	}
	const total = keys * perKey
	for i, n := range count3 {
		if f := float64(n) / total; f < 1.0/3-0.02 || f > 1.0/3+0.02 {
			t.Errorf("of 3 agents, agent %d owns %.3f of blocks", i, f)
		}
	}
	for i, n := range count4 {
		if f := float64(n) / total; f < 0.25-0.02 || f > 0.25+0.02 {
			t.Errorf("of 4 agents, agent %d owns %.3f of blocks", i, f)
		}
	}
	if f := float64(moved) / total; f < 0.23 || f > 0.27 {
		t.Errorf("adding a 4th agent moved %.3f of blocks, want about 1/4", f)
	}
	// Order of the list does not matter.
	rev := newRing([]Peer{{ID: "agent-3", Addr: "x"}, {ID: "agent-1", Addr: "y"}, {ID: "agent-2", Addr: "z"}}, "agent-1")
	for k := range 1000 {
		bh := blockHash(uint64(k)*0x9e3779b97f4a7c15, 0)
		if three.peers[three.owner(bh)].ID != rev.peers[rev.owner(bh)].ID {
			t.Fatal("owner depends on the order Peers lists agents in")
		}
	}
}

// Without peers (or without itself in the list) a Zone owns everything
// and is a BlockCache.
func TestZoneAloneOwnsEverything(t *testing.T) {
	for _, ps := range [][]Peer{nil, {{ID: "other", Addr: "127.0.0.1:1"}}} {
		store := newCountingStore()
		objs := putObjects(t, store.Store, 2500)
		c := newTestCache(t, store, BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
		z, err := StartZone(ZoneConfig{SelfID: "me", Secret: testSecret, Listen: "127.0.0.1:0", Peers: func() []Peer { return ps }, Logger: testLogger(t)}, c)
		if err != nil {
			t.Fatal(err)
		}
		zoneRead(t, z, "obj/2500", objs["obj/2500"], 0, 2500)
		obj := randBytes(7, 3000)
		z.Uploaded("fresh", bytes.Clone(obj))
		zoneRead(t, z, "fresh", obj, 500, 2000)
		if st := z.Stats(); st.PeerGets != 0 || st.Pushes != 0 || store.total.Load() != 3 {
			t.Errorf("alone: %+v, %d GETs", st, store.total.Load())
		}
		z.Close()
	}
}

func TestZoneConfigErrors(t *testing.T) {
	c := newTestCache(t, objstore.NewMemory(), BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	peers := func() []Peer { return nil }
	for _, cfg := range []ZoneConfig{
		{Secret: testSecret, Listen: "127.0.0.1:0", Peers: peers},
		{SelfID: "a", Secret: []byte("short"), Listen: "127.0.0.1:0", Peers: peers},
		{SelfID: "a", Secret: testSecret, Peers: peers},
		{SelfID: "a", Secret: testSecret, Listen: "127.0.0.1:0"},
		{SelfID: "a", Secret: testSecret, Listen: "127.0.0.1:0", Peers: peers, PushQueue: 999},
	} {
		if z, err := StartZone(cfg, c); err == nil {
			z.Close()
			t.Errorf("StartZone(%+v) succeeded", cfg)
		}
	}
}

// The push queue refuses what does not fit and gives back what it took.
func TestPushQueueBounded(t *testing.T) {
	q := newPushQueue(250)
	for i, want := range []bool{true, true, false, true} {
		n := 100
		if i == 3 {
			n = 50
		}
		if got := q.put(pushItem{idx: uint32(i), data: make([]byte, n)}); got != want {
			t.Fatalf("put %d: %v, want %v", i, got, want)
		}
	}
	it, ok := q.take()
	if !ok || it.idx != 0 {
		t.Fatalf("take: %v %v", it.idx, ok)
	}
	if !q.put(pushItem{idx: 9, data: make([]byte, 100)}) {
		t.Fatal("put after take refused")
	}
	done := make(chan bool)
	go func() {
		for {
			if _, ok := q.take(); !ok {
				done <- true
				return
			}
		}
	}()
	q.close()
	<-done
	if q.put(pushItem{data: make([]byte, 1)}) {
		t.Fatal("put after close accepted")
	}
}

// TestZonePeerConnectionLimit: the peer listener closes connections past
// ZoneConfig.MaxConnections on accept, so a host that is not a peer
// cannot pile up connections, and the zone still serves its peers.
func TestZonePeerConnectionLimit(t *testing.T) {
	c := newTestCache(t, objstore.NewMemory(), BlockCacheConfig{BlockSize: 1000, MaxBytes: 1 << 20})
	z, err := StartZone(ZoneConfig{SelfID: "me", Secret: testSecret, Listen: "127.0.0.1:0", Peers: func() []Peer { return nil },
		Logger: testLogger(t), MaxConnections: 2}, c)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	refused := mPeerConnsRefused.Get()
	var held []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", z.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	over, err := net.Dial("tcp", z.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the limit was not closed on accept: %v", err)
	}
	if mPeerConnsRefused.Get() != refused+1 {
		t.Fatalf("refused connections counted %d, want %d", mPeerConnsRefused.Get(), refused+1)
	}
	// Room again once one closes: an HTTP request on a new connection
	// gets an answer (unauthorized: it carries no MAC).
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + z.Addr() + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

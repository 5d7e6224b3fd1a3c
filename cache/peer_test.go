package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pierrec/lz4/v4"
)

// send does one request and returns its status and body.
func send(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// pushReq builds a signed PUT of block idx of key (object size size)
// carrying body raw, signed with secret at ts.
func pushReq(t *testing.T, addr, key string, idx uint32, size int64, signed, sent []byte, secret []byte, ts time.Time) *http.Request {
	t.Helper()
	sum := sha256.Sum256(signed)
	r := &peerReq{method: http.MethodPut, key: key, idx: idx, size: size, n: int64(len(signed)), ts: ts.UnixMilli(),
		from: "stranger", zone: "z1", enc: encRaw, rawLen: int64(len(signed)), bodySum: hex.EncodeToString(sum[:])}
	req, _, err := newPeerRequest(context.Background(), "http://"+addr, r, secret, sent)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Strangers get nothing and push nothing: a request without a MAC, with a
// MAC under another secret, with a stale or future timestamp, or a signed
// push replayed with another body, is refused without data and counted.
func TestPeerAuth(t *testing.T) {
	const bs = 1000
	cl := newCluster(t, bs, "z1", "z1")
	b, bc := cl.zones[1], cl.caches[1]
	obj := randBytes(3, 2500)
	if err := cl.store.Put(context.Background(), "seg/x", obj); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	get := func(secret []byte, ts time.Time) *http.Request {
		r := &peerReq{method: http.MethodGet, key: "seg/x", idx: 1, size: 2500, off: 0, n: bs, ts: ts.UnixMilli(), from: "stranger"}
		req, _, err := newPeerRequest(context.Background(), "http://"+b.Addr(), r, secret, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	wrong := []byte("not-the-zone-secret-at-all-xxxxx")
	plain, err := http.NewRequest(http.MethodGet, "http://"+b.Addr()+peerPath+"?k=seg/x&i=1&s=2500&o=0&n=1000", nil)
	if err != nil {
		t.Fatal(err)
	}
	noMAC := get(testSecret, now)
	noMAC.Header.Del(hdrMAC)
	tampered := get(testSecret, now)
	tampered.URL.RawQuery = "k=seg/x&i=0&s=2500&o=0&n=1000" // another block than signed
	for name, req := range map[string]*http.Request{
		"plain GET":        plain,
		"GET without MAC":  noMAC,
		"GET, other block": tampered,
		"GET, wrong key":   get(wrong, now),
		"GET, stale":       get(testSecret, now.Add(-2*time.Minute)),
		"GET, future":      get(testSecret, now.Add(2*time.Minute)),
	} {
		if status, body := send(t, req); status != http.StatusUnauthorized || len(body) != 0 {
			t.Errorf("%s: %d with %d bytes, want 401 and none", name, status, len(body))
		}
	}
	if n := b.Stats().Unauthorized; n != 6 {
		t.Errorf("Unauthorized %d, want 6", n)
	}
	if n := cl.store.total.Load(); n != 0 {
		t.Errorf("refused GETs read the store %d times", n)
	}

	// Pushes. block 1 of "seg/y" (2500 bytes) is 1000 bytes long.
	good, evil := randBytes(5, bs), randBytes(6, bs)
	held := func() bool { return bc.cached("seg/y", blockKey{xxhash.Sum64String("seg/y"), 1}) != nil }
	for name, c := range map[string]struct {
		req    *http.Request
		status int
	}{
		"push, wrong key":   {pushReq(t, b.Addr(), "seg/y", 1, 2500, good, good, wrong, now), http.StatusUnauthorized},
		"push, stale":       {pushReq(t, b.Addr(), "seg/y", 1, 2500, good, good, testSecret, now.Add(-61*time.Second)), http.StatusUnauthorized},
		"push, replayed":    {pushReq(t, b.Addr(), "seg/y", 1, 2500, good, evil, testSecret, now), http.StatusForbidden},
		"push, wrong block": {pushReq(t, b.Addr(), "seg/y", 2, 2500, good, good, testSecret, now), http.StatusBadRequest},
	} {
		if status, _ := send(t, c.req); status != c.status {
			t.Errorf("%s: %d, want %d", name, status, c.status)
		}
		if held() {
			t.Fatalf("%s: the block was inserted", name)
		}
	}
	if st := b.Stats(); st.Unauthorized != 9 || st.Received != 0 {
		t.Errorf("after refused pushes: %+v; want 9 unauthorized, none received", st)
	}
	// The genuine push, and a genuine GET, go through.
	if status, _ := send(t, pushReq(t, b.Addr(), "seg/y", 1, 2500, good, good, testSecret, now)); status != http.StatusNoContent || !held() {
		t.Fatalf("genuine push: %d, held %v", status, held())
	}
	if st := b.Stats(); st.Received != 1 {
		t.Errorf("Received %d, want 1", st.Received)
	}
	data, _, err := cl.zones[0].fetchRange(context.Background(), b.Addr(), "seg/y", 1, 2500, 100, 800)
	if err != nil || !bytes.Equal(data, good[100:900]) {
		t.Fatalf("genuine GET: %v", err)
	}
	if n := cl.store.total.Load(); n != 0 {
		t.Errorf("%d store reads; the pushed block should have served", n)
	}
}

func TestLZ4RoundTrip(t *testing.T) {
	slots := make(chan *lz4Slot, 1)
	slots <- &lz4Slot{}
	text := bytes.Repeat([]byte("offset=12345 key=user-42 value={\"clicks\": 17, \"page\": \"/home\"}\n"), 5000)
	for _, c := range []struct {
		name string
		data []byte
		enc  string
	}{
		{"small", text[:1000], encRaw},
		{"text", text[:100<<10], encLZ4},
		{"text, sampled", text, encLZ4},
		{"random", randBytes(1, 100<<10), encRaw},
		{"random, sampled", randBytes(2, 300<<10), encRaw},
		{"random head, text tail", append(randBytes(3, 200<<10), text...), encRaw}, // the sample decides
	} {
		enc, wire, release := encode(slots, c.data)
		if enc != c.enc {
			t.Errorf("%s: encoded %s, want %s", c.name, enc, c.enc)
		}
		if enc == encLZ4 && len(wire) > len(c.data)*9/10 {
			t.Errorf("%s: lz4 of %d bytes is %d", c.name, len(c.data), len(wire))
		}
		body, err := readBody(bytes.NewReader(wire), int64(len(wire)), enc, int64(len(c.data)))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := decode(enc, body, int64(len(c.data)))
		if err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("%s: round trip: %v", c.name, err)
		}
		release()
	}
	// All compressors busy: sent raw rather than waiting.
	<-slots
	if enc, _, _ := encode(slots, text); enc != encRaw {
		t.Errorf("with no free compressor: %s", enc)
	}

	// A frame that holds more than asked for fails; a body longer than
	// lz4 could need is refused before it is read.
	frame := make([]byte, lz4.CompressBlockBound(1<<20))
	n, err := lz4.CompressBlock(make([]byte, 1<<20), frame, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decode(encLZ4, frame[:n], 1000); err == nil {
		t.Error("a frame of 1 MiB decoded into 1000 bytes")
	}
	if _, err := readBody(bytes.NewReader(nil), 1<<40, encLZ4, 1000); err == nil {
		t.Error("a 1 TiB body was accepted for 1000 bytes")
	}
	if _, err := readBody(bytes.NewReader(nil), 1001, encRaw, 1000); err == nil {
		t.Error("a raw body of 1001 bytes was accepted for 1000")
	}
}

// Peers reading compressible blocks carry fewer bytes than they read.
func TestZoneCompressesOnTheWire(t *testing.T) {
	const bs = 64 << 10
	cl := newCluster(t, bs, "z1", "z1", "z1")
	obj := bytes.Repeat([]byte("a fairly compressible record payload, again and again. "), 20000)
	if err := cl.store.Put(context.Background(), "seg/text", obj); err != nil {
		t.Fatal(err)
	}
	for _, z := range cl.zones {
		zoneRead(t, z, "seg/text", obj, 0, int64(len(obj)))
	}
	var raw, wire int64
	for _, z := range cl.zones {
		st := z.Stats()
		raw += st.PeerGetBytes
		wire += st.SameZoneBytes
	}
	if raw == 0 || wire*2 > raw {
		t.Errorf("peers read %d bytes carried in %d", raw, wire)
	}
	// And pushes: a compressible upload is pushed compressed.
	a := cl.zones[0]
	recv := func() (n int64) {
		for _, z := range cl.zones[1:] {
			n += z.Stats().SameZoneBytes
		}
		return n
	}
	recv0 := recv()
	a.Uploaded("seg/text2", bytes.Clone(obj))
	waitFor(t, "pushes", func() bool { return a.pending.Load() == 0 })
	if st, got := a.Stats(), recv()-recv0; st.Pushes == 0 || got*2 > st.PushBytes {
		t.Errorf("%d pushes of %d bytes carried in %d", st.Pushes, st.PushBytes, got)
	}
	for _, z := range cl.zones {
		zoneRead(t, z, "seg/text2", obj, 1000, int64(len(obj))-2000)
	}
	if n := cl.store.total.Load(); n != int64(len(obj)-1)/bs+1 {
		t.Errorf("%d GETs for %d blocks", n, int64(len(obj)-1)/bs+1)
	}
}

// A peer answering with lies (an lz4 frame claiming a huge raw size, a
// body longer than any encoding needs, a frame that decompresses past
// what was asked, a bad MAC) makes the reader fall back to the store, and
// never allocate more than a few blocks' worth doing so.
func TestMaliciousPeer(t *testing.T) {
	const bs = 64 << 10
	store := newCountingStore()
	c := newTestCache(t, store, BlockCacheConfig{BlockSize: bs, MaxBytes: 1 << 20})

	bomb := make([]byte, lz4.CompressBlockBound(4<<20))
	n, err := lz4.CompressBlock(make([]byte, 4<<20), bomb, nil)
	if err != nil {
		t.Fatal(err)
	}
	bomb = bomb[:n]
	var lie atomic.Int32
	lies := []func(w http.ResponseWriter, want int64){
		func(w http.ResponseWriter, want int64) { // claims 1 TiB raw
			w.Header().Set(hdrEnc, encLZ4)
			w.Header().Set(hdrRawLen, strconv.Itoa(1<<40))
			w.Write(bomb)
		},
		func(w http.ResponseWriter, want int64) { // right raw length, frame expands to 4 MiB
			w.Header().Set(hdrEnc, encLZ4)
			w.Header().Set(hdrRawLen, strconv.FormatInt(want, 10))
			w.Write(bomb)
		},
		func(w http.ResponseWriter, want int64) { // a body of 1 TiB announced
			w.Header().Set(hdrEnc, encRaw)
			w.Header().Set(hdrRawLen, strconv.FormatInt(want, 10))
			w.Header().Set("Content-Length", strconv.Itoa(1<<40))
			w.Write(make([]byte, 1000))
		},
		func(w http.ResponseWriter, want int64) { // right shape, no key
			w.Header().Set(hdrEnc, encRaw)
			w.Header().Set(hdrRawLen, strconv.FormatInt(want, 10))
			w.Write(make([]byte, want))
		},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		want, _ := strconv.ParseInt(req.URL.Query().Get("n"), 10, 64)
		lies[lie.Load()](w, want)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	peers := []Peer{{ID: "me", Addr: "unused"}, {ID: "evil", Addr: ln.Addr().String()}}
	z, err := StartZone(ZoneConfig{SelfID: "me", Secret: testSecret, Listen: "127.0.0.1:0", Peers: func() []Peer { return peers }, Logger: testLogger(t)}, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Close() })
	r := newRing(peers, "me")
	for i := range lies {
		lie.Store(int32(i))
		// An object whose one block the evil peer owns.
		var key string
		for i := 0; ; i++ {
			key = fmt.Sprintf("seg/%d-%d", lie.Load(), i)
			if r.owner(blockHash(xxhash.Sum64String(key), 0)) == 1 {
				break
			}
		}
		obj := randBytes(uint64(i), bs)
		if err := store.Put(context.Background(), key, obj); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		zoneRead(t, z, key, obj, 0, bs)
		runtime.ReadMemStats(&after)
		if d := after.TotalAlloc - before.TotalAlloc; d > 16*bs {
			t.Errorf("lie %d: the read allocated %d bytes for a block of %d", i, d, bs)
		}
		if st := z.Stats(); st.Fallbacks != int64(i+1) {
			t.Fatalf("lie %d: %d fallbacks", i, st.Fallbacks)
		}
	}
}

package cache

// The peer protocol: how the agents of a zone ask each other for blocks
// and push freshly uploaded ones (zone.go says who asks whom).
//
// It is HTTP/1.1 over plain TCP, or over TLS when the agents have peer
// certificates (ZoneConfig.TLS; flags --peer-tls-*, mutual TLS against
// the cluster's peer CA, see internal/tlsconf.Peer), one path, two
// methods:
//
//	GET /sluice/peer/v1/block?k=<object key>&i=<block>&s=<object size>&o=<offset in block>&n=<length>
//	    → 200, body = bytes [o, o+n) of block i (raw or lz4)
//	PUT /sluice/peer/v1/block?k=…&i=…&s=…&o=0&n=<block length>, body = the whole block (raw or lz4)
//	    → 204
//
// A GET asks for a range inside one block, not the whole block: with the
// default block size a segment is one block, and a consumer on a
// non-owner reads only its partition's share of it. Asking for the block
// would carry the whole segment across the network for every fetch, since
// a non-owner keeps no copy. The owner still reads and caches the whole
// block through its BlockCache, so its object store read is shared.
//
// # Authentication
//
// Every request carries, in headers, a timestamp (unix milliseconds),
// the sender's agent id and zone, and an HMAC-SHA256 under the zone's
// secret over all of: method, object key, block, object size, offset,
// length, timestamp, sender, zone, and for a PUT the body's encoding, raw
// length and SHA-256 (of the body as sent). The owner refuses (401, no
// body) a missing or wrong MAC and a timestamp more than maxSkew away from
// its clock, and (403) a PUT whose body does not match the signed SHA-256,
// so that a captured push cannot be replayed with other bytes. SHA-256,
// not xxhash, because a second preimage of a non-cryptographic hash can be
// computed. MACs are compared in constant time. A replay of an intact
// request inside the skew window is harmless: GET answers what the
// original asked, and a PUT inserts the same immutable block again.
//
// A 200 answer carries the xxhash64 of its raw bytes and an HMAC over the
// request's MAC, the encoding, the lengths and that sum: a listener that
// is not a keyholder (a stale address in the registry, a stray process)
// cannot make a reader accept its bytes. The sum is xxhash because it is
// computed for every GET an owner serves; it protects against corruption
// and strangers, not against an active man in the middle (nothing on
// plain TCP does: with peer TLS on, the channel itself is authenticated
// and encrypted, and the MACs stay as a second lock).
//
// # Bounds
//
// A reader allocates what it asked for: the raw length must equal the
// requested length, a raw body must be exactly that long, an lz4 body at
// most lz4.CompressBlockBound of it, and decompression writes into a
// buffer of exactly the requested length (a frame that would overflow it
// is an error). An owner receiving a PUT checks the lengths against the
// object size and block size before reading the body, and reads at most
// maxPushHandlers bodies at a time. Compression uses one of lz4Slots
// compressors; when all are busy a body is sent raw instead of waiting.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/pierrec/lz4/v4"

	"sluice.dev/internal/uninit"
)

const (
	peerPath = "/sluice/peer/v1/block"

	hdrTime    = "X-Sluice-Time" // unix milliseconds
	hdrFrom    = "X-Sluice-From" // the sender's agent id
	hdrZone    = "X-Sluice-Zone" // the sender's zone
	hdrMAC     = "X-Sluice-Mac"  // hex HMAC-SHA256 of the request (or response)
	hdrEnc     = "X-Sluice-Encoding"
	hdrRawLen  = "X-Sluice-Raw-Length"
	hdrBodySum = "X-Sluice-Body-Sha256" // PUT: hex SHA-256 of the body as sent
	hdrSum     = "X-Sluice-Sum"         // 200: hex xxhash64 of the raw bytes

	encRaw = "raw"
	encLZ4 = "lz4"

	// maxSkew is how far a request's timestamp may be from the owner's
	// clock. Agents run NTP; a minute covers a bad clock without keeping
	// a captured request usable for long.
	maxSkew = 60 * time.Second
	// getTimeout bounds a peer GET: the owner may have to read the object
	// store first (a GET of a 16 MiB block takes well under a second), so
	// this is the point where reading the store ourselves is faster.
	getTimeout = 5 * time.Second
	// pushTimeout bounds a push; a push that takes longer only costs its
	// owner one GET later.
	pushTimeout = 10 * time.Second
	// maxKeyLen bounds an object key in a request; segment keys are short.
	maxKeyLen = 1024

	// minCompress: below this, lz4 saves too few bytes to be worth a
	// compressor; sampleLen: a body is compressed whole only if its first
	// sampleLen bytes shrink by minGain (record batches are often
	// compressed by their producers already, and that is found out at the
	// cost of 64 KiB instead of 16 MiB).
	minCompress = 4 << 10
	sampleLen   = 64 << 10
	// lz4Slots bounds concurrent compressions, and so the compression
	// buffers alive at once (each up to a block).
	lz4Slots = 4
	// maxPushHandlers bounds the pushed bodies an owner holds at once.
	maxPushHandlers = 4
)

// worthCompressing says whether lz4 output of n bytes for raw bytes is
// worth sending: it must save at least 10 %.
func worthCompressing(n, raw int) bool { return n > 0 && n <= raw-raw/10 }

// peerReq is what a request's MAC covers.
type peerReq struct {
	method string
	key    string
	idx    uint32
	size   int64 // the object's size
	off, n int64 // the range inside block idx; a PUT sends 0 and the block's length
	ts     int64 // unix milliseconds
	from   string
	zone   string
	// PUT only.
	enc     string
	rawLen  int64
	bodySum string // hex SHA-256 of the body as sent
}

// mac is the request's HMAC under secret. Every field is length-prefixed
// or fixed-size, so no two requests share an encoding.
func (r *peerReq) mac(secret []byte) []byte {
	b := make([]byte, 0, 160+len(r.key))
	b = appendStr(b, "sluice peer request v1")
	b = appendStr(b, r.method)
	b = appendStr(b, r.key)
	b = binary.BigEndian.AppendUint32(b, r.idx)
	for _, v := range []int64{r.size, r.off, r.n, r.ts, r.rawLen} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = appendStr(b, r.from)
	b = appendStr(b, r.zone)
	b = appendStr(b, r.enc)
	b = appendStr(b, r.bodySum)
	h := hmac.New(sha256.New, secret)
	h.Write(b)
	return h.Sum(nil)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// responseMAC binds a 200 answer to the request it answers.
func responseMAC(secret, reqMAC []byte, enc string, rawLen, wireLen int64, sum uint64) []byte {
	b := make([]byte, 0, 96)
	b = appendStr(b, "sluice peer response v1")
	b = append(b, reqMAC...)
	b = appendStr(b, enc)
	b = binary.BigEndian.AppendUint64(b, uint64(rawLen))
	b = binary.BigEndian.AppendUint64(b, uint64(wireLen))
	b = binary.BigEndian.AppendUint64(b, sum)
	h := hmac.New(sha256.New, secret)
	h.Write(b)
	return h.Sum(nil)
}

// newPeerRequest builds the signed HTTP request for r to base
// ("http://host:port", or https with --peer-tls-cert), and returns the MAC
// it carries (a GET's answer is checked against it).
func newPeerRequest(ctx context.Context, base string, r *peerReq, secret []byte, body []byte) (*http.Request, []byte, error) {
	q := url.Values{
		"k": {r.key},
		"i": {strconv.FormatUint(uint64(r.idx), 10)},
		"s": {strconv.FormatInt(r.size, 10)},
		"o": {strconv.FormatInt(r.off, 10)},
		"n": {strconv.FormatInt(r.n, 10)},
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, base+peerPath+"?"+q.Encode(), rd)
	if err != nil {
		return nil, nil, err
	}
	mac := r.mac(secret)
	h := req.Header
	h.Set(hdrTime, strconv.FormatInt(r.ts, 10))
	h.Set(hdrFrom, r.from)
	h.Set(hdrZone, r.zone)
	h.Set(hdrMAC, hex.EncodeToString(mac))
	if r.method == http.MethodPut {
		h.Set(hdrEnc, r.enc)
		h.Set(hdrRawLen, strconv.FormatInt(r.rawLen, 10))
		h.Set(hdrBodySum, r.bodySum)
	}
	return req, mac, nil
}

// parsePeerRequest reads the signed fields of req. It checks syntax only;
// authenticate checks the MAC, and the handlers the values.
func parsePeerRequest(req *http.Request) (r peerReq, mac []byte, err error) {
	q := req.URL.Query()
	r.method = req.Method
	r.key = q.Get("k")
	idx, err1 := strconv.ParseUint(q.Get("i"), 10, 32)
	r.idx = uint32(idx)
	var err2, err3, err4, err5 error
	r.size, err2 = strconv.ParseInt(q.Get("s"), 10, 64)
	r.off, err3 = strconv.ParseInt(q.Get("o"), 10, 64)
	r.n, err4 = strconv.ParseInt(q.Get("n"), 10, 64)
	r.ts, err5 = strconv.ParseInt(req.Header.Get(hdrTime), 10, 64)
	r.from = req.Header.Get(hdrFrom)
	r.zone = req.Header.Get(hdrZone)
	if r.method == http.MethodPut {
		r.enc = req.Header.Get(hdrEnc)
		r.bodySum = req.Header.Get(hdrBodySum)
		var err6 error
		if r.rawLen, err6 = strconv.ParseInt(req.Header.Get(hdrRawLen), 10, 64); err6 != nil {
			return r, nil, errors.New("no raw length")
		}
	}
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return r, nil, errors.New("missing or malformed fields")
	}
	mac, err = hex.DecodeString(req.Header.Get(hdrMAC))
	if err != nil || len(mac) != sha256.Size {
		return r, nil, errors.New("no MAC")
	}
	return r, mac, nil
}

// authenticate checks r's timestamp and MAC. The error says why a request
// was refused, for the debug log only.
func authenticate(r *peerReq, mac, secret []byte, now time.Time) error {
	if d := now.Sub(time.UnixMilli(r.ts)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("timestamp %s off", d.Round(time.Second))
	}
	if !hmac.Equal(mac, r.mac(secret)) {
		return errors.New("bad MAC")
	}
	return nil
}

// lz4Slot is one compressor; the slots channel bounds how many run.
type lz4Slot struct{ c lz4.Compressor }

// bufPool holds compression buffers (*[]byte), to spare the allocator a
// block-sized buffer per compressed answer.
var bufPool sync.Pool

func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

// encode returns data as it goes on the wire: lz4 when that saves at least
// 10 % and a compressor is free, else data itself. release returns the
// buffer the lz4 body lives in; call it once the body is sent.
func encode(slots chan *lz4Slot, data []byte) (enc string, wire []byte, release func()) {
	nop := func() {}
	if len(data) < minCompress {
		return encRaw, data, nop
	}
	var s *lz4Slot
	select {
	case s = <-slots:
	default:
		return encRaw, data, nop // all busy: raw costs bandwidth, waiting costs latency
	}
	defer func() { slots <- s }()
	if len(data) > 2*sampleLen {
		p := getBuf(lz4.CompressBlockBound(sampleLen))
		n, err := s.c.CompressBlock(data[:sampleLen], *p)
		bufPool.Put(p)
		if err != nil || !worthCompressing(n, sampleLen) {
			return encRaw, data, nop
		}
	}
	p := getBuf(lz4.CompressBlockBound(len(data)))
	n, err := s.c.CompressBlock(data, *p)
	if err != nil || !worthCompressing(n, len(data)) {
		bufPool.Put(p)
		return encRaw, data, nop
	}
	return encLZ4, (*p)[:n], func() { bufPool.Put(p) }
}

// wireLimit is the largest body that may carry want raw bytes in enc.
func wireLimit(enc string, want int64) (int64, error) {
	switch enc {
	case encRaw:
		return want, nil
	case encLZ4:
		return int64(lz4.CompressBlockBound(int(want))), nil
	}
	return 0, fmt.Errorf("unknown encoding %q", enc)
}

// readBody reads a body of contentLength bytes that must carry want raw
// bytes in enc, refusing before allocating anything a length the
// encoding cannot need.
func readBody(body io.Reader, contentLength int64, enc string, want int64) ([]byte, error) {
	limit, err := wireLimit(enc, want)
	if err != nil {
		return nil, err
	}
	if contentLength < 0 || contentLength > limit || (enc == encRaw && contentLength != want) {
		return nil, fmt.Errorf("body of %d bytes cannot carry %d bytes as %s", contentLength, want, enc)
	}
	// Not cleared (internal/uninit): ReadFull fills it or it is dropped.
	buf := uninit.Bytes(int(contentLength))[:contentLength]
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// decode turns a body read by readBody into exactly want raw bytes.
// Decompression writes into a buffer of want bytes: a frame that claims
// or produces more fails instead of allocating.
func decode(enc string, wire []byte, want int64) ([]byte, error) {
	switch enc {
	case encRaw:
		if int64(len(wire)) != want {
			return nil, fmt.Errorf("raw body of %d bytes, want %d", len(wire), want)
		}
		return wire, nil
	case encLZ4:
		out := make([]byte, want)
		n, err := lz4.UncompressBlock(wire, out)
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		if int64(n) != want {
			return nil, fmt.Errorf("lz4 body holds %d bytes, want %d", n, want)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown encoding %q", enc)
}

// netError marks a failure to talk to a peer at all (as opposed to an
// answer we refused): it makes the peer down for a while (Zone.markDown).
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// fetchRange asks peer addr for bytes [off, off+n) of block idx of key. It
// returns the raw bytes and the bytes the network carried.
func (z *Zone) fetchRange(ctx context.Context, addr, key string, idx uint32, size, off, n int64) (data []byte, wire int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, getTimeout)
	defer cancel()
	r := &peerReq{method: http.MethodGet, key: key, idx: idx, size: size, off: off, n: n,
		ts: time.Now().UnixMilli(), from: z.cfg.SelfID, zone: z.cfg.Zone}
	req, mac, err := newPeerRequest(ctx, z.scheme+addr, r, z.secret, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := z.client.Do(req)
	if err != nil {
		return nil, 0, &netError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 512)) // keep the connection
		return nil, 0, fmt.Errorf("answered %s", resp.Status)
	}
	enc := resp.Header.Get(hdrEnc)
	if rl, err := strconv.ParseInt(resp.Header.Get(hdrRawLen), 10, 64); err != nil || rl != n {
		return nil, 0, fmt.Errorf("answer claims %q raw bytes, asked for %d", resp.Header.Get(hdrRawLen), n)
	}
	body, err := readBody(resp.Body, resp.ContentLength, enc, n)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) {
			err = &netError{err}
		}
		return nil, 0, err
	}
	data, err = decode(enc, body, n)
	if err != nil {
		return nil, 0, err
	}
	sum := xxhash.Sum64(data)
	got, _ := hex.DecodeString(resp.Header.Get(hdrMAC))
	if want := responseMAC(z.secret, mac, enc, n, int64(len(body)), sum); !hmac.Equal(got, want) ||
		resp.Header.Get(hdrSum) != strconv.FormatUint(sum, 16) {
		return nil, 0, errors.New("answer fails its MAC")
	}
	return data, int64(len(body)), nil
}

// sendPush PUTs one block to addr.
func (z *Zone) sendPush(ctx context.Context, addr string, it pushItem) error {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	enc, body, release := encode(z.lz4Slots, it.data)
	defer release()
	sum := sha256.Sum256(body)
	r := &peerReq{method: http.MethodPut, key: it.key, idx: it.idx, size: it.size, off: 0, n: int64(len(it.data)),
		ts: time.Now().UnixMilli(), from: z.cfg.SelfID, zone: z.cfg.Zone,
		enc: enc, rawLen: int64(len(it.data)), bodySum: hex.EncodeToString(sum[:])}
	req, _, err := newPeerRequest(ctx, z.scheme+addr, r, z.secret, body)
	if err != nil {
		return err
	}
	resp, err := z.client.Do(req)
	if err != nil {
		return &netError{err}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// handler serves the peer protocol.
type handler struct{ z *Zone }

func (h handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	z := h.z
	// Close waits for running handlers (z.hmu) before the BlockCache may
	// be closed; a request arriving after that is turned away.
	z.hmu.RLock()
	defer z.hmu.RUnlock()
	if z.handlersClosed {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if req.URL.Path != peerPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodPut {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	r, mac, err := parsePeerRequest(req)
	if err == nil {
		err = authenticate(&r, mac, z.secret, time.Now())
	}
	if err != nil {
		z.refuse(w, req, http.StatusUnauthorized, err)
		return
	}
	if req.Method == http.MethodGet {
		z.serveGet(w, req, &r, mac)
	} else {
		z.servePut(w, req, &r)
	}
}

// refuse answers an unauthenticated request with status and no body.
func (z *Zone) refuse(w http.ResponseWriter, req *http.Request, status int, why error) {
	z.stats.Unauthorized.Add(1)
	if req.Method == http.MethodPut {
		mPushUnauthorized.Inc()
	} else {
		mGetUnauthorized.Inc()
	}
	// Debug only: anyone can send these, and a warning per request would
	// let them flood the log.
	z.log.Debug("refused peer request", "remote", req.RemoteAddr, "method", req.Method, "from", req.Header.Get(hdrFrom), "reason", why)
	w.WriteHeader(status)
}

// checkBlockRange validates the block and range a request names.
func (z *Zone) checkBlockRange(r *peerReq) error {
	switch {
	case r.key == "" || len(r.key) > maxKeyLen:
		return fmt.Errorf("key of %d bytes", len(r.key))
	case r.size <= 0 || int64(r.idx) > (r.size-1)/z.bs:
		return fmt.Errorf("block %d outside an object of %d bytes", r.idx, r.size)
	}
	bl := min(z.bs, r.size-int64(r.idx)*z.bs)
	if r.off < 0 || r.n <= 0 || r.off > bl || r.n > bl-r.off {
		return fmt.Errorf("range [%d, +%d) outside block %d of %d bytes", r.off, r.n, r.idx, bl)
	}
	return nil
}

// serveGet answers a GET through this agent's BlockCache: concurrent GETs
// of one block, from peers and local readers alike, share one store read.
func (z *Zone) serveGet(w http.ResponseWriter, req *http.Request, r *peerReq, reqMAC []byte) {
	if err := z.checkBlockRange(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	block, err := z.blocks.Block(req.Context(), r.key, r.idx, r.size)
	if err != nil {
		z.log.Debug("serve peer get", "key", r.key, "block", r.idx, "from", r.from, "err", err)
		http.Error(w, "read failed", http.StatusBadGateway)
		return
	}
	data := block[r.off : r.off+r.n]
	enc, body, release := encode(z.lz4Slots, data)
	defer release()
	sum := xxhash.Sum64(data)
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(hdrEnc, enc)
	h.Set(hdrRawLen, strconv.FormatInt(r.n, 10))
	h.Set(hdrSum, strconv.FormatUint(sum, 16))
	h.Set(hdrMAC, hex.EncodeToString(responseMAC(z.secret, reqMAC, enc, r.n, int64(len(body)), sum)))
	if _, err := w.Write(body); err != nil {
		return
	}
	z.stats.ServedGets.Add(1)
	z.stats.ServedBytes.Add(r.n)
}

// servePut inserts a pushed block. Lengths are checked before the body is
// read, and the body against its signed SHA-256 before it is decoded.
func (z *Zone) servePut(w http.ResponseWriter, req *http.Request, r *peerReq) {
	if err := z.checkBlockRange(r); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	want := min(z.bs, r.size-int64(r.idx)*z.bs)
	if r.off != 0 || r.n != want || r.rawLen != want {
		http.Error(w, fmt.Sprintf("a push carries a whole block: %d bytes", want), http.StatusBadRequest)
		return
	}
	if limit, err := wireLimit(r.enc, want); err != nil || req.ContentLength < 0 || req.ContentLength > limit {
		http.Error(w, "bad body length or encoding", http.StatusBadRequest)
		return
	}
	select {
	case z.pushSem <- struct{}{}:
		defer func() { <-z.pushSem }()
	case <-req.Context().Done():
		return
	}
	body, err := readBody(req.Body, req.ContentLength, r.enc, want)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := sha256.Sum256(body)
	if !hmac.Equal([]byte(hex.EncodeToString(sum[:])), []byte(r.bodySum)) {
		z.refuse(w, req, http.StatusForbidden, errors.New("body does not match its signed SHA-256"))
		return
	}
	data, err := decode(r.enc, body, want)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := z.blocks.InsertBlock(r.key, r.idx, r.size, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	z.stats.Received.Add(1)
	z.countPeerBytes(r.zone, int64(len(body)))
	w.WriteHeader(http.StatusNoContent)
}

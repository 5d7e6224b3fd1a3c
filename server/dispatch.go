package server

import (
	"encoding/binary"
	"errors"
	"runtime/debug"
	"sort"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handlerFunc serves one decoded request. It must complete the request
// exactly once, now or later from any goroutine, with rc.respond or
// rc.skip. It runs on the connection's worker, so it may do quick work
// but must hand waiting (commits, long polls) to callbacks.
type handlerFunc func(s *Server, rc *reqCtx, req kmsg.Request)

type handler struct {
	min, max int16
	fn       handlerFunc
}

// handlers is filled by each API file's init; ApiVersions is derived from
// it, so what is advertised is exactly what is served (invariant 9).
var handlers = map[int16]handler{}

func register(key int16, min, max int16, fn handlerFunc) {
	if _, dup := handlers[key]; dup {
		panic("BUG: handler registered twice for key " + kmsg.NameForKey(key))
	}
	handlers[key] = handler{min: min, max: max, fn: fn}
}

// supportedKeys lists registered API keys in order.
func supportedKeys() []int16 {
	keys := make([]int16, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// reqCtx is one request in flight on a connection.
type reqCtx struct {
	c        *conn
	seq      uint64
	key      int16
	version  int16
	corrID   int32
	clientID string
	start    time.Time
	done     bool
	// frame holds the request's bytes; the handler's request aliases
	// them. A handler that keeps them past its return takes a reference
	// (frame.retain) and releases it when done (frames.go).
	frame *frameBuf
	// sizeHint, when set, is the expected encoded response size: the
	// encoder's buffer starts that large instead of growing by copying
	// (a fetch response carries megabytes of record batches).
	sizeHint int
}

// respond encodes and queues the response for writing in request order.
func (rc *reqCtx) respond(resp kmsg.Response) {
	if rc.done {
		panic("BUG: request completed twice")
	}
	rc.done = true
	resp.SetVersion(rc.version)
	// ApiVersions responses always use header v0 (KIP-511), so a client
	// that does not yet know our versions can read them.
	flexHeader := resp.IsFlexible() && rc.key != int16(kmsg.ApiVersions)
	b := frameResponse(rc.corrID, flexHeader, resp.AppendTo, rc.sizeHint)
	rc.c.respond(rc.seq, []outBuf{b})
	observeRequest(rc.key, rc.start)
}

// skip completes a request that gets no response (Produce with acks=0).
func (rc *reqCtx) skip() {
	if rc.done {
		panic("BUG: request completed twice")
	}
	rc.done = true
	rc.c.respond(rc.seq, nil)
	observeRequest(rc.key, rc.start)
}

// requestHeader is a decoded request header (v1 or v2).
type requestHeader struct {
	key      int16
	version  int16
	corrID   int32
	clientID string
}

// errUnsupportedVersion marks a known API asked for at a version we do not
// serve; ApiVersions answers it, every other API closes the connection.
type errUnsupportedVersion struct{ min, max int16 }

func (e *errUnsupportedVersion) Error() string {
	return "unsupported version (serving " + itoa(int(e.min)) + "-" + itoa(int(e.max)) + ")"
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

// parseRequest decodes one frame (without its size prefix): the request
// header, then the body with kmsg. The returned request aliases frame.
func parseRequest(frame []byte) (requestHeader, kmsg.Request, error) {
	var hdr requestHeader
	if len(frame) < 8 {
		return hdr, nil, decodeError("short request header")
	}
	hdr.key = int16(binary.BigEndian.Uint16(frame[0:]))
	hdr.version = int16(binary.BigEndian.Uint16(frame[2:]))
	hdr.corrID = int32(binary.BigEndian.Uint32(frame[4:]))
	h, ok := handlers[hdr.key]
	if !ok {
		return hdr, nil, decodeError("unsupported API key " + itoa(int(hdr.key)))
	}
	if hdr.version < h.min || hdr.version > h.max {
		return hdr, nil, &errUnsupportedVersion{h.min, h.max}
	}
	req := kmsg.RequestForKey(hdr.key)
	req.SetVersion(hdr.version)
	body := frame[8:]
	// Request header v1+: nullable int16-length client id. Every API we
	// serve is past header v0.
	if len(body) < 2 {
		return hdr, nil, decodeError("truncated request header")
	}
	idLen := int(int16(binary.BigEndian.Uint16(body)))
	body = body[2:]
	if idLen > 0 {
		if len(body) < idLen {
			return hdr, nil, decodeError("truncated client id")
		}
		hdr.clientID = string(body[:idLen])
		body = body[idLen:]
	}
	if req.IsFlexible() {
		if body, ok = skipTags(body); !ok {
			return hdr, nil, decodeError("bad request header tagged fields")
		}
	}
	// Before kmsg sizes any array by a count the client wrote: refuse a
	// frame whose decode would cost more than a small multiple of it.
	if err := checkDecodeCost(hdr.key, hdr.version, req.IsFlexible(), len(frame), body); err != nil {
		return hdr, nil, err
	}
	// UnsafeReadFrom aliases body for bytes and strings: body is this
	// request's own copy of the frame, reused only once every holder
	// released it (frames.go), so that is safe and saves copying record
	// batches.
	if err := readRequest(req, body); err != nil {
		return hdr, nil, err
	}
	return hdr, req, nil
}

// dispatch decodes one frame and hands it to its handler. It returns false
// when the connection must be closed: the frame does not decode, or names
// an API or version we do not serve (Kafka closes the connection too; only
// ApiVersions answers an unknown version, with UNSUPPORTED_VERSION and the
// versions it has, KIP-511). A handler panic is a bug, but one client's
// request must not take the agent down: it is logged and the connection
// closed.
//
// It releases the connection's reference to frame when it returns.
func (s *Server) dispatch(c *conn, seq uint64, frame *frameBuf) (ok bool) {
	// SASL (issue 14): after a v0 SaslHandshake the next frames are bare
	// tokens, not requests (sasl.go). With SASL off, s.sasl is nil and
	// this and the gate below cost one predictable branch each.
	if s.sasl != nil && c.sasl != nil && c.sasl.raw {
		return s.saslRawToken(c, seq, frame)
	}
	defer frame.release()
	hdr, req, err := parseRequest(frame.b)
	rc := &reqCtx{c: c, seq: seq, key: hdr.key, version: hdr.version, corrID: hdr.corrID,
		clientID: hdr.clientID, start: time.Now(), frame: frame}
	s.countZoneMatch(c, hdr.clientID)
	if err != nil {
		var uv *errUnsupportedVersion
		if errors.As(err, &uv) && hdr.key == int16(kmsg.ApiVersions) {
			rc.version = 0
			resp := apiVersionsResponse(0)
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			rc.respond(resp)
			return true
		}
		s.log.Warn("closing connection: bad request", "remote", c.remote,
			"api", kmsg.NameForKey(hdr.key), "api_key", hdr.key, "version", hdr.version, "err", err)
		mBadRequests.Inc()
		return false
	}
	// SASL (issue 14): until the connection authenticated only
	// ApiVersions and the SASL requests pass; anything else, or any
	// request after the session expired, closes it (Kafka's behaviour).
	if s.sasl != nil {
		if allowed, why := s.saslAllows(c, hdr.key, rc.start); !allowed {
			s.log.Warn("closing connection: "+why, "remote", c.remote, "api", kmsg.NameForKey(hdr.key))
			return false
		}
	}
	defer func() {
		if r := recover(); r != nil {
			logHandlerPanic(c, hdr.key, hdr.version, r)
			ok = false
		}
	}()
	handlers[hdr.key].fn(s, rc, req)
	return true
}

// goAsync runs f, the part of a handler that answers later (a fetch's
// read and long poll, a join or sync waiting on meta), on a goroutine of
// its own under the same guard as dispatch: a bug there closes the
// connection and is logged, and does not take the agent down.
func (rc *reqCtx) goAsync(f func()) {
	go func() {
		defer func() {
			if r := recover(); r != nil {
				logHandlerPanic(rc.c, rc.key, rc.version, r)
				rc.c.close()
			}
		}()
		f()
	}()
}

// logHandlerPanic logs a handler's panic, whose connection is closed.
func logHandlerPanic(c *conn, key, version int16, r any) {
	c.s.log.Error("BUG: handler panicked; closing the connection", "remote", c.remote,
		"api", kmsg.NameForKey(key), "version", version, "panic", r, "stack", string(debug.Stack()))
}

func itoa(n int) string { return strconv.Itoa(n) }

// readRequest decodes without copying where kmsg allows it.
func readRequest(req kmsg.Request, body []byte) error {
	if u, ok := req.(interface{ UnsafeReadFrom([]byte) error }); ok {
		return u.UnsafeReadFrom(body)
	}
	return req.ReadFrom(body)
}

// skipTags skips a tagged-field section (uvarint count, then per field a
// uvarint tag, uvarint size and the bytes).
func skipTags(b []byte) ([]byte, bool) {
	n, b, ok := uvarint(b)
	if !ok {
		return nil, false
	}
	for i := uint64(0); i < n; i++ {
		if _, b, ok = uvarint(b); !ok {
			return nil, false
		}
		var size uint64
		if size, b, ok = uvarint(b); !ok || size > uint64(len(b)) {
			return nil, false
		}
		b = b[size:]
	}
	return b, true
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, false
	}
	return v, b[n:], true
}

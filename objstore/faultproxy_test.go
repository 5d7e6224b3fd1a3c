package objstore

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// httpFault is what faultProxy does to a request a rule matches.
type httpFault int

const (
	faultSlowDown httpFault = iota + 1 // 503 with S3's SlowDown error body
	fault500                           // 500 InternalError
	faultStall                         // no answer for stall, then the connection closes
	faultDrop                          // hijack the connection and close it, nothing written
	faultCutBody                       // forward, then cut the response body in half
)

func (f httpFault) String() string {
	return [...]string{"none", "503 SlowDown", "500", "stall", "drop", "cut body"}[f]
}

// faultRule applies fault to the next n requests of a kind (see
// requestKind; "" matches all); n < 0 applies it to all of them.
type faultRule struct {
	kind  string
	fault httpFault
	n     int
}

// faultProxy is a reverse proxy in front of an S3 server that injects
// faults at the HTTP layer, where the SDK's retries see them, and counts
// requests by kind.
type faultProxy struct {
	rp     *httputil.ReverseProxy
	target *url.URL
	stall  time.Duration

	mu     sync.Mutex
	rules  []*faultRule   // guarded by mu; the first match applies
	counts map[string]int // guarded by mu; by requestKind
	faults map[httpFault]int

	inflight, maxInflight atomic.Int64 // part uploads in flight, and the peak
}

func newFaultProxy(target string, stall time.Duration) *faultProxy {
	u, err := url.Parse(target)
	if err != nil {
		panic(err)
	}
	return &faultProxy{
		rp:     httputil.NewSingleHostReverseProxy(u),
		target: u,
		stall:  stall,
		counts: map[string]int{},
		faults: map[httpFault]int{},
	}
}

// requestKind names an S3 request: "PUT", "GET", "HEAD", "DELETE",
// "LIST", "PART" (UploadPart), "CREATE-MPU", "COMPLETE-MPU", "ABORT-MPU".
func requestKind(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Has("list-type"):
		return "LIST"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "PART"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CREATE-MPU"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "COMPLETE-MPU"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "ABORT-MPU"
	}
	return r.Method
}

func (p *faultProxy) add(rules ...faultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range rules {
		p.rules = append(p.rules, &rules[i])
	}
}

func (p *faultProxy) clear() {
	p.mu.Lock()
	p.rules = nil
	p.mu.Unlock()
}

// count returns how many requests of kind reached the proxy (faulted or
// not).
func (p *faultProxy) count(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[kind]
}

func (p *faultProxy) injected(f httpFault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults[f]
}

func (p *faultProxy) resetCounts() {
	p.mu.Lock()
	p.counts = map[string]int{}
	p.faults = map[httpFault]int{}
	p.mu.Unlock()
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind := requestKind(r)
	var fault httpFault
	p.mu.Lock()
	p.counts[kind]++
	for _, rule := range p.rules {
		if rule.n != 0 && (rule.kind == "" || rule.kind == kind) {
			if rule.n > 0 {
				rule.n--
			}
			fault = rule.fault
			p.faults[fault]++
			break
		}
	}
	p.mu.Unlock()

	if kind == "PART" {
		n := p.inflight.Add(1)
		defer p.inflight.Add(-1)
		for {
			m := p.maxInflight.Load()
			if n <= m || p.maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
	}

	switch fault {
	case faultSlowDown:
		_, _ = io.Copy(io.Discard, r.Body)
		writeS3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
	case fault500:
		_, _ = io.Copy(io.Discard, r.Body)
		writeS3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
	case faultStall:
		// Read the body first: the server notices the client hanging
		// up (and ends r.Context()) only once it reads past the body.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(p.stall):
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler) // close without answering
	case faultDrop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		conn.Close()
	case faultCutBody:
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		p.rp.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		_, _ = w.Write(rec.body.Bytes()[:rec.body.Len()/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler) // the client sees a body shorter than its Content-Length
	default:
		p.rp.ServeHTTP(w, r)
	}
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>fault</RequestId></Error>`, code, msg)
}

// recorder buffers a whole response from the reverse proxy.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// summary prints the request counts, for test logs.
func (p *faultProxy) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, k := range []string{"PUT", "GET", "HEAD", "DELETE", "LIST", "CREATE-MPU", "PART", "COMPLETE-MPU", "ABORT-MPU"} {
		if n := p.counts[k]; n > 0 {
			fmt.Fprintf(&b, " %s=%d", k, n)
		}
	}
	return strings.TrimSpace(b.String())
}

// Package netlimit bounds the connections a listener keeps open: each one
// holds buffers and a goroutine, so a peer that opens many (and a listener
// reachable by such a peer) must meet a limit. A connection accepted over
// the limit is closed at once rather than left in the backlog, which tells
// a legitimate client to go elsewhere.
package netlimit

import (
	"net"
	"sync"
	"sync/atomic"
)

// Hooks are told of what the listener does; any may be nil. They run on
// the accepting goroutine (Refused, Opened) or the closing one (Closed),
// so they must not block: count, and log through a rate limiter.
type Hooks struct {
	Refused func(c net.Conn) // before c is closed
	Opened  func()
	Closed  func()
}

// Listener returns ln closing every connection accepted while limit are
// open (limit < 1 is taken as 1). A connection counts until its first
// Close.
func Listener(ln net.Listener, limit int, h Hooks) *Limited {
	return &Limited{Listener: ln, max: int64(max(limit, 1)), h: h}
}

// Limited is a listener made by Listener.
type Limited struct {
	net.Listener
	max  int64
	open atomic.Int64
	h    Hooks
}

// Open returns the connections accepted and not closed yet.
func (l *Limited) Open() int64 { return l.open.Load() }

// Max returns the limit.
func (l *Limited) Max() int64 { return l.max }

// Accept implements net.Listener.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			if l.h.Refused != nil {
				l.h.Refused(c)
			}
			_ = c.Close()
			continue
		}
		if l.h.Opened != nil {
			l.h.Opened()
		}
		return &conn{Conn: c, l: l}, nil
	}
}

type conn struct {
	net.Conn
	l    *Limited
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.open.Add(-1)
		if c.l.h.Closed != nil {
			c.l.h.Closed()
		}
	})
	return c.Conn.Close()
}

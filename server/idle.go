package server

import (
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Idle connections (Kafka's connections.max.idle.ms). A connection whose
// client has sent nothing for Config.ConnectionsMaxIdle, and that has
// nothing in progress (no request queued, being served or parked, no
// response unsent), is closed. Without it a client could hold a
// connection, and its share of MaxConnections, for ever by opening it
// and saying nothing, or by stopping halfway through a frame: 10,000
// such sockets would lock every other client out of the agent. Clients
// reconnect on their own when they next need a broker, as they do after
// Kafka closes an idle connection.

var mConnsIdleClosed = metrics.NewCounter(`sluice_kafka_connections_idle_closed_total`)

// idleCheckEvery is how often connections are looked at: a quarter of the
// limit, so one is closed at most 25 % late, and at least every 30 s.
func idleCheckEvery(limit time.Duration) time.Duration {
	return min(max(limit/4, 10*time.Millisecond), 30*time.Second)
}

// startIdleSweep starts closeIdleConns once the listener is up (a Start
// that fails leaves nothing running); Stop ends it.
func (s *Server) startIdleSweep() {
	if s.cfg.ConnectionsMaxIdle > 0 {
		go s.closeIdleConns(s.idleStop)
	}
}

// closeIdleConns runs until stop is closed, closing idle connections.
func (s *Server) closeIdleConns(stop <-chan struct{}) {
	limit := s.cfg.ConnectionsMaxIdle
	t := time.NewTicker(idleCheckEvery(limit))
	defer t.Stop()
	var idle []*conn
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			idle = idle[:0]
			s.connsMu.Lock()
			for c := range s.conns {
				if c.idleSince(now) >= limit {
					idle = append(idle, c)
				}
			}
			s.connsMu.Unlock()
			for _, c := range idle {
				mConnsIdleClosed.Inc()
				s.log.Debug("closing idle connection", "remote", c.remote,
					"idle_for", limit, "hint", "--connections-max-idle")
				c.close()
			}
		}
	}
}

// idleSince is how long the client has sent nothing while the connection
// had nothing in progress; 0 when something is in progress.
func (c *conn) idleSince(now time.Time) time.Duration {
	c.mu.Lock()
	working := c.closed || c.running || len(c.queue) > 0 || len(c.pending) > 0 ||
		c.nextWrite < c.nextSeq || len(c.writeQ) > 0 || c.handoff > 0
	c.mu.Unlock()
	if working || c.pendingProduces.Load() > 0 {
		return 0
	}
	return now.Sub(time.Unix(0, c.lastReceived.Load()))
}

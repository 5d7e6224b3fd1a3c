package server

// Zone and group routing. A client names its availability zone and,
// optionally, an agent group in its client id:
//
//	client.id = "orders-consumer,sluice_az=us-east-1a,sluice_group=ingest"
//
// (warpstream_az= is accepted too, so WarpStream clients work unchanged;
// items may be separated by commas, semicolons or spaces). Metadata,
// DescribeCluster and FindCoordinator then answer with the live agents of
// that group and zone only, so a client never crosses a zone to reach an
// agent. Each filter falls back to "no filter" when it would leave no
// agent: a zone without agents is served by every zone rather than not
// at all. Agents whose roles exclude both produce and consume (jobs-only
// agents) are never offered to clients; partition leaders are chosen
// among the produce-role agents of the selection when it has any.

import (
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
)

var (
	mZoneMatch    = metrics.NewCounter(`sluice_zone_client_connections{zone_match="true"}`)
	mZoneMismatch = metrics.NewCounter(`sluice_zone_client_connections{zone_match="false"}`)
)

// placement is what a client id asks for.
type placement struct {
	zone, group string
}

// parseClientID reads sluice_az (or warpstream_az) and sluice_group from
// a client id. It allocates only for the returned strings' headers.
func parseClientID(id string) placement {
	var p placement
	for id != "" {
		i := strings.IndexAny(id, ", ;")
		item := id
		if i >= 0 {
			item, id = id[:i], id[i+1:]
		} else {
			id = ""
		}
		if k, v, ok := strings.Cut(item, "="); ok {
			switch k {
			case "sluice_az", "warpstream_az":
				p.zone = v
			case "sluice_group":
				p.group = v
			}
		}
	}
	return p
}

// selectFor returns the brokers a client with placement p is offered, and
// among them the ones that lead partitions.
func selectFor(all []broker, p placement) (offered, leaders []broker) {
	var serving []broker
	for _, b := range all {
		if b.hasRole("produce") || b.hasRole("consume") {
			serving = append(serving, b)
		}
	}
	if len(serving) == 0 {
		serving = all // misconfigured: better some agent than none
	}
	pick := func(in []broker, keep func(*broker) bool) []broker {
		var out []broker
		for i := range in {
			if keep(&in[i]) {
				out = append(out, in[i])
			}
		}
		if len(out) == 0 {
			return in
		}
		return out
	}
	offered = pick(serving, func(b *broker) bool { return b.group == p.group })
	if p.zone != "" {
		offered = pick(offered, func(b *broker) bool { return b.zone == p.zone })
	}
	leaders = pick(offered, func(b *broker) bool { return b.hasRole("produce") })
	return offered, leaders
}

// coordinatorFor picks the agent that answers for a group (or any
// coordinator key): this agent when it is offered to the client (no extra
// hop: every agent forwards group calls to meta), otherwise a stable
// choice among the offered ones. A coordinator is named by its agent's
// first identity (the node id meta assigned; agents.go), which every
// Metadata response lists, whatever --broker-identities is.
func coordinatorFor(offered []broker, selfID, key string) broker {
	for _, b := range offered {
		if b.id == selfID {
			return b
		}
	}
	return pickBroker(offered, xxhash.Sum64String(key))
}

// Zone match states of a connection (conn.zone).
const (
	zoneUnknown int32 = iota // no request yet
	zoneNone                 // the client names no zone
	zoneMatch
	zoneMismatch
)

// countZoneMatch records, once per connection, whether a client that
// names a zone reached an agent of that zone.
func (s *Server) countZoneMatch(c *conn, clientID string) {
	if clientID == "" || c.zone.Load() != zoneUnknown {
		// Some clients send their first request (ApiVersions) without
		// a client id: decide on the first one that has it.
		return
	}
	p := parseClientID(clientID)
	st := zoneNone
	switch {
	case p.zone == "":
	case p.zone == s.cfg.Zone:
		st = zoneMatch
	default:
		st = zoneMismatch
	}
	if !c.zone.CompareAndSwap(zoneUnknown, st) {
		return
	}
	switch st {
	case zoneMatch:
		mZoneMatch.Inc()
		s.zoneConns[0].Add(1)
	case zoneMismatch:
		mZoneMismatch.Inc()
		s.zoneConns[1].Add(1)
	}
}

// uncountZone undoes countZoneMatch when the connection closes.
func (s *Server) uncountZone(c *conn) {
	switch c.zone.Swap(zoneNone) {
	case zoneMatch:
		mZoneMatch.Dec()
		s.zoneConns[0].Add(-1)
	case zoneMismatch:
		mZoneMismatch.Dec()
		s.zoneConns[1].Add(-1)
	}
}

// ZoneConnections returns this agent's open connections from clients
// that named a zone: those of its own zone, and the others.
func (s *Server) ZoneConnections() (match, mismatch int64) {
	return s.zoneConns[0].Load(), s.zoneConns[1].Load()
}

package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"sluice.dev/cache"
)

// peerView is the agent's view of the live agents of its zone that run a
// zone cache, for cache.Zone's ring. A goroutine reads meta's registry
// every second; Peers is called on the fetch path and never waits for
// meta.
type peerView struct {
	a     *Agent
	mu    sync.Mutex
	peers []cache.Peer // guarded by mu
	stop  chan struct{}
	done  chan struct{}
}

const peerViewEvery = time.Second

// list implements cache.ZoneConfig.Peers.
func (v *peerView) list() []cache.Peer {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.peers
}

// run refreshes the view until stop is closed.
func (v *peerView) run() {
	defer close(v.done)
	t := time.NewTicker(peerViewEvery)
	defer t.Stop()
	for {
		select {
		case <-v.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v.load(ctx)
		cancel()
	}
}

// load reads the registry; on an error the last view stays (a dead
// meta must not re-form the ring).
func (v *peerView) load(ctx context.Context) {
	agents, err := v.a.meta.Agents(ctx)
	if err != nil {
		return
	}
	var ps []cache.Peer
	for _, ag := range agents {
		if ag.Zone == v.a.cfg.Zone && ag.PeerAddr != "" {
			ps = append(ps, cache.Peer{ID: ag.ID, Addr: ag.PeerAddr, Zone: ag.Zone})
		}
	}
	v.mu.Lock()
	v.peers = ps
	v.mu.Unlock()
}

// startZone runs the zone cache when the agent has a peer listener.
func (a *Agent) startZone() error {
	if a.cfg.PeerListen == "" {
		return nil
	}
	a.peerView = &peerView{a: a, stop: make(chan struct{}), done: make(chan struct{})}
	z, err := cache.StartZone(cache.ZoneConfig{
		SelfID:    a.cfg.ID,
		Zone:      a.cfg.Zone,
		Secret:    a.cfg.PeerSecret,
		Listen:    a.cfg.PeerListen,
		Advertise: a.cfg.PeerAdvertise,
		Peers:     a.peerView.list,
		Logger:    a.log,
		TLS:       a.cfg.PeerTLS,
		ClientTLS: a.cfg.PeerClientTLS,

		MaxConnections: a.cfg.PeerMaxConnections,
	}, a.blocks)
	if err != nil {
		return fmt.Errorf("zone cache on --peer-addr %s: %w", a.cfg.PeerListen, err)
	}
	a.zone = z
	return nil
}

// startPeerView fills the view once (this agent is registered by now)
// and keeps it fresh.
func (a *Agent) startPeerView(ctx context.Context) {
	if a.peerView == nil {
		return
	}
	a.peerView.load(ctx)
	go a.peerView.run()
}

func (a *Agent) stopPeerView() {
	if a.peerView == nil {
		return
	}
	select {
	case <-a.peerView.stop:
	default:
		close(a.peerView.stop)
		<-a.peerView.done
	}
}

// ZoneStats returns the zone cache's counters (zero without one).
func (a *Agent) ZoneStats() cache.ZoneStats {
	if a.zone == nil {
		return cache.ZoneStats{}
	}
	return a.zone.Stats()
}

// ZoneConnections returns open client connections that named a zone:
// of this agent's zone, and of another.
func (a *Agent) ZoneConnections() (match, mismatch int64) { return a.server.ZoneConnections() }

// WriteMetrics writes this agent's own series in the Prometheus text
// format, labelled with its id and zone (several agents may share a
// process in the playground, and the package-level series are the
// process's).
func (a *Agent) WriteMetrics(w io.Writer) {
	l := fmt.Sprintf(`agent=%q,zone=%q`, a.cfg.ID, a.cfg.Zone)
	match, mismatch := a.ZoneConnections()
	fmt.Fprintf(w, "sluice_agent_zone_client_connections{%s,zone_match=\"true\"} %d\n", l, match)
	fmt.Fprintf(w, "sluice_agent_zone_client_connections{%s,zone_match=\"false\"} %d\n", l, mismatch)
	if a.zone == nil {
		return
	}
	st := a.zone.Stats()
	for _, m := range []struct {
		name string
		v    int64
	}{
		{`sluice_agent_cache_peer_bytes_total{%s,scope="same_zone"}`, st.SameZoneBytes},
		{`sluice_agent_cache_peer_bytes_total{%s,scope="cross_zone"}`, st.CrossZoneBytes},
		{`sluice_agent_cache_peer_gets_total{%s}`, st.PeerGets},
		{`sluice_agent_cache_peer_served_total{%s}`, st.ServedGets},
		{`sluice_agent_cache_pushes_total{%s}`, st.Pushes},
		{`sluice_agent_cache_push_dropped_total{%s}`, st.PushDropped},
		{`sluice_agent_cache_fallbacks_total{%s}`, st.Fallbacks},
		{`sluice_agent_cache_peer_unauthorized_total{%s}`, st.Unauthorized},
	} {
		fmt.Fprintf(w, m.name+" %d\n", l, m.v)
	}
}

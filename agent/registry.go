package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"sluice.dev/meta"
)

// register announces this agent to meta's registry and sets the node id
// meta assigned. It retries transient failures for up to timeout, so an
// agent started just before its meta still comes up; a refused key fails
// at once.
func (a *Agent) register(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 100 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reg, err := a.meta.RegisterAgent(rctx, a.info())
		cancel()
		if err == nil {
			a.server.SetNodeID(reg.NodeID)
			a.ttl = reg.TTL
			return nil
		}
		if errors.Is(err, meta.ErrUnauthenticated) || time.Now().Add(backoff).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("register with meta: %w", err)
		}
		a.log.Warn("register with meta failed, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

func (a *Agent) info() meta.AgentInfo {
	info := meta.AgentInfo{
		ID:    a.cfg.ID,
		Zone:  a.cfg.Zone,
		Group: a.cfg.Group,
		Roles: a.cfg.Roles,
		Addr:  a.server.AdvertisedAddr(),
	}
	if a.zone != nil {
		info.PeerAddr = a.zone.Addr()
	}
	// console (issue 16): traffic and bucket requests so far.
	info.Stats.ProducedBytes, info.Stats.FetchedBytes = a.server.Traffic()
	info.Stats.ObjectPuts = a.storeCounts.Puts.Load()
	info.Stats.ObjectGets = a.storeCounts.Gets.Load()
	info.Stats.BytesPut = a.storeCounts.BytesPut.Load()
	info.Stats.BytesGot = a.storeCounts.BytesGot.Load()
	return info
}

// heartbeat renews the registration several times per TTL until stop is
// closed. A meta that forgot the agent (restart, failover) re-registers
// it with the next beat; the node id stays, being derived from the id.
func (a *Agent) heartbeat(stop <-chan struct{}) {
	defer close(a.hbDone)
	failing := false
	for {
		every := a.ttl / 4
		if every <= 0 {
			every = 2 * time.Second
		}
		// Jitter keeps a fleet restarted together from beating in step.
		every = every*3/4 + rand.N(every/2+1)
		select {
		case <-stop:
			return
		case <-time.After(every):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reg, err := a.meta.RegisterAgent(ctx, a.info())
		cancel()
		switch {
		case err != nil && errors.Is(err, meta.ErrUnauthenticated):
			a.log.Error("meta refuses this agent's key; it serves nothing until given a valid --agent-key", "err", err)
			failing = true
		case err != nil:
			if !failing {
				a.log.Warn("heartbeat to meta failed", "err", err)
			}
			failing = true
		default:
			if failing {
				a.log.Info("heartbeat to meta works again", "node", reg.NodeID)
			}
			failing = false
			a.ttl = reg.TTL
			a.server.SetNodeID(reg.NodeID)
		}
	}
}

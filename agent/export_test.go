package agent

import (
	"context"
	"time"
)

// Crash stops the agent as a killed process stops: it does not leave the
// registry (meta expires it), answers nothing more and drains nothing.
// For tests of agents dying; its produce path must be idle.
func (a *Agent) Crash() {
	close(a.hbStop)
	<-a.hbDone
	a.stopPeerView()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.server.Stop(ctx)
	_ = a.closeZone()
	_ = a.pipeline.Close(ctx)
	a.blocks.Close()
	a.index.Close()
}

// ACLBindings is how many ACL bindings the agent's authorizer holds
// (server.Server.ACLBindings).
func (a *Agent) ACLBindings() int { return a.server.ACLBindings() }

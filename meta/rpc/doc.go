// Package rpc is the control plane's network API over gRPC: the server
// meta runs in front of its clusters (Server, over a Backend such as
// meta/host) and the client agents use (Client, a meta.Client), plus the
// key administration (AdminClient). The messages are in meta/metapb.
//
// # Connections
//
// Every connection is the agent's outbound one: the client never listens
// and never gives meta an address to dial; commit events reach the agent
// on the Watch stream it opened. Keepalive pings (client every 10 s)
// notice a dead connection in seconds.
//
// # Background jobs
//
// The Client is also a meta.JobsClient (meta/jobs.go): a jobs agent
// leases work and reports results over the same connection, key and
// retry rules. The server serves those calls when the cluster's
// meta.Client from Backend.Agent also implements meta.JobsClient and
// answers UNIMPLEMENTED otherwise (meta.ErrUnsupported on the client).
//
// # Authentication
//
// Each call carries "authorization: Bearer <token>" in its metadata: an
// agent key for Meta (it selects the cluster; Backend.Agent resolves it on
// every call) or the admin token for Admin. A Watch stream re-checks its
// key every second, so revoking a key ends its streams within about a
// second.
//
// # Errors and retries
//
// errors.go maps every sentinel of package meta to a wire code and back;
// see there. The client retries only what did not reach the leader
// (connection refused or broken, a standby's "not leader"), on the next
// replica, with jittered backoff, while the caller's ctx allows.
//
// # The zero-access boundary
//
// No message can carry record bytes (DESIGN.md invariant 5; the top of
// meta/metapb/meta.proto says how). Decoders check fixed-size ids, so a
// malformed request is refused as meta.ErrInvalidRequest, never a panic.
package rpc

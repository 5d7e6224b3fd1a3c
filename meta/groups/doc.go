// Package groups is the classic consumer group coordinator (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup): membership, rebalances, their
// timers, and the limits on what clients can make meta keep. Its state is
// in memory only; the committed offsets, which are durable, belong to
// meta/controller, which the coordinator reads through Offsets. The
// states, timers and limits are described at the top of groups.go.
//
// # Files
//
//	groups.go  Coordinator, Config, Offsets; the group state machine
package groups

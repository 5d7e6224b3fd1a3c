// Package groups is the consumer group coordinator: the classic protocol
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and the KIP-848 consumer
// protocol (ConsumerGroupHeartbeat, ConsumerGroupDescribe): membership,
// rebalances and assignments, their timers, and the limits on what
// clients can make meta keep. Its state is in memory only; the committed
// offsets, which are durable, belong to meta/controller, which the
// coordinator reads through Offsets. The states, timers and limits are
// described at the top of groups.go and consumer.go.
//
// # Files
//
//	groups.go    Coordinator, Config, Offsets; the classic group state machine
//	consumer.go  KIP-848 consumer groups: epochs, reconciliation, timers
//	assign.go    the server-side assignors, uniform and range
//	mixed.go     classic and consumer members in one group: upgrade, downgrade
//	txncommit.go TxnOffsetCommit's member checks (KIP-447 zombie fencing)
package groups

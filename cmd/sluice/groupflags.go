package main

import (
	"flag"
	"fmt"
	"time"

	"sluice.dev/meta/groups"
)

// groupFlags are the consumer group limits of `sluice meta` and the
// playground (groups.Config; issue 11): what clients can make meta
// keep. Defaults are generous; docs/security.md says why each exists.
type groupFlags struct {
	maxGroups, maxMembers int
	offsetsRetention      time.Duration
	// KIP-848 consumer groups.
	consumerSession, consumerHeartbeat time.Duration
	// Mixed groups: classic and consumer members in one group.
	migrationPolicy string
	// Classic groups.
	initialRebalanceDelay time.Duration
}

// register defines the flags on fs. initialDelay is the default of
// --group-initial-rebalance-delay: Kafka's 3 s for `sluice meta`, 0 for
// the playground (as Kafka's own development configuration sets it).
func (g *groupFlags) register(fs *flag.FlagSet, initialDelay time.Duration) {
	fs.IntVar(&g.maxGroups, "max-groups", 100_000, "consumer groups per virtual cluster (with members, or only committed offsets); a new one past it gets POLICY_VIOLATION")
	fs.IntVar(&g.maxMembers, "max-members-per-group", 10_000, "members (and member ids not yet joined) per consumer group; a new one past it gets GROUP_MAX_SIZE_REACHED")
	fs.DurationVar(&g.offsetsRetention, "offsets-retention", 7*24*time.Hour, "committed offsets of a group without members are deleted this long after the later of their commit and the last member leaving (Kafka's offsets.retention.minutes)")
	// KIP-848 consumer groups.
	fs.DurationVar(&g.consumerSession, "group-consumer-session-timeout", 45*time.Second, "a KIP-848 consumer group member that has not heartbeaten for this long is removed and its partitions reassigned (Kafka's group.consumer.session.timeout.ms)")
	fs.DurationVar(&g.consumerHeartbeat, "group-consumer-heartbeat-interval", 5*time.Second, "how often KIP-848 consumer group members heartbeat; partitions move between members at heartbeats (Kafka's group.consumer.heartbeat.interval.ms)")
	// Classic groups.
	fs.DurationVar(&g.initialRebalanceDelay, "group-initial-rebalance-delay", initialDelay, "how long the first rebalance of a classic consumer group without members waits for more members, extended by as much for each that joins, up to the rebalance timeout; consumers started together then share one generation (Kafka's group.initial.rebalance.delay.ms; 0 completes at once)")
	// Mixed groups: classic and consumer members in one group.
	fs.StringVar(&g.migrationPolicy, "group-consumer-migration-policy", groups.MigrationBidirectional, "online conversion between classic and KIP-848 consumer groups with members: bidirectional, upgrade (classic to consumer only), downgrade (back to classic only) or disabled (Kafka's group.consumer.migration.policy)")
}

func (g *groupFlags) validate() error {
	switch {
	case g.maxGroups < 1:
		return fmt.Errorf("--max-groups must be at least 1, got %d", g.maxGroups)
	case g.maxMembers < 1:
		return fmt.Errorf("--max-members-per-group must be at least 1, got %d", g.maxMembers)
	case g.offsetsRetention < time.Minute:
		return fmt.Errorf("--offsets-retention must be at least 1m, got %s", g.offsetsRetention)
	case g.consumerSession < time.Second || g.consumerSession > 30*time.Minute:
		return fmt.Errorf("--group-consumer-session-timeout must be between 1s and 30m, got %s", g.consumerSession)
	case g.consumerHeartbeat < 10*time.Millisecond || g.consumerHeartbeat >= g.consumerSession:
		return fmt.Errorf("--group-consumer-heartbeat-interval must be at least 10ms and below --group-consumer-session-timeout (%s), got %s", g.consumerSession, g.consumerHeartbeat)
	case g.initialRebalanceDelay < 0 || g.initialRebalanceDelay > 30*time.Minute:
		return fmt.Errorf("--group-initial-rebalance-delay must be between 0 and 30m, got %s", g.initialRebalanceDelay)
	case g.migrationPolicy != groups.MigrationBidirectional && g.migrationPolicy != groups.MigrationUpgrade &&
		g.migrationPolicy != groups.MigrationDowngrade && g.migrationPolicy != groups.MigrationDisabled:
		return fmt.Errorf("--group-consumer-migration-policy must be bidirectional, upgrade, downgrade or disabled, got %q", g.migrationPolicy)
	}
	return nil
}

func (g *groupFlags) config() groups.Config {
	return groups.Config{MaxGroups: g.maxGroups, MaxMembersPerGroup: g.maxMembers, OffsetsRetention: g.offsetsRetention,
		ConsumerSessionTimeout: g.consumerSession, ConsumerHeartbeatInterval: g.consumerHeartbeat,
		MigrationPolicy: g.migrationPolicy, InitialRebalanceDelay: g.initialRebalanceDelay}
}

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
}

func (g *groupFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&g.maxGroups, "max-groups", 100_000, "consumer groups per virtual cluster (with members, or only committed offsets); a new one past it gets POLICY_VIOLATION")
	fs.IntVar(&g.maxMembers, "max-members-per-group", 10_000, "members (and member ids not yet joined) per consumer group; a new one past it gets GROUP_MAX_SIZE_REACHED")
	fs.DurationVar(&g.offsetsRetention, "offsets-retention", 7*24*time.Hour, "committed offsets of a group without members are deleted this long after the later of their commit and the last member leaving (Kafka's offsets.retention.minutes)")
}

func (g *groupFlags) validate() error {
	switch {
	case g.maxGroups < 1:
		return fmt.Errorf("--max-groups must be at least 1, got %d", g.maxGroups)
	case g.maxMembers < 1:
		return fmt.Errorf("--max-members-per-group must be at least 1, got %d", g.maxMembers)
	case g.offsetsRetention < time.Minute:
		return fmt.Errorf("--offsets-retention must be at least 1m, got %s", g.offsetsRetention)
	}
	return nil
}

func (g *groupFlags) config() groups.Config {
	return groups.Config{MaxGroups: g.maxGroups, MaxMembersPerGroup: g.maxMembers, OffsetsRetention: g.offsetsRetention}
}

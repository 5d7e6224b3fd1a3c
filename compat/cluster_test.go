// Package compat_test drives real third-party Kafka clients (IBM/sarama,
// segmentio/kafka-go and kafkajs) against an in-process agent and asserts
// exact outcomes: every compression codec round trip, a two-member
// consumer group with a member leaving and the rest resuming from
// committed offsets, and topic admin. See COMPATIBILITY.md.
package compat_test

import (
	"fmt"
	"sort"
	"testing"

	"sluice.dev/agent"
	"sluice.dev/internal/testcluster"
	"sluice.dev/meta/controller"
)

// cluster is a playground in the test process (internal/testcluster):
// embedded meta, a local bucket and one agent on a free port.
type cluster struct{ *testcluster.Cluster }

// startCluster starts the cluster; opts adjust the agent's configuration
// (SASL, issue 14).
func startCluster(t testing.TB, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	return &cluster{testcluster.Start(t, opts...)}
}

// startClusterWithMeta is startCluster with meta's configuration (its
// directory and logger are filled in): KIP-848 tests shorten the
// consumer group heartbeat interval.
func startClusterWithMeta(t testing.TB, mcfg controller.Config, opts ...func(*agent.Config)) *cluster {
	t.Helper()
	return &cluster{testcluster.StartWithMeta(t, mcfg, opts...)}
}

func (c *cluster) addr() string { return c.Addr() }

// rec is one consumed record, client-neutral.
type rec struct {
	partition int32
	offset    int64
	key       string
	value     string
}

// keyOf and valueOf make record i of a topic fully determined by (topic,
// i), so consumers check every byte without keeping what was sent. Values
// are compressible and some are large, so codecs really compress.
func keyOf(topic string, i int) string { return fmt.Sprintf("%s-k%06d", topic, i) }

func valueOf(topic string, i int) string {
	n := 20 + (i*37)%3000
	b := make([]byte, 0, n)
	for len(b) < n {
		b = fmt.Appendf(b, "%s/%d;", topic, i)
	}
	return string(b[:n])
}

// checkExact asserts that got holds exactly records 0..n-1 of topic, once
// each, with matching values, that every partition's offsets are dense
// from 0, and that within each partition records keep produce order
// (indexes increase with offsets).
func checkExact(t *testing.T, topic string, n int, got []rec) {
	t.Helper()
	if len(got) != n {
		t.Errorf("%s: consumed %d records, want %d", topic, len(got), n)
	}
	seen := make(map[string]bool, n)
	byPart := map[int32][]rec{}
	for _, r := range got {
		if seen[r.key] {
			t.Errorf("%s: key %q consumed twice", topic, r.key)
		}
		seen[r.key] = true
		byPart[r.partition] = append(byPart[r.partition], r)
	}
	for i := 0; i < n; i++ {
		if !seen[keyOf(topic, i)] {
			t.Errorf("%s: key %q missing", topic, keyOf(topic, i))
		}
	}
	idx := make(map[string]int, n)
	for i := 0; i < n; i++ {
		idx[keyOf(topic, i)] = i
	}
	for p, rs := range byPart {
		sort.Slice(rs, func(a, b int) bool { return rs[a].offset < rs[b].offset })
		for j, r := range rs {
			if r.offset != int64(j) {
				t.Errorf("%s[%d]: offset %d at position %d, want dense offsets from 0", topic, p, r.offset, j)
				break
			}
			i, ok := idx[r.key]
			if !ok {
				t.Errorf("%s[%d]@%d: unexpected key %q", topic, p, r.offset, r.key)
				continue
			}
			if r.value != valueOf(topic, i) {
				t.Errorf("%s[%d]@%d: value of %q differs (len %d, want %d)", topic, p, r.offset, r.key, len(r.value), len(valueOf(topic, i)))
			}
			if j > 0 {
				if prev, ok := idx[rs[j-1].key]; ok && prev >= i {
					t.Errorf("%s[%d]: %q at offset %d after %q: produce order lost", topic, p, r.key, r.offset, rs[j-1].key)
				}
			}
		}
	}
}

// checkGroup asserts that the union of what members consumed covers keys
// 0..n-1 of topic with nothing skipped, and returns how many deliveries
// were duplicates (at-least-once re-delivery of uncommitted records).
func checkGroup(t *testing.T, topic string, n int, all []rec) (dups int) {
	t.Helper()
	count := map[string]int{}
	for _, r := range all {
		count[r.key]++
		if r.value != "" {
			var i int
			if _, err := fmt.Sscanf(r.key[len(topic)+2:], "%d", &i); err == nil && r.value != valueOf(topic, i) {
				t.Errorf("%s: value of %q differs", topic, r.key)
			}
		}
	}
	for i := 0; i < n; i++ {
		c := count[keyOf(topic, i)]
		if c == 0 {
			t.Errorf("%s: key %q skipped", topic, keyOf(topic, i))
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if len(count) != n {
		t.Errorf("%s: %d distinct keys consumed, want %d", topic, len(count), n)
	}
	return dups
}

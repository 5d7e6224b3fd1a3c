package compat_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sluice.dev/agent"
)

// runKafkaJS runs compat/kafkajs/compat.js in one mode against a fresh
// agent; the script asserts and prints PASS.
func runKafkaJS(t *testing.T, mode string) {
	t.Helper()
	runKafkaJSOn(t, startCluster, mode, nil)
}

// lookKafkaJS returns node's path, failing the test when node or the
// kafkajs package is missing.
func lookKafkaJS(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: kafkajs tests need Node.js 20")
	}
	if _, err := os.Stat(filepath.Join("kafkajs", "node_modules", "kafkajs")); err != nil {
		t.Fatal("kafkajs is not installed: run `npm ci --prefix compat/kafkajs` (.ci/run does)")
	}
	return node
}

// runKafkaJSOn runs compat.js on a cluster start gives, with env added.
func runKafkaJSOn(t *testing.T, start func(testing.TB, ...func(*agent.Config)) *cluster, mode string, env []string) {
	t.Helper()
	node := lookKafkaJS(t)
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("kafkajs", "compat.js"), c.addr(), mode)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("kafkajs %s:\n%s", mode, out)
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("kafkajs %s failed: %v", mode, err)
	}
}

// TestKafkaJSCodecs: kafkajs 2.2.4 produces (idempotent, acks=-1) with none,
// gzip, snappy (kafkajs-snappy) and lz4 (kafkajs-lz4) and consumes back
// exactly; zstd has no kafkajs codec and the producer must refuse it.
func TestKafkaJSCodecs(t *testing.T) { runKafkaJS(t, "codecs") }

// TestKafkaJSConsumerGroup: two kafkajs members share a 4-partition topic;
// one leaves, the other takes over from committed offsets; the committed
// offsets equal the high watermarks and a new member reads only new records.
func TestKafkaJSConsumerGroup(t *testing.T) { runKafkaJS(t, "group") }

// TestKafkaJSAdmin: create, list, metadata, describe configs, describe
// cluster and delete a topic with the kafkajs admin client.
func TestKafkaJSAdmin(t *testing.T) { runKafkaJS(t, "admin") }

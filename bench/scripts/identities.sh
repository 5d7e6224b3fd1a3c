#!/usr/bin/env bash
# Produce latency of three Kafka clients against a fresh playground, for
# each --broker-identities in IDS and each --max-early-seals-per-second in
# EARLY (BENCHMARKS.md, "Produce latency with idempotent clients"):
#
#   franz    sluice bench produce: franz-go, acks=all, idempotent (five
#            requests in flight per broker), linger 5 ms
#   rdkafka  bench/scripts/rdkafka_latency.py: confluent-kafka-python
#            (librdkafka 2.0.2), enable.idempotence=true, linger.ms=5
#   sarama   bench/scripts/sarama_latency: sarama's defaults, flush 5 ms
#   sarama-idem  the same, idempotent: acks=all and one request in flight
#            per broker (sarama allows no more with idempotence)
#
# Compaction is off (--compaction-interval 24h), as in make compare: its
# rewrites would compete with produce for the two cores.
#
# 1 KiB records into a fresh 16-partition topic at RATE records a second
# for DUR. After each client it prints the segments sealed a second by
# reason (interval, size, client_blocked, client_blocked_budget): each is
# one object PUT, and the connections the agent accepted.
#
# Usage: bench/scripts/identities.sh   (env: BIN, IDS, EARLY, RATE, DUR,
# CLIENTS, SHARE=1 for --broker-identities-share-port, PORT, HTTP)
set -euo pipefail
BIN=${BIN:-./bin/sluice}
IDS=${IDS:-"1 8"}
EARLY=${EARLY:-8}
RATE=${RATE:-5000}
DUR=${DUR:-15}
CLIENTS=${CLIENTS:-"franz rdkafka sarama"}
PORT=${PORT:-19192}
HTTP=${HTTP:-18192}
SHARE=${SHARE:-0}
SARAMA=${SARAMA:-$(mktemp -d)/sarama_latency}
[ -x "$SARAMA" ] || go build -o "$SARAMA" ./bench/scripts/sarama_latency

# seals prints the segments sealed so far by reason, and the Kafka
# connections opened so far (a client opens one per broker it produces to).
seals() {
	curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^sluice_segments_sealed_by_total/ {
		match($0, /reason="[a-z_]+"/); r = substr($0, RSTART+8, RLENGTH-9); n[r] = $2 }
		/^sluice_kafka_connections_opened_total/ { n["conns"] = $2 }
		END { for (r in n) printf "%s=%s ", r, n[r] }'
}

for ids in $IDS; do
	for early in $EARLY; do
		# A playground still holding the port (one that has not exited)
		# would be measured in place of the fresh one.
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
			echo "port $PORT is in use: stop what listens there first" >&2
			exit 1
		fi
		dir=$(mktemp -d)
		share=()
		[ "$SHARE" = 1 ] && share=(--broker-identities-share-port)
		"$BIN" playground --data-dir "$dir" --kafka-addr "127.0.0.1:$PORT" --http-addr "127.0.0.1:$HTTP" \
			--broker-identities "$ids" "${share[@]}" --max-early-seals-per-second "$early" \
			--compaction-interval 24h >"$dir/out" 2>"$dir/log" &
		pid=$!
		for _ in $(seq 100); do grep -q bootstrap "$dir/out" 2>/dev/null && break; sleep 0.1; done
		boot=127.0.0.1:$PORT
		for c in $CLIENTS; do
			before=$(seals)
			t0=$(date +%s.%N)
			case $c in
			franz) "$BIN" bench produce --brokers "$boot" --topic "f$RANDOM" --partitions 16 --record-size 1024 \
				--rate "$RATE" --duration "${DUR}s" --linger 5ms --json 2>/dev/null | tail -1 | python3 -c '
import json, sys
p = json.load(sys.stdin)["produce"]; l = p["latency"]
print("franz rate=%d n=%d errors=%d p50_ms=%.0f p99_ms=%.0f max_ms=%.0f" % (p["records_per_sec"], l["count"], p["errors"], l["p50_ns"]/1e6, l["p99_ns"]/1e6, l["max_ns"]/1e6))'  ;;
			rdkafka) /usr/bin/python3 bench/scripts/rdkafka_latency.py "$boot" --rate "$RATE" --duration "$DUR" ;;
			sarama) "$SARAMA" -brokers "$boot" -rate "$RATE" -duration "${DUR}s" ;;
			sarama-idem) "$SARAMA" -brokers "$boot" -rate "$RATE" -duration "${DUR}s" -idempotent ;;
			esac
			t1=$(date +%s.%N)
			echo "  [ids=$ids early=$early client=$c secs=$(echo "$t1 - $t0" | bc) seals before: $before after: $(seals)]"
		done
		kill "$pid"
		wait "$pid" || true
		rm -rf "$dir"
	done
done

#!/usr/bin/env bash
# Agent CPU per GiB of peak produce, plaintext listener against TLS
# (issue 14; BENCHMARKS.md, "TLS on the Kafka listener"): PAIRS pairs of
# runs, alternating, each on a fresh playground, `sluice bench produce
# --rate 0` for DUR, the agent's CPU seconds and bytes from /metrics.
# Prints one line per run and the sums at the end.
#
#   bench/scripts/tls-cpu.sh [PAIRS=4] [DUR=15s]
set -euo pipefail
PAIRS=${1:-4}
DUR=${2:-15s}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
go build -o "$W/sluice" ./cmd/sluice
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/key.pem" \
	-out "$W/cert.pem" -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null

run() { # kind [playground flags...] -- [bench flags...]
	local kind=$1 n pid boot http
	shift
	local pflags=() bflags=()
	while [ "$1" != "--" ]; do pflags+=("$1"); shift; done
	shift
	bflags=("$@")
	rm -rf "$W/data"
	# Compaction off, as in make compare: its rewrites would share the CPU.
	"$W/sluice" playground --data-dir "$W/data" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
		--compaction-interval 24h "${pflags[@]}" >"$W/pg.out" 2>"$W/pg.err" &
	pid=$!
	for n in $(seq 200); do grep -q '^http: ' "$W/pg.out" 2>/dev/null && break; sleep 0.1; done
	boot=$(awk '/^bootstrap: /{print $2}' "$W/pg.out")
	http=$(awk '/^http: /{print $2}' "$W/pg.out")
	"$W/sluice" bench produce --brokers "$boot" --rate 0 --duration "$DUR" --json \
		--agent-metrics "http://$http/metrics" ${bflags[@]+"${bflags[@]}"} 2>/dev/null >"$W/res.json"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	python3 -c '
import json, sys
d = json.load(open(sys.argv[2])); a = d["agent"]
print("%-5s %7.1f MiB/s %7.2f cpu-s %6.3f GiB %6.2f cpu-s/GiB" % (sys.argv[1], d["produce"]["mib_per_sec"], a["cpu_seconds"], a["gib"], a["cpu_seconds_per_gib"]))
' "$kind" "$W/res.json" | tee -a "$W/all.txt"
}

for _ in $(seq "$PAIRS"); do
	run plain --
	run tls --kafka-tls-cert "$W/cert.pem" --kafka-tls-key "$W/key.pem" -- --tls-ca "$W/cert.pem"
done
awk '{cpu[$1]+=$4; gib[$1]+=$6} END {for (k in cpu) printf "%-5s sum %.1f cpu-s / %.2f GiB = %.2f cpu-s/GiB\n", k, cpu[k], gib[k], cpu[k]/gib[k]}' "$W/all.txt"

#!/usr/bin/env bash
# Agent CPU per GiB at the cache-full produce peak in the production
# shape: `sluice meta` and `sluice agent` as separate processes, the
# agent's bucket a local directory (file), or versitygw over http or
# https on this machine (BENCHMARKS.md, "Where the rest of the agent's
# CPU goes"). For each scheme in SCHEMES: a fresh meta, bucket and agent
# (--cache-bytes CACHE, 250 ms flush), `sluice bench produce --rate 0`
# for 18 s (16 partitions, 1 KiB, acks=all, idempotent, linger 5 ms), and
# between seconds 6 and 16: the agent's and meta's process CPU per GiB
# produced, MiB/s, the agent's context switches a second, and the thread
# that woke most (the Go runtime's sysmon) with its CPU. PERF=1 also
# records `perf record -g` of the agent over those 10 s into
# $DIR/perf-<scheme>.data.
#
# versitygw runs on the same cores (it has to: no other machine), so the
# S3 schemes run at lower throughput; on loopback the sender also pays
# part of the receiver's TCP work.
#
# Usage: bench/scripts/upload-cpu.sh   (env: BIN, SCHEMES, CACHE, DIR,
# PERF, KEEP=1 to keep each run's data; needs versitygw on PATH or in $(go env GOPATH)/bin, and openssl
# for https)
set -euo pipefail
BIN=${BIN:-./bin/sluice}
SCHEMES=${SCHEMES:-"file http https"}
CACHE=${CACHE:-268435456}
DIR=${DIR:-$(mktemp -d)}
PERF=${PERF:-0}
VGW=$(command -v versitygw || echo "$(go env GOPATH)/bin/versitygw")
META=127.0.0.1:17070
S3PORT=17090
export SLUICE_ADMIN_TOKEN=upload-cpu-admin-token
export AWS_ACCESS_KEY_ID=UPLOADCPUACCESS AWS_SECRET_ACCESS_KEY=upload-cpu-secret
# Only with https: the SDK refuses to start when the bundle is missing.
[[ " $SCHEMES " == *" https "* ]] && export AWS_CA_BUNDLE=$DIR/ca.pem

if [[ " $SCHEMES " == *" https "* && ! -f $DIR/leaf.pem ]]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/ca.key" \
		-out "$DIR/ca.pem" -days 2 -subj /CN=upload-cpu-ca 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/leaf.key" \
		-out "$DIR/leaf.csr" -subj /CN=127.0.0.1 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\n' >"$DIR/ext"
	openssl x509 -req -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
		-out "$DIR/leaf.pem" -days 2 -extfile "$DIR/ext" 2>/dev/null
fi

# metric NAME URL prints a metric's value.
metric() { curl -s "$2/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# threads PID prints "tid voluntary involuntary cpu-ticks" per thread.
threads() {
	for t in /proc/"$1"/task/*; do
		echo "$(basename "$t") $(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{n=$2} END{print v, n}' "$t/status") $(awk '{print $14+$15}' "$t/stat")"
	done | sort
}

for scheme in $SCHEMES; do
	run=$DIR/run-$scheme
	rm -rf "$run" && mkdir -p "$run/vgw/sluice" "$run/bucket"
	pids=()
	if [ "$scheme" = file ]; then
		bucket=file://$run/bucket
	else
		tls=()
		[ "$scheme" = https ] && tls=(--cert "$DIR/leaf.pem" --key "$DIR/leaf.key")
		HOME=$run "$VGW" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" --region us-east-1 \
			--port 127.0.0.1:$S3PORT --quiet --keep-alive "${tls[@]}" posix "$run/vgw" >"$run/vgw.log" 2>&1 &
		pids+=($!)
		for _ in $(seq 50); do curl -sk -o /dev/null "$scheme://127.0.0.1:$S3PORT/" && break; sleep 0.1; done
		bucket="s3://sluice/p?region=us-east-1&endpoint=$scheme://127.0.0.1:$S3PORT&path_style=true"
	fi
	"$BIN" meta --listen $META --store "$run/meta" --http-addr 127.0.0.1:0 >"$run/meta.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do grep -q '^http:' "$run/meta.log" && break; sleep 0.2; done
	mh=http://$(awk '/^http:/{print $2}' "$run/meta.log")
	key=$("$BIN" meta keys create --meta-addr $META --cluster upload-cpu)
	SLUICE_AGENT_KEY=$key "$BIN" agent --meta-addr $META --bucket "$bucket" --agent-id upload-cpu \
		--kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 --log-level warn --flush-interval 250ms \
		--cache-bytes "$CACHE" --compaction-interval 24h >"$run/agent.log" 2>&1 &
	ap=$!
	pids+=($ap)
	for _ in $(seq 50); do grep -q bootstrap "$run/agent.log" && break; sleep 0.2; done
	grep -q bootstrap "$run/agent.log" || { echo "agent did not start:"; head -5 "$run/agent.log"; kill "${pids[@]}"; exit 1; }
	ah=http://$(awk '/^http:/{print $2}' "$run/agent.log")
	boot=$(awk '/^bootstrap:/{print $2}' "$run/agent.log")
	"$BIN" bench produce --brokers "$boot" --topic t1 --partitions 16 --record-size 1024 --acks all \
		--linger 5ms --compression none --rate 0 --duration 18s >"$run/bench" 2>&1 &
	bp=$!
	sleep 6
	c0=$(metric process_cpu_seconds_total "$ah") b0=$(metric sluice_produce_bytes_total "$ah") m0=$(metric process_cpu_seconds_total "$mh")
	threads $ap >"$run/threads0"
	if [ "$PERF" = 1 ]; then
		perf record -q -g -p $ap -o "$DIR/perf-$scheme.data" -- sleep 10 >/dev/null 2>&1
	else
		sleep 10
	fi
	c1=$(metric process_cpu_seconds_total "$ah") b1=$(metric sluice_produce_bytes_total "$ah") m1=$(metric process_cpu_seconds_total "$mh")
	threads $ap >"$run/threads1"
	wait $bp || true
	sw=$(join "$run/threads0" "$run/threads1" | awk '{v += $5-$2; n += $6-$3; if ($5-$2 > mv) {mv = $5-$2; mc = ($7-$4)/100}}
		END {printf "context switches/s %.0f voluntary %.0f involuntary; sysmon %.0f wakeups/s, %.2f s CPU", v/10, n/10, mv/10, mc}')
	awk -v s="$scheme" -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v m0="$m0" -v m1="$m1" -v sw="$sw" 'BEGIN {
		g = (b1-b0)/1073741824
		printf "%-5s agent %.2f CPU-s/GiB (%.2f s), meta %.2f, %.1f MiB/s; %s\n", s, (c1-c0)/g, c1-c0, (m1-m0)/g, g*1024/10, sw }'
	grep -iE 'level=(error|warn)' "$run/agent.log" | head -3 || true
	kill "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
	# A run writes gigabytes; keep its logs only (KEEP=1 keeps it all).
	[ "${KEEP:-0}" = 1 ] || rm -rf "$run/vgw" "$run/bucket" "$run/meta"
done

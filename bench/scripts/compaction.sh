#!/usr/bin/env bash
# Measures compaction's targets (issue 12, docs/compaction.md) on a
# playground with the default compaction settings (min age 30 s, max wait
# 2 min, target 80 MiB, large 16 MiB), agents polling every 10 s:
#
#   1. share of the bytes older than 10 minutes that live in objects of at
#      least 16 MiB (or in one object per partition), after DUR of produce;
#   2. write amplification: bytes compaction wrote / bytes the agent
#      uploaded as segments;
#   3. a cold catch-up read (playground restarted, empty cache) of the
#      whole topic after IDLE (default 10m) without produce, so that all of
#      it is older than 10 minutes as in 1: object store GETs per GiB read
#      (the share of 1 is measured again at that point);
#   5. compaction lag of a compacted topic at the defaults (PARTS=clean):
#      keyed records (KEYS keys) at RATE for CLEAN_DUR; the p99 and max of
#      sluice_meta_key_cleaning_lag_seconds, the time from the commit of
#      the oldest dirty data a cleaning took to the commit of its result;
#   4. peak produce throughput with compaction running on a backlog, and
#      with compaction off, each for TPUT_DUR, alternating for ROUNDS
#      rounds (timings on a shared machine are noisy: compare the pairs);
#      PARTS=split does the same with the roles in separate processes, as
#      a deployment with jobs agents runs them: sluice meta, an agent with
#      the produce and consume roles, and (compaction on) an agent with the
#      jobs role alone at the lowest CPU priority (nice 19) on the same
#      machine.
#
# Usage: bench/scripts/compaction.sh   (env: BIN, DUR, RATE, IDLE, TPUT_DUR, ROUNDS, OUT;
# PARTS=steady, clean, tput or split runs only those parts; default the first three)
# TPUT_ON_FLAGS adds playground flags to part 4's runs with compaction on
# (for example --jobs-max-bytes-per-second 33554432)
set -euo pipefail
BIN=${BIN:-./bin/sluice}
DUR=${DUR:-13m}
RATE=${RATE:-2000} # 1 KiB records: about 2 MiB/s
TPUT_DUR=${TPUT_DUR:-60s}
ROUNDS=${ROUNDS:-3}
IDLE=${IDLE:-10m}
CLEAN_DUR=${CLEAN_DUR:-5m}
KEYS=${KEYS:-10000}
OUT=${OUT:-$(mktemp -d)}
PARTS=${PARTS:-steady,clean,tput}
mkdir -p "$OUT"
echo "compaction figures in $OUT"

pg_pid=""
start_pg() { # data-dir, extra flags...
  local dir=$1; shift
  "$BIN" playground --data-dir "$dir" --kafka-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 "$@" >"$dir.log" 2>&1 &
  pg_pid=$!
  for _ in $(seq 1 100); do
    BOOT=$(awk '/^bootstrap:/{print $2; exit}' "$dir.log")
    HTTP=$(awk '/^http:/{print $2; exit}' "$dir.log")
    [ -n "$BOOT" ] && [ -n "$HTTP" ] && return 0
    sleep 0.1
  done
  echo "playground did not start:"; cat "$dir.log"; exit 1
}
stop_pg() { kill -TERM "$pg_pid"; wait "$pg_pid" || true; }
metric() { curl -s "http://$HTTP/metrics" | awk -v m="$1" '$1==m{print $2}'; }

# 1-3: a steady producer for DUR, then the figures, then a cold read.
if [[ $PARTS == *steady* ]]; then
start_pg "$OUT/steady" --compaction-interval 10s --gc-interval 10s
"$BIN" bench produce --brokers "$BOOT" --topic steady --partitions 16 --rate "$RATE" --duration "$DUR" --json >"$OUT/produce.json"
curl -s "http://$HTTP/jobs?age=10m" >"$OUT/jobs.json"
ingested=$(metric sluice_segment_bytes_sum)
written=$(metric sluice_meta_compaction_written_bytes_total)
echo "segments uploaded: $ingested bytes; compaction wrote: $written bytes" | tee "$OUT/amplification.txt"
awk -v w="$written" -v i="$ingested" 'BEGIN{printf "write amplification of rewriting: %.3f (bytes rewritten per byte ingested)\n", w/i}' | tee -a "$OUT/amplification.txt"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); o=d["older"]["default"]; print("older than %s: %d bytes, %.4f in objects >= 16 MiB" % (o["age"], o["older_bytes"], o["share_in_large_objects"])); print(json.dumps(d["clusters"]["default"]))' "$OUT/jobs.json" | tee "$OUT/age.txt"
echo "no produce for $IDLE: compaction finishes the tail"
sleep "$IDLE"
curl -s "http://$HTTP/jobs?age=10m" >"$OUT/jobs-idle.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); o=d["older"]["default"]; print("after idle, older than %s: %d bytes, %.4f in objects >= 16 MiB" % (o["age"], o["older_bytes"], o["share_in_large_objects"])); print(json.dumps(d["clusters"]["default"]))' "$OUT/jobs-idle.json" | tee -a "$OUT/age.txt"
stop_pg
start_pg "$OUT/steady" --compaction-interval 1h --gc-interval 1h # cold cache, no jobs during the read
"$BIN" bench consume --brokers "$BOOT" --topic steady --from earliest --duration 120s --agent-metrics "http://$HTTP/metrics" >"$OUT/catchup.txt"
cat "$OUT/catchup.txt"
stop_pg
fi

# 5: compaction lag of a compacted topic, every setting at its default.
if [[ $PARTS == *clean* ]]; then
start_pg "$OUT/clean"
"$BIN" bench produce --brokers "$BOOT" --topic keyed --partitions 16 --rate "$RATE" --duration "$CLEAN_DUR" \
  --keys "$KEYS" --topic-config cleanup.policy=compact --json >"$OUT/clean-produce.json"
curl -s "http://$HTTP/metrics" | grep '^sluice_meta_key_cleaning_lag_seconds' >"$OUT/clean-lag.prom"
python3 - "$OUT/clean-lag.prom" <<'PY' | tee "$OUT/clean-lag.txt"
import re, sys
buckets, count = [], 0
for line in open(sys.argv[1]):
    m = re.match(r'\S+_bucket\{vmrange="([^.]+\.[^.]+)\.\.\.(\S+)"\} (\S+)', line)
    if m:
        buckets.append((float(m.group(2)), float(m.group(3))))
    elif line.startswith("sluice_meta_key_cleaning_lag_seconds_count"):
        count = float(line.split()[1])
buckets.sort()
acc, p99, top = 0, None, buckets[-1][0] if buckets else 0
for upper, n in buckets:
    acc += n
    if p99 is None and acc >= 0.99 * count:
        p99 = upper
print("key cleanings: %d; compaction lag p99 <= %.1f s, max <= %.1f s (upper bounds of the histogram's buckets)" % (count, p99 or 0, top))
PY
stop_pg
fi

# 4: peak produce with compaction busy on the backlog it makes, and without,
# alternating. Each run has a fresh playground and topic.
if [[ $PARTS == *tput* ]]; then
for r in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    if [ $mode = on ]; then
      # shellcheck disable=SC2086 # TPUT_ON_FLAGS is a list of flags
      start_pg "$OUT/tput-$mode-$r" --compaction-interval 1s --gc-interval 1s --compaction-min-age 1s --compaction-max-wait 2s ${TPUT_ON_FLAGS:-}
    else
      start_pg "$OUT/tput-$mode-$r" --compaction-interval 1h --gc-interval 1h
    fi
    "$BIN" bench produce --brokers "$BOOT" --topic tput --partitions 16 --duration "$TPUT_DUR" --agent-metrics "http://$HTTP/metrics" >"$OUT/tput-$mode-$r.txt"
    echo "compaction jobs during the run: $(metric 'sluice_jobs_runs_total{kind="compact"}'); compaction wrote $(metric sluice_meta_compaction_written_bytes_total) bytes" >>"$OUT/tput-$mode-$r.txt"
    stop_pg
    # A run at full speed leaves 10-25 GB in its bucket: drop it now.
    rm -rf "${OUT:?}/tput-$mode-$r"
    echo "round $r compaction $mode: $(awk '$1=="produce"{print $6" MiB/s"}' "$OUT/tput-$mode-$r.txt"); $(tail -1 "$OUT/tput-$mode-$r.txt")" | tee -a "$OUT/tput.txt"
  done
done
fi

# 4b: the same with the jobs role in its own process at nice 19.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -sf "http://$1/metrics" >/dev/null && return 0; sleep 0.1; done; echo "no $1"; exit 1; }
if [[ $PARTS == *split* ]]; then
for r in $(seq 1 "$ROUNDS"); do
  for mode in on off; do
    dir="$OUT/split-$mode-$r"; mkdir -p "$dir"
    mport=$(free_port); mhttp=127.0.0.1:$(free_port); kport=$(free_port); HTTP=127.0.0.1:$(free_port); jhttp=127.0.0.1:$(free_port)
    export SLUICE_ADMIN_TOKEN=bench-token
    "$BIN" meta --store "$dir/meta" --listen "127.0.0.1:$mport" --http-addr "$mhttp" \
      --compaction-min-age 1s --compaction-max-wait 2s >"$dir/meta.log" 2>&1 &
    pids=($!)
    wait_http "$mhttp"
    key=$("$BIN" meta keys create --meta-addr "127.0.0.1:$mport" --cluster bench)
    SLUICE_AGENT_KEY=$key "$BIN" agent --meta-addr "127.0.0.1:$mport" --bucket "file://$dir/bucket" --roles produce,consume \
      --kafka-addr "127.0.0.1:$kport" --http-addr "$HTTP" >"$dir/agent.log" 2>&1 &
    pids+=($!)
    if [ $mode = on ]; then
      SLUICE_AGENT_KEY=$key nice -n 19 "$BIN" agent --meta-addr "127.0.0.1:$mport" --bucket "file://$dir/bucket" --roles jobs \
        --kafka-addr 127.0.0.1:0 --http-addr "$jhttp" --compaction-interval 1s --gc-interval 1s >"$dir/jobs.log" 2>&1 &
      pids+=($!)
    fi
    wait_http "$HTTP"
    "$BIN" bench produce --brokers "127.0.0.1:$kport" --topic tput --partitions 16 --duration "$TPUT_DUR" --agent-metrics "http://$HTTP/metrics" >"$dir.txt"
    written=$(curl -s "http://$mhttp/metrics" | awk '$1=="sluice_meta_compaction_written_bytes_total"{print $2}')
    echo "compaction wrote ${written:-0} bytes" >>"$dir.txt"
    kill -TERM "${pids[@]}"; wait "${pids[@]}" || true
    rm -rf "${dir:?}"
    echo "split round $r compaction $mode: $(awk '$1=="produce"{print $6" MiB/s"}' "$dir.txt"); $(tail -1 "$dir.txt")" | tee -a "$OUT/split.txt"
  done
done
fi

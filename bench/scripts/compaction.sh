#!/usr/bin/env bash
# Measures compaction's targets (issue 12, docs/compaction.md) on a
# playground with the default compaction settings (min age 30 s, max wait
# 2 min, target 64 MiB, large 16 MiB), agents polling every 10 s:
#
#   1. share of the bytes older than 10 minutes that live in objects of at
#      least 16 MiB (or in one object per partition), after DUR of produce;
#   2. write amplification: bytes compaction wrote / bytes the agent
#      uploaded as segments;
#   3. a cold catch-up read (playground restarted, empty cache) of the
#      whole topic: object store GETs per GiB read;
#   4. peak produce throughput with compaction running on a backlog, and
#      with compaction off, each for TPUT_DUR (alternating is left to the
#      reader: run the script twice).
#
# Usage: bench/scripts/compaction.sh   (env: BIN, DUR, RATE, TPUT_DUR, OUT;
# PARTS=steady or PARTS=tput runs only that half)
set -euo pipefail
BIN=${BIN:-./bin/sluice}
DUR=${DUR:-13m}
RATE=${RATE:-2000} # 1 KiB records: about 2 MiB/s
TPUT_DUR=${TPUT_DUR:-60s}
OUT=${OUT:-$(mktemp -d)}
PARTS=${PARTS:-steady,tput}
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
stop_pg
start_pg "$OUT/steady" --compaction-interval 1h --gc-interval 1h # cold cache, no jobs during the read
"$BIN" bench consume --brokers "$BOOT" --topic steady --from earliest --duration 120s --agent-metrics "http://$HTTP/metrics" >"$OUT/catchup.txt"
cat "$OUT/catchup.txt"
stop_pg
fi

# 4: peak produce with compaction busy on the backlog it makes, and without.
if [[ $PARTS == *tput* ]]; then
start_pg "$OUT/tput-on" --compaction-interval 1s --gc-interval 1s --compaction-min-age 1s --compaction-max-wait 2s
"$BIN" bench produce --brokers "$BOOT" --topic tput --partitions 16 --duration "$TPUT_DUR" --agent-metrics "http://$HTTP/metrics" >"$OUT/tput-on.txt"
echo "compaction jobs during the run: $(metric 'sluice_jobs_runs_total{kind="compact"}')" >>"$OUT/tput-on.txt"
stop_pg
start_pg "$OUT/tput-off" --compaction-interval 1h --gc-interval 1h
"$BIN" bench produce --brokers "$BOOT" --topic tput --partitions 16 --duration "$TPUT_DUR" --agent-metrics "http://$HTTP/metrics" >"$OUT/tput-off.txt"
stop_pg
echo "== with compaction"; cat "$OUT/tput-on.txt"; echo "== without"; cat "$OUT/tput-off.txt"
fi

#!/usr/bin/env bash
# The long run of issue 15: FastIngest pinned to CPU $SERVER_CPU (default 0), forwarding every event to a bare bot,
# under an open-model load of RATE requests/s (default 1,200) for DURATION s (default 600) after 10 s of warm-up; the
# bot and the generator (`FastIngest.Load open`, latency from when each request was due) pinned to CPU $LOAD_CPU.
# Prints the ack latency (p50, p99, p99.9, max), the worst seconds of the per-second timeline (a stall shows as the
# second it began in), the GC pauses (/metrics), and that every accepted event was forwarded once the load stopped.
# Writes load/out/soak.json and load/out/soak-timeline.csv.
#   RATE=1200 DURATION=600 load/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1200}
DURATION=${DURATION:-600}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BOT_PORT=${BOT_PORT:-18082}
FI_PORT=${FI_PORT:-18080}
. load/pinned.sh
echo "server pinned to CPU $SERVER_CPU; the bot and the generator pinned to CPU $LOAD_CPU; $RATE requests/s for $DURATION s"
# metric NAME: the sum of NAME over its label sets.
metric() { curl -s "http://127.0.0.1:$FI_PORT/metrics" | awk -v m="$1" '{n = $1; sub(/\{.*/, "", n)} n == m {s += $2} END {printf "%.3f\n", s + 0}'; }

need=$(awk -v r="$RATE" -v d="$DURATION" 'BEGIN {printf "%d", r * (d + 10) + 1000}')
$load gen-wrk --out "$work/bodies" --count "$need" --shards 1 --secret load-secret-0 --seed 29 >/dev/null
taskset -c "$LOAD_CPU" $load bare --urls "http://127.0.0.1:$BOT_PORT" >/dev/null & pids+=($!)
wait_port "$BOT_PORT"
taskset -c "$SERVER_CPU" dotnet "$server_dll" --urls "http://127.0.0.1:$FI_PORT" \
  --FastIngest:DataDir="$work/data" --Logging:LogLevel:Default=Warning \
  --FastIngest:Tenants:0:Id=t0 --FastIngest:Tenants:0:AppSecret=load-secret-0 --FastIngest:Tenants:0:VerifyToken=v \
  --FastIngest:Tenants:0:Forward:Url="http://127.0.0.1:$BOT_PORT/bot" --FastIngest:Tenants:0:Forward:Secret=bot-secret \
  --FastIngest:Tenants:0:Forward:Concurrency=16 >/dev/null & fi_pid=$!; pids+=($fi_pid)
wait_port "$FI_PORT"

taskset -c "$LOAD_CPU" $load open --target "http://127.0.0.1:$FI_PORT/webhooks/t0" --bodies "$work/bodies/shard-0.tsv" --rate "$RATE" \
  --duration "$DURATION" --warmup 10 --connections 64 --json "$out/soak-latency.json" --timeline "$out/soak-timeline.csv" > "$out/soak-open.txt" 2>&1 || true
tail -1 "$out/soak-open.txt"

# Every accepted event forwarded: wait (up to 60 s) for the backlog to drain.
accepted=0; forwarded=0
for _ in $(seq 1 120); do
  accepted=$(metric fastingest_events_accepted_total); forwarded=$(metric fastingest_events_forwarded_total)
  awk -v a="$accepted" -v f="$forwarded" 'BEGIN {exit !(a > 0 && f >= a)}' && break
  sleep 0.5
done
gc_pause=$(metric fastingest_gc_pause_seconds_total)
echo "events accepted $accepted, forwarded $forwarded; GC pauses ${gc_pause} s in all"
echo "worst seconds of the timeline (second, requests, p99 ms, max ms):"
tail -n +2 "$out/soak-timeline.csv" | awk -F, '$1 >= 10' | sort -t, -k4 -g -r > "$work/worst.csv"
head -5 "$work/worst.csv"
over100=$(awk -F, '$4 > 100' "$work/worst.csv" | wc -l)
echo "seconds with a request over 100 ms: $over100"
python3 - "$out/soak-latency.json" "$out/soak.json" "$RATE" "$DURATION" "$accepted" "$forwarded" "$gc_pause" "$over100" "$(git rev-parse --short HEAD)" <<'PY'
import json, sys
lat = json.load(open(sys.argv[1]))
json.dump({"commit": sys.argv[9], "rate": int(sys.argv[3]), "duration_s": int(sys.argv[4]), "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"],
           "p999_ms": lat["p999_ms"], "max_ms": lat["max_ms"], "failures": lat["failures"], "events_accepted": float(sys.argv[5]),
           "events_forwarded": float(sys.argv[6]), "gc_pause_s": float(sys.argv[7]), "seconds_over_100ms": int(sys.argv[8])}, open(sys.argv[2], "w"))
PY

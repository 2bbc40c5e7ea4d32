#!/usr/bin/env bash
# Server work per request, bare Kestrel against FastIngest, in one run on one machine. The server under test is
# pinned to CPU $SERVER_CPU (default 0) and the load generator (wrk, the simulator, and the bot when there is one) to
# CPU $LOAD_CPU (default 1), so the ratio compares what each server does per request, not how the two share the cores:
#   (a) bare Kestrel that reads the body and answers 200 (the simulator's "bare" mode),
#   (b) FastIngest, durable commit, bot unreachable: the ingest tier alone (events wait on disk),
#   (c) FastIngest, durable commit, forwarding every event to a bare bot (the bot on $LOAD_CPU with wrk);
# each gets WARMUP seconds of the same load first (JIT tiering and PGO settle). For each: requests/s, the ratio to (a),
# server CPU µs per request (utime + stime of /proc/<pid>/stat) and context switches per request (voluntary +
# nonvoluntary of /proc/<pid>/task/*/status). Then the ack latency of (b) in the open model (requests on a fixed
# schedule, latency from when each was due: `FastIngest.Load open`) at 25 % and 50 % of (b)'s pinned saturation rate,
# LATENCY_DURATION s after 10 s of warm-up: p50, p99, p99.9, max; and bare Kestrel at the higher rate as the control
# (what the generator and loopback add). Writes load/out/compare.json.
#   DURATION=10 WARMUP=8 CONNECTIONS=256 LATENCY_DURATION=60 RUNS=1 load/compare.sh
#   INGEST_RPS=30000 load/compare.sh      latency only, at 25 % and 50 % of the given rate
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-256}
WARMUP=${WARMUP:-8}
BODIES=${BODIES:-600000}
LATENCY_DURATION=${LATENCY_DURATION:-60}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
RUNS=${RUNS:-1}
OPEN_CONNECTIONS=${OPEN_CONNECTIONS:-64}
BARE_PORT=${BARE_PORT:-18081}
BOT_PORT=${BOT_PORT:-18082}
FI_PORT=${FI_PORT:-18080}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
. load/pinned.sh
echo "server pinned to CPU $SERVER_CPU; wrk, the simulator and the bot pinned to CPU $LOAD_CPU"
hz=$(getconf CLK_TCK)

rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
requests() { awk '/requests in/ {print $1}' "$1"; }
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$1"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}'; }

$load gen-wrk --out "$work/bodies" --count "$BODIES" --shards 1 --secret load-secret-0 >/dev/null
$load gen-wrk --out "$work/warmup" --count $((BODIES / 2)) --shards 1 --secret load-secret-0 --seed 11 >/dev/null
wrk_on() { taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" "$@"; }
warm() { wrk_on -d"${WARMUP}s" -s load/wrk/rotate.lua "$1" -- "$work/warmup" >/dev/null; }

# measure NAME PID URL: the measured wrk run against PID, with its CPU and context switches.
measure() {
  local name=$1 pid=$2 url=$3
  warm "$url"
  local t0 s0 t1 s1
  t0=$(cpu_ticks "$pid"); s0=$(switches "$pid")
  wrk_on -d"${DURATION}s" --latency -s load/wrk/rotate.lua "$url" -- "$work/bodies" > "$out/wrk-$name.txt"
  t1=$(cpu_ticks "$pid"); s1=$(switches "$pid")
  local n; n=$(requests "$out/wrk-$name.txt")
  awk -v t=$((t1 - t0)) -v s=$((s1 - s0)) -v n="$n" -v hz="$hz" 'BEGIN {printf "%.1f %.2f\n", t * 1e6 / hz / n, s / n}' > "$out/cost-$name.txt"
}

start_fastingest() { # NAME BOT_URL
  taskset -c "$SERVER_CPU" dotnet "$server_dll" --urls "http://127.0.0.1:$FI_PORT" --FastIngest:DataDir="$work/data-$1" \
    --Logging:LogLevel:Default=Warning \
    --FastIngest:Tenants:0:Id=t0 --FastIngest:Tenants:0:AppSecret=load-secret-0 --FastIngest:Tenants:0:VerifyToken=v \
    --FastIngest:Tenants:1:Id=t1 --FastIngest:Tenants:1:AppSecret=load-secret-1 --FastIngest:Tenants:1:VerifyToken=v \
    --FastIngest:Tenants:2:Id=t2 --FastIngest:Tenants:2:AppSecret=load-secret-2 --FastIngest:Tenants:2:VerifyToken=v \
    --FastIngest:Tenants:3:Id=t3 --FastIngest:Tenants:3:AppSecret=load-secret-3 --FastIngest:Tenants:3:VerifyToken=v \
    --FastIngest:Tenants:0:Forward:Url="$2" --FastIngest:Tenants:0:Forward:Secret=bot-secret \
    --FastIngest:Tenants:0:Forward:Concurrency=16 >/dev/null &
  fi_pid=$!; pids+=($fi_pid)
  wait_port "$FI_PORT"
}
stop_fastingest() { kill -TERM "$fi_pid"; wait "$fi_pid" 2>/dev/null || true; }

# INGEST_RPS=N skips the throughput runs and measures latency at shares of N.
[ -n "${INGEST_RPS:-}" ] && RUNS=0
suffix=""
for run in $(seq 1 "$RUNS"); do
  suffix=$([ "$RUNS" -gt 1 ] && echo "-$run" || echo "")
  taskset -c "$SERVER_CPU" $load bare --urls "http://127.0.0.1:$BARE_PORT" >/dev/null & bare_pid=$!; pids+=($bare_pid)
  wait_port "$BARE_PORT"
  measure "bare$suffix" "$bare_pid" "http://127.0.0.1:$BARE_PORT/webhooks/t0"
  kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true

  start_fastingest "ingest$suffix" "http://127.0.0.1:9/unreachable"
  measure "ingest$suffix" "$fi_pid" "http://127.0.0.1:$FI_PORT/webhooks/t0"
  stop_fastingest

  # The bot shares the load generator's CPU: the server's CPU still does only the server's work.
  taskset -c "$LOAD_CPU" $load bare --urls "http://127.0.0.1:$BOT_PORT" >/dev/null & bot_pid=$!; pids+=($bot_pid)
  wait_port "$BOT_PORT"
  start_fastingest "forwarding$suffix" "http://127.0.0.1:$BOT_PORT/bot"
  measure "forwarding$suffix" "$fi_pid" "http://127.0.0.1:$FI_PORT/webhooks/t0"
  stop_fastingest
  kill "$bot_pid"; wait "$bot_pid" 2>/dev/null || true
done

row() { # NAME LABEL
  local f="$out/wrk-$1.txt"; local r; r=$(rps "$f"); local c; read -r cpu sw < "$out/cost-$1.txt"
  local ratio; ratio=$(awk -v a="$r" -v b="$bare_rps" 'BEGIN {printf "%.2f", a/b}')
  printf '%-46s %11s %7s %9s %8s %9s\n' "$2" "$r" "$ratio" "$cpu" "$sw" "$(p99 "$f")"
  json_rows+="\"$1\":{\"requests_per_s\":$r,\"ratio\":$ratio,\"cpu_us_per_request\":$cpu,\"switches_per_request\":$sw,\"p99_ms\":$(p99 "$f")},"
}
json_rows=""
printf '%-46s %11s %7s %9s %8s %9s\n' "" "requests/s" "ratio" "CPU µs/r" "csw/r" "p99 (ms)"
for run in $(seq 1 "$RUNS"); do
  suffix=$([ "$RUNS" -gt 1 ] && echo "-$run" || echo "")
  bare_rps=$(rps "$out/wrk-bare$suffix.txt")
  row "bare$suffix" "(a) bare Kestrel (read body, 200)$suffix"
  row "ingest$suffix" "(b) FastIngest, durable, ingest only$suffix"
  row "forwarding$suffix" "(c) FastIngest, durable, forwarding$suffix"
done

# Open-model ack latency of the ingest tier at 25 % and 50 % of its pinned saturation rate (the last run's), from
# `open` (raw keep-alive sockets, a few µs a request, latency from when each request was due), pinned with the load;
# then the same at the higher rate against bare Kestrel: what the generator and the loopback add by themselves.
ingest_rps=${INGEST_RPS:-$(rps "$out/wrk-ingest$suffix.txt")}
latency_rows=""
latency() { # NAME URL RATE
  local need; need=$(awk -v r="$3" -v d="$LATENCY_DURATION" 'BEGIN {printf "%d", r * (d + 10) + 1000}')
  [ -f "$work/open-$need/shard-0.tsv" ] || $load gen-wrk --out "$work/open-$need" --count "$need" --shards 1 --secret load-secret-0 --seed 23 >/dev/null
  taskset -c "$LOAD_CPU" $load open --target "$2" --bodies "$work/open-$need/shard-0.tsv" --rate "$3" --duration "$LATENCY_DURATION" --warmup 10 \
    --connections "$OPEN_CONNECTIONS" --json "$out/latency-$1.json" > "$out/latency-$1.txt" 2>&1 || true
  local line; line=$(python3 -c "import json; r=json.load(open('$out/latency-$1.json')); print(f\"{r['p50_ms']:.2f} {r['p99_ms']:.2f} {r['p999_ms']:.2f} {r['max_ms']:.2f} {r['failures']}\")" 2>/dev/null || echo "0 0 0 0 -1")
  read -r p50 p99v p999 max failures <<< "$line"
  printf '%-34s %8s requests/s: p50 %6s ms, p99 %7s ms, p99.9 %7s ms, max %7s ms (%s not 200)\n' "$1" "$3" "$p50" "$p99v" "$p999" "$max" "$failures"
  latency_rows+="\"$1\":{\"rate\":$3,\"p50_ms\":$p50,\"p99_ms\":$p99v,\"p999_ms\":$p999,\"max_ms\":$max,\"failures\":$failures},"
}
for share in 25 50; do
  rate=$(awk -v r="$ingest_rps" -v s="$share" 'BEGIN {printf "%d", r * s / 100}')
  start_fastingest "latency-$share" "http://127.0.0.1:9/unreachable"
  latency "ingest-at-$share-percent" "http://127.0.0.1:$FI_PORT/webhooks/t0" "$rate"
  stop_fastingest
done
taskset -c "$SERVER_CPU" $load bare --urls "http://127.0.0.1:$BARE_PORT" >/dev/null & bare_pid=$!; pids+=($bare_pid)
wait_port "$BARE_PORT"
latency "bare-control" "http://127.0.0.1:$BARE_PORT/webhooks/t0" "$rate"
kill "$bare_pid"; wait "$bare_pid" 2>/dev/null || true

cat > "$out/compare.json" <<JSON
{"date":"$(date -u +%FT%TZ)","commit":"$(git rev-parse --short HEAD)","server_cpu":$SERVER_CPU,"load_cpu":$LOAD_CPU,"duration_s":$DURATION,"connections":$CONNECTIONS,
 ${json_rows}
 ${latency_rows%,}}
JSON

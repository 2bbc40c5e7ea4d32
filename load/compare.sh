#!/usr/bin/env bash
# Side by side, one machine, one run, the same wrk flags:
#   (a) bare Kestrel that reads the body and answers 200 (the simulator's "bare" mode),
#   (b) FastIngest with durable commit, forwarding every event to (a) as its bot (both share the 2 cores),
#   (c) FastIngest with durable commit and its bot unreachable: the ingest tier alone (events wait on disk);
# then (c) again with wrk paced to half of (c)'s rate, for FastIngest's p99 ack latency at that load.
# Each server first gets WARMUP seconds of the same load (JIT tiering and PGO settle), then the measured run.
# Prints both requests/s, their ratio and the p99s; writes load/out/compare.json.
#   DURATION=10 WARMUP=8 CONNECTIONS=256 THREADS=2 BODIES=1000000 load/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
WARMUP=${WARMUP:-8}
BODIES=${BODIES:-1000000}
BARE_PORT=${BARE_PORT:-18081}
FI_PORT=${FI_PORT:-18080}
out=load/out
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
dotnet build -c Release src/FastIngest.Server -v q -nologo >/dev/null
dotnet build -c Release load/FastIngest.Load -v q -nologo >/dev/null
load="dotnet load/FastIngest.Load/bin/Release/net10.0/FastIngest.Load.dll"
server_dll=src/FastIngest.Server/bin/Release/net10.0/FastIngest.Server.dll

wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
p99() { awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$1"; }

$load gen-wrk --out "$work/bodies" --count "$BODIES" --shards "$THREADS" --secret load-secret-0 >/dev/null
$load gen-wrk --out "$work/warmup" --count $((BODIES / 2)) --shards "$THREADS" --secret load-secret-0 --seed 11 >/dev/null
warm() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s load/wrk/rotate.lua "$1" -- "$work/warmup" >/dev/null; }

$load bare --urls "http://127.0.0.1:$BARE_PORT" >/dev/null & pids+=($!)
wait_port "$BARE_PORT"
warm "http://127.0.0.1:$BARE_PORT/webhooks/t0"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load/wrk/rotate.lua \
  "http://127.0.0.1:$BARE_PORT/webhooks/t0" -- "$work/bodies" > "$out/wrk-bare.txt"

start_fastingest() { # NAME BOT_URL
  dotnet "$server_dll" --urls "http://127.0.0.1:$FI_PORT" --FastIngest:DataDir="$work/data-$1" \
    --Logging:LogLevel:Default=Warning \
    --FastIngest:Tenants:0:Id=t0 --FastIngest:Tenants:0:AppSecret=load-secret-0 --FastIngest:Tenants:0:VerifyToken=v \
    --FastIngest:Tenants:0:Forward:Url="$2" --FastIngest:Tenants:0:Forward:Secret=bot-secret \
    --FastIngest:Tenants:0:Forward:Concurrency=16 >/dev/null &
  fi_pid=$!; pids+=($fi_pid)
  wait_port "$FI_PORT"
}
stop_fastingest() { kill -TERM "$fi_pid"; wait "$fi_pid" 2>/dev/null || true; }

start_fastingest forwarding "http://127.0.0.1:$BARE_PORT/bot"
warm "http://127.0.0.1:$FI_PORT/webhooks/t0"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load/wrk/rotate.lua \
  "http://127.0.0.1:$FI_PORT/webhooks/t0" -- "$work/bodies" > "$out/wrk-fastingest-forwarding.txt"
stop_fastingest

start_fastingest ingest "http://127.0.0.1:9/unreachable"
warm "http://127.0.0.1:$FI_PORT/webhooks/t0"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load/wrk/rotate.lua \
  "http://127.0.0.1:$FI_PORT/webhooks/t0" -- "$work/bodies" > "$out/wrk-fastingest-ingest.txt"
stop_fastingest

bare_rps=$(rps "$out/wrk-bare.txt"); fwd_rps=$(rps "$out/wrk-fastingest-forwarding.txt"); fi_rps=$(rps "$out/wrk-fastingest-ingest.txt")
bare_p99=$(p99 "$out/wrk-bare.txt"); fwd_p99=$(p99 "$out/wrk-fastingest-forwarding.txt"); fi_p99=$(p99 "$out/wrk-fastingest-ingest.txt")
half=$(awk -v r="$fi_rps" 'BEGIN {printf "%d", r/2}')

# FastIngest's ack latency at half its own rate: wrk paced by rotate.lua (WRK_PERIOD_MS between a response and the
# connection's next request). A 3 s calibration run measures the mean latency at that load, so the period can leave
# room for it: period = connections * 1000 / rate - latency. The achieved rate is reported next to the p99.
start_fastingest half "http://127.0.0.1:9/unreachable"
warm "http://127.0.0.1:$FI_PORT/webhooks/t0"
period=$(awk -v c="$CONNECTIONS" -v r="$half" 'BEGIN {printf "%.2f", c * 1000 / r}')
WRK_PERIOD_MS=$period wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s load/wrk/rotate.lua \
  "http://127.0.0.1:$FI_PORT/webhooks/t0" -- "$work/warmup" > "$out/wrk-half-calibration.txt"
mean=$(awk '$1=="Latency" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' "$out/wrk-half-calibration.txt")
period=$(awk -v p="$period" -v m="$mean" 'BEGIN {q = p - m; if (q < 0) q = 0; printf "%.2f", q}')
WRK_PERIOD_MS=$period wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s load/wrk/rotate.lua \
  "http://127.0.0.1:$FI_PORT/webhooks/t0" -- "$work/bodies" > "$out/wrk-fastingest-half.txt"
stop_fastingest
half_rps=$(rps "$out/wrk-fastingest-half.txt"); half_p99=$(p99 "$out/wrk-fastingest-half.txt")

ratio=$(awk -v a="$fi_rps" -v b="$bare_rps" 'BEGIN {printf "%.2f", a/b}')
fwd_ratio=$(awk -v a="$fwd_rps" -v b="$bare_rps" 'BEGIN {printf "%.2f", a/b}')
cat > "$out/compare.json" <<JSON
{"date":"$(date -u +%FT%TZ)","commit":"$(git rev-parse --short HEAD)","duration_s":$DURATION,"connections":$CONNECTIONS,"threads":$THREADS,
 "bare":{"requests_per_s":$bare_rps,"p99_ms":$bare_p99},
 "fastingest_ingest":{"requests_per_s":$fi_rps,"p99_ms":$fi_p99,"ratio":$ratio},
 "fastingest_forwarding":{"requests_per_s":$fwd_rps,"p99_ms":$fwd_p99,"ratio":$fwd_ratio},
 "half_rate":{"target_requests_per_s":$half,"requests_per_s":$half_rps,"period_ms":$period,"ack_p99_ms":$half_p99}}
JSON
printf '%-44s %12s %10s %7s\n' "" "requests/s" "p99 (ms)" "ratio"
printf '%-44s %12s %10s\n' "bare Kestrel (read body, 200)" "$bare_rps" "$bare_p99"
printf '%-44s %12s %10s %7s\n' "FastIngest, durable, forwarding to (a)" "$fwd_rps" "$fwd_p99" "$fwd_ratio"
printf '%-44s %12s %10s %7s\n' "FastIngest, durable, ingest only" "$fi_rps" "$fi_p99" "$ratio"
printf '%-44s %12s %10s\n' "FastIngest ingest only, paced to half rate" "$half_rps" "$half_p99"

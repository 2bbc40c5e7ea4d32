#!/usr/bin/env bash
# Start-up time and RSS of the server on a data directory filled by `FastIngest.Benchmarks backlog N DIR`: tenant t1
# with a healthy destination `bot` and a dead one `dead` (connection refused) that has the whole backlog behind it.
# Runs twice on copies of DIR: with DIR/positions (delivered watermarks) and without it (every ack held, every reader
# from the log's begin: the behaviour before watermarks).
# Usage: bench/backlog-startup.sh DIR   (after `dotnet build -c Release` of src/FastIngest.Server and bench/FastIngest.Benchmarks)
set -euo pipefail
dir=$1
cd "$(dirname "$0")/.."
dll=src/FastIngest.Server/bin/Release/net10.0/FastIngest.Server.dll
run() {
  local data=$1 label=$2
  local start ready pid rss2 rss10
  start=$(date +%s.%N)
  dotnet "$dll" --urls http://127.0.0.1:18086 --Logging:LogLevel:Default=Warning --Logging:LogLevel:FastIngest=Information \
    --FastIngest:DataDir="$data" \
    --FastIngest:Tenants:0:Id=t1 --FastIngest:Tenants:0:AppSecret=bench-secret-1 --FastIngest:Tenants:0:VerifyToken=v \
    --FastIngest:Tenants:0:Destinations:0:Name=bot --FastIngest:Tenants:0:Destinations:0:Kind=Webhook \
    --FastIngest:Tenants:0:Destinations:0:Url=http://127.0.0.1:9/bot --FastIngest:Tenants:0:Destinations:0:Secret=s \
    --FastIngest:Tenants:0:Destinations:1:Name=dead --FastIngest:Tenants:0:Destinations:1:Kind=Webhook \
    --FastIngest:Tenants:0:Destinations:1:Url=http://127.0.0.1:9/dead --FastIngest:Tenants:0:Destinations:1:Secret=s \
    >/tmp/backlog-server.log 2>&1 &
  pid=$!
  until curl -sf http://127.0.0.1:18086/healthz >/dev/null; do sleep 0.05; kill -0 $pid 2>/dev/null || { cat /tmp/backlog-server.log; exit 1; }; done
  ready=$(date +%s.%N)
  sleep 2; rss2=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  sleep 8; rss10=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  echo "$label: start-up to /healthz $(echo "$ready - $start" | bc) s; RSS 2 s later $((rss2 / 1024)) MiB, 10 s later $((rss10 / 1024)) MiB"
  grep -o "Event log recovered.*" /tmp/backlog-server.log | head -1
  kill -TERM $pid; wait $pid || true
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -a "$dir" "$work/with"; run "$work/with" "with watermarks"; rm -rf "$work/with"
cp -a "$dir" "$work/without"; rm -f "$work/without/positions"; run "$work/without" "without watermarks"

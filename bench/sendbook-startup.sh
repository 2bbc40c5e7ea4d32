#!/usr/bin/env bash
# Start-up time and RSS of the server on a data directory filled by `FastIngest.Benchmarks sendbook N DIR`.
# Usage: bench/sendbook-startup.sh DIR [SEND_INDEX_BYTES]   (run after building src/FastIngest.Server in Release)
set -euo pipefail
dir=$1; index=${2:-536870912}
cd "$(dirname "$0")/.."
dll=src/FastIngest.Server/bin/Release/net10.0/FastIngest.Server.dll
start=$(date +%s.%N)
dotnet "$dll" --urls http://127.0.0.1:18085 --Logging:LogLevel:Default=Warning \
  --FastIngest:DataDir="$dir" --FastIngest:Storage:SendIndexBytes="$index" \
  --FastIngest:Tenants:0:Id=t1 --FastIngest:Tenants:0:AppSecret=bench-secret-1 --FastIngest:Tenants:0:VerifyToken=v \
  --FastIngest:Tenants:0:Outbound:PhoneNumberIds:0=100000000000001 \
  --FastIngest:Tenants:0:Outbound:AccessToken=bench-meta-token --FastIngest:Tenants:0:Outbound:BotToken=bench-bot-token-0001 \
  --FastIngest:Outbound:GraphUrl=http://127.0.0.1:9 >/tmp/sendbook-server.log 2>&1 &
pid=$!
until curl -sf http://127.0.0.1:18085/healthz >/dev/null; do sleep 0.05; kill -0 $pid 2>/dev/null || { cat /tmp/sendbook-server.log; exit 1; }; done
ready=$(date +%s.%N)
sleep 2
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
# A send written before the start, read back through the index: its id is fo-{hex address}; look the first one up by key.
echo "start-up to /healthz: $(echo "$ready - $start" | bc) s; RSS 2 s later: $((rss / 1024)) MiB"
kill -TERM $pid; wait $pid || true

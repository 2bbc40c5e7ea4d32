#!/usr/bin/env bash
# Installs what the test suite needs beyond the .NET SDK, Node and Python:
#   Debian packages: prometheus (promtool checks /metrics), redis-server and rabbitmq-server (real brokers the
#   destination tests start on free loopback ports in temp directories; the system services are never used),
#   python3-celery, python3-redis, python3-amqp (a real Celery 5 worker, run with Debian's /usr/bin/python3);
#   npm packages pinned in tests/FastIngest.Tests/Bots/package.json + package-lock.json: whatsapp-api-js (a real bot),
#   bullmq and ioredis (a real BullMQ Worker).
# Idempotent; needs root or sudo on Debian/Ubuntu for the apt packages.
set -euo pipefail
cd "$(dirname "$0")/.."
bots=tests/FastIngest.Tests/Bots
if [ ! -d "$bots/node_modules/whatsapp-api-js" ] || [ ! -d "$bots/node_modules/bullmq" ] \
  || [ "$bots/package-lock.json" -nt "$bots/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null 2>&1 || { echo "install-test-deps: need node and npm for $bots" >&2; exit 1; }
  npm ci --prefix "$bots" --no-audit --no-fund >/dev/null 2>&1 || npm ci --prefix "$bots" --no-audit --no-fund
  for p in whatsapp-api-js bullmq ioredis; do
    echo "install-test-deps: $p $(node -p "require('./$bots/node_modules/$p/package.json').version")"
  done
fi

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
/usr/bin/python3 -c 'import celery, redis, amqp' >/dev/null 2>&1 || need+=(python3-celery python3-redis python3-amqp)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to apt-get install ${need[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq >/dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packages start their system services where a service manager runs; the tests never use them, so stop them
# (best effort: containers have no service manager and nothing was started).
for svc in redis-server rabbitmq-server; do
  if command -v service >/dev/null 2>&1; then "${sudo_cmd[@]}" service "$svc" stop >/dev/null 2>&1 || true; fi
done
command -v promtool >/dev/null 2>&1 || { echo "install-test-deps: promtool still missing after apt-get" >&2; exit 1; }
command -v redis-server >/dev/null 2>&1 || { echo "install-test-deps: redis-server still missing after apt-get" >&2; exit 1; }
command -v rabbitmq-server >/dev/null 2>&1 || { echo "install-test-deps: rabbitmq-server still missing after apt-get" >&2; exit 1; }
/usr/bin/python3 -c 'import celery, redis, amqp' || { echo "install-test-deps: celery still missing after apt-get" >&2; exit 1; }
echo "install-test-deps: installed ${need[*]}; promtool $(promtool --version 2>&1 | head -1 | awk '{print $3}'), $(redis-server --version | awk '{print $3}'), celery $(/usr/bin/python3 -c 'import celery; print(celery.__version__)')"

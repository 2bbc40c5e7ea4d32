#!/usr/bin/env bash
# Installs what the test suite needs beyond the .NET SDK: promtool (Debian package `prometheus`), which checks the
# /metrics output, and the npm package whatsapp-api-js (tests/FastIngest.Tests/Bots, with Node and npm), the real bot
# library some tests put behind FastIngest. Idempotent; needs root or sudo on Debian/Ubuntu for promtool.
set -euo pipefail
cd "$(dirname "$0")/.."
bots=tests/FastIngest.Tests/Bots
if [ ! -d "$bots/node_modules/whatsapp-api-js" ]; then
  command -v npm >/dev/null 2>&1 || { echo "install-test-deps: need node and npm for $bots" >&2; exit 1; }
  npm ci --prefix "$bots" --no-audit --no-fund >/dev/null 2>&1 || npm ci --prefix "$bots" --no-audit --no-fund
  echo "install-test-deps: whatsapp-api-js $(node -p "require('./$bots/node_modules/whatsapp-api-js/package.json').version")"
fi
if command -v promtool >/dev/null 2>&1; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to apt-get install prometheus" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
  || { "${sudo_cmd[@]}" apt-get update -qq >/dev/null && "${sudo_cmd[@]}" apt-get install -y --no-install-recommends prometheus >/dev/null; }
command -v promtool >/dev/null 2>&1 || { echo "install-test-deps: promtool still missing after installing prometheus" >&2; exit 1; }
echo "install-test-deps: promtool $(promtool --version 2>&1 | head -1)"

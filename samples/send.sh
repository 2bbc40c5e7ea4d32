#!/usr/bin/env bash
# Signs a webhook payload the way Meta does and POSTs it to a running FastIngest.
#   samples/send.sh [payload.json] [tenant] [app-secret] [base-url]
# Defaults match src/FastIngest.Server/appsettings.json: tenant "demo", secret "demo-app-secret", http://localhost:5000.
# The signature is HMAC-SHA256 of the exact file bytes: curl sends them unchanged with --data-binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
payload=${1:-$here/text-message.json}
tenant=${2:-demo}
secret=${3:-demo-app-secret}
base=${4:-http://localhost:5000}

signature=$(openssl dgst -sha256 -hmac "$secret" -hex < "$payload" | sed 's/^.*= *//')
curl -sS -i -X POST "$base/webhooks/$tenant" \
  -H 'Content-Type: application/json' \
  -H "X-Hub-Signature-256: sha256=$signature" \
  --data-binary @"$payload"
echo

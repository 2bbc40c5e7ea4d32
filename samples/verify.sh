#!/usr/bin/env bash
# Meta's subscription handshake, as Meta sends it when you save the webhook URL in the app dashboard.
#   samples/verify.sh [tenant] [verify-token] [base-url]
set -euo pipefail
tenant=${1:-demo}
token=${2:-demo-verify-token}
base=${3:-http://localhost:5000}
curl -sS -i "$base/webhooks/$tenant?hub.mode=subscribe&hub.verify_token=$token&hub.challenge=1158201444"
echo

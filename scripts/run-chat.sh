#!/usr/bin/env bash
set -euo pipefail
# Runs the chat example locally: builds the page and the wasm core, then
# starts `wrangler dev` on http://localhost:8787 (no Cloudflare account:
# everything runs in local workerd). Open two tabs to see live sync.
cd "$(dirname "$0")/.."
bash scripts/build-chat.sh
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
echo "+ wrangler dev  →  http://localhost:${PORT:-8787}/?room=lobby"
exec npx wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" "$@"

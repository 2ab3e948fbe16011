#!/usr/bin/env bash
set -euo pipefail
# Runs an example locally: builds its page (and the wasm core if missing),
# then starts `wrangler dev` on http://localhost:8787 (no Cloudflare account:
# everything runs in local workerd). Usage: scripts/run-example.sh <name>
cd "$(dirname "$0")/.."
source scripts/node22.sh
name="${1:?usage: run-example.sh chat|on-demand|board|ssr-chat}"
shift
bash scripts/build-example.sh "$name"
# The chat example is the top-level wrangler.toml; the others have their own.
config=wrangler.toml
[ "$name" = chat ] || config="examples/$name/wrangler.toml"
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
echo "+ wrangler dev --config $config  →  http://localhost:${PORT:-8787}/"
exec npx wrangler dev --config "$config" --ip 127.0.0.1 --port "${PORT:-8787}" "$@"

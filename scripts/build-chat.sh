#!/usr/bin/env bash
set -euo pipefail
# Builds the chat example's page (examples/chat/dist) with esbuild, and the
# wasm core if it is missing, so `wrangler dev` (top-level wrangler.toml) can
# serve both. The page imports 'seqsync/client' from this repository.
cd "$(dirname "$0")/.."
[ -f worker/build/core.wasm ] || bash scripts/build-wasm.sh
mkdir -p examples/chat/dist
cp examples/chat/public/index.html examples/chat/dist/index.html
echo "+ esbuild examples/chat/src/app.tsx"
npx esbuild examples/chat/src/app.tsx --bundle --format=esm --target=es2022 \
  --jsx=automatic --alias:seqsync/client=./worker/src/client/index.ts \
  --define:process.env.NODE_ENV='"production"' --minify --sourcemap \
  --outfile=examples/chat/dist/app.js --log-level=warning

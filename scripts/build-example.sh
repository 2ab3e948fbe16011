#!/usr/bin/env bash
set -euo pipefail
# Builds an example's page (examples/<name>/dist) with esbuild, and the wasm
# core if it is missing, so `wrangler dev` can serve both. The page imports
# 'seqsync/client' from this repository. Usage: scripts/build-example.sh <name>
cd "$(dirname "$0")/.."
name="${1:?usage: build-example.sh chat|on-demand|board|ssr-chat}"
[ -d "examples/$name" ] || { echo "no example named $name" >&2; exit 2; }
[ -f worker/build/core.wasm ] || bash scripts/build-wasm.sh
mkdir -p "examples/$name/dist"
# A server-rendered example (ssr-chat) has no static page.
[ ! -f "examples/$name/public/index.html" ] || cp "examples/$name/public/index.html" "examples/$name/dist/index.html"
echo "+ esbuild examples/$name/src/app.tsx"
npx esbuild "examples/$name/src/app.tsx" --bundle --format=esm --target=es2022 \
  --jsx=automatic --alias:seqsync/client=./worker/src/client/index.ts \
  --define:process.env.NODE_ENV='"production"' --minify --sourcemap \
  --outfile="examples/$name/dist/app.js" --log-level=warning

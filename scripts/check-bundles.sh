#!/usr/bin/env bash
set -euo pipefail
# Builds every example as `wrangler deploy` would upload it (--dry-run, no
# account) and checks the bundle: it holds the core's .wasm byte for byte,
# its worker imports that module, and it fits the Workers size limit after
# gzip (3 MiB on the Free plan, the stricter of the two; 10 MiB on Paid).
# Bundles go to build/bundles/<name>/. Usage: scripts/check-bundles.sh [names…] (default: all)
cd "$(dirname "$0")/.."
source scripts/node22.sh
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
limit=$((3 * 1024 * 1024))
[ -f worker/build/core.wasm ] || bash scripts/build-wasm.sh
core_sum=$(sha256sum worker/build/core.wasm | cut -d' ' -f1)
# Default: every example (chat is the top-level wrangler.toml; the others have their own).
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(chat)
  for config in examples/*/wrangler.toml; do names+=("$(basename "$(dirname "$config")")"); done
fi
# The logs sit beside the bundles, so the folder must exist on a fresh clone.
mkdir -p build/bundles
failed=0
for name in "${names[@]}"; do
  config=wrangler.toml
  [ "$name" = chat ] || config="examples/$name/wrangler.toml"
  out="$PWD/build/bundles/$name"
  rm -rf "$out"
  bash scripts/build-example.sh "$name" > /dev/null
  if ! npx wrangler deploy --dry-run --outdir "$out" --config "$config" > "$out.log" 2>&1; then
    echo "FAIL $name: wrangler deploy --dry-run failed:"; tail -20 "$out.log"; failed=1; continue
  fi
  wasm=$(find "$out" -maxdepth 1 -name '*.wasm' | head -1)
  if [ -z "$wasm" ] || [ "$(sha256sum "$wasm" | cut -d' ' -f1)" != "$core_sum" ]; then
    echo "FAIL $name: the bundle does not hold worker/build/core.wasm"; failed=1; continue
  fi
  if ! grep -q "from \"./$(basename "$wasm")\"" "$out/worker.js"; then
    echo "FAIL $name: worker.js does not import $(basename "$wasm")"; failed=1; continue
  fi
  # What is uploaded: the modules (not the source map or wrangler's README), each gzipped.
  raw=0 gz=0
  for f in "$out/worker.js" "$wasm"; do
    raw=$((raw + $(stat -c %s "$f")))
    gz=$((gz + $(gzip -9 -c "$f" | wc -c)))
  done
  if [ "$gz" -gt "$limit" ]; then
    echo "FAIL $name: $gz bytes gzipped, over the 3 MiB limit"; failed=1; continue
  fi
  echo "ok   $name: $raw bytes, $gz gzipped ($((gz * 100 / limit))% of 3 MiB), core.wasm inside; wrangler: $(grep -o 'Total Upload.*' "$out.log")"
done
exit "$failed"

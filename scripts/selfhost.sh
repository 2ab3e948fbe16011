#!/usr/bin/env bash
set -euo pipefail
# Runs an example on the open-source workerd (the `workerd` npm package's
# binary): no wrangler, no account, Durable Object storage on local disk.
# Bundles the Worker with esbuild (the core's .wasm beside it), then serves
# examples/<name>/selfhost/workerd.capnp. docs/self-hosting.md has the limits.
#   scripts/selfhost.sh chat [--build-only]
# Env: PORT (8787), SEQSYNC_STATE_DIR (.selfhost/<name>: the objects' SQLite
# files), AUTH_SECRET (read from .dev.vars, the dev-only key, if unset).
cd "$(dirname "$0")/.."
name="${1:?usage: selfhost.sh chat [--build-only]}"
config="examples/$name/selfhost/workerd.capnp"
[ -f "$config" ] || { echo "no self-host config for $name ($config)" >&2; exit 2; }
bash scripts/build-example.sh "$name"
out="build/selfhost/$name"
mkdir -p "$out"
# keepNames stays off (esbuild's default): it makes every call into the wasm core ~5x slower.
npx esbuild "examples/$name/src/worker.ts" --bundle --format=esm --target=es2022 --platform=neutral \
  --alias:seqsync=./worker/src/do/index.ts --external:cloudflare:workers \
  --loader:.wasm=copy --asset-names='[name]' --outfile="$out/worker.js" --log-level=warning
[ -f "$out/core.wasm" ] || { echo "the bundle has no core.wasm" >&2; exit 1; }
[ "${2:-}" = "--build-only" ] && exit 0
state="${SEQSYNC_STATE_DIR:-.selfhost/$name}"
mkdir -p "$state"
if [ -z "${AUTH_SECRET:-}" ]; then
  AUTH_SECRET=$(sed -n 's/^AUTH_SECRET=//p' .dev.vars)
  echo "AUTH_SECRET is unset: using the dev-only key in .dev.vars (set a real one to serve anyone)" >&2
fi
export AUTH_SECRET INSPECTORS="${INSPECTORS:-}" SEQSYNC_DEBUG="${SEQSYNC_DEBUG:-}"
echo "+ workerd serve $config  →  http://127.0.0.1:${PORT:-8787}/  (storage: $state)"
exec node_modules/.bin/workerd serve "$config" \
  --directory-path do-storage="$(realpath "$state")" \
  --directory-path page="$(realpath "examples/$name/dist")" \
  --socket-addr http=127.0.0.1:"${PORT:-8787}"

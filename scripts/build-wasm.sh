#!/usr/bin/env bash
# Builds the sync core to worker/build/core.{mjs,wasm} (the wasm-release preset).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs   # Debian's emcc needs acorn from here
cmake --workflow --preset wasm

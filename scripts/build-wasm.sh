#!/usr/bin/env bash
# Builds the sync core with Emscripten.
#   bash scripts/build-wasm.sh         worker/build/core.{mjs,wasm} (the wasm-release preset)
#   bash scripts/build-wasm.sh tests   the doctest suite as wasm, run under node (wasm-tests)
# emcmake hands CMake the installed Emscripten's platform file, wherever that
# Emscripten lives (Debian's package or an emsdk checkout on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs   # Debian's emcc needs acorn from here
case "${1:-release}" in
  release)
    emcmake cmake --preset wasm-release
    cmake --build --preset wasm-release
    ;;
  tests)
    # emcmake's default runner flag (--experimental-wasm-threads) is one that
    # today's node rejects; the suite needs no threads, only a quiet fetch.
    emcmake cmake --preset wasm-tests "-DCMAKE_CROSSCOMPILING_EMULATOR=$(command -v node);--no-experimental-fetch"
    cmake --build --preset wasm-tests
    ctest --preset wasm-tests
    ;;
  *) echo "usage: bash scripts/build-wasm.sh [release|tests]" >&2; exit 2 ;;
esac

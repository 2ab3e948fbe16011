#!/usr/bin/env bash
# The whole test suite, as CI runs it (bash scripts/setup.sh first).
#   1. doctest, native, against Debian's SQLite
#   2. the same doctest suite built to wasm, run under node (SQLite amalgamation in wasm)
#   3. the shell and the wasm core in real workerd (@cloudflare/vitest-plugin)
#   4. the client: unit and type tests, and real TanStack DB collections in Node against
#      the fixture DO under wrangler dev
#   5. the examples and the inspector in headless Chromium (playwright-core), and the chat
#      example self-hosted on workerd, restarted under two clients
#   5b. every example bundled as wrangler deploy would upload it (the core's .wasm inside,
#      under the size limit); the npm pack tarball checked, and installed into an app outside
#      the repository with today's wrangler on Node 22, which does a confirmed round trip
#   6. short modes of the chaos (convergence under faults) and of the benchmarks
#   7. a short libFuzzer run of the frame decoder and the predicate evaluator
# Runs on Node 22 (scripts/node22.sh).
# Prints "N passed, N failed" (suites) at the end; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/node22.sh
export NODE_PATH=/usr/share/nodejs WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
mkdir -p test-output
passed=0 failed=0 failures=()

run() {
  local name=$1; shift
  echo "=== $name: $*"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - start)) s)"
  fi
}

run cpp-native cmake --workflow --preset native
run cpp-wasm bash scripts/build-wasm.sh tests
run build npm run --silent build
run workerd npx vitest run --config tests/worker/vitest.config.ts
run client-unit npx vitest run --config tests/client/vitest.config.ts
run client-e2e npx vitest run --config tests/e2e/vitest.config.ts
run typecheck-tests npx tsc --noEmit -p tests/tsconfig.json
run typecheck-examples npx tsc --noEmit -p examples/tsconfig.json
run wire-tables node --test tests/wire-tables.test.mjs
run browser node --test --test-reporter=spec tests/browser/*.test.mjs
run deploy-bundles bash scripts/check-bundles.sh
run package node --test tests/package/package.test.mjs
run chaos-short env CHAOS_MODE=short npx vitest run --config tests/chaos/vitest.config.ts
run bench-smoke bash scripts/bench.sh --smoke
run fuzz-smoke bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || { echo "failed: ${failures[*]}"; exit 1; }

#!/usr/bin/env bash
# Benchmarks: seqsync against the plain-JS floor (bench/), one run, ratios.
#   bash scripts/bench.sh            full run (several minutes); writes
#                                    test-output/bench.json and docs/benchmarks.md
#   bash scripts/bench.sh --smoke    tiny counts, < 60 s; non-zero exit if anything
#                                    fails to converge
#   bash scripts/bench.sh --profile inserts|fanout|throughput|initial|catchup|wake|hibernated|sqltrace [systems]
#                                    CPU profiles of one workload, DO side and client side
#                                    (test-output/bench-profiles/)
#   bash scripts/bench.sh --perf [seconds]
#                                    workerd's real CPU per confirmed write, by part of the
#                                    runtime (Linux perf; 20 writers, each system in turn)
# Other arguments go to bench/run.ts (--only=writes,fanout,fairness,catchup,initial,wake,sizes,memory,
# --no-docs, --report-only [--docs]).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/node22.sh
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
[ -f worker/build/core.wasm ] || bash scripts/build-wasm.sh
out=test-output/bench-build
mkdir -p "$out"
npx esbuild bench/run.ts bench/subscriber.ts bench/profile.ts bench/perf.ts --bundle --platform=node --format=esm \
  --target=node22 --packages=external --outdir="$out" --out-extension:.js=.mjs --log-level=warning
# The reload scenario's page runs in Chromium: bundled whole, for the browser.
npx esbuild bench/reload-page.ts --bundle --format=esm --platform=browser --target=es2022 \
  --define:process.env.NODE_ENV='"production"' --outfile="$out/reload-page.js" --log-level=warning
if [ "${1:-}" = "--perf" ]; then
  shift
  exec node "$out/perf.mjs" "$@"
fi
if [ "${1:-}" = "--profile" ]; then
  shift
  exec node "$out/profile.mjs" "$@"
fi
exec node "$out/run.mjs" "$@"

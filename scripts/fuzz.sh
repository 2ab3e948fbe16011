#!/usr/bin/env bash
set -euo pipefail
# Builds the libFuzzer targets in tests/fuzz/ with clang under ASan + UBSan and
# runs each for SECONDS (default 30), seeded from the frames and predicates in
# tests/vectors/. Usage: scripts/fuzz.sh [seconds]. RapidJSON 1.1.0's internal
# stack does arithmetic on a null pointer (harmless, upstream), hence
# -fno-sanitize=pointer-overflow.
cd "$(dirname "$0")/.."
seconds="${1:-30}"
out=build/fuzz
mkdir -p "$out/frame-corpus" "$out/predicate-corpus"
srcs=(cpp/src/core.cc cpp/src/frame_writer.cc cpp/src/json_util.cc cpp/src/options.cc
      cpp/src/predicate.cc cpp/src/schema.cc cpp/src/status.cc cpp/src/storage.cc cpp/src/sqlite_storage.cc)
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize=pointer-overflow
       -fno-sanitize-recover=undefined -Icpp/include -Icpp/src)
for target in frame predicate; do
  echo "+ clang++ tests/fuzz/${target}_fuzz.cc"
  clang++-14 "${flags[@]}" "${srcs[@]}" "tests/fuzz/${target}_fuzz.cc" -lsqlite3 -o "$out/${target}_fuzz"
done
node -e '
  const fs = require("fs"), out = process.argv[1]
  const cases = JSON.parse(fs.readFileSync("tests/vectors/malformed.json", "utf8")).cases
  const steps = JSON.parse(fs.readFileSync("tests/vectors/session.json", "utf8")).steps
  const frames = [...cases.map((c) => c.frame), ...steps.map((s) => s.send)]
  frames.forEach((f, i) => fs.writeFileSync(`${out}/frame-corpus/seed${i}`, f))
  let n = 0
  for (const f of frames) {
    let v; try { v = JSON.parse(f) } catch { continue }
    for (const s of [v, ...((v && v.subs) || [])]) {
      if (s && s.where) fs.writeFileSync(`${out}/predicate-corpus/seed${n++}`, JSON.stringify(s.where))
    }
  }' "$out"
total=0
for target in frame predicate; do
  echo "+ ${target}_fuzz for ${seconds}s"
  log="$out/${target}.log"
  "$out/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -artifact_prefix="$out/" \
    "$out/${target}-corpus" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' || echo 0)
  echo "  ${target}: ${runs} executions, no crash"
  total=$((total + runs))
done
echo "fuzz: ${total} executions in total, no crash"

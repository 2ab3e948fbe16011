#!/usr/bin/env bash
set -euo pipefail
# Builds the libFuzzer targets in tests/fuzz/ with clang under ASan + UBSan and
# runs each for SECONDS (default 30; the two run side by side), seeded from the
# frames and predicates in tests/vectors/ and, for the frame target, from
# hostile frames in its expanding input format (tests/fuzz/frame_fuzz.cc): the
# 3 MB `sub` of 1.5M zeros that outgrew the wasm heap, a scaled one of 400k, a
# frame just under and just over max_json_values, and other long repeats.
# Usage: scripts/fuzz.sh [seconds].
#
# Fails (non-zero, with the log's tail) on a crash, a trapped check, an
# allocation over the limits below, or a target that made no executions (no
# 'Done N runs' line, or N = 0: a fuzzer that never ran proves nothing).
#
# Memory limits. -max_len stays small: the frame target expands its input, so
# frames with millions of values are reachable anyway, and it checks the heap
# each frame holds against the frame's size itself. -malloc_limit_mb fails any
# single allocation above it; the frame target's largest legitimate one is the
# expanded frame (<= 4 MiB), the 1.5M-zero attack needs a 26 MB block.
# -rss_limit_mb bounds the process (ASan's quarantine included).
#
# The core's objects are built once for both targets and kept in build/fuzz/obj
# until a source or a header they include changes. RapidJSON 1.1.0's internal
# stack does arithmetic on a null pointer (harmless, upstream), hence
# -fno-sanitize=pointer-overflow.
cd "$(dirname "$0")/.."
seconds="${1:-30}"
# (-max_total_time=0 would mean no limit at all.)
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: seconds must be a positive integer, not '$seconds'" >&2; exit 2; }
out=build/fuzz
obj="$out/obj"
mkdir -p "$obj"
mkdir -p "$out/frame-corpus" "$out/predicate-corpus"
# Every source of the core and its SQLite storage, so a file added to cpp/src
# is never left out of the link.
srcs=(cpp/src/*.cc)
flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize=pointer-overflow
       -fno-sanitize-recover=undefined -Icpp/include -Icpp/src)
flags_id=$(echo "clang++-14 ${flags[*]}" | md5sum | cut -c1-8)
declare -A run_flags=(
  [frame]="-max_len=4096 -malloc_limit_mb=16 -rss_limit_mb=1024 -dict=$out/frame.dict"
  [predicate]="-max_len=4096 -rss_limit_mb=1024"
)

# stale OBJECT: true iff OBJECT is missing, was built with other flags, or a
# file in its dependency list (.d, from -MMD) is newer.
stale() {
  local o=$1 d=${1%.o}.d
  [[ -f "$o" && -f "$d" && "$(cat "$o.flags" 2>/dev/null)" == "$flags_id" ]] || return 0
  local dep
  for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d"); do
    [[ -f "$dep" && ! "$dep" -nt "$o" ]] || return 0
  done
  return 1
}

start=$SECONDS
pids=() objs=()
# Objects take the time the build began, so a source edited while it
# compiles is newer than its object and is built again next time.
stamp="$obj/.stamp"
touch "$stamp"
for src in "${srcs[@]}"; do
  o="$obj/$(basename "${src%.cc}").o"
  objs+=("$o")
  if stale "$o"; then
    echo "+ clang++ $src"
    ( clang++-14 "${flags[@]}" -fsanitize=fuzzer-no-link -MMD -MF "${o%.o}.d" -c "$src" -o "$o" &&
      touch -r "$stamp" "$o" && echo "$flags_id" >"$o.flags" ) &
    pids+=($!)
  fi
done
for target in frame predicate; do
  echo "+ clang++ tests/fuzz/${target}_fuzz.cc"
  clang++-14 "${flags[@]}" -fsanitize=fuzzer -c "tests/fuzz/${target}_fuzz.cc" -o "$obj/${target}_fuzz.o" &
  pids+=($!)
done
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[[ $failed == 0 ]] || { echo "fuzz: build failed" >&2; exit 1; }
for target in frame predicate; do
  clang++-14 "${flags[@]}" -fsanitize=fuzzer "${objs[@]}" "$obj/${target}_fuzz.o" -lsqlite3 -o "$out/${target}_fuzz"
done
echo "  built in $((SECONDS - start)) s"

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
  }
  // Writes with keys of their own (the harness binds the id of an insert from k),
  // so mutants of k make new rows, and a resume for the second socket.
  const more = [
    {t: "mut", id: "w1", ops: [{c: "tasks", op: "insert", k: "t1", cols: {title: "a", done: 0, rank: 1.5}}]},
    {t: "mut", id: "w2", ops: [{c: "tasks", op: "update", k: "t1", cols: {done: 1}},
                              {c: "tasks", op: "insert", k: "t2", cols: {title: "b"}}]},
    {t: "mut", id: "w3", ops: [{c: "tasks", op: "delete", k: "t1"}]},
    {t: "mut", id: "w4", ops: [{c: "notes", op: "insert", k: "n1", cols: {body: "x"}}]},
    {t: "mut", id: "w5", ops: [{c: "messages", op: "insert", k: "m9", cols: {author: "a", content: "c", created_at: 3}}]},
    {t: "call", id: "w6", name: "echo", args: {x: [1, 2]}},
    {t: "sub", id: "t", c: "tasks", where: {type: "func", name: "eq", args: [{type: "ref", path: ["done"]}, {type: "val", value: 1}]}},
    {t: "unsub", id: "t"},
    {t: "hello", v: 1, epoch: "fuzz", since: 0, subs: [{id: "t", c: "tasks", resume: true}]},
    {t: "recv", bytes: 4096},
    {t: "presence", watch: true},
    {t: "presence", tab: "t1", state: {typing: true, row: "m9", at: [1, 2]}},
    {t: "presence", tab: "t1", state: null},
    {t: "page", id: "p", c: "tasks", orderBy: [{col: "rank", dir: "desc"}, {col: "title"}], limit: 3,
     cursor: {values: [1.5, "a"], k: "t1"}},
    {t: "page", id: "q", c: "tasks", where: {type: "func", name: "eq", args: [{type: "ref", path: ["done"]}, {type: "val", value: 0}]}, limit: 2},
  ]
  more.forEach((f, i) => fs.writeFileSync(`${out}/frame-corpus/write${i}`, JSON.stringify(f)))
  // Inputs of several frames (0x1e between them): writes to one key in turn,
  // and the golden session from one socket.
  const RS = "\x1e"
  fs.writeFileSync(`${out}/frame-corpus/sequence-writes`, [0, 1, 6, 2, 8, 7, 0, 1]
    .map((i, n) => JSON.stringify({...more[i], ...(more[i].t === "mut" ? {id: `q${n}`} : {})})).join(RS))
  fs.writeFileSync(`${out}/frame-corpus/sequence-session`, steps.slice(0, 8).map((s) => s.send).join(RS))
  // Expanding seeds (frame_fuzz.cc): 0x7f, r (2 bytes, big-endian), then
  // prefix 0x7f element 0x7f suffix; the element is repeated 1 + 32*r times.
  const M = 0x7f
  const repeat = (name, times, prefix, element, suffix) => {
    const r = Math.ceil((times - 1) / 32)
    fs.writeFileSync(`${out}/frame-corpus/${name}`, Buffer.concat([
      Buffer.from([M, r >> 8, r & 255]), Buffer.from(prefix), Buffer.from([M]),
      Buffer.from(element), Buffer.from([M]), Buffer.from(suffix)]))
  }
  const sub = "{\"t\":\"sub\",\"id\":\"x\",\"c\":\"messages\",\"where\":["
  repeat("attack-1.5M-zeros", 1500000, sub, "0", "]}")      // the 3 MB frame itself
  repeat("attack-400k-zeros", 400000, sub, "0", "]}")
  // 5 values besides the array elements: 99,969 + 5 is under 100,000, 100,001 + 5 over.
  repeat("values-just-under", 99969, sub, "0", "]}")
  repeat("values-just-over", 100001, sub, "0", "]}")
  repeat("objects-200k", 200000, sub, "{}", "]}")
  repeat("members-200k", 200000, "{\"t\":\"sub\",\"id\":\"x\",\"c\":\"messages\",\"where\":{", "\"a\":[]", "}}")
  repeat("ops-600", 600, "{\"t\":\"mut\",\"id\":\"big\",\"ops\":[",
         "{\"c\":\"notes\",\"op\":\"insert\",\"k\":\"a\",\"cols\":{\"id\":\"a\"}}", "]}")
  repeat("hello-subs-100", 100, "{\"t\":\"hello\",\"v\":1,\"subs\":[", "{\"id\":\"m\",\"c\":\"messages\"}", "]}")
  repeat("call-args-150k", 150000, "{\"t\":\"call\",\"id\":\"c\",\"name\":\"echo\",\"args\":[", "null", "]}")
  repeat("long-string", 70000, "{\"t\":\"mut\",\"id\":\"s\",\"ops\":[{\"c\":\"notes\",\"op\":\"insert\",\"k\":\"b\",\"cols\":{\"id\":\"b\",\"body\":\"",
         "x", "\"}}]}")
  repeat("over-frame-limit", 1200000, sub, "1.5", "]}")  // 4.8 MB: TOO_LARGE
  // 4 MB strings: the RapidJSON writer would reserve 6x each before writing.
  repeat("call-args-4mb-string", 3980000, "{\"t\":\"call\",\"id\":\"c3\",\"name\":\"echo\",\"args\":\"", "x", "\"}")
  repeat("mut-value-1.9mb-string", 1900000, "{\"t\":\"mut\",\"id\":\"v\",\"ops\":[{\"c\":\"notes\",\"op\":\"insert\",\"k\":\"c\",\"cols\":{\"id\":\"c\",\"body\":\"",
         "x", "\"}}]}")
  // A dictionary of the protocol words, so mutations splice whole fields.
  const words = ["{\"t\":\"", "\"t\"", "\"v\":1", "\"id\":\"", "\"c\":\"", "\"k\":\"", "\"op\":\"",
    "\"ops\":[", "\"cols\":{", "\"subs\":[", "\"where\":", "\"orderBy\":[", "\"col\"", "\"dir\"",
    "\"desc\"", "\"nulls\"", "\"first\"", "\"limit\":", "\"offset\":", "\"since\":", "\"epoch\":",
    "\"resume\":true", "\"args\":", "\"name\":", "hello", "sub", "unsub", "recv", "\"bytes\":", "page", "\"cursor\":{", "\"values\":[", "mut", "call", "echo",
    "insert", "update", "delete", "messages", "tasks", "notes", "author", "content", "created_at", "title",
    "done", "rank", "body", "{\"type\":\"func\",\"name\":\"", "{\"type\":\"ref\",\"path\":[\"",
    "{\"type\":\"val\",\"value\":", "eq", "gt", "gte", "lt", "lte", "in", "like", "and", "or", "not",
    "isNull", "isUndefined", "presence", "\"tab\":\"", "\"state\":", "\"watch\":", "null", "true", "false", "1e308", "-0", "\\u0000", "\\ud800", "\x7f"]
  fs.writeFileSync(`${out}/frame.dict`, words.map((w) => JSON.stringify(w).replace(/\x7f/g, "\\x7F")).join("\n") + "\n")
  ' "$out"

# run TARGET: fuzzes TARGET for $seconds; the log is build/fuzz/TARGET.log.
run() {
  local target=$1
  # shellcheck disable=SC2086
  "$out/${target}_fuzz" -max_total_time="$seconds" ${run_flags[$target]} -artifact_prefix="$out/${target}-" \
    "$out/${target}-corpus" >"$out/${target}.log" 2>&1
}
echo "+ frame_fuzz and predicate_fuzz for ${seconds}s each, side by side"
run frame & frame_pid=$!
run predicate & predicate_pid=$!
declare -A rc
wait "$frame_pid" && rc[frame]=0 || rc[frame]=$?
wait "$predicate_pid" && rc[predicate]=0 || rc[predicate]=$?

total=0
bad=0
for target in frame predicate; do
  log="$out/${target}.log"
  if [[ ${rc[$target]} != 0 ]]; then
    echo "fuzz: ${target}_fuzz FAILED (exit ${rc[$target]}; flags ${run_flags[$target]}); its log ends:" >&2
    tail -40 "$log" >&2
    bad=1
    continue
  fi
  done_line=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  if [[ -z "$done_line" ]]; then
    echo "fuzz: ${target}_fuzz printed no 'Done N runs' line, so it cannot be shown to have run; see $log" >&2
    tail -20 "$log" >&2
    bad=1
    continue
  fi
  runs=$(echo "$done_line" | awk '{print $2}')
  if [[ "$runs" -eq 0 ]]; then
    echo "fuzz: ${target}_fuzz made zero executions; see $log" >&2
    bad=1
    continue
  fi
  rss=$(grep -Eo 'rss: [0-9]+Mb' "$log" | tail -1 || true)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 || true)
  echo "  ${target}: ${runs} executions, ${cov:-cov: ?}, ${rss:-rss: ?}, no crash"
  total=$((total + runs))
done
[[ $bad == 0 ]] || { echo "fuzz: FAILED" >&2; exit 1; }
echo "fuzz: ${total} executions in total, no crash ($((SECONDS - start)) s with the build)"

// The wire tables have one source of truth each, and every copy must agree with it:
//
//   error codes   cpp/include/seqsync/status.h (enum Code) + cpp/src/status.cc (CodeName),
//                 worker/src/protocol/codes.ts (ErrorCode), docs/protocol.md §6
//   close codes   worker/src/protocol/codes.ts (CloseCode), docs/protocol.md §8, and every
//                 close code the C++ core sets (literals or named constants under cpp/)
//   options       what ParseOptions accepts (cpp/src), SyncOptions
//                 (worker/src/do/sync-options.ts), docs/protocol.md §9.1
//   welcome       the keys LimitsJson emits (cpp/src), the Limits type
//                 (worker/src/protocol/frames.ts), docs/protocol.md §5.1 and §9.1
//
// The files are read as text and parsed with small regexes, so the test needs no build. Every
// parser takes text and returns plain data, and every comparison returns a list of
// disagreements, so the second half of this file feeds them doctored copies and checks that
// each kind of disagreement is caught.
//
// The last part checks that the repository points at nothing outside it (notes a person who
// cloned it does not have), and that every test the docs name exists.
//
// Run: node --test tests/wire-tables.test.mjs

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const root = fileURLToPath(new URL('..', import.meta.url))
const read = (rel) => readFileSync(path.join(root, rel), 'utf8')

// ---------------------------------------------------------------------------------------------
// Masking: blank out comments and the insides of string literals (same length, newlines kept),
// so braces and names inside them do not confuse the block matching below. The quotes stay.

function mask(text, { raw = false, template = false } = {}) {
  const out = text.split('')
  const blank = (from, to) => {
    for (let i = from; i < to; i++) if (out[i] !== '\n') out[i] = ' '
  }
  let i = 0
  while (i < text.length) {
    const c = text[i]
    const next = text[i + 1]
    if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i)
      const stop = end < 0 ? text.length : end
      blank(i, stop)
      i = stop
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2)
      const stop = end < 0 ? text.length : end + 2
      blank(i, stop)
      i = stop
    } else if (raw && c === 'R' && next === '"' && !/\w/.test(text[i - 1] ?? '')) {
      // C++ raw string R"delim( … )delim"
      const open = text.indexOf('(', i + 2)
      const delim = text.slice(i + 2, open)
      const close = text.indexOf(`)${delim}"`, open)
      const stop = close < 0 ? text.length : close + delim.length + 2
      blank(i + 1, stop)
      i = stop
    } else if (c === '"' || c === "'" || (template && c === '`')) {
      let j = i + 1
      while (j < text.length && text[j] !== c && !(c !== '`' && text[j] === '\n')) {
        j += text[j] === '\\' ? 2 : 1
      }
      blank(i + 1, Math.min(j, text.length))
      i = j + 1
    } else {
      i++
    }
  }
  return out.join('')
}

const maskCpp = (text) => mask(text, { raw: true })
const maskTs = (text) => mask(text, { template: true })

/** The index just past the `}` that closes the `{` at `open` (in masked text). */
function closingBrace(masked, open) {
  let depth = 0
  for (let i = open; i < masked.length; i++) {
    if (masked[i] === '{') depth++
    else if (masked[i] === '}' && --depth === 0) return i + 1
  }
  return masked.length
}

/**
 * The top-level blocks of a C++ file: every `{ … }` not nested in another, except that
 * namespace and extern "C" blocks are looked into rather than returned. Each block has the
 * name of what it defines (a function's name, a table's variable name), its header, and its
 * text (original, unmasked).
 */
export function cppBlocks(text) {
  const masked = maskCpp(text)
  const blocks = []
  const scan = (from, to) => {
    let headerStart = from
    for (let i = from; i < to; i++) {
      const ch = masked[i]
      if (ch === ';' || ch === '}') headerStart = i + 1
      else if (ch === '#') {
        // a preprocessor line is never part of a header
        const end = masked.indexOf('\n', i)
        i = end < 0 ? to : end
        headerStart = i + 1
      } else if (ch === '{') {
        const end = closingBrace(masked, i)
        const header = masked.slice(headerStart, i).trim()
        if (/(^|\s)namespace\b|^extern\b/.test(header)) {
          scan(i + 1, end - 1)
        } else {
          const fn = header.match(/([A-Za-z_]\w*)\s*\(/)
          const variable = header.match(/([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*=?\s*$/)
          blocks.push({ name: (fn ?? variable)?.[1] ?? '', header, text: text.slice(i, end) })
        }
        i = end - 1
        headerStart = end
      }
    }
  }
  scan(0, masked.length)
  return blocks
}

/** The body (between the braces) of the first `{` after a match of `opener` in `text`. */
function bodyAfter(text, masked, opener) {
  const m = opener.exec(masked)
  if (!m) return null
  const open = masked.indexOf('{', m.index)
  if (open < 0) return null
  const end = closingBrace(masked, open)
  return { text: text.slice(open + 1, end - 1), masked: masked.slice(open + 1, end - 1) }
}

/** `s` with every nested `{ … }` removed, so only its own top level remains. */
function topLevel(s) {
  let prev
  do {
    prev = s
    s = s.replace(/\{[^{}]*\}/g, ' ')
  } while (s !== prev)
  return s
}

// ---------------------------------------------------------------------------------------------
// Parsers. Each takes file text and returns plain data (Maps and Sets).

/** enum class Code in status.h, and CodeName in status.cc: wire number -> wire name. */
export function parseCppCodes(statusH, statusCc) {
  const problems = []
  const body = bodyAfter(statusH, maskCpp(statusH), /\benum\s+class\s+Code\b/)
  if (!body) return { codes: new Map(), problems: ['status.h: no `enum class Code`'] }
  const numbers = new Map() // enumerator -> number
  for (const m of body.masked.matchAll(/\bk(\w+)\s*=\s*(\d+)/g)) numbers.set(m[1], Number(m[2]))
  const names = new Map() // enumerator -> wire name
  // `case Code::kTooLarge: return "TOO_LARGE";` or a table `{Code::kTooLarge, "TOO_LARGE"}`
  for (const m of statusCc.matchAll(/Code::k(\w+)\b[^"\n;]*?"([A-Z][A-Z0-9_]*)"/g)) names.set(m[1], m[2])
  const codes = new Map()
  for (const [enumerator, n] of numbers) {
    const name = names.get(enumerator)
    if (name === undefined) problems.push(`status.cc: CodeName has no name for Code::k${enumerator}`)
    if (codes.has(n)) problems.push(`status.h: two enumerators are ${n}`)
    codes.set(n, name ?? `(k${enumerator})`)
  }
  for (const enumerator of names.keys()) {
    if (!numbers.has(enumerator)) problems.push(`status.cc: CodeName names Code::k${enumerator}, which status.h lacks`)
  }
  return { codes, problems }
}

/** `export const NAME = { KEY: 123, … }` in a TS file: KEY -> number. */
export function parseTsConst(text, name) {
  const body = bodyAfter(text, maskTs(text), new RegExp(`\\bconst\\s+${name}\\b[^=]*=`))
  const out = new Map()
  if (!body) return out
  for (const m of topLevel(body.masked).matchAll(/([A-Za-z_]\w*)\s*:\s*(\d+)/g)) out.set(m[1], Number(m[2]))
  return out
}

/** The property names of `interface NAME { … }` or `type NAME = { … }` in a TS file. */
export function parseTsInterface(text, name) {
  const body = bodyAfter(text, maskTs(text), new RegExp(`\\b(?:interface\\s+${name}\\b|type\\s+${name}\\s*=)`))
  const out = new Set()
  if (!body) return out
  const own = topLevel(body.masked)
  for (const m of own.matchAll(/(?:^|[;,\n{])\s*(?:readonly\s+)?([A-Za-z_$][\w$]*)\s*\??\s*:/g)) out.add(m[1])
  return out
}

/** The text of section `n` of a markdown file (`## n.` up to the next `## `), or of `### n`. */
export function mdSection(md, n) {
  const level = String(n).includes('.') ? '###' : '##'
  const start = md.search(new RegExp(`^${level} ${String(n).replace('.', '\\.')}\\.?\\s`, 'm'))
  if (start < 0) return ''
  const bodyStart = md.indexOf('\n', start) + 1
  const rest = md.slice(bodyStart)
  const end = rest.search(level === '##' ? /^## /m : /^###? /m)
  return md.slice(start, end < 0 ? md.length : bodyStart + end)
}

/** docs/protocol.md §6: `| N | \`NAME\` | … |` rows -> number -> name. */
export function parseDocCodes(md) {
  const out = new Map()
  for (const m of mdSection(md, 6).matchAll(/^\|\s*(\d+)\s*\|\s*`?([A-Z][A-Z0-9_]*)`?\s*\|/gm)) out.set(Number(m[1]), m[2])
  return out
}

/** docs/protocol.md §8: the numbers in the first column of its table. */
export function parseDocCloseCodes(md) {
  const out = new Set()
  for (const m of mdSection(md, 8).matchAll(/^\|\s*(\d{4})\s*\|/gm)) out.add(Number(m[1]))
  return out
}

/** docs/protocol.md §9.1: the options in the first column of its table. */
export function parseDocOptions(md) {
  const out = new Set()
  for (const m of mdSection(md, 9.1).matchAll(/^\|\s*`([A-Za-z]\w*)`\s*\|/gm)) out.add(m[1])
  return out
}

/** docs/protocol.md §5.1: the keys listed after "the values in force for", up to "(§9)". */
export function parseDocWelcomeLimits(md) {
  const section = mdSection(md, 5.1).replace(/\s+/g, ' ')
  const m = section.match(/values in force for (.*?)\(§9\)/)
  return new Set(m ? [...m[1].matchAll(/`([A-Za-z]\w*)`/g)].map((x) => x[1]) : [])
}

/**
 * Close codes the C++ side sets: literals assigned to a `close_code`, and named constants
 * (`constexpr int kCloseProtocol = 4400;`, or the entries of an enum whose name says Close).
 * `files` is a list of { path, text }.
 */
export function parseCppCloseCodes(files) {
  const literals = new Map() // number -> [where]
  const named = new Map() // constant name -> number
  for (const { path: p, text } of files) {
    const masked = maskCpp(text)
    for (const m of masked.matchAll(/\bclose_?[Cc]ode\w*\s*(?:=|\(|\{)\s*(\d+)/g)) {
      const n = Number(m[1])
      if (n === 0) continue
      literals.set(n, [...(literals.get(n) ?? []), p])
    }
    for (const m of masked.matchAll(/\bconstexpr\b[^;=]*?\b(k?\w*[Cc]lose\w*)\s*(?:=|\{)\s*(\d+)/g)) named.set(m[1], Number(m[2]))
    for (const m of masked.matchAll(/\benum\s+(?:class\s+)?(\w*Close\w*)[^{;]*\{/g)) {
      const body = masked.slice(m.index + m[0].length, closingBrace(masked, m.index + m[0].length - 1) - 1)
      for (const e of body.matchAll(/\b(\w+)\s*=\s*(\d+)/g)) named.set(`${m[1]}::${e[1]}`, Number(e[2]))
    }
  }
  return { literals, named }
}

/** kCloseProtocol, kProtocolClose, CloseCode::kProtocol -> PROTOCOL (to match CloseCode's keys). */
export function closeConstantKey(name) {
  const last = name.split('::').pop()
  return last
    .replace(/^k(?=[A-Z])/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/^CLOSE_?|_?CLOSE(_CODE)?$/g, '')
}

/**
 * The option names ParseOptions accepts: every whole camelCase string literal in the function
 * ParseOptions, and in any other top-level block of the same file that names "maxFrameBytes"
 * (a table of options, say), except a block that builds the welcome's limits.
 * `files` is a list of { path, text } (the C++ sources).
 */
export function parseCppOptionNames(files) {
  const out = new Set()
  const where = []
  for (const { path: p, text } of files) {
    const blocks = cppBlocks(text)
    const parser = blocks.find((b) => b.name === 'ParseOptions' && /\)\s*(?:const\s*)?$/.test(b.header))
    if (!parser) continue
    where.push(p)
    for (const b of blocks) {
      if (b !== parser && (!b.text.includes('"maxFrameBytes"') || isLimitsBlock(b))) continue
      for (const m of b.text.matchAll(/"([a-z][A-Za-z0-9]*)"/g)) out.add(m[1])
    }
  }
  return { names: out, where }
}

const isLimitsBlock = (b) => /limits/i.test(b.name) && /max[A-Z]\w*Bytes/.test(b.text)

/**
 * The keys of the welcome's `limits` object, as the core builds it: the top-level block named
 * like LimitsJson that mentions maxFrameBytes. Keys are taken from escaped JSON (`\"key\":`),
 * from a JSON writer (`Key("key")`) and from whole camelCase string literals.
 */
export function parseCppLimitsKeys(files) {
  for (const { path: p, text } of files) {
    const block = cppBlocks(text).find(isLimitsBlock)
    if (!block) continue
    const keys = new Set()
    for (const m of block.text.matchAll(/\\"([A-Za-z]\w*)\\"\s*:/g)) keys.add(m[1])
    for (const m of block.text.matchAll(/"([a-z][A-Za-z0-9]*)"/g)) keys.add(m[1])
    return { keys, where: `${p} ${block.name}` }
  }
  return { keys: new Set(), where: null }
}

// ---------------------------------------------------------------------------------------------
// Comparisons. Each returns a list of disagreements, in words; an empty list means agreement.

/** sources: { label: Map<number, name> }. Every number must have the same name everywhere. */
export function compareNumbered(what, sources) {
  const problems = []
  const labels = Object.keys(sources)
  const numbers = new Set(labels.flatMap((l) => [...sources[l].keys()]))
  for (const n of [...numbers].sort((a, b) => a - b)) {
    const names = labels.map((l) => sources[l].get(n))
    if (names.every((x) => x === names[0])) continue
    problems.push(`${what} ${n}: ` + labels.map((l, i) => `${names[i] ?? '(missing)'} in ${l}`).join(', '))
  }
  // the same name under two numbers in one source
  for (const l of labels) {
    const seen = new Map()
    for (const [n, name] of sources[l]) {
      if (seen.has(name)) problems.push(`${what} ${name} is both ${seen.get(name)} and ${n} in ${l}`)
      seen.set(name, n)
    }
  }
  return problems
}

/** sources: { label: Set<name> }. Every name must be in every source. */
export function compareSets(what, sources) {
  const problems = []
  const labels = Object.keys(sources)
  const all = new Set(labels.flatMap((l) => [...sources[l]]))
  for (const name of [...all].sort()) {
    const missing = labels.filter((l) => !sources[l].has(name))
    if (missing.length === 0) continue
    const present = labels.filter((l) => sources[l].has(name))
    problems.push(`${what} ${name}: in ${present.join(', ')}; missing from ${missing.join(', ')}`)
  }
  return problems
}

/** Every name of `subset` must be in each of `supersets` ({ label: Set }). */
export function compareSubset(what, [subLabel, subset], supersets) {
  const problems = []
  for (const name of [...subset].sort()) {
    const missing = Object.keys(supersets).filter((l) => !supersets[l].has(name))
    if (missing.length) problems.push(`${what} ${name}: in ${subLabel}; missing from ${missing.join(', ')}`)
  }
  return problems
}

/** Error codes: status.h + status.cc, codes.ts ErrorCode, protocol.md §6. */
export function checkErrorCodes({ statusH, statusCc, codesTs, protocolMd }) {
  const cpp = parseCppCodes(statusH, statusCc)
  const ts = new Map([...parseTsConst(codesTs, 'ErrorCode')].map(([name, n]) => [n, name]))
  const doc = parseDocCodes(protocolMd)
  return [
    ...cpp.problems,
    ...compareNumbered('error code', {
      'status.h/status.cc': cpp.codes,
      'codes.ts ErrorCode': ts,
      'protocol.md §6': doc,
    }),
  ]
}

/** Close codes: codes.ts CloseCode, protocol.md §8, and the C++ side. */
export function checkCloseCodes({ codesTs, protocolMd, cppFiles }) {
  const ts = parseTsConst(codesTs, 'CloseCode')
  const tsNumbers = new Set(ts.values())
  const doc = parseDocCloseCodes(protocolMd)
  const problems = compareSets('close code', { 'codes.ts CloseCode': tsNumbers, 'protocol.md §8': doc })
  const cpp = parseCppCloseCodes(cppFiles)
  for (const [n, where] of cpp.literals) {
    if (!tsNumbers.has(n)) problems.push(`close code ${n}: set in ${[...new Set(where)].join(', ')}; missing from codes.ts CloseCode`)
    if (!doc.has(n)) problems.push(`close code ${n}: set in ${[...new Set(where)].join(', ')}; missing from protocol.md §8`)
  }
  for (const [name, n] of cpp.named) {
    const key = closeConstantKey(name)
    if (ts.has(key) && ts.get(key) !== n) problems.push(`close code ${key}: ${n} in C++ (${name}), ${ts.get(key)} in codes.ts CloseCode`)
    if (!tsNumbers.has(n)) problems.push(`close code ${n} (C++ ${name}): missing from codes.ts CloseCode`)
    if (!doc.has(n)) problems.push(`close code ${n} (C++ ${name}): missing from protocol.md §8`)
  }
  return problems
}

/** Options: ParseOptions, SyncOptions, protocol.md §9.1 (equal sets). */
export function checkOptions({ cppFiles, syncOptionsTs, protocolMd }) {
  return compareSets('option', {
    ParseOptions: parseCppOptionNames(cppFiles).names,
    SyncOptions: parseTsInterface(syncOptionsTs, 'SyncOptions'),
    'protocol.md §9.1': parseDocOptions(protocolMd),
  })
}

/**
 * The welcome's limits: every key LimitsJson emits is an option (ParseOptions, §9.1), is in the
 * Limits type and in §5.1's list; every key of the Limits type and of §5.1 is emitted.
 */
export function checkWelcomeLimits({ cppFiles, framesTs, protocolMd }) {
  const emitted = parseCppLimitsKeys(cppFiles).keys
  const limitsType = parseTsInterface(framesTs, 'Limits')
  const problems = compareSubset('welcome limit', ['LimitsJson', emitted], {
    'frames.ts Limits': limitsType,
    'protocol.md §9.1': parseDocOptions(protocolMd),
    ParseOptions: parseCppOptionNames(cppFiles).names,
  })
  problems.push(...compareSubset('welcome limit', ['frames.ts Limits', limitsType], { LimitsJson: emitted }))
  problems.push(...compareSets('welcome limit', { LimitsJson: emitted, 'protocol.md §5.1': parseDocWelcomeLimits(protocolMd) }))
  return problems
}

// ---------------------------------------------------------------------------------------------
// The tree as it is.

function cppSources() {
  const out = []
  const walk = (dir) => {
    for (const entry of readdirSync(path.join(root, dir))) {
      const rel = path.posix.join(dir, entry)
      if (statSync(path.join(root, rel)).isDirectory()) walk(rel)
      else if (/\.(cc|h|hpp|cpp)$/.test(entry)) out.push({ path: rel, text: read(rel) })
    }
  }
  for (const dir of ['cpp/include', 'cpp/src', 'cpp/wasm']) if (existsSync(path.join(root, dir))) walk(dir)
  return out
}

function tree() {
  return {
    statusH: read('cpp/include/seqsync/status.h'),
    statusCc: read('cpp/src/status.cc'),
    codesTs: read('worker/src/protocol/codes.ts'),
    framesTs: read('worker/src/protocol/frames.ts'),
    syncOptionsTs: read('worker/src/do/sync-options.ts'),
    protocolMd: read('docs/protocol.md'),
    cppFiles: cppSources(),
  }
}

const report = (problems) => (problems.length ? `\n  ${problems.join('\n  ')}\n` : '')

describe('the wire tables agree in every copy', () => {
  const t = tree()

  test('the parsers find every table (so an empty parse cannot pass)', () => {
    const cpp = parseCppCodes(t.statusH, t.statusCc)
    assert.ok(cpp.codes.size >= 20 && cpp.codes.get(0) === 'OK' && cpp.codes.get(4) === 'TOO_LARGE', 'status.h / status.cc')
    assert.equal(parseTsConst(t.codesTs, 'ErrorCode').get('TOO_LARGE'), 4, 'codes.ts ErrorCode')
    assert.ok(parseDocCodes(t.protocolMd).size >= 20, 'protocol.md §6')
    assert.equal(parseTsConst(t.codesTs, 'CloseCode').get('PROTOCOL'), 4400, 'codes.ts CloseCode')
    assert.ok(parseDocCloseCodes(t.protocolMd).has(4400), 'protocol.md §8')
    const closes = parseCppCloseCodes(t.cppFiles)
    assert.ok(closes.literals.size + closes.named.size > 0, 'no close code found on the C++ side')
    const options = parseCppOptionNames(t.cppFiles)
    assert.ok(options.names.has('maxFrameBytes') && options.names.has('compactEvery') && options.names.size >= 20, `ParseOptions (found in ${options.where})`)
    assert.ok(parseTsInterface(t.syncOptionsTs, 'SyncOptions').has('maxFrameBytes'), 'SyncOptions')
    assert.ok(parseDocOptions(t.protocolMd).has('maxFrameBytes'), 'protocol.md §9.1')
    const limits = parseCppLimitsKeys(t.cppFiles)
    assert.ok(limits.where, 'no function named like LimitsJson that mentions maxFrameBytes under cpp/')
    assert.ok(limits.keys.has('maxFrameBytes') && limits.keys.has('retentionMs'), `LimitsJson (${limits.where})`)
    assert.ok(parseTsInterface(t.framesTs, 'Limits').has('maxFrameBytes'), 'frames.ts Limits')
    assert.ok(parseDocWelcomeLimits(t.protocolMd).has('maxFrameBytes'), 'protocol.md §5.1')
  })

  test('error codes: the same number and name in status.h/status.cc, codes.ts and protocol.md §6', () => {
    const problems = checkErrorCodes(t)
    assert.deepEqual(problems, [], report(problems))
  })

  test('close codes: codes.ts CloseCode, protocol.md §8 and the C++ core agree', () => {
    const problems = checkCloseCodes(t)
    assert.deepEqual(problems, [], report(problems))
  })

  test('options: ParseOptions, SyncOptions and protocol.md §9.1 name the same options', () => {
    const problems = checkOptions(t)
    assert.deepEqual(problems, [], report(problems))
  })

  test('welcome limits: every key LimitsJson emits is typed in Limits and documented, and nothing else', () => {
    const problems = checkWelcomeLimits(t)
    assert.deepEqual(problems, [], report(problems))
  })
})

// ---------------------------------------------------------------------------------------------
// The checks catch a copy that disagrees: each case doctors one copy of the real tree.

describe('the checks catch a copy that disagrees', () => {
  const t = tree()
  const doctor = (key, from, to) => {
    assert.ok(t[key].includes(from), `the doctoring of ${key} no longer applies: ${from}`)
    return { ...t, [key]: t[key].replace(from, to) }
  }
  const doctorCpp = (file, from, to) => {
    const f = t.cppFiles.find((x) => x.path === file)
    assert.ok(f && f.text.includes(from), `the doctoring of ${file} no longer applies: ${from}`)
    return { ...t, cppFiles: t.cppFiles.map((x) => (x === f ? { ...x, text: x.text.replace(from, to) } : x)) }
  }
  const anyCpp = (pattern) => t.cppFiles.find((x) => pattern.test(x.text))

  test('codes.ts renumbers a code', () => {
    const problems = checkErrorCodes(doctor('codesTs', 'TOO_LARGE: 4,', 'TOO_LARGE: 44,'))
    assert.ok(problems.some((p) => p.startsWith('error code 4:') && p.includes('(missing) in codes.ts')), report(problems))
    assert.ok(problems.some((p) => p.startsWith('error code 44:')), report(problems))
  })

  test('codes.ts renames a code', () => {
    const problems = checkErrorCodes(doctor('codesTs', 'TOO_LARGE: 4,', 'TOO_BIG: 4,'))
    assert.deepEqual(problems, ['error code 4: TOO_LARGE in status.h/status.cc, TOO_BIG in codes.ts ErrorCode, TOO_LARGE in protocol.md §6'])
  })

  test('codes.ts written on one line still parses, and a missing code is caught', () => {
    const oneLine = t.codesTs.replace(/export const ErrorCode = \{[\s\S]*?\} as const/, (block) =>
      block.replace(/\s*\n\s*/g, ' ').replace('RATE_LIMITED: 19,', ''),
    )
    const problems = checkErrorCodes({ ...t, codesTs: oneLine })
    assert.deepEqual(problems, ['error code 19: RATE_LIMITED in status.h/status.cc, (missing) in codes.ts ErrorCode, RATE_LIMITED in protocol.md §6'])
  })

  test('status.cc gives a code another wire name', () => {
    const problems = checkErrorCodes(doctor('statusCc', 'return "TOO_DEEP"', 'return "TOO_NESTED"'))
    assert.deepEqual(problems, ['error code 5: TOO_NESTED in status.h/status.cc, TOO_DEEP in codes.ts ErrorCode, TOO_DEEP in protocol.md §6'])
  })

  test('status.h adds a code no other copy has', () => {
    const problems = checkErrorCodes(doctor('statusH', 'kRateLimited = 19,', 'kRateLimited = 19,\n  kGone = 20,'))
    assert.ok(problems.includes('status.cc: CodeName has no name for Code::kGone'), report(problems))
    assert.ok(problems.some((p) => p.startsWith('error code 20:')), report(problems))
  })

  test('protocol.md §6 loses a row', () => {
    const problems = checkErrorCodes(doctor('protocolMd', '| 9 | `INVALID_KEY` |', '| 9 | `BAD_KEY` |'))
    assert.deepEqual(problems, ['error code 9: INVALID_KEY in status.h/status.cc, INVALID_KEY in codes.ts ErrorCode, BAD_KEY in protocol.md §6'])
  })

  test('codes.ts changes a close code', () => {
    const problems = checkCloseCodes(doctor('codesTs', 'PROTOCOL: 4400,', 'PROTOCOL: 4402,'))
    assert.ok(problems.some((p) => p.startsWith('close code 4400:') && p.includes('missing from codes.ts CloseCode')), report(problems))
    assert.ok(problems.some((p) => p.startsWith('close code 4402:')), report(problems))
  })

  test('the C++ core sets a close code no copy has', () => {
    const file = anyCpp(/close_code\s*=\s*1011/) ?? anyCpp(/constexpr[^;]*Close\w*\s*=\s*1011/)
    assert.ok(file, 'no 1011 on the C++ side to doctor')
    const doctored = file.text.replace(/(close_code\s*=\s*|Close\w*\s*=\s*)1011/, '$14999')
    const problems = checkCloseCodes({ ...t, cppFiles: t.cppFiles.map((x) => (x === file ? { ...x, text: doctored } : x)) })
    assert.ok(problems.some((p) => p.includes('4999') && p.includes('missing from codes.ts CloseCode')), report(problems))
    assert.ok(problems.some((p) => p.includes('4999') && p.includes('missing from protocol.md §8')), report(problems))
  })

  test('a named C++ close constant that differs from CloseCode is caught', () => {
    const extra = { path: 'cpp/include/seqsync/close_codes_doctored.h', text: 'inline constexpr int kCloseProtocol = 4401;\n' }
    const problems = checkCloseCodes({ ...t, cppFiles: [...t.cppFiles, extra] })
    assert.ok(problems.includes('close code PROTOCOL: 4401 in C++ (kCloseProtocol), 4400 in codes.ts CloseCode'), report(problems))
    assert.equal(closeConstantKey('CloseCode::kInternal'), 'INTERNAL')
    assert.equal(closeConstantKey('kProtocolClose'), 'PROTOCOL')
  })

  test('protocol.md §8 drops a close code', () => {
    const problems = checkCloseCodes(doctor('protocolMd', '| 1012 |', '| 1013 |'))
    assert.ok(problems.some((p) => p.startsWith('close code 1012:') && p.includes('missing from protocol.md §8')), report(problems))
    assert.ok(problems.some((p) => p.startsWith('close code 1013:')), report(problems))
  })

  test('ParseOptions accepts an option nothing else knows', () => {
    const file = parseCppOptionNames(t.cppFiles).where[0]
    const problems = checkOptions(doctorCpp(file, '"compactEvery"', '"compactEvery") || !std::strcmp(k, "maxWidgets"'))
    assert.deepEqual(problems, ['option maxWidgets: in ParseOptions; missing from SyncOptions, protocol.md §9.1'])
  })

  test('SyncOptions misses an option, written without a newline between fields', () => {
    const syncOptionsTs = t.syncOptionsTs.replace(/compactEvery\?: number\n/, '').replace('readPageRows?: number\n', 'readPageRows?: number; ')
    assert.notEqual(syncOptionsTs, t.syncOptionsTs)
    const problems = checkOptions({ ...t, syncOptionsTs })
    assert.deepEqual(problems, ['option compactEvery: in ParseOptions, protocol.md §9.1; missing from SyncOptions'])
  })

  test('protocol.md §9.1 documents an option that does not exist', () => {
    const problems = checkOptions(doctor('protocolMd', '| `compactEvery` |', '| `compactEvry` |'))
    assert.deepEqual(problems, [
      'option compactEvery: in ParseOptions, SyncOptions; missing from protocol.md §9.1',
      'option compactEvry: in protocol.md §9.1; missing from ParseOptions, SyncOptions',
    ])
  })

  test('LimitsJson emits a key the Limits type and the docs lack', () => {
    const limits = parseCppLimitsKeys(t.cppFiles)
    const file = limits.where.split(' ')[0]
    const problems = checkWelcomeLimits(doctorCpp(file, '\\"maxIdBytes\\":', '\\"maxIdBytez\\":'))
    assert.ok(problems.includes('welcome limit maxIdBytez: in LimitsJson; missing from frames.ts Limits, protocol.md §9.1, ParseOptions'), report(problems))
    assert.ok(problems.includes('welcome limit maxIdBytes: in frames.ts Limits; missing from LimitsJson'), report(problems))
  })

  test('the Limits type declares a key the welcome never carries', () => {
    const framesTs = t.framesTs.replace(/export interface Limits \{/, 'export interface Limits {\n  maxWidgets: number')
    const problems = checkWelcomeLimits({ ...t, framesTs })
    assert.ok(problems.includes('welcome limit maxWidgets: in frames.ts Limits; missing from LimitsJson'), report(problems))
  })

  test('the block parser ignores braces and names inside strings and comments', () => {
    const text = [
      'namespace a { namespace {',
      '// "maxFrameBytes" { in a comment',
      'std::string LimitsJson(const Options& o) {',
      '  return "{\\"maxFrameBytes\\":" + std::to_string(1) + "}";',
      '}',
      'Result<Options> ParseOptions(std::string_view json) {',
      '  if (k == "maxFrameBytes" || k == R"(retentionMs)") {}',
      '  if (k == "compactEvery") return "}";',
      '}',
      '} }',
    ].join('\n')
    const blocks = cppBlocks(text)
    assert.deepEqual(blocks.map((b) => b.name), ['LimitsJson', 'ParseOptions'])
    const files = [{ path: 'x.cc', text }]
    assert.deepEqual([...parseCppLimitsKeys(files).keys], ['maxFrameBytes'])
    assert.deepEqual([...parseCppOptionNames(files).names].sort(), ['compactEvery', 'maxFrameBytes'])
  })
})

// ---------------------------------------------------------------------------------------------
// Nothing in the repository points outside it.

// Names of notes that live outside the repository. Built from pieces so that this file, which
// git tracks too, does not match itself.
const OUTSIDE = [
  ['PLATFORM', '.md'],
  ['CONFORMANCE', '.md'],
  ['tool', 'chain'],
  ['seed', ' 000'],
  ['reference', ' implementation'],
  ['/work/', 'shared'],
  ['../', 'shared/'],
  ['examples/', 'shared/'],
].map((parts) => parts.join(''))

/** The names of OUTSIDE that `text` mentions, in any case (a lower-case copy reads as the note too). */
export function outsidePointers(text) {
  const lower = text.toLowerCase()
  return OUTSIDE.filter((needle) => lower.includes(needle.toLowerCase()))
}

function trackedFiles() {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter((f) => f && existsSync(path.join(root, f)) && statSync(path.join(root, f)).isFile())
}

function offenders(filter) {
  const out = []
  for (const f of trackedFiles().filter(filter)) {
    const bytes = readFileSync(path.join(root, f))
    if (bytes.includes(0)) continue // binary
    const hits = outsidePointers(bytes.toString('utf8'))
    if (hits.length) out.push(`${f}: ${hits.join(', ')}`)
  }
  return out
}

test('outsidePointers finds each name, and not ordinary words', () => {
  for (const needle of OUTSIDE) assert.deepEqual(outsidePointers(`see ${needle} here`), [needle])
  assert.deepEqual(outsidePointers('docs/behaviours.md; the reference model; a shared copy; the platform limit'), [])
})

test('docs/ names no note outside the repository', () => {
  const found = offenders((f) => f.startsWith('docs/'))
  assert.deepEqual(found, [], report(found))
})

// A person who clones the repository has none of those notes: a comment must give the reason.
test('no tracked file outside docs/ names a note outside the repository', () => {
  const found = offenders((f) => !f.startsWith('docs/'))
  assert.deepEqual(found, [], report(found))
})

// ---------------------------------------------------------------------------------------------
// Every test the docs name exists.

/** The names of the tests in a test file: doctest TEST_CASE/SUBCASE, and it/test/describe. */
export function testNames(text) {
  const names = []
  const re = /\b(?:TEST_CASE|SUBCASE|it|test|describe)(?:\.(?:each|skipIf|runIf|only|skip|todo|concurrent)\s*(?:\([^)]*\)|`[^`]*`)?)*\s*\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`((?:[^`\\]|\\.)*)`)/g
  for (const m of text.matchAll(re)) names.push((m[1] ?? m[2] ?? m[3]).replace(/\\(.)/g, '$1'))
  return names
}

/**
 * Test citations in a doc: backticked `dir/file: name` with dir one of tests/' folders
 * (`cpp/core_test.cc: a command is acked with its result`). A name ending in `…` is a prefix.
 * `worker/server.test.ts: bad input: X` names the test generated from case X of
 * tests/vectors/malformed.json.
 */
export function citations(md) {
  const out = []
  for (const m of md.matchAll(/`((?:cpp|worker|client|e2e|browser|chaos|fuzz|soak)\/[\w.-]+\.(?:cc|ts|mjs))(?::\s*([^`]+))?`/g)) {
    out.push({ file: m[1], name: m[2]?.trim() })
  }
  return out
}

export function missingCitations(md, readTests, vectors) {
  const missing = []
  const cache = new Map()
  for (const { file, name } of citations(md)) {
    if (!cache.has(file)) cache.set(file, readTests(file))
    const names = cache.get(file)
    if (names === null) {
      missing.push(`tests/${file} does not exist`)
      continue
    }
    if (name === undefined) continue
    const bad = /^bad input: ([\w-]+)/.exec(name)
    if (bad && file === 'worker/server.test.ts') {
      if (!names.some((n) => n.startsWith('bad input: '))) missing.push(`${file}: no test generated per malformed vector`)
      else if (!vectors.includes(bad[1])) missing.push(`${file}: ${name} (no such case in tests/vectors/malformed.json)`)
      continue
    }
    const prefix = name.endsWith('…') ? name.slice(0, -1).trimEnd() : null
    const found = prefix ? names.some((n) => n.startsWith(prefix)) : names.includes(name)
    if (!found) missing.push(`${file}: ${name}`)
  }
  return missing
}

test('citations and missingCitations catch a renamed test', () => {
  const md = 'x `cpp/a_test.cc: one thing…` and `cpp/a_test.cc: two` and `worker/server.test.ts: bad input: nope` and `fuzz/f.cc`'
  assert.equal(citations(md).length, 4)
  const files = { 'cpp/a_test.cc': ['one thing works', 'three'], 'worker/server.test.ts': ['bad input: ${vector.name}'] }
  const missing = missingCitations(md, (f) => files[f] ?? null, ['yes'])
  assert.deepEqual(missing, ['cpp/a_test.cc: two', 'worker/server.test.ts: bad input: nope (no such case in tests/vectors/malformed.json)', 'tests/fuzz/f.cc does not exist'])
  assert.deepEqual(testNames(`TEST_CASE("a \\"q\\"") it.each([1])('b %s', f) test(\`c\`) describe('d', () => {})`), ['a "q"', 'b %s', 'c', 'd'])
})

test('every test docs/ names exists', () => {
  const vectors = JSON.parse(read('tests/vectors/malformed.json')).cases.map((c) => c.name)
  const readTests = (file) => (existsSync(path.join(root, 'tests', file)) ? testNames(read(`tests/${file}`)) : null)
  const missing = []
  for (const f of trackedFiles().filter((x) => x.startsWith('docs/') && x.endsWith('.md'))) {
    for (const m of missingCitations(read(f), readTests, vectors)) missing.push(`${f}: ${m}`)
  }
  assert.deepEqual(missing, [], report(missing))
})

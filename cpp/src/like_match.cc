// The LIKE matcher the core runs on every live change, and the GLOB pattern
// the same LIKE compiles to for SQLite. Both follow one definition (below),
// and tests/cpp/predicate_test.cc checks the matcher against it.

#include "like_match.h"

#include <cstdint>
#include <vector>

namespace seqsync {
namespace {

// Length in bytes of the UTF-8 sequence starting with `lead`. An invalid
// lead (a continuation byte, 0xF8-0xFF) is a sequence of its own; a valid
// lead takes its following bytes whatever they are, so a truncated sequence
// may reach past the end of the text.
size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

// LIKE → GLOB: % → *, _ → ?, and GLOB's own specials made literal.
std::string LikeToGlob(std::string_view like) {
  std::string g;
  for (char c : like) {
    switch (c) {
      case '%': g += '*'; break;
      case '_': g += '?'; break;
      case '*': g += "[*]"; break;
      case '?': g += "[?]"; break;
      case '[': g += "[[]"; break;
      default: g += c;
    }
  }
  return g;
}

// LikeMatch.
//
// Semantics. With n = text.size() and len(t) = Utf8Length(text[t]), a text
// matches iff M(0, pattern), where
//   M(t, "")     = t >= n
//   M(t, "%" r)  = M(t, r) or (t < n and M(t + len(t), "%" r))
//   M(t, "_" r)  = t < n and M(t + len(t), r)
//   M(t, c r)    = t < n and text[t] == c and M(t + 1, r)
// (t may pass n by up to 3 bytes when the text ends in a truncated sequence).
//
// Design. M is run as a nondeterministic automaton with all of its states
// advanced together, 64 to a machine word (the shift-and or "bitap"
// technique): state j at position t means "the first j pattern bytes match
// text[0, t)". Each text byte is read once and costs O(W) word operations,
// W = ceil((pattern bytes + 1) / 64), so the time is O(n * W): at most 5
// words a byte under the default 256-byte pattern cap, whatever the pattern
// and the text. A backtracking matcher costs O(n * pattern) on patterns
// like '%aaaa…ab'.
//
// There is no greedy choice to justify: the automaton follows every
// alignment of the pattern at once. (Matching the pieces between %s
// leftmost-first would be optimal on valid UTF-8, but not on invalid text:
// % and _ step by sequences decoded from where they stand, so two
// alignments of a piece can leave the text on different sequence
// boundaries, and the earliest end is not always one the rest can follow.
// The backtracking matcher this replaced had that flaw; on valid UTF-8 the
// two agree.)
//
// A % moves to the next sequence and stays (its self-loop) or is skipped
// (an empty run); a _ moves to the next sequence and on; a byte moves on by
// one. Sequences are up to 4 bytes, so moves land in a ring of the state
// sets of the next 4 positions. Runs of % are folded into one % (a run of
// runs is a run), so every % is followed by a non-%, and one shift adds the
// empty runs.
bool LikeMatch(std::string_view text, std::string_view pattern, std::size_t* steps) {
  // Compile: `m` folded pattern bytes, states 0..m, W words per state set.
  // Bytes that occur in the pattern get a class 1..k (at most 254 of them:
  // % and _ are not classes); every other byte is class 0, which never
  // moves a state.
  unsigned char byte_class[256] = {};
  size_t m = 0;
  size_t classes = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c == '%' && i > 0 && pattern[i - 1] == '%') continue;
    ++m;
    if (c != '%' && c != '_' && byte_class[c] == 0) {
      byte_class[c] = static_cast<unsigned char>(++classes);
    }
  }
  const size_t w_count = (m + 1 + 63) / 64;
  // One block: the % positions, the _ positions, a byte-position set per
  // class (class 0 empty), the ring of 4 incoming state sets, the current set.
  std::vector<std::uint64_t> block((2 + (classes + 1) + 4 + 1) * w_count, 0);
  std::uint64_t* const percent = block.data();
  std::uint64_t* const any = percent + w_count;
  std::uint64_t* const by_class = any + w_count;
  std::uint64_t* const ring = by_class + (classes + 1) * w_count;
  std::uint64_t* const s = ring + 4 * w_count;
  auto set_bit = [](std::uint64_t* set, size_t j) { set[j / 64] |= std::uint64_t{1} << (j % 64); };
  auto has_bit = [](const std::uint64_t* set, size_t j) { return (set[j / 64] >> (j % 64)) & 1; };
  size_t j = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(pattern[i]);
    if (c == '%' && i > 0 && pattern[i - 1] == '%') continue;
    if (c == '%') set_bit(percent, j);
    else if (c == '_') set_bit(any, j);
    else set_bit(by_class + byte_class[c] * w_count, j);
    ++j;
  }
  // A trailing % matches whatever is left, so reaching it is a match.
  const bool open_end = m > 0 && has_bit(percent, m - 1);

  const size_t n = text.size();
  set_bit(ring, 0);  // position 0: nothing matched yet
  for (size_t t = 0;; ++t) {
    // s = the states at t, plus the empty runs of the %s among them.
    std::uint64_t* in = ring + (t % 4) * w_count;
    std::uint64_t carry = 0;
    bool live = false;
    for (size_t w = 0; w < w_count; ++w) {
      std::uint64_t p = in[w] & percent[w];
      s[w] = in[w] | (p << 1) | carry;
      carry = p >> 63;
      in[w] = 0;  // the slot now collects position t + 4
      live |= s[w] != 0;
    }
    if (t >= n) {
      if (has_bit(s, m)) return true;
      // Past the end only the moves already made can arrive (up to 3 on).
      if (t >= n + 3) return false;
      continue;
    }
    if (steps != nullptr) *steps += w_count;
    if (!live) {
      bool pending = false;
      for (size_t w = 0; w < 4 * w_count; ++w) pending |= ring[w] != 0;
      if (!pending) return false;  // no alignment is left
      continue;
    }
    if (open_end && has_bit(s, m - 1)) return true;
    unsigned char c = static_cast<unsigned char>(text[t]);
    const std::uint64_t* bytes = by_class + byte_class[c] * w_count;
    // A byte move lands at t + 1, a % or _ move at the next sequence.
    std::uint64_t* next = ring + ((t + 1) % 4) * w_count;
    std::uint64_t* next_seq = ring + ((t + Utf8Length(c)) % 4) * w_count;
    std::uint64_t byte_carry = 0;
    std::uint64_t seq_carry = 0;
    for (size_t w = 0; w < w_count; ++w) {
      std::uint64_t b = s[w] & bytes[w];
      std::uint64_t u = s[w] & any[w];
      next[w] |= (b << 1) | byte_carry;
      next_seq[w] |= (u << 1) | seq_carry | (s[w] & percent[w]);
      byte_carry = b >> 63;
      seq_carry = u >> 63;
    }
  }
}

}  // namespace seqsync

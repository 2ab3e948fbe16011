// SQL identifiers: the one check and the one quoting the core applies to
// table and column names before they are spliced into SQL text. Internal.
//
// Names cannot be bound as parameters, so they are spliced. That is safe
// because every name that reaches SQL passed IsPlainIdentifier first (at
// registration for tables and keys, when a table's columns are read, and
// when a predicate names a column), and a plain identifier can hold no quote.

#ifndef SEQSYNC_SQL_IDENT_H_
#define SEQSYNC_SQL_IDENT_H_

#include <string>
#include <string_view>

namespace seqsync {

// True iff `s` is a plain SQL identifier: [A-Za-z_][A-Za-z0-9_]*, at most
// 128 bytes.
inline bool IsPlainIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// `name` as a quoted SQL identifier: "name". A plain identifier is only
// wrapped; a quote inside any other name (a trigger found in sqlite_master)
// is doubled, as SQL escapes it, so the text stays one identifier.
inline std::string QuoteIdent(std::string_view name) {
  std::string q;
  q.reserve(name.size() + 2);
  q += '"';
  for (char c : name) {
    if (c == '"') q += '"';
    q += c;
  }
  q += '"';
  return q;
}

}  // namespace seqsync

#endif  // SEQSYNC_SQL_IDENT_H_

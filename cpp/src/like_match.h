// LIKE for the core: the matcher it runs on live changes, and the GLOB
// pattern the same LIKE compiles to for SQLite. Internal.

#ifndef SEQSYNC_LIKE_MATCH_H_
#define SEQSYNC_LIKE_MATCH_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace seqsync {

// True iff `text` matches the LIKE `pattern`: % is any run, _ is one
// character (UTF-8 code point), everything else is literal and
// case-sensitive; there is no escape. Time O(text × (pattern / 64 + 1)).
// If `steps` is not null, the words of state the scan advanced are added to
// it (tests bound it to prove the matcher linear).
bool LikeMatch(std::string_view text, std::string_view pattern, std::size_t* steps = nullptr);

// The GLOB pattern that matches what LIKE `like` matches: % → *, _ → ?, and
// GLOB's own specials (* ? [) made literal. GLOB is case-sensitive however
// the connection is set up, as the matcher is.
std::string LikeToGlob(std::string_view like);

}  // namespace seqsync

#endif  // SEQSYNC_LIKE_MATCH_H_

// UTF-8 helpers shared by the tokenizers: validation with the "maximal subpart"
// replacement rule, code point decoding and encoding.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace conveyor::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// What the bytes at one position hold.
struct Sequence {
  std::size_t length = 0;  // bytes of the code point, or of the invalid subpart to replace
  bool valid = false;      // length bytes form one well-formed code point
  bool truncated = false;  // invalid only because the input ended mid-sequence
};

// Examines the sequence starting at s[pos] (pos < s.size()). An invalid result
// covers the maximal subpart (Unicode 3.9, the rule Python's errors="replace" and
// Rust's from_utf8_lossy follow): the lead byte plus the continuation bytes that
// were still acceptable, at least one byte.
Sequence examine(std::string_view s, std::size_t pos);

bool is_valid(std::string_view s);

// Each maximal invalid subpart becomes U+FFFD; valid input is returned unchanged.
std::string sanitize(std::string_view s);

// Decodes the code point at s[pos] and advances pos. Precondition: s is valid UTF-8.
char32_t decode(std::string_view s, std::size_t& pos);

void append(std::string& out, char32_t cp);

// Unicode White_Space, the set tokenizers' lstrip/rstrip and Rust's
// char::is_whitespace use.
bool is_whitespace(char32_t cp);

}  // namespace conveyor::utf8

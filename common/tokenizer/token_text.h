// How model files spell tokens and merges, shared by the readers (GGUF metadata,
// tokenizer.json) and the tokenizer that checks and uses what they read. Header-only:
// the GGUF reader uses it without linking the tokenizer library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

// U+2581 "▁": SentencePiece's stand-in for a space.
inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// The longest token text accepted. Real vocabularies stay under a few hundred
// bytes; the limit keeps a hostile file's single huge token from costing more
// than its own bytes in every structure built over the vocabulary.
inline constexpr std::size_t kMaxTokenBytes = 64 * 1024;

// Throws Error(kOutOfRange) naming the token when its text is longer than kMaxTokenBytes.
inline void check_token_length(std::int64_t id, std::string_view text) {
  if (text.size() > kMaxTokenBytes) {
    fail(ErrorCode::kOutOfRange, "token " + std::to_string(id) + " is " +
                                     std::to_string(text.size()) + " bytes long, more than the " +
                                     std::to_string(kMaxTokenBytes) + " accepted");
  }
}

// The byte a SentencePiece byte-fallback token stands for: "<0x0A>" -> 10. -1 for
// anything not spelled exactly "<0xNN>" with two hex digits.
inline int parse_byte_token(std::string_view text) {
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  const int hi = hex(text[3]);
  const int lo = hex(text[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

// Splits a merge rule "a b" into its two tokens. The left token is at least one
// byte, so a rule whose left token is itself a space ("  b") still splits after
// it. False when there is no separating space or the right token is empty.
inline bool split_merge(std::string_view line, std::string_view& left, std::string_view& right) {
  const std::size_t space = line.find(' ', 1);
  if (space == std::string_view::npos || space + 1 >= line.size()) return false;
  left = line.substr(0, space);
  right = line.substr(space + 1);
  return true;
}

}  // namespace conveyor

#include "common/tokenizer/utf8.h"

namespace conveyor::utf8 {

Sequence examine(std::string_view s, std::size_t pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) return {1, true, false};
  // The second byte's range depends on the lead: it is what excludes overlong
  // forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
  std::size_t continuation = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    continuation = 1;
  } else if (b0 == 0xE0) {
    continuation = 2;
    lo = 0xA0;
  } else if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) {
    continuation = 2;
  } else if (b0 == 0xED) {
    continuation = 2;
    hi = 0x9F;
  } else if (b0 == 0xF0) {
    continuation = 3;
    lo = 0x90;
  } else if (b0 >= 0xF1 && b0 <= 0xF3) {
    continuation = 3;
  } else if (b0 == 0xF4) {
    continuation = 3;
    hi = 0x8F;
  } else {
    return {1, false, false};  // a stray continuation byte, C0, C1 or F5..FF
  }
  for (std::size_t i = 1; i <= continuation; ++i) {
    if (pos + i >= s.size()) return {i, false, true};
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if (b < lo || b > hi) return {i, false, false};
    lo = 0x80;
    hi = 0xBF;
  }
  return {continuation + 1, true, false};
}

bool is_valid(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    // ASCII runs dominate real prompts; skip them without the full check.
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Sequence seq = examine(s, pos);
    if (!seq.valid) return false;
    pos += seq.length;
  }
  return true;
}

std::string sanitize(std::string_view s) {
  if (is_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t pos = 0;
  while (pos < s.size()) {
    const Sequence seq = examine(s, pos);
    if (seq.valid) {
      out.append(s.substr(pos, seq.length));
    } else {
      out.append(kReplacement);
    }
    pos += seq.length;
  }
  return out;
}

char32_t decode(std::string_view s, std::size_t& pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  std::size_t n = 0;
  char32_t cp = 0;
  if (b0 < 0xE0) {
    n = 1;
    cp = b0 & 0x1Fu;
  } else if (b0 < 0xF0) {
    n = 2;
    cp = b0 & 0x0Fu;
  } else {
    n = 3;
    cp = b0 & 0x07u;
  }
  ++pos;
  for (std::size_t i = 0; i < n && pos < s.size(); ++i, ++pos) {
    cp = (cp << 6) | (static_cast<unsigned char>(s[pos]) & 0x3Fu);
  }
  return cp;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_whitespace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace conveyor::utf8

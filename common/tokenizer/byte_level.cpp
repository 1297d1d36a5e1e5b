#include "common/tokenizer/byte_level.h"

#include <array>

#include "common/tokenizer/utf8.h"

namespace conveyor::byte_level {
namespace {

struct Tables {
  std::array<std::string, 256> char_for_byte;
  // Code points 0..323 cover the whole image of the map; -1: not in it.
  std::array<std::int16_t, 324> byte_for_char{};

  Tables() {
    byte_for_char.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the rest are shifted, in
    // byte order, to U+0100 onwards. This is bytes_to_unicode() from GPT-2.
    int shifted = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const int cp = printable ? b : 256 + shifted++;
      utf8::append(char_for_byte[b], static_cast<char32_t>(cp));
      byte_for_char[cp] = static_cast<std::int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

std::string_view char_for_byte(std::uint8_t b) {
  return tables().char_for_byte[b];
}

void encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  for (char c : bytes) {
    out.append(t.char_for_byte[static_cast<std::uint8_t>(c)]);
  }
}

void decode(std::string_view text, std::string& out) {
  const Tables& t = tables();
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t start = pos;
    const utf8::Sequence seq = utf8::examine(text, pos);
    if (!seq.valid) {
      out.append(text.substr(pos, seq.length));
      pos += seq.length;
      continue;
    }
    const char32_t cp = utf8::decode(text, pos);
    if (cp < t.byte_for_char.size() && t.byte_for_char[cp] >= 0) {
      out.push_back(static_cast<char>(t.byte_for_char[cp]));
    } else {
      out.append(text.substr(start, pos - start));
    }
  }
}

}  // namespace conveyor::byte_level

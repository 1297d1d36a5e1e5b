// GPT-2's reversible map between bytes and printable code points. Byte-level BPE
// vocabularies spell every byte as one visible character (space is "Ġ", newline
// "Ċ"), so merges never see raw control bytes or whitespace.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace conveyor::byte_level {

// The UTF-8 spelling of the character that stands for byte b.
std::string_view char_for_byte(std::uint8_t b);

// Appends the byte-level spelling of raw bytes.
void encode(std::string_view bytes, std::string& out);

// Appends the bytes a byte-level token text stands for. Characters outside the
// map (never produced by encode) are copied through as their own UTF-8.
void decode(std::string_view text, std::string& out);

}  // namespace conveyor::byte_level

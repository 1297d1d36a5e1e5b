// File helpers shared by the journal tests: whole-file reads and writes, and payloads
// made from text.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::testing {

inline std::vector<std::uint8_t> read_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& file, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::uint8_t> payload(std::string_view text) {
  return {text.begin(), text.end()};
}

// "prefix" followed by the number. Built by appending because GCC 12 at -O3 reports a
// false -Wrestrict for `"literal" + std::to_string(n)`.
inline std::string tag(std::string_view prefix, long number) {
  std::string text(prefix);
  text += std::to_string(number);
  return text;
}

inline std::vector<std::vector<std::uint8_t>> payloads(const std::vector<std::string>& texts) {
  std::vector<std::vector<std::uint8_t>> out;
  for (const std::string& t : texts)
    out.push_back(payload(t));
  return out;
}

}  // namespace conveyor::testing

// JSON parsing for files that come from outside: bounded in size and nesting depth, and
// failing with a Status-style Error instead of nlohmann's exceptions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace conveyor {

// Deeper nesting than any model file uses; the limit keeps hostile input like a
// million '[' from costing more than its bytes.
inline constexpr int kMaxJsonDepth = 64;
// config.json, generation_config.json and index files are far smaller than this.
inline constexpr std::uint64_t kMaxJsonFileBytes = 100'000'000;

// Parses `text`. Throws Error(kMalformed) naming `what` when it is not valid JSON or
// nests deeper than kMaxJsonDepth.
nlohmann::json parse_json_bounded(std::string_view text, const std::string& what);

// Reads and parses the file at `path`. Throws Error(kNotFound / kIo) when it cannot be
// read, Error(kOutOfRange) when it is larger than kMaxJsonFileBytes, and
// Error(kMalformed) as parse_json_bounded.
nlohmann::json read_json_file(const std::string& path);

}  // namespace conveyor

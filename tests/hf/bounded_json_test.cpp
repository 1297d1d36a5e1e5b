#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "common/hf/bounded_json.h"
#include "common/status.h"

using namespace conveyor;

namespace {

ErrorCode parse_error(const std::string& text) {
  try {
    (void)parse_json_bounded(text, "test.json");
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kOk;
}

}  // namespace

TEST_CASE("nesting up to the limit parses; one level more is refused") {
  const auto nested = [](int levels) {
    return std::string(levels, '[') + std::string(levels, ']');
  };
  CHECK(parse_error(nested(kMaxJsonDepth)) == ErrorCode::kOk);
  CHECK(parse_error(nested(kMaxJsonDepth + 1)) == ErrorCode::kMalformed);
  CHECK(parse_error(std::string(1'000'000, '[')) == ErrorCode::kMalformed);
  // Brackets inside strings, escaped quotes included, do not count as nesting.
  CHECK(parse_error("{\"a\": \"" + std::string(100, '[') + "\\\"" + std::string(100, '{') +
                    "\"}") == ErrorCode::kOk);
  CHECK(parse_error("{\"a\": ") == ErrorCode::kMalformed);
}

TEST_CASE("a header with many sibling entries parses in linear time") {
  // A safetensors-like header with 200k tensor entries: about 14 MB. Parsing with a
  // per-value depth callback took minutes on this shape; the bound here is generous.
  std::string text = "{";
  for (int i = 0; i < 200'000; ++i) {
    if (i > 0) text += ",";
    text +=
        "\"t" + std::to_string(i) + "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}";
  }
  text += "}";
  const auto start = std::chrono::steady_clock::now();
  const nlohmann::json parsed = parse_json_bounded(text, "header");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(parsed.size() == 200'000);
  CHECK_MESSAGE(seconds < 30.0, "parsing took " << seconds << " s");
}

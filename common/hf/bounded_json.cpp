#include "common/hf/bounded_json.h"

#include <algorithm>

#include "common/mapped_file.h"
#include "common/status.h"

namespace conveyor {

namespace {

// The deepest nesting of objects and arrays in `text`, counted in one linear pass
// that skips strings (with their escapes). Malformed text may give any depth; the
// parser rejects it afterwards. A depth check inside nlohmann's callback parser would
// cost O(n^2) on wide objects: it rescans the parent after every nested value. The
// scan matches the parser only while comments are off (a "//" could hide a quote).
int max_nesting_depth(std::string_view text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > kMaxJsonDepth) return deepest;  // no need to look further
    } else if (c == '}' || c == ']') {
      if (--depth < 0) return deepest;  // unbalanced: the parser refuses it
    }
  }
  return deepest;
}

}  // namespace

nlohmann::json parse_json_bounded(std::string_view text, const std::string& what) {
  if (max_nesting_depth(text) > kMaxJsonDepth) {
    fail(ErrorCode::kMalformed,
         what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  nlohmann::json parsed =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) fail(ErrorCode::kMalformed, what + " is not valid JSON");
  return parsed;
}

nlohmann::json read_json_file(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file.ok()) throw Error(file.status().code(), file.status().message());
  if (file->size() > kMaxJsonFileBytes) {
    fail(ErrorCode::kOutOfRange, path + " is " + std::to_string(file->size()) +
                                     " bytes, more than the " + std::to_string(kMaxJsonFileBytes) +
                                     " accepted for JSON");
  }
  const auto* text = reinterpret_cast<const char*>(file->data());
  return parse_json_bounded(std::string_view(text, static_cast<std::size_t>(file->size())), path);
}

}  // namespace conveyor

#include "common/hf/bounded_json.h"

#include <algorithm>

#include "common/json_depth.h"
#include "common/mapped_file.h"
#include "common/status.h"

namespace conveyor {

nlohmann::json parse_json_bounded(std::string_view text, const std::string& what) {
  if (json_nests_deeper_than(text, kMaxJsonDepth)) {
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

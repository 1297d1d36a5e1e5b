#include "common/hf/safetensors_index.h"

#include <set>

#include "common/hf/bounded_json.h"

namespace conveyor {

std::vector<std::string> SafetensorsIndex::shard_files() const {
  std::set<std::string> unique;
  for (const auto& [tensor, shard] : weight_map)
    unique.insert(shard);
  return {unique.begin(), unique.end()};
}

void check_shard_file_name(const std::string& name, const std::string& origin) {
  const bool plain = !name.empty() && name != "." && name != ".." &&
                     name.find_first_of(std::string_view("/\\:\0", 4)) == std::string::npos;
  if (!plain) {
    fail(ErrorCode::kMalformed, origin + ": shard '" + name +
                                    "' is not a plain file name in the model directory; paths "
                                    "that could leave the directory are refused");
  }
}

namespace {

SafetensorsIndex index_from_json(const nlohmann::json& index, const std::string& origin) {
  if (!index.is_object()) fail(ErrorCode::kMalformed, origin + " is not a JSON object");
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) {
    fail(ErrorCode::kMalformed, origin + " has no 'weight_map' object");
  }
  SafetensorsIndex result;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) {
      fail(ErrorCode::kMalformed, origin + ": weight_map entry '" + tensor + "' is not a string");
    }
    const auto& shard_name = shard.get_ref<const std::string&>();
    check_shard_file_name(shard_name, origin);
    result.weight_map.emplace(tensor, shard_name);
  }
  if (result.weight_map.empty()) fail(ErrorCode::kMalformed, origin + " lists no tensors");
  return result;
}

}  // namespace

SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& origin) {
  return index_from_json(parse_json_bounded(json_text, origin), origin);
}

Expected<SafetensorsIndex> read_safetensors_index(const std::string& path) {
  return to_expected([&] { return index_from_json(read_json_file(path), path); });
}

}  // namespace conveyor

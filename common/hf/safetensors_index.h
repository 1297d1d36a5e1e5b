// model.safetensors.index.json: which shard file holds each tensor of a checkpoint
// split over several .safetensors files.
//   {"metadata": {"total_size": 123}, "weight_map": {"model.norm.weight":
//   "model-00002-of-00002.safetensors", ...}}
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace conveyor {

inline constexpr std::string_view kSafetensorsIndexName = "model.safetensors.index.json";

struct SafetensorsIndex {
  std::map<std::string, std::string> weight_map;  // tensor name -> shard file name

  // Each shard once, sorted.
  std::vector<std::string> shard_files() const;
};

// Parses index JSON. Throws Error(kMalformed) naming `origin` when weight_map is missing
// or not an object of strings, or when a shard name is not a plain file name inside the
// model directory (see check_shard_file_name).
SafetensorsIndex parse_safetensors_index(std::string_view json_text, const std::string& origin);

// Reads and parses the index file at `path`.
Expected<SafetensorsIndex> read_safetensors_index(const std::string& path);

// Shards live beside the index. A name with a directory part ("../x", "/etc/x",
// "sub/x", "C:\x") could make the loader map a file outside the model directory, so only
// plain file names are accepted. Throws Error(kMalformed).
void check_shard_file_name(const std::string& name, const std::string& origin);

}  // namespace conveyor

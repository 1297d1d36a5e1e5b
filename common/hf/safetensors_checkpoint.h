// The tensors of a checkpoint stored in one .safetensors file or sharded over several,
// each file mapped once, looked up by their stored (Hugging Face) names.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/hf/safetensors_file.h"
#include "common/status.h"

namespace conveyor {

class SafetensorsCheckpoint {
 public:
  struct Located {
    const SafetensorsEntry* entry = nullptr;
    std::size_t file_index = 0;  // into files()
  };

  // One .safetensors file.
  static Expected<SafetensorsCheckpoint> open_file(const std::string& path);
  // The shards that model.safetensors.index.json names, found beside it. Every tensor
  // the index lists must be in the shard it names, and no tensor may be in two shards
  // (kMalformed); shard names that leave the directory are refused (kMalformed). A
  // tensor a shard holds but the index does not list is kept: where it lives is still
  // unambiguous.
  static Expected<SafetensorsCheckpoint> open_index(const std::string& index_path);
  // Several shards without an index; no tensor may be in two of them (kMalformed).
  static Expected<SafetensorsCheckpoint> open_files(const std::vector<std::string>& paths);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  // By stored name, sorted.
  const std::map<std::string, Located>& entries() const { return entries_; }
  // nullptr when absent.
  const SafetensorsEntry* find(const std::string& name) const;
  const std::string& file_path_of(const Located& located) const {
    return files_[located.file_index].path();
  }

 private:
  SafetensorsCheckpoint() = default;
  // Maps each file once and indexes their tensors. Throws Error.
  void add_files(const std::vector<std::string>& paths);

  std::vector<SafetensorsFile> files_;
  // Points into files_[i].entries(), whose storage does not move when files_ does.
  std::map<std::string, Located> entries_;
};

}  // namespace conveyor

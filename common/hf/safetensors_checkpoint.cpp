#include "common/hf/safetensors_checkpoint.h"

#include <filesystem>
#include <utility>

#include "common/hf/safetensors_index.h"

namespace conveyor {

void SafetensorsCheckpoint::add_files(const std::vector<std::string>& paths) {
  files_.reserve(paths.size());
  for (const auto& path : paths) {
    auto file = SafetensorsFile::open(path);
    if (!file.ok()) throw Error(file.status().code(), file.status().message());
    files_.push_back(std::move(file).value());
  }
  for (std::size_t i = 0; i < files_.size(); ++i) {
    for (const auto& entry : files_[i].entries()) {
      auto [it, inserted] = entries_.emplace(entry.name, Located{&entry, i});
      if (!inserted) {
        fail(ErrorCode::kMalformed, "tensor '" + entry.name + "' is stored in both " +
                                        files_[it->second.file_index].path() + " and " +
                                        files_[i].path());
      }
    }
  }
}

Expected<SafetensorsCheckpoint> SafetensorsCheckpoint::open_file(const std::string& path) {
  return open_files({path});
}

Expected<SafetensorsCheckpoint> SafetensorsCheckpoint::open_files(
    const std::vector<std::string>& paths) {
  return to_expected([&] {
    if (paths.empty()) fail(ErrorCode::kInvalidArgument, "no safetensors files to open");
    SafetensorsCheckpoint checkpoint;
    checkpoint.add_files(paths);
    return checkpoint;
  });
}

Expected<SafetensorsCheckpoint> SafetensorsCheckpoint::open_index(const std::string& index_path) {
  auto index = read_safetensors_index(index_path);
  if (!index.ok()) return index.status();
  return to_expected([&] {
    const std::filesystem::path dir = std::filesystem::path(index_path).parent_path();
    std::vector<std::string> paths;
    for (const auto& shard : index->shard_files())
      paths.push_back((dir / shard).string());
    SafetensorsCheckpoint checkpoint;
    checkpoint.add_files(paths);
    for (const auto& [tensor, shard] : index->weight_map) {
      const auto it = checkpoint.entries_.find(tensor);
      const std::string shard_path = (dir / shard).string();
      if (it == checkpoint.entries_.end()) {
        fail(ErrorCode::kMalformed, index_path + " lists tensor '" + tensor + "' in " + shard +
                                        ", which does not contain it");
      }
      if (checkpoint.file_path_of(it->second) != shard_path) {
        fail(ErrorCode::kMalformed, index_path + " lists tensor '" + tensor + "' in " + shard +
                                        " but it is stored in " +
                                        checkpoint.file_path_of(it->second));
      }
    }
    return checkpoint;
  });
}

const SafetensorsEntry* SafetensorsCheckpoint::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : it->second.entry;
}

}  // namespace conveyor

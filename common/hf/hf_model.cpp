#include "common/hf/hf_model.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>

#include "common/hf/bounded_json.h"
#include "common/hf/hf_config.h"
#include "common/hf/hf_names.h"
#include "common/hf/pickle_refusal.h"
#include "common/hf/safetensors_index.h"
#include "common/model_tensors.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;

struct WeightFiles {
  enum class Kind { kSingle, kIndex, kShards };
  Kind kind = Kind::kSingle;
  std::string directory;
  std::vector<std::string> paths;  // the file, the index, or the shards
};

bool regular_file_exists(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// The weights of a directory, looked for in transformers' order: model.safetensors,
// then the index, then any *.safetensors. Pickle files are only ever named in the
// refusal, never opened.
WeightFiles find_weights_in_directory(const fs::path& dir) {
  WeightFiles found;
  found.directory = dir.string();
  if (const fs::path single = dir / "model.safetensors"; regular_file_exists(single)) {
    found.paths = {single.string()};
    return found;
  }
  if (const fs::path index = dir / kSafetensorsIndexName; regular_file_exists(index)) {
    found.kind = WeightFiles::Kind::kIndex;
    found.paths = {index.string()};
    return found;
  }
  std::error_code ec;
  std::vector<std::string> pickles;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!regular_file_exists(it->path())) continue;
    if (name.ends_with(".safetensors")) found.paths.push_back(it->path().string());
    if (is_pickle_checkpoint_name(name)) pickles.push_back(name);
  }
  if (ec) fail(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  if (!found.paths.empty()) {
    std::sort(found.paths.begin(), found.paths.end());
    found.kind = found.paths.size() == 1 ? WeightFiles::Kind::kSingle : WeightFiles::Kind::kShards;
    return found;
  }
  if (!pickles.empty()) {
    std::sort(pickles.begin(), pickles.end());
    const Status refusal = pickle_refusal((dir / pickles.front()).string());
    fail(refusal.code(),
         dir.string() + " holds no safetensors weights, only pickle files. " + refusal.message());
  }
  fail(ErrorCode::kNotFound, dir.string() +
                                 " holds no model.safetensors, model.safetensors.index.json or "
                                 "*.safetensors file");
}

WeightFiles find_weights(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (fs::is_directory(status)) return find_weights_in_directory(path);
  if (is_pickle_checkpoint_name(path)) {
    const Status refusal = pickle_refusal(path);
    fail(refusal.code(), refusal.message());
  }
  if (!fs::exists(status)) fail(ErrorCode::kNotFound, path + " does not exist");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  WeightFiles found;
  found.directory = dir.string();
  found.paths = {path};
  if (path.ends_with(".safetensors")) return found;
  if (path.ends_with(".safetensors.index.json")) {
    found.kind = WeightFiles::Kind::kIndex;
    return found;
  }
  fail(ErrorCode::kInvalidArgument,
       path + " is not a model directory, a .safetensors file or a safetensors index");
}

SafetensorsCheckpoint open_checkpoint(const WeightFiles& weights) {
  Expected<SafetensorsCheckpoint> checkpoint =
      weights.kind == WeightFiles::Kind::kIndex
          ? SafetensorsCheckpoint::open_index(weights.paths.front())
          : SafetensorsCheckpoint::open_files(weights.paths);
  if (!checkpoint.ok()) throw Error(checkpoint.status().code(), checkpoint.status().message());
  return std::move(checkpoint).value();
}

std::string path_if_file(const fs::path& path) {
  return regular_file_exists(path) ? path.string() : std::string();
}

// The spec's display name: the config's _name_or_path when it names a hub model
// ("Qwen/Qwen2-0.5B"), else the directory name, since local paths say little.
std::string display_name(const std::string& from_config, const fs::path& dir) {
  if (!from_config.empty() && !from_config.starts_with('/') && !from_config.starts_with('.')) {
    return from_config;
  }
  const fs::path normal = dir.lexically_normal();
  const fs::path name = normal.has_filename() ? normal.filename() : normal.parent_path().filename();
  return name.string();
}

}  // namespace

Expected<std::unique_ptr<HfModelSource>> HfModelSource::open(const std::string& path) {
  return to_expected([&] {
    const WeightFiles weights = find_weights(path);
    const fs::path dir = weights.directory;
    const fs::path config_path = dir / "config.json";
    if (!regular_file_exists(config_path)) {
      fail(ErrorCode::kNotFound,
           "no config.json in " + dir.string() + " (needed for " + path + ")");
    }
    std::unique_ptr<HfModelSource> source(new HfModelSource(open_checkpoint(weights)));
    source->path_ = path;
    source->directory_ = weights.directory;
    source->spec_ =
        model_spec_from_hf_config(read_json_file(config_path.string()), config_path.string());
    if (const fs::path generation = dir / "generation_config.json";
        regular_file_exists(generation)) {
      apply_hf_generation_config(read_json_file(generation.string()), generation.string(),
                                 source->spec_);
    }
    source->spec_.name = display_name(source->spec_.name, dir);
    source->tokenizer_json_path_ = path_if_file(dir / "tokenizer.json");
    source->tokenizer_config_path_ = path_if_file(dir / "tokenizer_config.json");
    source->load_tensors();
    return source;
  });
}

void HfModelSource::load_tensors() {
  std::map<std::string, TensorRef> by_name;
  for (const auto& [stored_name, located] : checkpoint_.entries()) {
    const std::string& file = checkpoint_.file_path_of(located);
    const std::optional<std::string> canonical = canonical_name_from_hf(stored_name);
    if (!canonical) {
      if (is_ignorable_hf_tensor(stored_name)) continue;
      fail(ErrorCode::kUnsupported, file + ": tensor '" + stored_name + "' is not part of the " +
                                        spec_.architecture + " layout this engine runs");
    }
    // Tied: the output projection is token_embd; a stored lm_head copy is not exposed.
    if (*canonical == "output.weight" && spec_.tie_embeddings) continue;
    by_name.emplace(*canonical, to_tensor_ref(*located.entry, *canonical, file));
  }

  std::vector<TensorRef> unordered;
  unordered.reserve(by_name.size());
  for (const auto& [name, tensor] : by_name)
    unordered.push_back(tensor);
  check_tensor_shapes(spec_, unordered, path_);

  const std::vector<ExpectedTensor> expected = expected_tensors(spec_);
  if (expected.size() != by_name.size()) {
    fail(ErrorCode::kInternal, path_ + ": tensors left over after the shape check");
  }
  tensors_.reserve(expected.size());
  for (const auto& e : expected)
    tensors_.push_back(std::move(by_name.at(e.name)));
}

std::string HfModelSource::format() const {
  const std::size_t files = checkpoint_.files().size();
  return files == 1 ? "safetensors" : "safetensors (" + std::to_string(files) + " shards)";
}

Expected<std::unique_ptr<ModelSource>> open_hf_model(const std::string& path) {
  auto source = HfModelSource::open(path);
  if (!source.ok()) return source.status();
  return std::unique_ptr<ModelSource>(std::move(source).value());
}

}  // namespace conveyor

#include "common/conveyor_model/model_reader.h"

#include <filesystem>
#include <map>
#include <set>
#include <utility>

#include "common/conveyor_model/model_format.h"
#include "common/hf/bounded_json.h"
#include "common/model_tensors.h"
#include "common/tokenizer/model_tokenizer.h"

namespace conveyor {
namespace {

namespace fs = std::filesystem;

// The directory of a path that names the directory or its conveyor-model.json.
std::string model_directory(const std::string& path) {
  const fs::path p(path);
  if (p.filename() == kConveyorModelManifest) {
    return p.has_parent_path() ? p.parent_path().string() : ".";
  }
  return path;
}

const SafetensorsEntry& stored_entry(const SafetensorsFile& file, const TensorScheme& scheme,
                                     const SafetensorsPlanEntry& want) {
  const SafetensorsEntry* e = file.find(want.name);
  if (e == nullptr) {
    fail(ErrorCode::kMalformed, "tensor '" + scheme.name + "' is stored in '" + want.name +
                                    "', which " + std::string(kConveyorModelWeights) +
                                    " does not hold");
  }
  if (e->dtype_name != want.dtype || e->shape != want.shape) {
    fail(ErrorCode::kMalformed,
         "tensor '" + scheme.name + "' (" + std::string(dtype_name(scheme.dtype)) + " " +
             shape_string(scheme.shape) + ") needs '" + want.name + "' as " + want.dtype + " " +
             shape_string(want.shape) + "; " + std::string(kConveyorModelWeights) + " has " +
             e->dtype_name + " " + shape_string(e->shape));
  }
  return *e;
}

}  // namespace

std::string ConveyorModelSource::format() const {
  return std::string(kConveyorModelFormat) + " v" + std::to_string(kConveyorModelVersion);
}

void ConveyorModelSource::load(ModelManifest manifest) {
  manifest_ = std::move(manifest);
  validate_model_spec(manifest_.spec, std::string(kConveyorModelManifest));

  std::map<std::string, TensorRef> by_name;
  std::set<std::string> claimed;
  for (const TensorScheme& scheme : manifest_.tensors) {
    const std::vector<SafetensorsPlanEntry> want = stored_entries(scheme);
    TensorRef ref;
    ref.name = scheme.name;
    ref.dtype = scheme.dtype;
    ref.shape = scheme.shape;
    ref.bytes = stored_entry(weights_, scheme, want[0]).bytes;
    claimed.insert(want[0].name);
    if (want.size() > 1) {
      ref.scales = stored_entry(weights_, scheme, want[1]).bytes;
      claimed.insert(want[1].name);
    }
    const auto bytes = dtype_bytes(ref.dtype, static_cast<std::uint64_t>(ref.elements()));
    if (!bytes || *bytes != ref.bytes.size()) {
      fail(ErrorCode::kMalformed,
           "tensor '" + scheme.name + "': " + std::to_string(ref.bytes.size()) +
               " bytes do not hold its " + std::string(dtype_name(ref.dtype)) + " values");
    }
    by_name.emplace(scheme.name, std::move(ref));
  }
  for (const SafetensorsEntry& e : weights_.entries()) {
    if (!claimed.contains(e.name)) {
      fail(ErrorCode::kMalformed, std::string(kConveyorModelWeights) + " holds '" + e.name +
                                      "', which no tensor of " +
                                      std::string(kConveyorModelManifest) + " claims");
    }
  }

  // The spec's tensors in canonical order, then the others as the manifest lists them.
  for (const ExpectedTensor& e : expected_tensors(manifest_.spec)) {
    const auto it = by_name.find(e.name);
    if (it == by_name.end()) continue;  // check_tensor_shapes names it
    tensors_.push_back(std::move(it->second));
    by_name.erase(it);
  }
  for (const TensorScheme& scheme : manifest_.tensors) {
    const auto it = by_name.find(scheme.name);
    if (it != by_name.end()) tensors_.push_back(std::move(it->second));
  }
  check_tensor_shapes(manifest_.spec, tensors_, std::string(kConveyorModelManifest));

  Expected<TokenizerData> read =
      manifest_.tokenizer
          ? Expected<TokenizerData>(*manifest_.tokenizer)
          : Expected<TokenizerData>(
                Status(ErrorCode::kNotFound, manifest_.tokenizer_note.empty()
                                                 ? "the model directory carries no tokenizer"
                                                 : manifest_.tokenizer_note));
  Expected<ModelTokenizer> accepted = accept_model_tokenizer(std::move(read), spec().vocab_size);
  if (!accepted.ok()) {
    fail(accepted.status().code(), "tokenizer: " + accepted.status().message());
  }
  tokenizer_ = std::move(accepted->data);
  tokenizer_status_ = accepted->status;
}

Expected<std::unique_ptr<ConveyorModelSource>> ConveyorModelSource::open(const std::string& path) {
  const std::string dir = model_directory(path);
  const std::string json_path = (fs::path(dir) / kConveyorModelManifest).string();
  const std::string weights_path = (fs::path(dir) / kConveyorModelWeights).string();
  try {
    ModelManifest manifest = manifest_from_json(read_json_file(json_path));
    std::error_code ec;
    if (!fs::exists(weights_path, ec)) {
      return Status(ErrorCode::kNotFound, dir + ": no " + std::string(kConveyorModelWeights) +
                                              " beside " + std::string(kConveyorModelManifest));
    }
    Expected<SafetensorsFile> weights = SafetensorsFile::open(weights_path);
    if (!weights.ok()) return weights.status();
    std::unique_ptr<ConveyorModelSource> source(
        new ConveyorModelSource(dir, std::move(weights).value()));
    source->load(std::move(manifest));
    return source;
  } catch (const Error& e) {
    const std::string message = e.what();
    return Status(e.code(), message.starts_with(dir) ? message : dir + ": " + message);
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kResourceExhausted, dir + ": out of memory loading the model");
  }
}

bool is_conveyor_model_path(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (p.filename() == kConveyorModelManifest) return fs::is_regular_file(p, ec);
  return fs::is_directory(p, ec) && fs::exists(p / kConveyorModelManifest, ec);
}

Expected<std::unique_ptr<ModelSource>> open_conveyor_model(const std::string& path) {
  auto source = ConveyorModelSource::open(path);
  if (!source.ok()) return source.status();
  return std::unique_ptr<ModelSource>(std::move(source).value());
}

}  // namespace conveyor

#include "compress/compress_plan.h"

#include "common/conveyor_model/save_model.h"
#include "compress/layer_compressor.h"

namespace conveyor::compress {

std::int64_t block_of_tensor(const std::string& name) {
  if (!name.starts_with("blk.")) return -1;
  const std::size_t dot = name.find('.', 4);
  if (dot == std::string::npos || dot == 4) return -1;
  std::int64_t layer = 0;
  for (std::size_t i = 4; i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    layer = layer * 10 + (name[i] - '0');
  }
  return layer;
}

std::uint64_t stored_bytes(const TensorScheme& scheme) {
  std::uint64_t bytes = 0;
  for (const SafetensorsPlanEntry& e : stored_entries(scheme)) {
    std::uint64_t n = safetensors_element_bytes(e.dtype);
    for (const std::int64_t d : e.shape)
      n *= static_cast<std::uint64_t>(d);
    bytes += n;
  }
  return bytes;
}

ModelManifest plan_compression(const ModelSource& source, const CompressOptions& options,
                               bool calibrated) {
  const ModelSpec& spec = source.spec();
  ModelManifest manifest = manifest_of(source);
  for (TensorScheme& t : manifest.tensors) {
    const std::int64_t layer = block_of_tensor(t.name);
    if (layer < 0) continue;
    const CompressOptions block = layer_options(options, layer);
    const bool fold_attn = awq_applies(block, calibrated, spec.hidden_size);
    if (t.role == "linear" && t.shape.size() == 2) {
      const LinearFormat format = linear_format(block, t.shape[1]);
      t = make_tensor_scheme(t.name, format.dtype, t.shape, t.role);
      t.notes = {{"method", method_name(block.method)}, {"format", dtype_name(format.dtype)}};
      if (!format.reason.empty()) t.notes["why"] = format.reason;
    } else if (t.role == "norm" && fold_attn &&
               (t.name.ends_with(".attn_norm.weight") || t.name.ends_with(".ffn_norm.weight"))) {
      t = make_tensor_scheme(t.name, DType::kF32, t.shape, t.role);
      t.notes = {{"awq_folded",
                  "f32: the activation-aware scales of the weights it feeds "
                  "are folded in"}};
    }
  }
  return manifest;
}

}  // namespace conveyor::compress

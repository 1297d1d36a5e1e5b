#include "compress/compress_plan.h"

#include "common/conveyor_model/save_model.h"
#include "compress/layer_compressor.h"

namespace conveyor::compress {

ModelManifest plan_compression(const ModelSource& source, const CompressOptions& options,
                               bool calibrated) {
  const ModelSpec& spec = source.spec();
  ModelManifest manifest = manifest_of(source);
  const bool fold_attn = awq_applies(options, calibrated, spec.hidden_size);
  for (TensorScheme& t : manifest.tensors) {
    if (t.role == "linear" && t.shape.size() == 2) {
      const LinearFormat format = linear_format(options, t.shape[1]);
      t = make_tensor_scheme(t.name, format.dtype, t.shape, t.role);
      t.notes = {{"method", method_name(options.method)}, {"format", dtype_name(format.dtype)}};
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

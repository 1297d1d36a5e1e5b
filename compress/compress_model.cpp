#include "compress/compress_model.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/conveyor_model/model_format.h"
#include "common/conveyor_model/model_writer.h"
#include "common/dequantize.h"
#include "common/status.h"
#include "compress/calibration.h"
#include "compress/compress_plan.h"
#include "compress/layer_compressor.h"
#include "compress/layer_pruning.h"
#include "compress/reference_forward.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::compress {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::span<const std::uint8_t> float_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const std::uint8_t*>(v.data()), v.size() * sizeof(float)};
}

nlohmann::json options_json(const CompressOptions& o) {
  nlohmann::json j = {{"method", method_name(o.method)}, {"prune", o.prune.to_string()}};
  if (o.method == Method::kMixed) {
    nlohmann::json blocks = nlohmann::json::array();
    for (const Method m : o.layer_methods)
      blocks.push_back(method_name(m));
    j["layer_methods"] = blocks;
  }
  if (o.method == Method::kInt4 || o.method == Method::kMixed) {
    j["group"] = o.group;
    j["awq"] = o.awq;
    j["awq_grid"] = o.awq_grid;
  }
  return j;
}

}  // namespace

CompressResult compress_model(const ModelSource& source, const std::string& dir,
                              const CompressOptions& options,
                              std::span<const std::int32_t> calibration, nlohmann::json producer,
                              const LayerCallback& on_layer) {
  const auto start = std::chrono::steady_clock::now();
  check_options(options);
  const bool calibrated = !calibration.empty();
  if (options.prune.mode == PruneMode::kWanda && !calibrated) {
    fail(ErrorCode::kInvalidArgument, "--prune wanda weighs weights by activations: give --calib");
  }
  CompressResult result;
  // layers:N: the blocks kept, as a model of their own; everything below runs on it.
  std::optional<WithoutBlocks> kept;
  if (options.prune.mode == PruneMode::kLayers) {
    const LayerPruning pruning = plan_layer_pruning(source, options, calibration);
    kept.emplace(source, pruning.removed);
    result.layer_pruning = pruning.json();
  }
  const ModelSource& in = kept ? static_cast<const ModelSource&>(*kept) : source;
  const ModelSpec& spec = in.spec();

  ModelManifest manifest = plan_compression(in, options, calibrated);
  ConveyorModelWriter writer = ConveyorModelWriter::create(dir, std::move(manifest));
  // Everything the blocks' compression does not touch, as stored.
  for (const TensorRef& t : in.tensors()) {
    const TensorScheme* s = writer.manifest().find(t.name);
    if (s != nullptr && s->notes.contains("kept")) writer.write(t);
  }

  ThreadPool pool(options.threads);
  std::optional<ReferenceForward> forward;
  std::vector<float> hidden;
  if (calibrated) {
    forward.emplace(
        spec, pool,
        calibration_sequences(static_cast<std::int64_t>(calibration.size()), spec.max_positions));
    hidden = forward->embed(in.require("token_embd.weight"), calibration);
  }

  result.calibration_tokens = static_cast<std::int64_t>(calibration.size());
  for (std::int64_t l = 0; l < spec.num_layers; ++l) {
    const auto layer_start = std::chrono::steady_clock::now();
    F32Layer w = load_f32_layer(in, l);
    std::optional<LinearInputs> inputs;
    if (forward) {
      // The original block, before compression changes its weights, carries the
      // hidden states on to the next.
      inputs.emplace();
      forward->layer(w, hidden, &*inputs);
    }
    CompressedLayer c = compress_layer(w, inputs ? &*inputs : nullptr, result.calibration_tokens,
                                       spec, layer_options(options, l), pool);
    for (CompressedLinear& linear : c.linears) {
      writer.write(linear.name, linear.tensor.bytes, linear.tensor.scales);
      TensorScheme* s = writer.manifest().find(linear.name);
      if (s != nullptr) s->notes = std::move(linear.notes);
    }
    for (const char* suffix : {"attn_norm.weight", "ffn_norm.weight"}) {
      const bool attn = suffix[0] == 'a';
      const std::string name = layer_tensor_name(l, suffix);
      const TensorScheme* s = writer.manifest().find(name);
      if (s == nullptr || !s->notes.contains("awq_folded")) continue;
      const std::vector<float>& folded = attn ? c.attn_norm : c.ffn_norm;
      writer.write(name, float_bytes(folded.empty() ? (attn ? w.attn_norm : w.ffn_norm) : folded));
    }

    LayerReport report;
    report.layer = l;
    report.layers = spec.num_layers;
    report.seconds = seconds_since(layer_start);
    report.summary = c.summary;
    report.summary["layer"] = l;
    report.summary["seconds"] = report.seconds;
    result.layers.push_back(report.summary);
    if (on_layer) on_layer(report);
  }

  result.seconds = seconds_since(start);
  producer["options"] = options_json(options);
  producer["calibration_tokens"] = result.calibration_tokens;
  producer["seconds"] = result.seconds;
  producer["layers"] = result.layers;
  if (kept) producer["layer_pruning"] = result.layer_pruning;
  writer.manifest().producer = std::move(producer);
  writer.finish();
  for (std::string_view file : {kConveyorModelWeights, kConveyorModelManifest})
    result.bytes += bytes_on_disk((std::filesystem::path(dir) / file).string());
  return result;
}

}  // namespace conveyor::compress

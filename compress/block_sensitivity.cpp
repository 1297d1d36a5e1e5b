#include "compress/block_sensitivity.h"

#include <chrono>

#include "common/dequantize.h"
#include "common/status.h"
#include "compress/calibration.h"
#include "compress/f32_layer.h"
#include "compress/layer_compressor.h"
#include "compress/reference_forward.h"
#include "kernels/cpu/thread_pool.h"
#include "worker/scoring/score_metrics.h"

namespace conveyor::compress {
namespace {

// `w` with its linears replaced by what `c` stores, read back as the engine reads it,
// and its norms by the ones the activation-aware scales were folded into.
F32Layer as_loaded(const F32Layer& w, const CompressedLayer& c) {
  F32Layer q = w;
  std::vector<float>* weights[] = {&q.q, &q.k, &q.v, &q.o, &q.gate, &q.up, &q.down};
  for (std::size_t i = 0; i < c.linears.size(); ++i)
    *weights[i] = dequantize_tensor(c.linears[i].tensor.view(c.linears[i].name));
  if (!c.attn_norm.empty()) q.attn_norm = c.attn_norm;
  if (!c.ffn_norm.empty()) q.ffn_norm = c.ffn_norm;
  return q;
}

// Mean KL(reference || model) over the rows of two [tokens, vocab] logits.
double mean_kl(std::span<const float> reference, std::span<const float> model, std::int64_t vocab) {
  DivergenceAccumulator divergence;
  const auto v = static_cast<std::size_t>(vocab);
  for (std::size_t row = 0; row * v < reference.size(); ++row) {
    divergence.add(normalize_logits(reference.subspan(row * v, v)),
                   normalize_logits(model.subspan(row * v, v)));
  }
  return divergence.mean_kl();
}

}  // namespace

std::vector<BlockSensitivity> measure_block_sensitivity(const ModelSource& source,
                                                        const CompressOptions& options,
                                                        std::span<const std::int32_t> calibration,
                                                        const SensitivityCallback& on_block) {
  if (calibration.size() < 2) {
    fail(ErrorCode::kInvalidArgument, "mixed precision measures sensitivity: give --calib");
  }
  const ModelSpec& spec = source.spec();
  const auto tokens = static_cast<std::int64_t>(calibration.size());
  ThreadPool pool(options.threads);
  const ReferenceForward forward(spec, pool, calibration_sequences(tokens, spec.max_positions));
  const TensorRef& embd = source.require("token_embd.weight");
  const TensorRef& output_norm = source.require("output_norm.weight");
  const TensorRef& output = spec.tie_embeddings ? embd : source.require("output.weight");

  std::vector<F32Layer> layers;
  for (std::int64_t l = 0; l < spec.num_layers; ++l)
    layers.push_back(load_f32_layer(source, l));
  // `hidden` holds each block's input in turn, from the original blocks before it.
  std::vector<float> hidden = forward.embed(embd, calibration);
  std::vector<float> reference;
  {
    std::vector<float> h = hidden;
    for (const F32Layer& w : layers)
      forward.layer(w, h, nullptr);
    reference = forward.logits(h, output_norm, output);
  }

  std::vector<BlockSensitivity> result;
  for (std::int64_t b = 0; b < spec.num_layers; ++b) {
    const auto start = std::chrono::steady_clock::now();
    const F32Layer& original = layers[static_cast<std::size_t>(b)];
    LinearInputs inputs;
    std::vector<float> next = hidden;
    forward.layer(original, next, &inputs);
    BlockSensitivity s;
    s.layer = b;
    for (const Method method : {Method::kInt8, Method::kInt4}) {
      CompressOptions one = options;
      one.method = method;
      one.layer_methods.clear();
      F32Layer w = original;
      const CompressedLayer c = compress_layer(w, &inputs, tokens, spec, one, pool);
      std::vector<float> h = hidden;
      forward.layer(as_loaded(original, c), h, nullptr);
      for (std::int64_t l = b + 1; l < spec.num_layers; ++l)
        forward.layer(layers[static_cast<std::size_t>(l)], h, nullptr);
      const double kl = mean_kl(reference, forward.logits(h, output_norm, output), spec.vocab_size);
      (method == Method::kInt8 ? s.kl_int8 : s.kl_int4) = kl;
    }
    hidden = std::move(next);
    result.push_back(s);
    if (on_block) {
      on_block(s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  return result;
}

}  // namespace conveyor::compress

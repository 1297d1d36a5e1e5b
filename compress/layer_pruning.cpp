#include "compress/layer_pruning.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/status.h"
#include "compress/calibration.h"
#include "compress/compress_plan.h"
#include "compress/f32_layer.h"
#include "compress/reference_forward.h"
#include "kernels/cpu/thread_pool.h"

namespace conveyor::compress {

std::vector<double> block_similarity(const ModelSource& source,
                                     std::span<const std::int32_t> calibration, int threads) {
  if (calibration.size() < 2) {
    fail(ErrorCode::kInvalidArgument,
         "--prune layers:N compares each block's input and output hidden states on "
         "calibration text: give --calib");
  }
  const ModelSpec& spec = source.spec();
  const auto tokens = static_cast<std::int64_t>(calibration.size());
  ThreadPool pool(threads);
  const ReferenceForward forward(spec, pool, calibration_sequences(tokens, spec.max_positions));
  std::vector<float> hidden = forward.embed(source.require("token_embd.weight"), calibration);
  const auto width = static_cast<std::size_t>(spec.hidden_size);
  std::vector<double> similarity;
  for (std::int64_t l = 0; l < spec.num_layers; ++l) {
    const std::vector<float> before = hidden;
    forward.layer(load_f32_layer(source, l), hidden, nullptr);
    double sum = 0;
    for (std::size_t row = 0; row * width < hidden.size(); ++row) {
      double dot = 0, a = 0, b = 0;
      for (std::size_t i = row * width; i < (row + 1) * width; ++i) {
        dot += static_cast<double>(before[i]) * hidden[i];
        a += static_cast<double>(before[i]) * before[i];
        b += static_cast<double>(hidden[i]) * hidden[i];
      }
      // A zero row (no direction) counts as unchanged only when it stays zero.
      sum += a > 0 && b > 0 ? dot / std::sqrt(a * b) : (a == b ? 1.0 : 0.0);
    }
    similarity.push_back(sum / static_cast<double>(tokens));
  }
  return similarity;
}

std::vector<std::int64_t> blocks_to_remove(std::span<const double> similarity, std::int64_t n) {
  const auto blocks = static_cast<std::int64_t>(similarity.size());
  if (n < 1 || n > blocks - 1) {
    fail(ErrorCode::kInvalidArgument,
         "--prune layers:" + std::to_string(n) + ": the model has " + std::to_string(blocks) +
             " blocks; N must be between 1 and " + std::to_string(blocks - 1));
  }
  std::vector<std::int64_t> order(similarity.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    const double sa = similarity[static_cast<std::size_t>(a)];
    const double sb = similarity[static_cast<std::size_t>(b)];
    return sa != sb ? sa > sb : a > b;
  });
  order.resize(static_cast<std::size_t>(n));
  std::sort(order.begin(), order.end());
  return order;
}

nlohmann::json LayerPruning::json() const {
  return {{"removed_blocks", removed},
          {"block_similarity", similarity},
          {"similarity",
           "per original block: mean over the calibration tokens of the cosine between the "
           "hidden state entering it and the one leaving it"},
          {"renumbered", "the blocks kept are numbered 0.. in their original order"}};
}

LayerPruning plan_layer_pruning(const ModelSource& source, const CompressOptions& options,
                                std::span<const std::int32_t> calibration) {
  const std::int64_t layers = source.spec().num_layers;
  check_layer_pruning(options.prune, layers, !calibration.empty());
  LayerPruning p;
  p.similarity = options.block_similarity.empty()
                     ? block_similarity(source, calibration, options.threads)
                     : options.block_similarity;
  if (static_cast<std::int64_t>(p.similarity.size()) != layers) {
    fail(ErrorCode::kInvalidArgument, "layers:N: " + std::to_string(p.similarity.size()) +
                                          " similarities for " + std::to_string(layers) +
                                          " blocks");
  }
  p.removed = blocks_to_remove(p.similarity, options.prune.layers);
  return p;
}

WithoutBlocks::WithoutBlocks(const ModelSource& inner, std::span<const std::int64_t> removed)
    : inner_(inner), spec_(inner.spec()) {
  // new_index[l]: the kept block's number, -1 for a removed one.
  std::vector<std::int64_t> new_index(static_cast<std::size_t>(spec_.num_layers), 0);
  for (const std::int64_t r : removed) {
    if (r < 0 || r >= spec_.num_layers) {
      fail(ErrorCode::kInvalidArgument, "no block " + std::to_string(r) + " to remove");
    }
    new_index[static_cast<std::size_t>(r)] = -1;
  }
  std::int64_t kept = 0;
  for (std::int64_t& i : new_index)
    if (i == 0) i = kept++;
  spec_.num_layers = kept;
  for (const TensorRef& t : inner.tensors()) {
    const std::int64_t layer = block_of_tensor(t.name);
    if (layer < 0) {
      tensors_.push_back(t);
      continue;
    }
    if (layer >= static_cast<std::int64_t>(new_index.size())) {
      fail(ErrorCode::kMalformed,
           t.name + ": beyond the model's " + std::to_string(new_index.size()) + " blocks");
    }
    const std::int64_t to = new_index[static_cast<std::size_t>(layer)];
    if (to < 0) continue;
    TensorRef renamed = t;
    renamed.name = "blk." + std::to_string(to) + t.name.substr(t.name.find('.', 4));
    tensors_.push_back(std::move(renamed));
  }
}

}  // namespace conveyor::compress

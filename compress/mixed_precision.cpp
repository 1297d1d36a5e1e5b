#include "compress/mixed_precision.h"

#include <algorithm>
#include <limits>
#include <optional>

#include "common/conveyor_model/model_manifest.h"
#include "common/status.h"
#include "compress/compress_plan.h"
#include "compress/layer_pruning.h"

namespace conveyor::compress {
namespace {

double kl_at(const BlockSensitivity& s, Method method) {
  if (method == Method::kInt8) return s.kl_int8;
  if (method == Method::kInt4) return s.kl_int4;
  return 0;  // f16: taken as the original
}

Method lower(Method m) {
  return m == Method::kF16 ? Method::kInt8 : Method::kInt4;
}

Method higher(Method m) {
  return m == Method::kInt4 ? Method::kInt8 : Method::kF16;
}

std::uint64_t data_bytes(std::span<const BlockBytes> bytes, std::span<const Method> methods,
                         std::uint64_t rest) {
  std::uint64_t total = rest;
  for (std::size_t b = 0; b < bytes.size(); ++b)
    total += bytes[b].at(methods[b]);
  return total;
}

nlohmann::json sensitivity_json(std::span<const BlockSensitivity> sensitivity,
                                std::span<const Method> methods) {
  nlohmann::json blocks = nlohmann::json::array();
  for (std::size_t b = 0; b < sensitivity.size(); ++b) {
    blocks.push_back({{"layer", sensitivity[b].layer},
                      {"kl_int8", sensitivity[b].kl_int8},
                      {"kl_int4", sensitivity[b].kl_int4},
                      {"method", method_name(methods[b])}});
  }
  return blocks;
}

}  // namespace

std::uint64_t BlockBytes::at(Method method) const {
  if (method == Method::kInt8) return int8;
  if (method == Method::kInt4) return int4;
  return f16;
}

std::vector<BlockBytes> block_bytes(const ModelSource& source, const CompressOptions& options,
                                    bool calibrated, std::uint64_t& rest) {
  const auto layers = static_cast<std::size_t>(source.spec().num_layers);
  std::vector<BlockBytes> bytes(layers);
  rest = 0;
  for (const Method m : {Method::kF16, Method::kInt8, Method::kInt4}) {
    CompressOptions all = options;
    all.method = Method::kMixed;
    all.layer_methods.assign(layers, m);
    for (const TensorScheme& t : plan_compression(source, all, calibrated).tensors) {
      const std::int64_t b = block_of_tensor(t.name);
      const std::uint64_t n = stored_bytes(t);
      if (b < 0) {
        if (m == Method::kF16) rest += n;
        continue;
      }
      BlockBytes& block = bytes[static_cast<std::size_t>(b)];
      (m == Method::kF16 ? block.f16 : m == Method::kInt8 ? block.int8 : block.int4) += n;
    }
  }
  return bytes;
}

std::vector<std::vector<Method>> downgrade_steps(std::span<const BlockSensitivity> sensitivity,
                                                 std::span<const BlockBytes> bytes) {
  std::vector<Method> methods(bytes.size(), Method::kF16);
  std::vector<std::vector<Method>> steps = {methods};
  for (;;) {
    std::size_t best = bytes.size();
    double best_cost = std::numeric_limits<double>::infinity();
    for (std::size_t b = 0; b < bytes.size(); ++b) {
      if (methods[b] == Method::kInt4) continue;
      const Method next = lower(methods[b]);
      const double saved =
          static_cast<double>(bytes[b].at(methods[b])) - static_cast<double>(bytes[b].at(next));
      // A KL that falls with fewer bits is noise: count it as free.
      const double kl =
          std::max(0.0, kl_at(sensitivity[b], next) - kl_at(sensitivity[b], methods[b]));
      const double cost = saved > 0 ? kl / saved : std::numeric_limits<double>::max();
      if (best == bytes.size() || cost < best_cost) {
        best = b;
        best_cost = cost;
      }
    }
    if (best == bytes.size()) return steps;
    methods[best] = lower(methods[best]);
    steps.push_back(methods);
  }
}

std::vector<Method> upgrade_to_kl(std::span<const BlockSensitivity> sensitivity,
                                  std::span<const BlockBytes> bytes, double bound) {
  std::vector<Method> methods(bytes.size(), Method::kInt4);
  while (estimated_kl(sensitivity, methods) > bound) {
    std::size_t best = bytes.size();
    double best_gain = -1;
    for (std::size_t b = 0; b < bytes.size(); ++b) {
      if (methods[b] == Method::kF16) continue;
      const Method next = higher(methods[b]);
      const double added = std::max(1.0, static_cast<double>(bytes[b].at(next)) -
                                             static_cast<double>(bytes[b].at(methods[b])));
      const double gain = (kl_at(sensitivity[b], methods[b]) - kl_at(sensitivity[b], next)) / added;
      if (gain > best_gain) {
        best = b;
        best_gain = gain;
      }
    }
    if (best == bytes.size()) break;
    methods[best] = higher(methods[best]);
  }
  return methods;
}

double estimated_kl(std::span<const BlockSensitivity> sensitivity,
                    std::span<const Method> methods) {
  double kl = 0;
  for (std::size_t b = 0; b < sensitivity.size(); ++b)
    kl += kl_at(sensitivity[b], methods[b]);
  return kl;
}

MixedResult compress_mixed(const ModelSource& source, const std::string& dir,
                           CompressOptions options, const MixedTarget& target,
                           std::span<const std::int32_t> calibration, nlohmann::json producer,
                           const SensitivityCallback& on_block, const LayerCallback& on_layer) {
  if (target.bytes.has_value() == target.kl.has_value()) {
    fail(ErrorCode::kInvalidArgument, "--method mixed: give one of --target-size and --target-kl");
  }
  if (calibration.size() < 2) {
    fail(ErrorCode::kInvalidArgument, "--method mixed measures sensitivity: give --calib");
  }
  options.method = Method::kMixed;
  // layers:N: the blocks kept are measured and sized; compress_model() removes the same
  // ones again from the similarities measured here.
  std::optional<WithoutBlocks> kept;
  if (options.prune.mode == PruneMode::kLayers) {
    const LayerPruning pruning = plan_layer_pruning(source, options, calibration);
    options.block_similarity = pruning.similarity;
    kept.emplace(source, pruning.removed);
  }
  const ModelSource& in = kept ? static_cast<const ModelSource&>(*kept) : source;
  MixedResult r;
  r.sensitivity = measure_block_sensitivity(in, options, calibration, on_block);
  std::uint64_t rest = 0;
  const std::vector<BlockBytes> bytes = block_bytes(in, options, true, rest);

  std::vector<std::vector<Method>> steps;
  std::size_t step = 0;
  if (target.kl) {
    r.methods = upgrade_to_kl(r.sensitivity, bytes, *target.kl);
  } else {
    steps = downgrade_steps(r.sensitivity, bytes);
    // The headers and the manifest, before they are measured: a generous guess.
    std::uint64_t overhead = 4096 + 1024 * static_cast<std::uint64_t>(bytes.size()) + rest / 1000;
    auto fit = [&](std::uint64_t extra) {
      for (std::size_t k = 0; k < steps.size(); ++k)
        if (data_bytes(bytes, steps[k], rest) + extra <= *target.bytes) return k;
      return steps.size() - 1;
    };
    step = fit(overhead);
    r.methods = steps[step];
  }

  auto write = [&] {
    options.layer_methods = r.methods;
    r.kl_estimate = estimated_kl(r.sensitivity, r.methods);
    r.json = {{"blocks", sensitivity_json(r.sensitivity, r.methods)},
              {"kl_estimate", r.kl_estimate},
              {"kl_estimate_note", "the sum of the blocks' KLs, each measured alone"},
              {"sensitivity",
               "mean KL(original || only this block quantised) on the "
               "calibration tokens, nats"},
              {"f16_note", "blocks kept at 16 bits are stored as f16"}};
    if (target.bytes) r.json["target_bytes"] = *target.bytes;
    if (target.kl) r.json["target_kl"] = *target.kl;
    nlohmann::json p = producer;
    p["mixed"] = r.json;
    r.written = compress_model(source, dir, options, calibration, p, on_layer);
    ++r.writes;
  };
  write();
  if (target.bytes) {
    // The measured overhead places the choice again; it hardly moves between choices,
    // so this settles in a write or two. Past that, step down until it fits.
    for (int round = 0; round < 3; ++round) {
      const std::uint64_t data = data_bytes(bytes, r.methods, rest);
      const std::uint64_t overhead = r.written.bytes > data ? r.written.bytes - data : 0;
      std::size_t k = 0;
      while (k + 1 < steps.size() && data_bytes(bytes, steps[k], rest) + overhead > *target.bytes)
        ++k;
      if (k == step) break;
      step = k;
      r.methods = steps[step];
      write();
    }
    while (r.written.bytes > *target.bytes && step + 1 < steps.size()) {
      r.methods = steps[++step];
      write();
    }
    if (r.written.bytes > *target.bytes) {
      fail(ErrorCode::kInvalidArgument, "--target-size " + std::to_string(*target.bytes) +
                                            " bytes: even every block in int4 takes " +
                                            std::to_string(r.written.bytes));
    }
    r.json["step"] = step;
  }
  return r;
}

}  // namespace conveyor::compress

#include "compress/compress_options.h"

#include <charconv>
#include <cmath>
#include <sstream>

#include "common/status.h"

namespace conveyor::compress {

std::optional<Method> method_from_name(std::string_view name) {
  if (name == "int8") return Method::kInt8;
  if (name == "int4") return Method::kInt4;
  if (name == "fp8") return Method::kFp8;
  if (name == "f16") return Method::kF16;
  if (name == "mixed") return Method::kMixed;
  return std::nullopt;
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::kInt8:
      return "int8";
    case Method::kInt4:
      return "int4";
    case Method::kFp8:
      return "fp8";
    case Method::kF16:
      return "f16";
    case Method::kMixed:
      return "mixed";
  }
  return "?";
}

std::string PruneSpec::to_string() const {
  switch (mode) {
    case PruneMode::kNone:
      return "none";
    case PruneMode::kTwoFour:
      return "2:4";
    case PruneMode::kLayers:
      return "layers:" + std::to_string(layers);
    case PruneMode::kMagnitude:
    case PruneMode::kWanda: {
      std::ostringstream out;
      out << (mode == PruneMode::kMagnitude ? "magnitude:" : "wanda:") << sparsity;
      return out.str();
    }
  }
  return "?";
}

PruneSpec parse_prune_spec(std::string_view text) {
  const std::string usage =
      "--prune '" + std::string(text) +
      "': expected magnitude:S, wanda:S (S a share in [0, 1)), 2:4 or layers:N (N blocks)";
  if (text.find_first_of(",+ ") != std::string_view::npos) {
    fail(ErrorCode::kInvalidArgument,
         "--prune '" + std::string(text) +
             "': one pruning mode per run (layers:N combines with any --method, not with "
             "magnitude, wanda or 2:4)");
  }
  if (text == "2:4") return {PruneMode::kTwoFour, 0.5};
  if (text == "none") return {};
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) fail(ErrorCode::kInvalidArgument, usage);
  const std::string_view mode = text.substr(0, colon);
  const std::string share(text.substr(colon + 1));
  PruneSpec spec;
  if (mode == "layers") {
    spec.mode = PruneMode::kLayers;
    const auto [end, ec] = std::from_chars(share.data(), share.data() + share.size(), spec.layers);
    if (share.empty() || ec != std::errc() || end != share.data() + share.size() ||
        spec.layers < 1) {
      fail(ErrorCode::kInvalidArgument,
           "--prune '" + std::string(text) + "': layers:N removes N >= 1 whole blocks");
    }
    return spec;
  }
  if (mode == "magnitude") {
    spec.mode = PruneMode::kMagnitude;
  } else if (mode == "wanda") {
    spec.mode = PruneMode::kWanda;
  } else {
    fail(ErrorCode::kInvalidArgument, usage);
  }
  std::size_t used = 0;
  try {
    spec.sparsity = std::stod(share, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (share.empty() || used != share.size() || !std::isfinite(spec.sparsity) || spec.sparsity < 0 ||
      spec.sparsity >= 1) {
    fail(ErrorCode::kInvalidArgument, usage);
  }
  return spec;
}

LinearFormat linear_format(const CompressOptions& options, std::int64_t k) {
  switch (options.method) {
    case Method::kInt8:
      return {DType::kQ8_R, ""};
    case Method::kFp8:
      return {DType::kF8_R, ""};
    case Method::kF16:
      // 2:4-pruned weights keep only their kept values and positions (s24_f16), which
      // the CPU computes from in that form.
      if (options.prune.mode == PruneMode::kTwoFour && k % 16 == 0) {
        return {DType::kS24_F16, "2:4 pruned: the kept values and their positions"};
      }
      return {DType::kF16, ""};
    case Method::kMixed:
      fail(ErrorCode::kInternal, "linear_format: a mixed model has a format per block");
    case Method::kInt4:
      if (options.group == 128 && k % 128 == 0) return {DType::kQ4_G128, ""};
      if (k % 32 == 0) {
        return {DType::kQ4_1, options.group == 32 ? ""
                                                  : "rows of " + std::to_string(k) +
                                                        " are no multiple of 128: groups of 32"};
      }
      return {DType::kQ8_R,
              "rows of " + std::to_string(k) + " are no multiple of 32: int8 per row instead"};
  }
  return {DType::kQ8_R, ""};
}

void check_options(const CompressOptions& options) {
  if (options.group != 32 && options.group != 128) {
    fail(ErrorCode::kInvalidArgument, "--group " + std::to_string(options.group) +
                                          ": int4 groups are 128 (q4_g128) or 32 (q4_1)");
  }
  if (options.awq_grid < 1) fail(ErrorCode::kInvalidArgument, "the AWQ grid needs a step");
  const PruneSpec& p = options.prune;
  if (!(p.sparsity >= 0 && p.sparsity < 1)) {
    fail(ErrorCode::kInvalidArgument, "--prune: a sparsity in [0, 1)");
  }
  if (p.mode == PruneMode::kLayers && p.layers < 1) {
    fail(ErrorCode::kInvalidArgument, "--prune layers:N removes N >= 1 whole blocks");
  }
  for (const Method m : options.layer_methods) {
    if (m != Method::kF16 && m != Method::kInt8 && m != Method::kInt4) {
      fail(ErrorCode::kInvalidArgument, "a mixed model's blocks are f16, int8 or int4");
    }
  }
}

void check_layer_pruning(const PruneSpec& prune, std::int64_t layers, bool calibrated) {
  if (prune.mode != PruneMode::kLayers) return;
  if (prune.layers < 1 || prune.layers > layers - 1) {
    fail(ErrorCode::kInvalidArgument,
         "--prune " + prune.to_string() + ": the model has " + std::to_string(layers) +
             " blocks; N must be between 1 and " + std::to_string(layers - 1));
  }
  if (!calibrated) {
    fail(ErrorCode::kInvalidArgument,
         "--prune layers:N compares each block's input and output hidden states on "
         "calibration text: give --calib");
  }
}

CompressOptions layer_options(const CompressOptions& options, std::int64_t layer) {
  if (options.method != Method::kMixed) return options;
  if (layer < 0 || layer >= static_cast<std::int64_t>(options.layer_methods.size())) {
    fail(ErrorCode::kInvalidArgument,
         "mixed: no precision chosen for layer " + std::to_string(layer));
  }
  CompressOptions one = options;
  one.method = options.layer_methods[static_cast<std::size_t>(layer)];
  one.layer_methods.clear();
  return one;
}

}  // namespace conveyor::compress

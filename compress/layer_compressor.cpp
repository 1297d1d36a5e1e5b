#include "compress/layer_compressor.h"

#include <span>

#include "common/quant/awq_search.h"
#include "common/quant/channel_stats.h"
#include "common/quant/prune_mask.h"
#include "common/status.h"

namespace conveyor::compress {
namespace {

bool is_int4(DType type) {
  return type == DType::kQ4_G128 || type == DType::kQ4_1;
}

// One linear of the block: its weight, shape, and which recorded input it reads.
struct Linear {
  std::string suffix;
  std::vector<float>* w;
  std::int64_t n;
  std::int64_t k;
  const std::vector<float>* x;  // null without calibration
};

std::vector<Linear> linears_of(F32Layer& w, const ModelSpec& s, const LinearInputs* in) {
  const std::int64_t dim = s.hidden_size;
  const std::int64_t ff = s.intermediate_size;
  auto input = [&](const std::vector<float> LinearInputs::*member) {
    return in == nullptr ? nullptr : &(in->*member);
  };
  return {
      {kLinearSuffixes[0], &w.q, s.q_dim(), dim, input(&LinearInputs::attn)},
      {kLinearSuffixes[1], &w.k, s.kv_dim(), dim, input(&LinearInputs::attn)},
      {kLinearSuffixes[2], &w.v, s.kv_dim(), dim, input(&LinearInputs::attn)},
      {kLinearSuffixes[3], &w.o, dim, s.q_dim(), input(&LinearInputs::attn_output)},
      {kLinearSuffixes[4], &w.gate, ff, dim, input(&LinearInputs::ffn)},
      {kLinearSuffixes[5], &w.up, ff, dim, input(&LinearInputs::ffn)},
      {kLinearSuffixes[6], &w.down, dim, ff, input(&LinearInputs::down)},
  };
}

// Prunes one weight in place; returns the notes for its scheme.
nlohmann::json prune(const Linear& l, std::int64_t tokens, const PruneSpec& spec) {
  std::span<float> w(*l.w);
  std::vector<float> norms;
  if (spec.mode == PruneMode::kWanda || (spec.mode == PruneMode::kTwoFour && l.x != nullptr)) {
    if (l.x == nullptr)
      fail(ErrorCode::kInvalidArgument, "--prune wanda needs calibration (--calib)");
    norms = quant::channel_l2_norms(*l.x, tokens, l.k);
  }
  std::vector<std::uint8_t> mask;
  nlohmann::json notes = {{"mode", spec.to_string()}};
  switch (spec.mode) {
    case PruneMode::kMagnitude:
      mask =
          quant::magnitude_prune_mask(w, l.n, l.k, {spec.sparsity, quant::PruneScope::kMatrix, {}});
      notes["score"] = "|w|, lowest of the matrix";
      break;
    case PruneMode::kWanda:
      mask =
          quant::magnitude_prune_mask(w, l.n, l.k, {spec.sparsity, quant::PruneScope::kRow, norms});
      notes["score"] = "|w| * ||x_j||, lowest of each row";
      break;
    case PruneMode::kTwoFour:
      if (l.k % 4 != 0) {
        fail(ErrorCode::kInvalidArgument, "--prune 2:4 needs rows that are a multiple of 4; " +
                                              l.suffix + " has " + std::to_string(l.k));
      }
      mask = quant::two_four_prune_mask(w, l.n, l.k, norms);
      notes["score"] = norms.empty() ? "|w|, 2 of every 4" : "|w| * ||x_j||, 2 of every 4";
      break;
    case PruneMode::kNone:
    case PruneMode::kLayers:  // whole blocks, removed before (layer_pruning.h)
      return nullptr;
  }
  quant::apply_prune_mask(w, mask);
  std::int64_t zeros = 0;
  for (std::uint8_t keep : mask)
    zeros += keep == 0 ? 1 : 0;
  notes["sparsity"] = static_cast<double>(zeros) / static_cast<double>(mask.size());
  notes["storage"] = "dense: the zeros are stored as values";
  return notes;
}

// One shared scale search: its weights, input and where the scales fold.
struct AwqGroup {
  std::vector<std::size_t> members;  // indices into the linears
  const std::vector<float>* x = nullptr;
  std::int64_t k = 0;
  DType type = DType::kQ4_G128;
  std::string folded_into;
  quant::AwqResult result;
  bool run = false;
};

}  // namespace

bool awq_applies(const CompressOptions& options, bool calibrated, std::int64_t k) {
  return options.method == Method::kInt4 && options.awq && calibrated &&
         is_int4(linear_format(options, k).dtype);
}

CompressedLayer compress_layer(F32Layer& w, const LinearInputs* inputs, std::int64_t tokens,
                               const ModelSpec& spec, const CompressOptions& options,
                               ThreadPool& pool) {
  const std::vector<Linear> linears = linears_of(w, spec, inputs);
  CompressedLayer out;
  std::vector<nlohmann::json> notes(linears.size());
  for (std::size_t i = 0; i < linears.size(); ++i) {
    const LinearFormat format = linear_format(options, linears[i].k);
    notes[i] = {{"method", method_name(options.method)}, {"format", dtype_name(format.dtype)}};
    if (!format.reason.empty()) notes[i]["why"] = format.reason;
  }

  if (options.prune.zeroes_weights()) {
    std::vector<nlohmann::json> pruned(linears.size());
    pool.run(static_cast<std::int64_t>(linears.size()), [&](std::int64_t i, int) {
      pruned[static_cast<std::size_t>(i)] =
          prune(linears[static_cast<std::size_t>(i)], tokens, options.prune);
    });
    double zeros = 0;
    double total = 0;
    for (std::size_t i = 0; i < linears.size(); ++i) {
      notes[i]["pruning"] = pruned[i];
      if (is_int4(linear_format(options, linears[i].k).dtype)) {
        notes[i]["pruning"]["after_quantisation"] =
            "int4's asymmetric grid keeps a pruned weight near 0, not exactly 0";
      }
      const double size = static_cast<double>(linears[i].n * linears[i].k);
      zeros += pruned[i].at("sparsity").get<double>() * size;
      total += size;
    }
    out.summary["sparsity"] = zeros / total;
  }

  const bool calibrated = inputs != nullptr;
  std::vector<AwqGroup> groups;
  const std::string blk = "blk." + std::to_string(w.index) + ".";
  if (calibrated) {
    groups.push_back(
        {{0, 1, 2}, &inputs->attn, spec.hidden_size, {}, blk + "attn_norm.weight", {}, false});
    groups.push_back(
        {{4, 5}, &inputs->ffn, spec.hidden_size, {}, blk + "ffn_norm.weight", {}, false});
    groups.push_back(
        {{6}, &inputs->down, spec.intermediate_size, {}, blk + "ffn_up.weight (rows)", {}, false});
  }
  for (AwqGroup& g : groups) {
    g.run = awq_applies(options, calibrated, g.k);
    g.type = linear_format(options, g.k).dtype;
  }
  pool.run(static_cast<std::int64_t>(groups.size()), [&](std::int64_t gi, int) {
    AwqGroup& g = groups[static_cast<std::size_t>(gi)];
    if (!g.run) return;
    std::vector<quant::AwqWeight> weights;
    for (std::size_t i : g.members)
      weights.push_back({*linears[i].w, linears[i].n});
    quant::AwqOptions awq;
    awq.type = g.type;
    awq.grid = options.awq_grid;
    g.result = quant::search_awq_scales(weights, *g.x, tokens, g.k, awq);
  });
  static constexpr const char* kGroupNames[] = {"qkv", "gate_up", "down"};
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const AwqGroup& g = groups[gi];
    if (!g.run) continue;
    const std::vector<float>& s = g.result.scales;
    for (std::size_t i : g.members)
      quant::scale_weight_columns(*linears[i].w, linears[i].n, linears[i].k, s);
    if (gi == 0) quant::fold_scales_into_norm(w.attn_norm, s);
    if (gi == 1) quant::fold_scales_into_norm(w.ffn_norm, s);
    if (gi == 2) {
      // down reads silu(gate) * up: dividing up's row j by s_j divides its input
      // channel j by s_j.
      for (std::int64_t r = 0; r < spec.intermediate_size; ++r) {
        for (std::int64_t j = 0; j < spec.hidden_size; ++j)
          w.up[static_cast<std::size_t>(r * spec.hidden_size + j)] /=
              s[static_cast<std::size_t>(r)];
      }
    }
    const nlohmann::json awq = {{"alpha", g.result.alpha},
                                {"output_mse", g.result.error},
                                {"plain_output_mse", g.result.plain_error},
                                {"folded_into", g.folded_into}};
    for (std::size_t i : g.members)
      notes[i]["awq"] = awq;
    out.summary[std::string("awq_") + kGroupNames[gi]] = awq;
  }
  if (!groups.empty() && groups[0].run) out.attn_norm = w.attn_norm;
  if (!groups.empty() && groups[1].run) out.ffn_norm = w.ffn_norm;

  out.linears.resize(linears.size());
  pool.run(static_cast<std::int64_t>(linears.size()), [&](std::int64_t ii, int) {
    const auto i = static_cast<std::size_t>(ii);
    const Linear& l = linears[i];
    out.linears[i].name = blk + l.suffix;
    out.linears[i].tensor =
        quant::quantize_weight(linear_format(options, l.k).dtype, *l.w, l.n, l.k);
    out.linears[i].notes = std::move(notes[i]);
  });
  return out;
}

}  // namespace conveyor::compress

#include "common/conveyor_model/model_spec_json.h"

#include <array>
#include <string_view>
#include <utility>

#include "common/conveyor_model/json_fields.h"
#include "common/status.h"

namespace conveyor {
namespace {

constexpr std::array<std::pair<RopePairing, std::string_view>, 2> kPairings = {{
    {RopePairing::kHalfSplit, "half_split"},
    {RopePairing::kInterleaved, "interleaved"},
}};
constexpr std::array<std::pair<RopeScalingType, std::string_view>, 3> kScalings = {{
    {RopeScalingType::kNone, "none"},
    {RopeScalingType::kLinear, "linear"},
    {RopeScalingType::kLlama3, "llama3"},
}};

}  // namespace

nlohmann::ordered_json model_spec_to_json(const ModelSpec& spec) {
  nlohmann::ordered_json factors = nlohmann::ordered_json::array();
  for (float f : spec.rope_freq_factors)
    factors.push_back(float_to_json(f));
  const RopeScaling& scaling = spec.rope_scaling;
  return {
      {"architecture", bytes_to_json(spec.architecture)},
      {"name", bytes_to_json(spec.name)},
      {"vocab_size", spec.vocab_size},
      {"hidden_size", spec.hidden_size},
      {"intermediate_size", spec.intermediate_size},
      {"num_layers", spec.num_layers},
      {"num_heads", spec.num_heads},
      {"num_kv_heads", spec.num_kv_heads},
      {"head_dim", spec.head_dim},
      {"max_positions", spec.max_positions},
      {"rms_norm_eps", spec.rms_norm_eps},
      {"rope_theta", spec.rope_theta},
      {"rope_scaling",
       {{"type", enum_name(kScalings, scaling.type)},
        {"factor", scaling.factor},
        {"low_freq_factor", scaling.low_freq_factor},
        {"high_freq_factor", scaling.high_freq_factor},
        {"original_max_positions", scaling.original_max_positions}}},
      {"rope_pairing", enum_name(kPairings, spec.rope_pairing)},
      {"rope_freq_factors", std::move(factors)},
      {"sliding_window", spec.sliding_window},
      {"qkv_bias", spec.qkv_bias},
      {"tie_embeddings", spec.tie_embeddings},
      {"bos_token_id", spec.bos_token_id},
      {"eos_token_ids", spec.eos_token_ids},
      {"pad_token_id", spec.pad_token_id},
  };
}

ModelSpec model_spec_from_json(const nlohmann::json& json, const std::string& where) {
  const JsonFieldReader f(json, where);
  ModelSpec spec;
  spec.architecture = bytes_from_json(f.field("architecture"), f.path("architecture"));
  spec.name = bytes_from_json(f.field("name"), f.path("name"));
  spec.vocab_size = f.integer("vocab_size");
  spec.hidden_size = f.integer("hidden_size");
  spec.intermediate_size = f.integer("intermediate_size");
  spec.num_layers = f.integer("num_layers");
  spec.num_heads = f.integer("num_heads");
  spec.num_kv_heads = f.integer("num_kv_heads");
  spec.head_dim = f.integer("head_dim");
  spec.max_positions = f.integer("max_positions");
  spec.rms_norm_eps = f.number("rms_norm_eps");
  spec.rope_theta = f.number("rope_theta");

  const JsonFieldReader scaling(f.object("rope_scaling"), f.path("rope_scaling"));
  spec.rope_scaling.type = enum_value(kScalings, scaling.string("type"), scaling.path("type"));
  spec.rope_scaling.factor = scaling.number("factor");
  spec.rope_scaling.low_freq_factor = scaling.number("low_freq_factor");
  spec.rope_scaling.high_freq_factor = scaling.number("high_freq_factor");
  spec.rope_scaling.original_max_positions = scaling.integer("original_max_positions");

  spec.rope_pairing = enum_value(kPairings, f.string("rope_pairing"), f.path("rope_pairing"));
  const nlohmann::json& factors = f.array("rope_freq_factors");
  spec.rope_freq_factors.reserve(factors.size());
  for (std::size_t i = 0; i < factors.size(); ++i) {
    spec.rope_freq_factors.push_back(
        float_from_json(factors[i], f.path("rope_freq_factors") + "[" + std::to_string(i) + "]"));
  }
  spec.sliding_window = f.integer("sliding_window");
  spec.qkv_bias = f.boolean("qkv_bias");
  spec.tie_embeddings = f.boolean("tie_embeddings");
  spec.bos_token_id = f.integer("bos_token_id");
  spec.eos_token_ids = f.integers("eos_token_ids");
  spec.pad_token_id = f.integer("pad_token_id");
  return spec;
}

}  // namespace conveyor

#include "common/hf/hf_config.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "common/hf/bounded_json.h"

namespace conveyor {
namespace {

// Typed access to the keys of one JSON object; every error names the file and key.
// A key set to null reads as absent, as transformers treats it.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string where)
      : object_(object), where_(std::move(where)) {
    if (!object_.is_object()) fail(ErrorCode::kMalformed, where_ + " is not a JSON object");
  }

  const nlohmann::json* get(const std::string& key) const {
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::int64_t required_int(const std::string& key) const {
    const nlohmann::json* v = get(key);
    if (v == nullptr) fail(ErrorCode::kMalformed, where_ + " has no '" + key + "'");
    return as_int(*v, key);
  }
  std::int64_t int_or(const std::string& key, std::int64_t fallback) const {
    const nlohmann::json* v = get(key);
    return v == nullptr ? fallback : as_int(*v, key);
  }
  double required_number(const std::string& key) const {
    const nlohmann::json* v = get(key);
    if (v == nullptr) fail(ErrorCode::kMalformed, where_ + " has no '" + key + "'");
    return as_number(*v, key);
  }
  double number_or(const std::string& key, double fallback) const {
    const nlohmann::json* v = get(key);
    return v == nullptr ? fallback : as_number(*v, key);
  }
  bool bool_or(const std::string& key, bool fallback) const {
    const nlohmann::json* v = get(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(ErrorCode::kMalformed, name(key) + " is not true or false");
    return v->get<bool>();
  }
  std::optional<std::string> string_opt(const std::string& key) const {
    const nlohmann::json* v = get(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) fail(ErrorCode::kMalformed, name(key) + " is not a string");
    return v->get<std::string>();
  }
  // A token id or a list of them; negative ids (some old exports write -1) mean none.
  std::vector<std::int64_t> token_ids(const std::string& key) const {
    const nlohmann::json* v = get(key);
    std::vector<std::int64_t> ids;
    if (v == nullptr) return ids;
    if (v->is_array()) {
      for (const auto& item : *v)
        ids.push_back(as_int(item, key));
    } else {
      ids.push_back(as_int(*v, key));
    }
    std::erase_if(ids, [](std::int64_t id) { return id < 0; });
    return ids;
  }
  std::int64_t token_id(const std::string& key) const {
    const nlohmann::json* v = get(key);
    if (v == nullptr) return -1;
    const std::int64_t id = as_int(*v, key);
    return id < 0 ? -1 : id;
  }

  std::string name(const std::string& key) const { return where_ + " '" + key + "'"; }

 private:
  std::int64_t as_int(const nlohmann::json& v, const std::string& key) const {
    if (!v.is_number_integer()) fail(ErrorCode::kMalformed, name(key) + " is not an integer");
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(ErrorCode::kOutOfRange, name(key) + " is too large");
    }
    return v.get<std::int64_t>();
  }
  double as_number(const nlohmann::json& v, const std::string& key) const {
    if (!v.is_number()) fail(ErrorCode::kMalformed, name(key) + " is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(ErrorCode::kMalformed, name(key) + " is not finite");
    return d;
  }

  const nlohmann::json& object_;
  std::string where_;
};

// What differs between the three families, as the transformers config classes define it.
struct FamilyDefaults {
  std::int64_t max_positions;
  std::int64_t sliding_window;  // used when the key is absent and the family has windows
};

std::optional<FamilyDefaults> family_defaults(const std::string& model_type) {
  if (model_type == "llama") return FamilyDefaults{2048, 0};
  if (model_type == "mistral") return FamilyDefaults{4096 * 32, 4096};
  if (model_type == "qwen2") return FamilyDefaults{32768, 4096};
  return std::nullopt;
}

// The RoPE block: `rope_parameters` (newer) or `rope_scaling` (older; null means none).
void read_rope(const JsonFields& config, const std::string& origin, ModelSpec& spec) {
  spec.rope_theta = config.number_or("rope_theta", 10000.0);
  const nlohmann::json* params = config.get("rope_parameters");
  std::string key = "rope_parameters";
  if (params == nullptr) {
    params = config.get("rope_scaling");
    key = "rope_scaling";
  }
  if (params == nullptr) return;
  const JsonFields rope(*params, origin + " '" + key + "'");
  spec.rope_theta = rope.number_or("rope_theta", spec.rope_theta);

  std::optional<std::string> type = rope.string_opt("rope_type");
  if (!type) type = rope.string_opt("type");  // the spelling before transformers 4.45
  if (!type) {
    // The newer block always carries a type; the older one is only written for scaling.
    if (key == "rope_parameters") return;
    fail(ErrorCode::kMalformed, origin + " 'rope_scaling' has neither 'rope_type' nor 'type'");
  }
  RopeScaling& scaling = spec.rope_scaling;
  if (*type == "default") {
    scaling = RopeScaling{};
  } else if (*type == "linear") {
    scaling.type = RopeScalingType::kLinear;
    scaling.factor = rope.required_number("factor");
  } else if (*type == "llama3") {
    scaling.type = RopeScalingType::kLlama3;
    scaling.factor = rope.required_number("factor");
    scaling.low_freq_factor = rope.required_number("low_freq_factor");
    scaling.high_freq_factor = rope.required_number("high_freq_factor");
    scaling.original_max_positions = rope.required_int("original_max_position_embeddings");
  } else {
    fail(ErrorCode::kUnsupported, origin + ": RoPE type '" + *type +
                                      "' is not supported (supported: default, linear, llama3)");
  }
}

// `sliding_window`: absent means the family default, null means full attention.
std::int64_t sliding_window_value(const nlohmann::json& json, const JsonFields& config,
                                  std::int64_t default_window) {
  if (!json.contains("sliding_window")) return default_window;
  return config.int_or("sliding_window", 0);
}

// Qwen2 applies its window only when use_sliding_window is set, and then only to the
// layers that layer_types marks "sliding_attention" (older configs: layers at or past
// max_window_layers). ModelSpec has one window for all layers, so a mix is refused.
std::int64_t qwen2_sliding_window(const nlohmann::json& json, const JsonFields& config,
                                  const std::string& origin, std::int64_t num_layers,
                                  std::int64_t default_window) {
  if (!config.bool_or("use_sliding_window", false)) return 0;
  const std::int64_t window = sliding_window_value(json, config, default_window);
  if (window == 0) return 0;
  std::int64_t sliding_layers = 0;
  if (const nlohmann::json* types = config.get("layer_types")) {
    if (!types->is_array() || static_cast<std::int64_t>(types->size()) != num_layers) {
      fail(ErrorCode::kMalformed, origin + ": 'layer_types' is not a list of " +
                                      std::to_string(num_layers) + " layer types");
    }
    for (const auto& t : *types) {
      if (t == "sliding_attention") {
        ++sliding_layers;
      } else if (t != "full_attention") {
        fail(ErrorCode::kUnsupported, origin + ": layer type " + t.dump() + " is not supported");
      }
    }
  } else {
    const std::int64_t first =
        std::clamp<std::int64_t>(config.int_or("max_window_layers", 28), 0, num_layers);
    sliding_layers = num_layers - first;
  }
  if (sliding_layers == 0) return 0;
  if (sliding_layers != num_layers) {
    fail(ErrorCode::kUnsupported,
         origin + ": a sliding window on " + std::to_string(sliding_layers) + " of " +
             std::to_string(num_layers) + " layers is not supported (only all or none)");
  }
  return window;
}

}  // namespace

ModelSpec model_spec_from_hf_config(const nlohmann::json& json, const std::string& origin) {
  const JsonFields config(json, origin);
  const std::optional<std::string> model_type = config.string_opt("model_type");
  if (!model_type) fail(ErrorCode::kMalformed, origin + " has no 'model_type'");
  const std::optional<FamilyDefaults> family = family_defaults(*model_type);
  if (!family) {
    fail(ErrorCode::kUnsupported, origin + ": model_type '" + *model_type +
                                      "' is not supported (supported: llama, mistral, qwen2)");
  }
  if (const auto act = config.string_opt("hidden_act"); act && *act != "silu") {
    fail(ErrorCode::kUnsupported, origin + ": hidden_act '" + *act +
                                      "' is not supported (the Llama-family block uses silu)");
  }

  ModelSpec spec;
  spec.architecture = *model_type;
  spec.name = config.string_opt("_name_or_path").value_or("");
  spec.vocab_size = config.required_int("vocab_size");
  spec.hidden_size = config.required_int("hidden_size");
  spec.intermediate_size = config.required_int("intermediate_size");
  spec.num_layers = config.required_int("num_hidden_layers");
  spec.num_heads = config.required_int("num_attention_heads");
  if (spec.num_heads <= 0)
    fail(ErrorCode::kMalformed, config.name("num_attention_heads") + " must be positive");
  spec.num_kv_heads = config.int_or("num_key_value_heads", spec.num_heads);
  if (config.get("head_dim") != nullptr) {
    spec.head_dim = config.required_int("head_dim");
  } else if (spec.hidden_size % spec.num_heads == 0) {
    spec.head_dim = spec.hidden_size / spec.num_heads;
  } else {
    fail(ErrorCode::kMalformed, origin +
                                    ": hidden_size is not a multiple of "
                                    "num_attention_heads and no head_dim is given");
  }
  spec.max_positions = config.int_or("max_position_embeddings", family->max_positions);
  spec.rms_norm_eps = config.number_or("rms_norm_eps", 1e-6);
  read_rope(config, origin, spec);
  spec.rope_pairing = RopePairing::kHalfSplit;  // transformers' rotate_half
  spec.tie_embeddings = config.bool_or("tie_word_embeddings", false);

  if (*model_type == "llama") {
    // LlamaAttention gives o_proj the same bias flag as q/k/v, and mlp_bias puts biases
    // on all three MLP projections; the engine's block has neither.
    if (config.bool_or("attention_bias", false)) {
      fail(ErrorCode::kUnsupported,
           origin +
               ": attention_bias=true (Llama adds a bias to o_proj as well as q/k/v) is "
               "not supported");
    }
    if (config.bool_or("mlp_bias", false)) {
      fail(ErrorCode::kUnsupported, origin + ": mlp_bias=true is not supported");
    }
  } else if (*model_type == "mistral") {
    spec.sliding_window = sliding_window_value(json, config, family->sliding_window);
  } else if (*model_type == "qwen2") {
    spec.qkv_bias = true;
    spec.sliding_window =
        qwen2_sliding_window(json, config, origin, spec.num_layers, family->sliding_window);
  }

  spec.bos_token_id = config.token_id("bos_token_id");
  spec.eos_token_ids = config.token_ids("eos_token_id");
  spec.pad_token_id = config.token_id("pad_token_id");
  validate_model_spec(spec, origin);
  return spec;
}

void apply_hf_generation_config(const nlohmann::json& json, const std::string& origin,
                                ModelSpec& spec) {
  const JsonFields generation(json, origin);
  for (const std::int64_t id : generation.token_ids("eos_token_id")) {
    if (std::find(spec.eos_token_ids.begin(), spec.eos_token_ids.end(), id) ==
        spec.eos_token_ids.end()) {
      spec.eos_token_ids.push_back(id);
    }
  }
  if (spec.bos_token_id < 0) spec.bos_token_id = generation.token_id("bos_token_id");
  if (spec.pad_token_id < 0) spec.pad_token_id = generation.token_id("pad_token_id");
  validate_model_spec(spec, origin);  // the ids added here must fit the vocabulary too
}

Expected<ModelSpec> parse_hf_config(std::string_view json_text, const std::string& origin) {
  return to_expected(
      [&] { return model_spec_from_hf_config(parse_json_bounded(json_text, origin), origin); });
}

Expected<ModelSpec> read_hf_config(const std::string& config_path) {
  return to_expected(
      [&] { return model_spec_from_hf_config(read_json_file(config_path), config_path); });
}

}  // namespace conveyor

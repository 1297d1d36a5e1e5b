// config.json -> ModelSpec: the five fixtures field by field, the older RoPE keys, and
// the configs that must be refused.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/hf/hf_config.h"
#include "tests/hf/test_files.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

ModelSpec fixture_spec(std::string_view name) {
  auto spec = read_hf_config((hf_fixture(name) / "config.json").string());
  INFO(spec.status().to_string());
  REQUIRE(spec.ok());
  return spec.value();
}

nlohmann::json fixture_config(std::string_view name) {
  return nlohmann::json::parse(read_text(hf_fixture(name) / "config.json"));
}

Expected<ModelSpec> parse(const nlohmann::json& config) {
  return parse_hf_config(config.dump(), "config.json");
}

void check_refused(const nlohmann::json& config, ErrorCode code, std::string_view words) {
  const auto spec = parse(config);
  REQUIRE_FALSE(spec.ok());
  INFO(spec.status().to_string());
  CHECK(spec.status().code() == code);
  CHECK(spec.status().message().find(words) != std::string::npos);
}

// What all five fixtures share.
void check_tiny_dims(const ModelSpec& s) {
  CHECK(s.vocab_size == 320);
  CHECK(s.hidden_size == 64);
  CHECK(s.intermediate_size == 160);
  CHECK(s.num_layers == 3);
  CHECK(s.num_heads == 4);
  CHECK(s.num_kv_heads == 2);
  CHECK(s.head_dim == 16);
  CHECK(s.q_dim() == 64);
  CHECK(s.kv_dim() == 32);
  CHECK(s.max_positions == 512);
  CHECK(s.rms_norm_eps == doctest::Approx(1e-5));
  CHECK(s.rope_pairing == RopePairing::kHalfSplit);
  CHECK(s.bos_token_id == 1);
  CHECK(s.eos_token_ids == std::vector<std::int64_t>{2});
  CHECK(s.pad_token_id == -1);
}

}  // namespace

TEST_CASE("hf config: llama-tiny") {
  const ModelSpec s = fixture_spec("llama-tiny");
  check_tiny_dims(s);
  CHECK(s.architecture == "llama");
  CHECK(s.rope_theta == 10000.0);
  CHECK(s.rope_scaling.type == RopeScalingType::kNone);
  CHECK(s.sliding_window == 0);
  CHECK_FALSE(s.qkv_bias);
  CHECK_FALSE(s.tie_embeddings);
}

TEST_CASE("hf config: llama-tiny-tied") {
  const ModelSpec s = fixture_spec("llama-tiny-tied");
  check_tiny_dims(s);
  CHECK(s.architecture == "llama");
  CHECK(s.rope_scaling.type == RopeScalingType::kNone);
  CHECK_FALSE(s.qkv_bias);
  CHECK(s.tie_embeddings);
}

TEST_CASE("hf config: llama3-tiny-ropescaling") {
  const ModelSpec s = fixture_spec("llama3-tiny-ropescaling");
  check_tiny_dims(s);
  CHECK(s.architecture == "llama");
  CHECK(s.rope_theta == 500000.0);
  CHECK(s.rope_scaling.type == RopeScalingType::kLlama3);
  CHECK(s.rope_scaling.factor == 8.0);
  CHECK(s.rope_scaling.low_freq_factor == 1.0);
  CHECK(s.rope_scaling.high_freq_factor == 4.0);
  CHECK(s.rope_scaling.original_max_positions == 64);
  CHECK(s.sliding_window == 0);
  CHECK(s.tie_embeddings);
}

TEST_CASE("hf config: qwen2-tiny") {
  const ModelSpec s = fixture_spec("qwen2-tiny");
  check_tiny_dims(s);  // head_dim is not in this config: 64 / 4
  CHECK(s.architecture == "qwen2");
  CHECK(s.rope_theta == 1000000.0);
  CHECK(s.rope_scaling.type == RopeScalingType::kNone);
  CHECK(s.qkv_bias);
  CHECK(s.tie_embeddings);
  CHECK(s.sliding_window == 0);  // use_sliding_window is false
}

TEST_CASE("hf config: mistral-tiny-swa") {
  const ModelSpec s = fixture_spec("mistral-tiny-swa");
  check_tiny_dims(s);
  CHECK(s.architecture == "mistral");
  CHECK(s.rope_theta == 10000.0);
  CHECK(s.sliding_window == 8);
  CHECK_FALSE(s.qkv_bias);
  CHECK_FALSE(s.tie_embeddings);
}

TEST_CASE("hf config: the older rope_theta + rope_scaling keys") {
  nlohmann::json config = fixture_config("llama3-tiny-ropescaling");
  config.erase("rope_parameters");
  config["rope_theta"] = 500000.0;

  SUBCASE("llama3 scaling spelled with 'type'") {
    config["rope_scaling"] = {{"type", "llama3"},
                              {"factor", 32.0},
                              {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0},
                              {"original_max_position_embeddings", 8192}};
    const auto s = parse(config);
    REQUIRE(s.ok());
    CHECK(s->rope_theta == 500000.0);
    CHECK(s->rope_scaling.type == RopeScalingType::kLlama3);
    CHECK(s->rope_scaling.factor == 32.0);
    CHECK(s->rope_scaling.original_max_positions == 8192);
  }
  SUBCASE("linear scaling spelled with 'rope_type', integer factor") {
    config["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2}};
    const auto s = parse(config);
    REQUIRE(s.ok());
    CHECK(s->rope_scaling.type == RopeScalingType::kLinear);
    CHECK(s->rope_scaling.factor == 2.0);
  }
  SUBCASE("null scaling and an integer theta") {
    config["rope_scaling"] = nullptr;
    config["rope_theta"] = 10000;
    const auto s = parse(config);
    REQUIRE(s.ok());
    CHECK(s->rope_theta == 10000.0);
    CHECK(s->rope_scaling.type == RopeScalingType::kNone);
  }
  SUBCASE("no RoPE keys at all: transformers' default theta") {
    config.erase("rope_theta");
    const auto s = parse(config);
    REQUIRE(s.ok());
    CHECK(s->rope_theta == 10000.0);
  }
  SUBCASE("scaling without a type") {
    config["rope_scaling"] = {{"factor", 2.0}};
    check_refused(config, ErrorCode::kMalformed, "rope_type");
  }
  SUBCASE("dynamic NTK scaling") {
    config["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
    check_refused(config, ErrorCode::kUnsupported, "'dynamic'");
  }
  SUBCASE("llama3 scaling with a key missing") {
    config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    check_refused(config, ErrorCode::kMalformed, "low_freq_factor");
  }
}

TEST_CASE("hf config: rope types the engine does not implement are refused by name") {
  nlohmann::json config = fixture_config("llama-tiny");
  for (const char* type : {"yarn", "longrope", "dynamic"}) {
    config["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", type}, {"factor", 4.0}};
    check_refused(config, ErrorCode::kUnsupported, type);
  }
}

TEST_CASE("hf config: defaults for keys a config may omit") {
  nlohmann::json config = fixture_config("llama-tiny");
  config.erase("num_key_value_heads");
  config.erase("head_dim");
  config.erase("tie_word_embeddings");
  config.erase("max_position_embeddings");
  config.erase("pad_token_id");
  const auto s = parse(config);
  REQUIRE(s.ok());
  CHECK(s->num_kv_heads == 4);
  CHECK(s->head_dim == 16);
  CHECK_FALSE(s->tie_embeddings);
  CHECK(s->max_positions == 2048);
  CHECK(s->pad_token_id == -1);
}

TEST_CASE("hf config: special token ids") {
  nlohmann::json config = fixture_config("llama-tiny");
  config["eos_token_id"] = {128001, 128008, 128009};
  config["pad_token_id"] = -1;  // old Llama exports
  config["vocab_size"] = 128256;
  const auto s = parse(config);
  REQUIRE(s.ok());
  CHECK(s->eos_token_ids == std::vector<std::int64_t>{128001, 128008, 128009});
  CHECK(s->pad_token_id == -1);

  ModelSpec merged = s.value();
  apply_hf_generation_config({{"eos_token_id", {128009, 128010}}, {"pad_token_id", 128004}},
                             "generation_config.json", merged);
  CHECK(merged.eos_token_ids == std::vector<std::int64_t>{128001, 128008, 128009, 128010});
  CHECK(merged.pad_token_id == 128004);
}

TEST_CASE("hf config: sliding windows") {
  SUBCASE("mistral with a null window attends fully") {
    nlohmann::json config = fixture_config("mistral-tiny-swa");
    config["sliding_window"] = nullptr;
    CHECK(parse(config)->sliding_window == 0);
  }
  SUBCASE("mistral without the key gets MistralConfig's 4096") {
    nlohmann::json config = fixture_config("mistral-tiny-swa");
    config.erase("sliding_window");
    CHECK(parse(config)->sliding_window == 4096);
  }
  SUBCASE("llama ignores sliding_window") {
    nlohmann::json config = fixture_config("llama-tiny");
    config["sliding_window"] = 16;
    CHECK(parse(config)->sliding_window == 0);
  }
  SUBCASE("qwen2 applies the window only with use_sliding_window") {
    nlohmann::json config = fixture_config("qwen2-tiny");
    config["sliding_window"] = 32;
    CHECK(parse(config)->sliding_window == 0);
    config["use_sliding_window"] = true;
    config["layer_types"] = {"sliding_attention", "sliding_attention", "sliding_attention"};
    CHECK(parse(config)->sliding_window == 32);
    config["layer_types"] = {"full_attention", "full_attention", "full_attention"};
    CHECK(parse(config)->sliding_window == 0);
    config["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention"};
    check_refused(config, ErrorCode::kUnsupported, "2 of 3 layers");
    config.erase("layer_types");
    config["max_window_layers"] = 0;  // older configs: layers from this index on slide
    CHECK(parse(config)->sliding_window == 32);
    config["max_window_layers"] = 28;
    CHECK(parse(config)->sliding_window == 0);
  }
}

TEST_CASE("hf config: configs that are refused") {
  nlohmann::json config = fixture_config("llama-tiny");
  SUBCASE("unknown model_type, named") {
    config["model_type"] = "gemma2";
    check_refused(config, ErrorCode::kUnsupported, "'gemma2'");
  }
  SUBCASE("no model_type") {
    config.erase("model_type");
    check_refused(config, ErrorCode::kMalformed, "model_type");
  }
  SUBCASE("a required size missing") {
    config.erase("vocab_size");
    check_refused(config, ErrorCode::kMalformed, "vocab_size");
  }
  SUBCASE("a size of the wrong type") {
    config["hidden_size"] = "64";
    check_refused(config, ErrorCode::kMalformed, "hidden_size");
    config["hidden_size"] = 64.5;
    check_refused(config, ErrorCode::kMalformed, "hidden_size");
  }
  SUBCASE("a flag of the wrong type") {
    config["tie_word_embeddings"] = 1;
    check_refused(config, ErrorCode::kMalformed, "tie_word_embeddings");
  }
  SUBCASE("hidden_size not divisible by the heads and no head_dim") {
    config.erase("head_dim");
    config["hidden_size"] = 66;
    check_refused(config, ErrorCode::kMalformed, "head_dim");
  }
  SUBCASE("kv heads that do not divide the heads") {
    config["num_key_value_heads"] = 3;
    check_refused(config, ErrorCode::kMalformed, "num_kv_heads");
  }
  SUBCASE("zero heads") {
    config["num_attention_heads"] = 0;
    check_refused(config, ErrorCode::kMalformed, "num_attention_heads");
  }
  SUBCASE("Llama attention_bias (bias on o_proj too)") {
    config["attention_bias"] = true;
    check_refused(config, ErrorCode::kUnsupported, "attention_bias");
  }
  SUBCASE("Llama mlp_bias") {
    config["mlp_bias"] = true;
    check_refused(config, ErrorCode::kUnsupported, "mlp_bias");
  }
  SUBCASE("an activation other than silu") {
    config["hidden_act"] = "gelu";
    check_refused(config, ErrorCode::kUnsupported, "gelu");
  }
  SUBCASE("a huge integer") {
    config["vocab_size"] = 18446744073709551615ull;
    check_refused(config, ErrorCode::kOutOfRange, "vocab_size");
  }
  SUBCASE("not JSON") {
    const auto s = parse_hf_config("{\"model_type\": ", "config.json");
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == ErrorCode::kMalformed);
  }
  SUBCASE("not an object") {
    check_refused(nlohmann::json::array({1}), ErrorCode::kMalformed, "object");
  }
}

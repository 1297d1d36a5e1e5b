// The JSON codecs of conveyor-model.json: a ModelSpec and a TokenizerData read back
// equal, field for field (doubles and floats bit for bit, byte strings that are not
// UTF-8 included), and damaged fields are refused with kMalformed naming the field.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>

#include "common/conveyor_model/json_fields.h"
#include "common/conveyor_model/model_spec_json.h"
#include "common/conveyor_model/tokenizer_data_json.h"
#include "common/loader/open_model.h"
#include "common/model_registry.h"
#include "common/status.h"
#include "common/tokenizer/tokenizer_json.h"

using namespace conveyor;

namespace {

// Through the text, as a file would carry it.
nlohmann::json through_text(const nlohmann::ordered_json& j) {
  return nlohmann::json::parse(j.dump(1));
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

ModelSpec full_spec() {
  ModelSpec s;
  s.architecture = "qwen2";
  s.name = "a name with bytes \xff\xfe that are not UTF-8";
  s.vocab_size = 1000;
  s.hidden_size = 64;
  s.intermediate_size = 160;
  s.num_layers = 3;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 16;
  s.max_positions = 2048;
  s.rms_norm_eps = 9.999999747378752e-06;  // an f32 1e-5 as a double
  s.rope_theta = 500000.0 / 3.0;           // no short decimal form
  s.rope_scaling = {RopeScalingType::kLlama3, 8.0, 1.0 / 3.0, 4.0, 8192};
  s.rope_pairing = RopePairing::kInterleaved;
  s.rope_freq_factors = {1.0f, 1.1f, 0.1f / 3.0f, 1e-7f, 4.0f, 8.0f, 16.5f, 1.0f / 7.0f};
  s.sliding_window = 4096;
  s.qkv_bias = true;
  s.tie_embeddings = true;
  s.bos_token_id = 1;
  s.eos_token_ids = {2, 7, 999};
  s.pad_token_id = 0;
  return s;
}

void check_same_spec(const ModelSpec& a, const ModelSpec& b) {
  CHECK(a.architecture == b.architecture);
  CHECK(a.name == b.name);
  CHECK(a.vocab_size == b.vocab_size);
  CHECK(a.hidden_size == b.hidden_size);
  CHECK(a.intermediate_size == b.intermediate_size);
  CHECK(a.num_layers == b.num_layers);
  CHECK(a.num_heads == b.num_heads);
  CHECK(a.num_kv_heads == b.num_kv_heads);
  CHECK(a.head_dim == b.head_dim);
  CHECK(a.max_positions == b.max_positions);
  CHECK(a.rms_norm_eps == b.rms_norm_eps);
  CHECK(a.rope_theta == b.rope_theta);
  CHECK(a.rope_scaling.type == b.rope_scaling.type);
  CHECK(a.rope_scaling.factor == b.rope_scaling.factor);
  CHECK(a.rope_scaling.low_freq_factor == b.rope_scaling.low_freq_factor);
  CHECK(a.rope_scaling.high_freq_factor == b.rope_scaling.high_freq_factor);
  CHECK(a.rope_scaling.original_max_positions == b.rope_scaling.original_max_positions);
  CHECK(a.rope_pairing == b.rope_pairing);
  REQUIRE(a.rope_freq_factors.size() == b.rope_freq_factors.size());
  for (std::size_t i = 0; i < a.rope_freq_factors.size(); ++i)
    CHECK(same_bits(a.rope_freq_factors[i], b.rope_freq_factors[i]));
  CHECK(a.sliding_window == b.sliding_window);
  CHECK(a.qkv_bias == b.qkv_bias);
  CHECK(a.tie_embeddings == b.tie_embeddings);
  CHECK(a.bos_token_id == b.bos_token_id);
  CHECK(a.eos_token_ids == b.eos_token_ids);
  CHECK(a.pad_token_id == b.pad_token_id);
}

TokenizerData full_tokenizer() {
  TokenizerData t;
  t.kind = TokenizerKind::kSentencePieceBpe;
  t.pre = "llama-bpe";
  t.tokens = {"<unk>", "<s>", "</s>", "<0x0A>",    "\xe2\x96\x81the", "raw \xc3\x28 byte",
              "a",     "b",   "ab",   "<|im_end|>"};
  t.scores = {0.0f,        -1.5f,  -std::numeric_limits<float>::infinity(),
              1.0f / 3.0f, -2.25f, std::numeric_limits<float>::quiet_NaN(),
              7.0f,        1e-30f, -0.0f,
              3.5f};
  t.token_types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl,
                   TokenType::kByte,    TokenType::kNormal,  TokenType::kUndefined,
                   TokenType::kNormal,  TokenType::kUnused,  TokenType::kUserDefined,
                   TokenType::kControl};
  t.merges = {"a b", "\xe2\x96\x81 the", "  b"};
  t.bos_id = 1;
  t.eos_id = 2;
  t.unk_id = 0;
  t.pad_id = 9;
  t.eot_ids = {9, 2};
  t.add_bos = true;
  t.add_eos = true;
  t.chat_template = "{% for m in messages %}{{ m['content'] }}\xff{% endfor %}";
  t.added_tokens = {{9, "<|im_end|>", true, true, false, true},
                    {8, "ab", false, false, true, false}};
  t.pre_regexes = {"\\s+(?!\\S)", "\\p{L}+"};
  t.ignore_merges = true;
  t.normalize_nfc = true;
  t.add_space_prefix = false;
  t.space_prefix_rule = SpacePrefixRule::kFirstRunUnlessSpace;
  t.byte_fallback = false;
  return t;
}

void check_same_tokenizer(const TokenizerData& a, const TokenizerData& b) {
  CHECK(a.kind == b.kind);
  CHECK(a.pre == b.pre);
  CHECK(a.tokens == b.tokens);
  REQUIRE(a.scores.size() == b.scores.size());
  for (std::size_t i = 0; i < a.scores.size(); ++i) {
    CAPTURE(i);
    CHECK((same_bits(a.scores[i], b.scores[i]) ||
           (std::isnan(a.scores[i]) && std::isnan(b.scores[i]))));
  }
  CHECK(a.token_types == b.token_types);
  CHECK(a.merges == b.merges);
  CHECK(a.bos_id == b.bos_id);
  CHECK(a.eos_id == b.eos_id);
  CHECK(a.unk_id == b.unk_id);
  CHECK(a.pad_id == b.pad_id);
  CHECK(a.eot_ids == b.eot_ids);
  CHECK(a.add_bos == b.add_bos);
  CHECK(a.add_eos == b.add_eos);
  CHECK(a.chat_template == b.chat_template);
  REQUIRE(a.added_tokens.size() == b.added_tokens.size());
  for (std::size_t i = 0; i < a.added_tokens.size(); ++i) {
    CHECK(a.added_tokens[i].id == b.added_tokens[i].id);
    CHECK(a.added_tokens[i].content == b.added_tokens[i].content);
    CHECK(a.added_tokens[i].special == b.added_tokens[i].special);
    CHECK(a.added_tokens[i].lstrip == b.added_tokens[i].lstrip);
    CHECK(a.added_tokens[i].rstrip == b.added_tokens[i].rstrip);
    CHECK(a.added_tokens[i].single_word == b.added_tokens[i].single_word);
  }
  CHECK(a.pre_regexes == b.pre_regexes);
  CHECK(a.ignore_merges == b.ignore_merges);
  CHECK(a.normalize_nfc == b.normalize_nfc);
  CHECK(a.add_space_prefix == b.add_space_prefix);
  CHECK(a.space_prefix_rule == b.space_prefix_rule);
  CHECK(a.byte_fallback == b.byte_fallback);
}

ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kOk;
}

}  // namespace

TEST_CASE("a ModelSpec with every field set reads back equal, bit for bit") {
  const ModelSpec spec = full_spec();
  check_same_spec(spec, model_spec_from_json(through_text(model_spec_to_json(spec))));
  const ModelSpec plain;
  check_same_spec(plain, model_spec_from_json(through_text(model_spec_to_json(plain))));
}

TEST_CASE("a TokenizerData with every field set reads back equal, non-UTF-8 bytes included") {
  const TokenizerData data = full_tokenizer();
  const nlohmann::json json = through_text(tokenizer_data_to_json(data));
  CHECK(json.at("tokens")[5].is_object());  // stored as hex
  CHECK(json.at("tokens")[4].is_string());
  check_same_tokenizer(data, tokenizer_data_from_json(json));
}

TEST_CASE("the tokenizer.json fixtures read back equal") {
  for (const std::string name :
       {"gpt2-added", "gpt2-bpe", "llama3-bpe", "qwen2-bpe", "spm-llama", "spm-metaspace"}) {
    CAPTURE(name);
    const std::string path =
        std::string(CONVEYOR_FIXTURES_DIR) + "/tokenizer/" + name + "/tokenizer.json";
    const TokenizerData data = load_tokenizer_json(path).value();
    check_same_tokenizer(data,
                         tokenizer_data_from_json(through_text(tokenizer_data_to_json(data))));
  }
}

TEST_CASE("a GGUF file's tokenizer and chat template read back equal") {
  const Expected<std::string> path = resolve_model_path("smollm2-135m-instruct");
  if (!path.ok()) {
    MESSAGE("skipped: the default model is not installed");
    return;
  }
  const auto model = open_model_source(*path).value();
  REQUIRE(model->tokenizer().has_value());
  CHECK(!model->tokenizer()->chat_template.empty());
  check_same_tokenizer(
      *model->tokenizer(),
      tokenizer_data_from_json(through_text(tokenizer_data_to_json(*model->tokenizer()))));
  check_same_spec(model->spec(),
                  model_spec_from_json(through_text(model_spec_to_json(model->spec()))));
}

TEST_CASE("damaged fields are refused with kMalformed naming them") {
  const nlohmann::json spec = through_text(model_spec_to_json(full_spec()));
  auto spec_with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = spec;
    if (value.is_discarded()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return j;
  };
  for (const auto& [key, value] : std::vector<std::pair<std::string, nlohmann::json>>{
           {"hidden_size", nlohmann::json::value_t::discarded},
           {"hidden_size", "64"},
           {"hidden_size", 64.5},
           {"rope_pairing", "diagonal"},
           {"rms_norm_eps", nullptr},
           {"qkv_bias", 1},
           {"eos_token_ids", 2},
           {"rope_freq_factors", nlohmann::json::array({1.0, "many"})}}) {
    CAPTURE(key);
    CAPTURE(value.dump());
    try {
      model_spec_from_json(spec_with(key, value));
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::kMalformed);
      CHECK(std::string(e.what()).find("spec." + key) != std::string::npos);
    }
  }
  CHECK(code_of([] { model_spec_from_json(nlohmann::json::array()); }) == ErrorCode::kMalformed);

  const nlohmann::json tok = through_text(tokenizer_data_to_json(full_tokenizer()));
  auto tok_with = [&](const std::string& key, const nlohmann::json& value) {
    nlohmann::json j = tok;
    j[key] = value;
    return [j] { tokenizer_data_from_json(j); };
  };
  CHECK(code_of(tok_with("kind", "unigram")) == ErrorCode::kMalformed);
  CHECK(code_of(tok_with("scores", {1.0, 2.0})) == ErrorCode::kMalformed);  // not one per token
  CHECK(code_of(tok_with("token_types", std::vector<int>(10, 9))) == ErrorCode::kMalformed);
  CHECK(code_of(tok_with("bos_id", 10)) == ErrorCode::kMalformed);  // past the vocabulary
  CHECK(code_of(tok_with("eot_ids", {-1})) == ErrorCode::kMalformed);
  CHECK(code_of(tok_with("merges", {"nospace"})) == ErrorCode::kMalformed);
  CHECK(code_of(tok_with("tokens", nlohmann::json::array({nlohmann::json{{"hex", "zz"}}}))) ==
        ErrorCode::kMalformed);
  CHECK(code_of(tok_with("tokens", nlohmann::json::array({nlohmann::json{{"hex", "abc"}}}))) ==
        ErrorCode::kMalformed);
  CHECK(code_of(tok_with("space_prefix_rule", "sometimes")) == ErrorCode::kMalformed);
}

TEST_CASE("floats without a JSON literal and byte strings round-trip") {
  for (float v :
       {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(), 0.1f,
        -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()}) {
    CHECK(same_bits(
        float_from_json(through_text(nlohmann::ordered_json::array({float_to_json(v)}))[0], "v"),
        v));
  }
  CHECK(std::isnan(float_from_json(float_to_json(std::numeric_limits<float>::quiet_NaN()), "v")));
  CHECK(code_of([] { float_from_json("infinity", "v"); }) == ErrorCode::kMalformed);
  CHECK(code_of([] { float_from_json(1e300, "v"); }) == ErrorCode::kMalformed);
  std::string all_bytes;
  for (int b = 0; b < 256; ++b)
    all_bytes += static_cast<char>(b);
  CHECK(bytes_from_json(through_text(nlohmann::ordered_json::array({bytes_to_json(all_bytes)}))[0],
                        "b") == all_bytes);
  CHECK(bytes_to_json("plain").is_string());
}

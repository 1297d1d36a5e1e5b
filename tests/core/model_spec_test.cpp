#include <doctest/doctest.h>

#include <limits>

#include "common/model_spec.h"
#include "common/status.h"

using namespace conveyor;

namespace {

ModelSpec valid_spec() {
  ModelSpec s;
  s.architecture = "llama";
  s.vocab_size = 320;
  s.hidden_size = 64;
  s.intermediate_size = 160;
  s.num_layers = 2;
  s.num_heads = 4;
  s.num_kv_heads = 2;
  s.head_dim = 16;
  s.max_positions = 512;
  s.bos_token_id = 1;
  s.eos_token_ids = {2};
  return s;
}

std::string refusal(const ModelSpec& s) {
  try {
    validate_model_spec(s, "model.gguf");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kMalformed);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("validate_model_spec accepts a sane spec and names the field of a bad one") {
  CHECK(refusal(valid_spec()).empty());
  struct Case {
    const char* field;
    void (*spoil)(ModelSpec&);
  };
  const Case cases[] = {
      {"vocab_size", [](ModelSpec& s) { s.vocab_size = 0; }},
      {"hidden_size", [](ModelSpec& s) { s.hidden_size = std::int64_t{1} << 40; }},
      {"num_kv_heads", [](ModelSpec& s) { s.num_kv_heads = 3; }},
      {"head_dim", [](ModelSpec& s) { s.head_dim = 15; }},
      {"rope_theta", [](ModelSpec& s) { s.rope_theta = std::numeric_limits<double>::infinity(); }},
      {"rope_theta", [](ModelSpec& s) { s.rope_theta = std::numeric_limits<double>::quiet_NaN(); }},
      {"max_positions", [](ModelSpec& s) { s.max_positions = std::int64_t{1} << 40; }},
      {"bos_token_id", [](ModelSpec& s) { s.bos_token_id = 1'000'000'000'000; }},
      {"eos_token_id", [](ModelSpec& s) { s.eos_token_ids = {320}; }},
      {"pad_token_id", [](ModelSpec& s) { s.pad_token_id = -5; }},
      {"rope scaling factor",
       [](ModelSpec& s) {
         s.rope_scaling.type = RopeScalingType::kLinear;
         s.rope_scaling.factor = std::numeric_limits<double>::infinity();
       }},
      {"rope frequency factors",
       [](ModelSpec& s) {
         s.rope_freq_factors = {1.0f, 0.0f};
       }},
  };
  for (const Case& c : cases) {
    CAPTURE(c.field);
    ModelSpec s = valid_spec();
    c.spoil(s);
    const std::string message = refusal(s);
    CHECK(message.find(c.field) != std::string::npos);
    CHECK(message.rfind("model.gguf: ", 0) == 0);
  }
}

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/dequantize.h"
#include "common/gguf/gguf_model.h"
#include "common/model_registry.h"
#include "tests/gguf/gguf_builder.h"
#include "tests/gguf/tiny_model.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

Expected<std::unique_ptr<ModelSource>> open_built(const GgufBuilder& b) {
  // A fresh name each time: an earlier model may still map the previous file.
  static TempDir dir;
  static int counter = 0;
  return open_gguf_model(dir.write("model" + std::to_string(counter++) + ".gguf", b.build()));
}

void expect_error(const GgufBuilder& b, ErrorCode code, const std::string& needle) {
  auto model = open_built(b);
  REQUIRE(!model.ok());
  CAPTURE(model.status().to_string());
  CHECK(model.status().code() == code);
  CHECK(model.status().message().find(needle) != std::string::npos);
}

const GgufModel& as_gguf(const std::unique_ptr<ModelSource>& m) {
  return dynamic_cast<const GgufModel&>(*m);
}

}  // namespace

TEST_CASE("a tiny llama GGUF loads with its spec, tensors and tokenizer") {
  auto model = open_built(tiny_model());
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  const ModelSpec& s = (*model)->spec();
  CHECK(s.architecture == "llama");
  CHECK(s.name == "tiny");
  CHECK(s.num_layers == 2);
  CHECK(s.hidden_size == 8);
  CHECK(s.intermediate_size == 16);
  CHECK(s.num_heads == 2);
  CHECK(s.num_kv_heads == 1);
  CHECK(s.head_dim == 4);
  CHECK(s.vocab_size == 12);  // from token_embd rows: no llama.vocab_size key
  CHECK(s.max_positions == 256);
  CHECK(s.rms_norm_eps == doctest::Approx(1e-5));
  CHECK(s.rope_theta == 10000.0);
  CHECK(s.rope_pairing == RopePairing::kInterleaved);
  CHECK(s.rope_scaling.type == RopeScalingType::kNone);
  CHECK(s.rope_freq_factors.empty());
  CHECK(!s.qkv_bias);
  CHECK(!s.tie_embeddings);
  CHECK(s.bos_token_id == 0);
  CHECK(s.eos_token_ids == std::vector<std::int64_t>{1, 10});  // eos, then eot
  CHECK((*model)->format() == "gguf v3");

  const TensorRef& q = (*model)->require("blk.1.attn_q.weight");
  CHECK(q.shape == std::vector<std::int64_t>{8, 8});
  CHECK((*model)->require("blk.0.attn_k.weight").shape == std::vector<std::int64_t>{4, 8});
  CHECK((*model)->require("blk.0.ffn_down.weight").shape == std::vector<std::int64_t>{8, 16});
  CHECK(dequantize_tensor((*model)->require("token_embd.weight"))[5] == 0.5f);
  CHECK((*model)->tensors().front().name == "token_embd.weight");  // file order

  const auto& tok = (*model)->tokenizer();
  REQUIRE(tok.has_value());
  CHECK(tok->kind == TokenizerKind::kByteLevelBpe);
  CHECK(tok->pre == "smollm");
  CHECK(tok->tokens.size() == 12);
  CHECK(tok->tokens[9] ==
        "\xC4\xA0"
        "a");
  CHECK(tok->merges == std::vector<std::string>{"a b", "b c", "ab c", "\xC4\xA0 a"});
  CHECK(tok->token_types[0] == TokenType::kControl);
  CHECK(tok->scores.empty());
  CHECK(tok->bos_id == 0);
  CHECK(tok->eos_id == 1);
  CHECK(tok->eot_ids == std::vector<std::int64_t>{10});
  CHECK(tok->add_bos);
  CHECK(!tok->add_eos);
  CHECK(tok->chat_template == "{{ messages }}");
  CHECK(as_gguf(*model).tokenizer_status().ok());
}

TEST_CASE("qwen2: q/k/v biases, half-split RoPE, tied embeddings") {
  auto model = open_built(tiny_model({.arch = "qwen2", .qkv_bias = true, .tied = true}));
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  const ModelSpec& s = (*model)->spec();
  CHECK(s.architecture == "qwen2");
  CHECK(s.rope_pairing == RopePairing::kHalfSplit);
  CHECK(s.qkv_bias);
  CHECK(s.tie_embeddings);
  CHECK((*model)->require("blk.0.attn_k.bias").shape == std::vector<std::int64_t>{4});
}

TEST_CASE("mistral: interleaved RoPE and a sliding window") {
  auto b = tiny_model({.arch = "mistral"});
  b.kv_u32("mistral.attention.sliding_window", 64);
  b.kv_u32("mistral.vocab_size", 12);
  auto model = open_built(b);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK((*model)->spec().rope_pairing == RopePairing::kInterleaved);
  CHECK((*model)->spec().sliding_window == 64);
}

TEST_CASE("llama3 rope_freqs.weight becomes rope_freq_factors") {
  auto model = open_built(tiny_model({.rope_freqs = true}));
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK((*model)->spec().rope_freq_factors == std::vector<float>{2.0f, 2.0f});

  auto wrong = tiny_model({.rope_freqs = true});
  wrong.tensor_f32("rope_freqs.weight", {3}, 1.0f);
  expect_error(wrong, ErrorCode::kMalformed, "rope_freqs.weight has 3 elements");
  auto zero = tiny_model({.rope_freqs = true});
  zero.tensor_f32("rope_freqs.weight", {2}, 0.0f);
  expect_error(zero, ErrorCode::kMalformed, "not a positive number");
}

TEST_CASE("hyperparameter defaults and alternatives") {
  auto b = tiny_model();
  b.remove_kv("llama.attention.head_count_kv").remove_kv("llama.rope.freq_base");
  b.tensor_f32("blk.0.attn_k.weight", {8, 8}).tensor_f32("blk.0.attn_v.weight", {8, 8});
  b.tensor_f32("blk.1.attn_k.weight", {8, 8}).tensor_f32("blk.1.attn_v.weight", {8, 8});
  auto model = open_built(b);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK((*model)->spec().num_kv_heads == 2);  // defaults to head_count
  CHECK((*model)->spec().rope_theta == 10000.0);

  auto per_layer = tiny_model();  // uniform per-layer arrays are accepted
  per_layer.kv_array<std::uint32_t>("llama.attention.head_count_kv", gguf_t::kU32, {1, 1});
  REQUIRE(open_built(per_layer).ok());
  per_layer.kv_array<std::uint32_t>("llama.attention.head_count_kv", gguf_t::kU32, {1, 2});
  expect_error(per_layer, ErrorCode::kUnsupported, "differs between layers");

  auto linear = tiny_model();
  linear.kv_string("llama.rope.scaling.type", "linear").kv_f32("llama.rope.scaling.factor", 4.0f);
  model = open_built(linear);
  REQUIRE(model.ok());
  CHECK((*model)->spec().rope_scaling.type == RopeScalingType::kLinear);
  CHECK((*model)->spec().rope_scaling.factor == 4.0);

  auto yarn = tiny_model();
  yarn.kv_string("llama.rope.scaling.type", "yarn");
  expect_error(yarn, ErrorCode::kUnsupported, "rope scaling type 'yarn'");

  auto partial = tiny_model();
  partial.kv_u32("llama.rope.dimension_count", 2);
  expect_error(partial, ErrorCode::kUnsupported, "partial rotary");

  auto key_length = tiny_model();  // head_dim from key_length, not hidden / heads
  key_length.kv_u32("llama.attention.key_length", 8);
  expect_error(key_length, ErrorCode::kUnsupported, "rope.dimension_count 4 of head_dim 8");
}

TEST_CASE("architectures and required keys") {
  auto gemma = tiny_model({.arch = "gemma"});
  expect_error(gemma, ErrorCode::kUnsupported, "architecture 'gemma' is not supported");
  auto no_arch = tiny_model();
  no_arch.remove_kv("general.architecture");
  expect_error(no_arch, ErrorCode::kNotFound, "'general.architecture' is missing");
  auto no_layers = tiny_model();
  no_layers.remove_kv("llama.block_count");
  expect_error(no_layers, ErrorCode::kNotFound, "'llama.block_count' is missing");
  auto bad_type = tiny_model();
  bad_type.kv_string("llama.embedding_length", "eight");
  expect_error(bad_type, ErrorCode::kMalformed, "'llama.embedding_length' is string");
  auto zero_heads = tiny_model();
  zero_heads.kv_u32("llama.attention.head_count", 0);
  expect_error(zero_heads, ErrorCode::kMalformed, "head_count must be positive");
  auto uneven = tiny_model();
  uneven.kv_u32("llama.attention.head_count_kv", 3);
  expect_error(uneven, ErrorCode::kMalformed, "invalid model spec");
}

TEST_CASE("tensors that disagree with the metadata fail at load") {
  auto wide = tiny_model();
  wide.kv_u32("llama.feed_forward_length", 32);
  expect_error(wide, ErrorCode::kMalformed, "blk.0.ffn_gate.weight has shape [16, 8]");
  auto missing = tiny_model();
  missing.remove_tensor("blk.1.ffn_up.weight");
  expect_error(missing, ErrorCode::kNotFound, "blk.1.ffn_up.weight is missing");
  auto vocab = tiny_model();
  vocab.kv_u32("llama.vocab_size", 13);
  expect_error(vocab, ErrorCode::kMalformed, "token_embd.weight has shape [12, 8]");
  auto transposed = tiny_model();
  transposed.tensor_f32("blk.0.attn_output.weight", {8, 8});
  transposed.tensor_f32("blk.0.ffn_down.weight", {16, 8});
  expect_error(transposed, ErrorCode::kMalformed, "blk.0.ffn_down.weight has shape [16, 8]");
}

TEST_CASE("malformed tokenizers are refused with the key named") {
  auto scores = tiny_model();
  scores.kv_array<float>("tokenizer.ggml.scores", gguf_t::kF32, {0.0f, 1.0f});
  expect_error(scores, ErrorCode::kMalformed,
               "tokenizer.ggml.scores has 2 entries, but tokenizer.ggml.tokens has 12");
  auto types = tiny_model();
  types.kv_array<std::int32_t>("tokenizer.ggml.token_type", gguf_t::kI32, {1, 1, 1});
  expect_error(types, ErrorCode::kMalformed, "tokenizer.ggml.token_type has 3 entries");
  auto type_value = tiny_model();
  type_value.kv_array<std::int32_t>("tokenizer.ggml.token_type", gguf_t::kI32,
                                    {1, 1, 1, 1, 1, 1, 1, 9, 1, 1, 1, 1});
  expect_error(type_value, ErrorCode::kMalformed, "token_type of token 7 is 9");
  auto strings_as_ints = tiny_model();
  strings_as_ints.kv_string_array("tokenizer.ggml.token_type", std::vector<std::string>(12, "1"));
  expect_error(strings_as_ints, ErrorCode::kMalformed,
               "'tokenizer.ggml.token_type' is array of string, expected an array of integers");
  auto bos = tiny_model();
  bos.kv_u32("tokenizer.ggml.bos_token_id", 12);
  expect_error(bos, ErrorCode::kMalformed,
               "tokenizer.ggml.bos_token_id 12 is outside the vocabulary of 12 tokens");
  auto eot = tiny_model();
  eot.kv_i32("tokenizer.ggml.eot_token_id", -1);
  expect_error(eot, ErrorCode::kMalformed, "eot_token_id -1 is outside the vocabulary");
  auto no_merges = tiny_model();
  no_merges.remove_kv("tokenizer.ggml.merges");
  expect_error(no_merges, ErrorCode::kMalformed, "needs tokenizer.ggml.merges");
  auto bad_merge = tiny_model();
  bad_merge.kv_string_array("tokenizer.ggml.merges", {"a b", "abc"});
  expect_error(bad_merge, ErrorCode::kMalformed, "merges entry 1 'abc'");
  auto empty = tiny_model();
  empty.kv_string_array("tokenizer.ggml.tokens", {});
  expect_error(empty, ErrorCode::kMalformed, "tokenizer.ggml.tokens is missing or empty");
  auto more_tokens = tiny_model();
  more_tokens.kv_string_array("tokenizer.ggml.tokens", std::vector<std::string>(13, "t"));
  more_tokens.remove_kv("tokenizer.ggml.token_type");
  expect_error(more_tokens, ErrorCode::kMalformed,
               "13 tokens, more than the model's vocabulary of 12");
}

TEST_CASE("a control token longer than kMaxTokenBytes fails the open before any copy") {
  auto huge = tiny_model();
  std::vector<std::string> tokens = {"<s>", "</s>", std::string(100 * 1024, 'x')};
  for (const char* t : {"a", "b", "c", "ab", "abc", "e", "f", "<eot>", "d"}) {
    tokens.emplace_back(t);
  }
  huge.kv_string_array("tokenizer.ggml.tokens", tokens);
  expect_error(huge, ErrorCode::kOutOfRange, "token 2 is 102400 bytes long");
}

TEST_CASE("SentencePiece tokenizers: scores, byte tokens, add_bos default") {
  auto spm = tiny_model();
  spm.kv_string("tokenizer.ggml.model", "llama").remove_kv("tokenizer.ggml.merges");
  spm.remove_kv("tokenizer.ggml.add_bos_token");
  spm.kv_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x00>", "<0xFF>",
                                                "\xE2\x96\x81"
                                                "a",
                                                "b", "c", "d", "e", "f", "g"});
  spm.kv_array<float>("tokenizer.ggml.scores", gguf_t::kF32, std::vector<float>(12, -1.0f));
  spm.kv_array<std::int32_t>("tokenizer.ggml.token_type", gguf_t::kI32,
                             {2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1});
  auto model = open_built(spm);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  const auto& tok = (*model)->tokenizer();
  REQUIRE(tok.has_value());
  CHECK(tok->kind == TokenizerKind::kSentencePieceBpe);
  CHECK(tok->scores.size() == 12);
  CHECK(tok->add_bos);           // llama.cpp's default for SentencePiece models
  CHECK(tok->add_space_prefix);  // the default when the file does not say

  spm.kv_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<0x-1>", "<0xFF>", "a",
                                                "b", "c", "d", "e", "f", "g"});
  expect_error(spm, ErrorCode::kMalformed, "byte token 3 is spelled '<0x-1>', expected <0xNN>");
}

TEST_CASE("an unsupported or absent tokenizer leaves the model loadable") {
  auto bert = tiny_model();
  bert.kv_string("tokenizer.ggml.model", "bert");
  auto model = open_built(bert);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  CHECK(!(*model)->tokenizer().has_value());
  CHECK(as_gguf(*model).tokenizer_status().code() == ErrorCode::kUnsupported);
  CHECK(as_gguf(*model).tokenizer_status().message().find("'bert'") != std::string::npos);

  auto none = tiny_model();
  none.remove_kv("tokenizer.ggml.model");
  model = open_built(none);
  REQUIRE(model.ok());
  CHECK(!(*model)->tokenizer().has_value());
  CHECK(as_gguf(*model).tokenizer_status().code() == ErrorCode::kNotFound);
}

TEST_CASE("SmolLM2-135M-Instruct Q4_1 from the model cache") {
  const auto resolved = resolve_model_path("smollm2-135m-instruct");
  if (!resolved.ok()) {
    MESSAGE("skipped: " << resolved.status().to_string());
    return;
  }
  const std::string& path = *resolved;
  auto model = open_gguf_model(path);
  REQUIRE_MESSAGE(model.ok(), model.status().to_string());
  const ModelSpec& s = (*model)->spec();
  CHECK(s.architecture == "llama");
  CHECK(s.num_layers == 30);
  CHECK(s.hidden_size == 576);
  CHECK(s.num_heads == 9);
  CHECK(s.num_kv_heads == 3);
  CHECK(s.head_dim == 64);
  CHECK(s.intermediate_size == 1536);
  CHECK(s.vocab_size == 49152);
  CHECK(s.rope_theta == 100000.0);
  CHECK(s.max_positions == 8192);
  CHECK(s.rope_pairing == RopePairing::kInterleaved);
  CHECK(s.tie_embeddings);
  CHECK(!s.qkv_bias);
  CHECK(s.bos_token_id == 1);
  CHECK(s.eos_token_ids == std::vector<std::int64_t>{2});
  CHECK(s.pad_token_id == 2);

  const TensorRef& embd = (*model)->require("token_embd.weight");
  CHECK(embd.dtype == DType::kQ8_0);
  CHECK(embd.shape == std::vector<std::int64_t>{49152, 576});
  const TensorRef& q = (*model)->require("blk.0.attn_q.weight");
  CHECK(q.dtype == DType::kQ4_1);
  CHECK(q.shape == std::vector<std::int64_t>{576, 576});
  CHECK((*model)->require("blk.29.attn_k.weight").shape == std::vector<std::int64_t>{192, 576});
  CHECK((*model)->tensors().size() == 272);
  const auto norm = dequantize_tensor((*model)->require("output_norm.weight"));
  CHECK(norm.size() == 576);

  const auto& tok = (*model)->tokenizer();
  REQUIRE(tok.has_value());
  CHECK(tok->kind == TokenizerKind::kByteLevelBpe);
  CHECK(tok->tokens.size() == 49152);
  CHECK(tok->merges.size() == 48900);
  CHECK(tok->token_types.size() == 49152);
  CHECK(tok->pre == "smollm");
  CHECK(tok->bos_id == 1);
  CHECK(tok->eos_id == 2);
  CHECK(tok->tokens[2] == "<|im_end|>");
  CHECK(!tok->add_bos);
  CHECK(!tok->add_space_prefix);
  CHECK(tok->chat_template.find("<|im_start|>") != std::string::npos);
}

#include <doctest/doctest.h>

#include <string>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

namespace {

// A tiny byte-level tokenizer.json with the given pieces replaced.
std::string tokenizer_json(const std::string& model_extra = "",
                           const std::string& pre = R"({"type": "ByteLevel",
      "add_prefix_space": false, "use_regex": true})",
                           const std::string& normalizer = "null",
                           const std::string& post = "null") {
  return R"({"added_tokens": [{"id": 3, "content": "<|end|>", "special": true}],
    "normalizer": )" +
         normalizer + R"(, "pre_tokenizer": )" + pre + R"(, "post_processor": )" + post +
         R"(, "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<|end|>": 3},
              "merges": [["a", "b"]])" +
         model_extra + "}}";
}

ErrorCode code_of(const std::string& json) {
  return parse_tokenizer_json(json).status().code();
}

}  // namespace

TEST_CASE("a minimal byte-level tokenizer.json loads and encodes") {
  auto data = parse_tokenizer_json(tokenizer_json());
  REQUIRE_MESSAGE(data.ok(), data.status().to_string());
  CHECK(data->kind == TokenizerKind::kByteLevelBpe);
  CHECK(data->pre == "gpt2");
  CHECK(data->merges == std::vector<std::string>{"a b"});
  CHECK(data->token_types[3] == TokenType::kControl);
  CHECK(data->eos_id == -1);
  const Tokenizer tok(*data);
  CHECK(tok.encode("abab<|end|>", true, true) == std::vector<std::int32_t>{2, 2, 3});
}

TEST_CASE("a ByteLevel pre-tokenizer without its regex splits nothing") {
  auto data =
      parse_tokenizer_json(tokenizer_json("", R"({"type": "ByteLevel", "use_regex": false})"));
  REQUIRE_MESSAGE(data.ok(), data.status().to_string());
  CHECK(data->pre == "none");
  const Tokenizer tok(*data);
  CHECK(tok.encode("ab ab") == std::vector<std::int32_t>{2, 2});  // the space has no token
}

TEST_CASE("post-processor templates become add_bos / add_eos") {
  const std::string post = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<|end|>", "type_id": 0}}],
      "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [3], "tokens": ["<|end|>"]}}})";
  auto data = parse_tokenizer_json(tokenizer_json("", R"({"type": "ByteLevel"})", "null", post));
  REQUIRE_MESSAGE(data.ok(), data.status().to_string());
  CHECK(data->add_bos);
  CHECK(data->add_eos);
  const Tokenizer tok(*data);
  CHECK(tok.encode("ab") == std::vector<std::int32_t>{3, 2, 3});
  CHECK(tok.encode("ab", false) == std::vector<std::int32_t>{2});
}

TEST_CASE("unsupported configurations are refused with a message that names them") {
  CHECK(code_of(R"({"model": {"type": "WordPiece", "vocab": {}}})") == ErrorCode::kUnsupported);
  CHECK(code_of(R"({"model": {"type": "Unigram", "vocab": []}})") == ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json("", R"({"type": "BertPreTokenizer"})")) == ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json("", R"({"type": "ByteLevel", "add_prefix_space": true})")) ==
        ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json("", R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Removed", "invert": false},
      {"type": "ByteLevel", "use_regex": false}]})")) == ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json("", R"({"type": "ByteLevel"})", R"({"type": "NFKC"})")) ==
        ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json(R"(, "continuing_subword_prefix": "##")")) ==
        ErrorCode::kUnsupported);
  CHECK(code_of(tokenizer_json(R"(, "dropout": 0.1)")) == ErrorCode::kUnsupported);
  // BPE without byte-level spelling or "▁" spaces.
  CHECK(code_of(tokenizer_json("", "null")) == ErrorCode::kUnsupported);
  auto s = parse_tokenizer_json(tokenizer_json("", R"({"type": "Whitespace"})"));
  CHECK(s.status().message().find("Whitespace") != std::string::npos);
}

TEST_CASE("malformed files are errors, missing files are not found") {
  CHECK(code_of("{not json") == ErrorCode::kMalformed);
  CHECK(code_of(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []},
                    "pre_tokenizer": {"type": "ByteLevel"}})") == ErrorCode::kMalformed);
  CHECK(code_of(R"({"model": {"type": "BPE", "vocab": "x"}, "pre_tokenizer": {"type":
                    "ByteLevel"}})") == ErrorCode::kMalformed);
  CHECK(load_tokenizer_json("/nonexistent/tokenizer.json").status().code() == ErrorCode::kNotFound);
}

TEST_CASE("tokenizer_config.json beside the file supplies special tokens and the template") {
  auto llama3 = load_tokenizer_json(tokfix::path("llama3-bpe/tokenizer.json"));
  REQUIRE(llama3.ok());
  CHECK(llama3->pre == "llama-bpe");
  CHECK(llama3->ignore_merges);
  CHECK(llama3->add_bos);
  CHECK(llama3->tokens[llama3->bos_id] == "<|begin_of_text|>");
  CHECK(llama3->tokens[llama3->eos_id] == "<|eot_id|>");
  CHECK(llama3->chat_template.find("<|start_header_id|>") != std::string::npos);

  auto qwen2 = load_tokenizer_json(tokfix::path("qwen2-bpe/tokenizer.json"));
  REQUIRE(qwen2.ok());
  CHECK(qwen2->pre == "qwen2");
  CHECK(qwen2->normalize_nfc);
  CHECK(qwen2->bos_id == -1);
  CHECK(qwen2->tokens[qwen2->pad_id] == "<|endoftext|>");

  auto spm = load_tokenizer_json(tokfix::path("spm-llama/tokenizer.json"));
  REQUIRE(spm.ok());
  CHECK(spm->kind == TokenizerKind::kSentencePieceBpe);
  CHECK(spm->space_prefix_rule == SpacePrefixRule::kEveryRun);
  // transformers' conversion names no unknown token in the model: byte fallback
  // covers every character, and tokenizers would drop one it could not cover.
  CHECK(spm->unk_id == -1);
  CHECK(spm->token_types[3] == TokenType::kByte);
  CHECK(spm->scores.empty());  // merged by rank, as tokenizers does

  // Without a tokenizer_config.json, EOS is recognised by name.
  auto meta = load_tokenizer_json(tokfix::path("spm-metaspace/tokenizer.json"));
  REQUIRE(meta.ok());
  CHECK(meta->space_prefix_rule == SpacePrefixRule::kFirstRunUnlessSpace);
  CHECK(meta->tokens[meta->eos_id] == "</s>");
  CHECK(!meta->add_bos);
}

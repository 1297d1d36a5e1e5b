// Every tokenizer fixture against the ids Hugging Face produced for the corpus.
#include <doctest/doctest.h>

#include <string>

#include "common/tokenizer/stream_decoder.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

namespace {

void check_corpus(const Tokenizer& tok, const std::string& expected) {
  for (const tokfix::Case& c : tokfix::expected_cases(expected)) {
    CAPTURE(expected);
    CAPTURE(c.name);
    CHECK(tok.encode(c.input, /*add_special=*/true, /*parse_special=*/true) == c.ids);
    CHECK(tok.encode(c.input, true, false) == c.ids_specials_as_text);
    CHECK(tok.decode(c.ids, /*skip_special=*/false) == c.decoded);
    CHECK(tok.decode(c.ids, /*skip_special=*/true) == c.decoded_skip_special);
    // Streaming gives the same text as decoding all at once.
    StreamDecoder stream(tok, /*skip_special=*/true);
    std::string streamed;
    for (std::int32_t id : c.ids) {
      streamed += stream.push(id);
    }
    streamed += stream.finish();
    CHECK(streamed == c.decoded_skip_special);
  }
}

Tokenizer from_json(const std::string& dir) {
  auto data = load_tokenizer_json(tokfix::path(dir + "/tokenizer.json"));
  REQUIRE_MESSAGE(data.ok(), data.status().to_string());
  return Tokenizer(*data);
}

}  // namespace

TEST_CASE("SmolLM2 (GGUF vocabulary, smollm pre-tokenizer) matches Hugging Face") {
  const Tokenizer tok(tokfix::load_data("smollm2.data.json"));
  CHECK(tok.vocab_size() == 49152);
  check_corpus(tok, "smollm2");
}

TEST_CASE("GPT-2 style tokenizer.json with \"a b\" merges matches Hugging Face") {
  check_corpus(from_json("gpt2-bpe"), "gpt2-bpe");
}

TEST_CASE("Llama-3 style tokenizer.json (Split regex, ignore_merges, BOS) matches") {
  check_corpus(from_json("llama3-bpe"), "llama3-bpe");
}

TEST_CASE("Qwen2 style tokenizer.json (NFC, single digits) matches Hugging Face") {
  check_corpus(from_json("qwen2-bpe"), "qwen2-bpe");
}

TEST_CASE("Qwen2 as a GGUF file carries it (pre \"qwen2\", no regexes, no NFC flag) matches") {
  auto data = load_tokenizer_json(tokfix::path("qwen2-bpe/tokenizer.json"));
  REQUIRE(data.ok());
  data->pre_regexes.clear();
  data->normalize_nfc = false;
  data->added_tokens.clear();
  REQUIRE(data->pre == "qwen2");
  check_corpus(Tokenizer(*data), "qwen2-bpe");
}

TEST_CASE("Llama-3 as a GGUF file carries it (pre \"llama-bpe\", ignore_merges implied) matches") {
  auto data = load_tokenizer_json(tokfix::path("llama3-bpe/tokenizer.json"));
  REQUIRE(data.ok());
  data->pre_regexes.clear();
  data->ignore_merges = false;
  data->added_tokens.clear();
  REQUIRE(data->pre == "llama-bpe");
  check_corpus(Tokenizer(*data), "llama3-bpe");
}

TEST_CASE("SentencePiece BPE from GGUF-style data (scores) matches SentencePiece") {
  check_corpus(Tokenizer(tokfix::load_data("spm.data.json")), "spm");
}

TEST_CASE("SentencePiece BPE from a legacy Llama-2 tokenizer.json matches Hugging Face") {
  check_corpus(from_json("spm-llama"), "spm-llama");
}

TEST_CASE("SentencePiece BPE from a Metaspace tokenizer.json matches Hugging Face") {
  check_corpus(from_json("spm-metaspace"), "spm-metaspace");
}

TEST_CASE("Added tokens honour lstrip, rstrip, single_word and the special flag") {
  check_corpus(from_json("gpt2-added"), "gpt2-added");
}

// Bad vocabularies and configurations are errors with a message, never a crash.
#include <doctest/doctest.h>

#include <string>

#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/tokenizer_json.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

namespace {

TokenizerData small_spm() {
  TokenizerData d;
  d.kind = TokenizerKind::kSentencePieceBpe;
  d.tokens = {"<unk>",
              "<s>",
              "</s>",
              "<0x41>",
              "\xE2\x96\x81",
              "a",
              "\xE2\x96\x81"
              "a"};
  d.scores = {0, 0, 0, 0, -1, -2, -0.5f};
  d.token_types = {TokenType::kUnknown, TokenType::kControl, TokenType::kControl, TokenType::kByte,
                   TokenType::kNormal,  TokenType::kNormal,  TokenType::kNormal};
  d.unk_id = 0;
  d.bos_id = 1;
  d.eos_id = 2;
  return d;
}

Status status_of(const TokenizerData& d) {
  auto t = Tokenizer::create(d);
  return t.ok() ? Status() : t.status();
}

void check_malformed(const TokenizerData& d, const std::string& fragment) {
  const Status s = status_of(d);
  CAPTURE(s.to_string());
  CHECK(s.code() == ErrorCode::kMalformed);
  CHECK(s.message().find(fragment) != std::string::npos);
}

}  // namespace

TEST_CASE("a well-formed small SentencePiece vocabulary builds and falls back to bytes") {
  auto tok = Tokenizer::create(small_spm());
  REQUIRE(tok.ok());
  // "a" -> "▁a"; "A" is not a token but its byte is; "B" has neither: unknown.
  CHECK((*tok)->encode("a", false) == std::vector<std::int32_t>{6});
  CHECK((*tok)->encode("aA", false) == std::vector<std::int32_t>{6, 3});
  CHECK((*tok)->encode("aB", false) == std::vector<std::int32_t>{6, 0});
  CHECK((*tok)->decode(std::vector<std::int32_t>{6, 3}) == "aA");
}

TEST_CASE("byte tokens not spelled <0xNN> are refused when the tokenizer is built") {
  for (const char* bad : {"<0x-1>", "<0xZZ>", "<0x4>", "<0x041>", "0x41", "<0X41>", ""}) {
    CAPTURE(bad);
    TokenizerData d = small_spm();
    d.tokens[3] = bad;
    check_malformed(d, "byte token 3");
  }
}

TEST_CASE("inconsistent arrays and ids are refused") {
  TokenizerData d = small_spm();
  d.scores.pop_back();
  check_malformed(d, "scores");

  d = small_spm();
  d.token_types.push_back(TokenType::kNormal);
  check_malformed(d, "token types");

  d = small_spm();
  d.token_types[5] = static_cast<TokenType>(9);
  check_malformed(d, "unknown token type 9");

  d = small_spm();
  d.eos_id = 7;
  check_malformed(d, "eos id 7");

  d = small_spm();
  d.eot_ids = {-5};
  check_malformed(d, "end-of-turn id");

  d = small_spm();
  d.tokens.clear();
  d.scores.clear();
  d.token_types.clear();
  check_malformed(d, "empty");

  d = small_spm();
  d.add_bos = true;
  d.bos_id = -1;
  check_malformed(d, "BOS");

  // A pad id outside the table is tolerated: tokenizing never uses it.
  d = small_spm();
  d.pad_id = 1000;
  CHECK(status_of(d).ok());
}

TEST_CASE("merges must name tokens of the vocabulary") {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre = "gpt2";
  d.tokens = {"a", "b", "ab"};
  d.merges = {"a b"};
  CHECK(status_of(d).ok());
  d.merges = {"a c"};
  check_malformed(d, "merge 0 \"a c\"");
  d.merges = {"ab"};
  check_malformed(d, "not two tokens");
  d.merges = {"b a"};  // "ba" is not a token
  check_malformed(d, "merge 0");

  // SentencePiece-style without scores needs merges.
  TokenizerData spm = small_spm();
  spm.scores.clear();
  check_malformed(spm, "neither scores nor merges");
}

TEST_CASE("unknown pre-tokenizers and bad regexes are refused") {
  TokenizerData d;
  d.tokens = {"a"};
  d.pre = "no-such-pre";
  CHECK(status_of(d).code() == ErrorCode::kUnsupported);
  d.pre_regexes = {"(unclosed"};
  CHECK(status_of(d).code() == ErrorCode::kInvalidArgument);
}

TEST_CASE("added tokens outside the vocabulary are refused") {
  TokenizerData d = small_spm();
  d.added_tokens = {{42, "<x>", true, false, false, false}};
  check_malformed(d, "added token \"<x>\"");
}

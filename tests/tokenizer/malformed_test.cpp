// Bad vocabularies and configurations are errors with a message, never a crash.
#include <doctest/doctest.h>

#include <string>

#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/token_text.h"
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
  // The regex comes from the model file: one that does not compile is a broken file.
  d.pre_regexes = {"(unclosed"};
  CHECK(status_of(d).code() == ErrorCode::kMalformed);
}

TEST_CASE("a regex that backtracks past PCRE2's limits is kResourceExhausted, not a bug") {
  // Nested quantifiers over a run of 'a' with no non-'a' after it: exponential
  // backtracking. (A literal final character would let PCRE2 give up at once.)
  const PreTokenizer pre({"(a+)+[^a]"});
  std::vector<std::string_view> pieces;
  const std::string text(64, 'a');
  try {
    pre.split(text, pieces);
    FAIL("the match should have hit a limit");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::kResourceExhausted);
  }
}

TEST_CASE("added tokens outside the vocabulary are refused") {
  TokenizerData d = small_spm();
  d.added_tokens = {{42, "<x>", true, false, false, false}};
  check_malformed(d, "added token \"<x>\"");
}

TEST_CASE("a token longer than kMaxTokenBytes is refused, naming its id and length") {
  TokenizerData d = small_spm();
  d.token_types[1] = TokenType::kControl;
  d.tokens[1] = std::string(100'000, 'x');
  const Status s = status_of(d);
  CAPTURE(s.to_string());
  CHECK(s.code() == ErrorCode::kOutOfRange);
  CHECK(s.message().find("token 1 is 100000 bytes long") != std::string::npos);

  // An added token's own text is held to the same limit.
  d = small_spm();
  d.added_tokens = {{1, std::string(kMaxTokenBytes + 1, 'y'), true, false, false, false}};
  CHECK(status_of(d).code() == ErrorCode::kOutOfRange);

  // tokenizer.json: the vocabulary as read.
  const std::string json = R"({"pre_tokenizer": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, ")" +
                           std::string(100'000, 'z') + R"(": 1}, "merges": []}})";
  const auto parsed = parse_tokenizer_json(json);
  CHECK(parsed.status().code() == ErrorCode::kOutOfRange);
  CHECK(parsed.status().message().find("token 1 is 100000 bytes long") != std::string::npos);
}

TEST_CASE("a long control token just under the limit is matched whole") {
  TokenizerData d = small_spm();
  const std::string long_token = "<" + std::string(kMaxTokenBytes - 2, 'q') + ">";
  d.tokens.push_back(long_token);
  d.scores.push_back(0);
  d.token_types.push_back(TokenType::kControl);
  auto tok = Tokenizer::create(d);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  CHECK((*tok)->encode("a" + long_token, false, true) == std::vector<std::int32_t>{6, 7});
}

TEST_CASE("special tokens sharing prefixes: the leftmost, then longest, match wins") {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre = "gpt2";
  // Plain characters (their own byte-level spelling), then the specials.
  d.tokens = {"x", "y", "b", "d", "<a>", "<ab>", "<abc>", "<b>", "<a"};
  d.token_types.assign(d.tokens.size(), TokenType::kControl);
  for (std::size_t i = 0; i < 4; ++i) {
    d.token_types[i] = TokenType::kNormal;
  }
  auto tok = Tokenizer::create(d);
  REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
  const auto ids = [&](const std::string& text) { return (*tok)->encode(text, false, true); };
  CHECK(ids("<abc>") == std::vector<std::int32_t>{6});
  CHECK(ids("<ab>") == std::vector<std::int32_t>{5});
  CHECK(ids("<a>") == std::vector<std::int32_t>{4});
  CHECK(ids("<abd") == std::vector<std::int32_t>{8, 2, 3});  // "<ab" ends no token: "<a"
  CHECK(ids("x<b><abc>y") == std::vector<std::int32_t>{0, 7, 6, 1});
  CHECK(ids("<a<ab>") == std::vector<std::int32_t>{8, 5});
}

TEST_CASE("tokenizer.json: a normal token spelled like <0xZZ> is not a byte token") {
  const std::string json = R"({"normalizer": {"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "},
      "content": "▁"}]},
    "model": {"type": "BPE", "byte_fallback": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "<0x41>": 1, "<0xZZ>": 2, "▁": 3, "a": 4, "▁a": 5},
      "merges": ["▁ a"]}})";
  auto data = parse_tokenizer_json(json);
  REQUIRE_MESSAGE(data.ok(), data.status().to_string());
  CHECK(data->token_types[1] == TokenType::kByte);
  CHECK(data->token_types[2] == TokenType::kNormal);
  CHECK(Tokenizer::create(*data).ok());
}

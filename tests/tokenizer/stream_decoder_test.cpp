#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/tokenizer/stream_decoder.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"
#include "tests/tokenizer/fixtures.h"

using namespace conveyor;

namespace {

// A byte-level vocabulary of the 256 single bytes plus two control tokens.
TokenizerData bytes_vocab() {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre = "gpt2";
  // The GPT-2 byte alphabet, rebuilt here so the test does not lean on the code under test.
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    std::string s;
    utf8::append(s, static_cast<char32_t>(printable ? b : 256 + shifted++));
    d.tokens.push_back(s);
  }
  d.tokens.push_back("<|im_end|>");
  d.tokens.push_back("<|im_start|>");
  d.token_types.assign(d.tokens.size(), TokenType::kNormal);
  d.token_types[256] = TokenType::kControl;
  d.token_types[257] = TokenType::kControl;
  d.eos_id = 256;
  return d;
}

std::vector<std::int32_t> byte_ids(const std::string& s) {
  std::vector<std::int32_t> ids;
  for (char c : s) {
    ids.push_back(static_cast<unsigned char>(c));
  }
  return ids;
}

}  // namespace

TEST_CASE("a multi-byte character split across tokens comes out whole, once complete") {
  const Tokenizer tok(bytes_vocab());
  StreamDecoder stream(tok);
  const std::string euro = "\xE2\x82\xAC";  // €
  CHECK(stream.push('a') == "a");
  CHECK(stream.push(static_cast<unsigned char>(euro[0])).empty());
  CHECK(stream.pending_bytes() == 1);
  CHECK(stream.push(static_cast<unsigned char>(euro[1])).empty());
  CHECK(stream.push(static_cast<unsigned char>(euro[2])) == euro);
  CHECK(stream.pending_bytes() == 0);
  const std::string emoji = "\xF0\x9F\x98\x80";  // 😀
  std::string out;
  for (std::int32_t id : byte_ids(emoji + "!")) {
    out += stream.push(id);
  }
  CHECK(out == emoji + "!");
}

TEST_CASE("bytes that can no longer complete become U+FFFD at once; a cut tail at finish") {
  const Tokenizer tok(bytes_vocab());
  StreamDecoder stream(tok);
  const std::string r(utf8::kReplacement);
  CHECK(stream.push(0xE2).empty());
  // 'x' cannot continue the sequence: the held byte is replaced, x is emitted.
  CHECK(stream.push('x') == r + "x");
  CHECK(stream.push(0xFF) == r);  // never valid anywhere
  CHECK(stream.push(0xF0).empty());
  CHECK(stream.push(0x9F).empty());
  CHECK(stream.finish() == r);
  CHECK(stream.pending_bytes() == 0);
}

TEST_CASE("special tokens are skipped or spelled out, and do not split characters") {
  const Tokenizer tok(bytes_vocab());
  StreamDecoder skipping(tok, /*skip_special=*/true);
  CHECK(skipping.push(257).empty());
  CHECK(skipping.push('h') == "h");
  CHECK(skipping.push(256).empty());
  StreamDecoder spelling(tok, /*skip_special=*/false);
  CHECK(spelling.push(257) == "<|im_start|>");
  // An id outside the vocabulary contributes nothing.
  CHECK(spelling.push(100000).empty());
  CHECK(spelling.push(-1).empty());
  CHECK(tok.is_end_of_generation(256));
}

TEST_CASE("streaming SmolLM2 output equals decoding it whole, whatever the split points") {
  const Tokenizer tok(tokfix::load_data("smollm2.data.json"));
  const std::string text =
      "Emoji \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 and "
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E, caf\xC3\xA9.";
  const std::vector<std::int32_t> ids = tok.encode(text, false, false);
  StreamDecoder stream(tok);
  std::string streamed;
  std::size_t held_back = 0;
  for (std::int32_t id : ids) {
    const std::string piece = stream.push(id);
    CHECK(utf8::is_valid(piece));
    if (stream.pending_bytes() > 0) ++held_back;
    streamed += piece;
  }
  streamed += stream.finish();
  CHECK(streamed == text);
  CHECK(held_back > 0);  // some tokens did end mid-character
}

TEST_CASE("SentencePiece streaming drops the prefix space once, like decode") {
  const Tokenizer tok(tokfix::load_data("spm.data.json"));
  const std::vector<std::int32_t> ids = tok.encode("Hello world \xF0\x9F\x98\x80", true, false);
  StreamDecoder stream(tok);
  std::string streamed;
  for (std::int32_t id : ids) {
    streamed += stream.push(id);
  }
  streamed += stream.finish();
  CHECK(streamed == "Hello world \xF0\x9F\x98\x80");
  CHECK(tok.decode(ids, true) == streamed);
}

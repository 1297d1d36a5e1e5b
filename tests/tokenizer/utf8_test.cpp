#include <doctest/doctest.h>

#include <string>

#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/unicode_nfc.h"
#include "common/tokenizer/utf8.h"

using namespace conveyor;

TEST_CASE("sanitize replaces each maximal invalid subpart with one U+FFFD") {
  const std::string r(utf8::kReplacement);
  CHECK(utf8::sanitize("plain") == "plain");
  CHECK(utf8::sanitize("a\xff"
                       "b") == "a" + r + "b");
  // A lead byte and its acceptable continuations form one subpart.
  CHECK(utf8::sanitize("\xe2\x82"
                       "x") == r + "x");
  CHECK(utf8::sanitize("\xf0\x9f\x98") == r);
  // Overlong forms and surrogates: the lead alone is a subpart, then each stray byte.
  CHECK(utf8::sanitize("\xc0\xaf") == r + r);
  CHECK(utf8::sanitize("\xed\xa0\x80") == r + r + r);
  CHECK(utf8::sanitize("\xf4\x90\x80\x80") == r + r + r + r);
  CHECK(utf8::sanitize("\x80\x80") == r + r);
  CHECK(utf8::is_valid("\xf0\x9f\x98\x80"));
}

TEST_CASE("examine reports truncation separately from invalidity") {
  const utf8::Sequence cut = utf8::examine("\xe2\x82", 0);
  CHECK(!cut.valid);
  CHECK(cut.truncated);
  CHECK(cut.length == 2);
  const utf8::Sequence bad = utf8::examine("\xe2x", 0);
  CHECK(!bad.truncated);
  CHECK(bad.length == 1);
}

TEST_CASE("byte-level spelling round-trips every byte") {
  std::string all;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
  }
  std::string spelled;
  byte_level::encode(all, spelled);
  CHECK(byte_level::char_for_byte(' ') == "\xC4\xA0");   // Ġ
  CHECK(byte_level::char_for_byte('\n') == "\xC4\x8A");  // Ċ
  CHECK(byte_level::char_for_byte('A') == "A");
  std::string back;
  byte_level::decode(spelled, back);
  CHECK(back == all);
}

TEST_CASE("NFC composes, reorders and leaves normalised text alone") {
  CHECK(nfc_normalize("cafe\xCC\x81") == "caf\xC3\xA9");  // e + acute -> é
  CHECK(nfc_normalize("caf\xC3\xA9") == "caf\xC3\xA9");
  // Hangul jamo compose arithmetically: ᄒ ᅡ ᆫ -> 한.
  CHECK(nfc_normalize("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB") == "\xED\x95\x9C");
  // Ohm sign (a singleton) becomes Omega.
  CHECK(nfc_normalize("\xE2\x84\xA6") == "\xCE\xA9");
  // a + dot below + dot above in the wrong order -> ạ̇ ordered and composed.
  CHECK(nfc_normalize("a\xCC\x87\xCC\xA3") == "\xE1\xBA\xA1\xCC\x87");
}

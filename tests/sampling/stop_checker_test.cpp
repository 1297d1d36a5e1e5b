#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "common/status.h"
#include "worker/sampling/stop_checker.h"

using namespace conveyor;

namespace {

constexpr std::int32_t kText = 10;  // an ordinary token id
const std::vector<std::int64_t> kEos = {2};

SamplingParams with_stops(std::vector<std::string> stops, std::int32_t max_tokens = 100) {
  SamplingParams params;
  params.stop_strings = std::move(stops);
  params.max_tokens = max_tokens;
  return params;
}

// Feeds pieces as ordinary tokens until finished; returns what was released, joined.
std::string stream(StopChecker& checker, const std::vector<std::string>& pieces) {
  std::string released;
  for (const std::string& piece : pieces) {
    released += checker.on_token(kText, piece).released;
    if (checker.finished()) break;
  }
  return released;
}

}  // namespace

TEST_CASE("finish reasons are spelled as in the OpenAI API") {
  CHECK(to_string(FinishReason::kStop) == "stop");
  CHECK(to_string(FinishReason::kLength) == "length");
}

TEST_CASE("a stop string split across pieces is cut, and never released") {
  StopChecker checker(with_stops({"lo"}), kEos);
  StopUpdate first = checker.on_token(kText, "Hel");
  CHECK(first.released == "He");  // "l" may begin "lo"
  CHECK(checker.held_back() == "l");
  CHECK(!first.finish_reason);
  StopUpdate second = checker.on_token(kText, "lo world");
  CHECK(second.released == "l");
  CHECK(second.finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "Hel");
  CHECK(checker.matched_stop_string() == "lo");
  CHECK(!checker.matched_stop_token());
}

TEST_CASE("held-back text is released once it cannot be a stop string") {
  StopChecker checker(with_stops({"lo"}), kEos);
  CHECK(checker.on_token(kText, "Hel").released == "He");
  const StopUpdate update = checker.on_token(kText, "p");
  CHECK(update.released == "lp");
  CHECK(!update.finish_reason);
  CHECK(checker.held_back().empty());
  CHECK(checker.text() == "Help");
}

TEST_CASE("a stop string spanning three pieces") {
  StopChecker checker(with_stops({"<|end|>"}), kEos);
  CHECK(checker.on_token(kText, "answer <|").released == "answer ");
  CHECK(checker.on_token(kText, "end").released.empty());
  CHECK(checker.held_back() == "<|end");
  const StopUpdate update = checker.on_token(kText, "|>trailing");
  CHECK(update.released.empty());
  CHECK(update.finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "answer ");
}

TEST_CASE("a partial match that breaks off releases everything up to a new candidate") {
  StopChecker checker(with_stops({"abcd"}), kEos);
  CHECK(checker.on_token(kText, "xab").released == "x");
  // "abcab": "abc" broke off at the second "a"; "ab" may begin "abcd" again.
  CHECK(checker.on_token(kText, "cab").released == "abc");
  CHECK(checker.held_back() == "ab");
  CHECK(checker.on_token(kText, "cd").finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "xabc");
}

TEST_CASE("a stop string at the very start leaves empty output") {
  StopChecker checker(with_stops({"lo"}), kEos);
  const StopUpdate update = checker.on_token(kText, "lo and more");
  CHECK(update.released.empty());
  CHECK(update.finish_reason == FinishReason::kStop);
  CHECK(checker.text().empty());
  CHECK(checker.num_tokens() == 1);
}

TEST_CASE("with several stop strings, the first to complete wins") {
  SUBCASE("in one piece, the earlier occurrence") {
    StopChecker checker(with_stops({"END", "###"}), kEos);
    CHECK(stream(checker, {"a ### b END"}) == "a ");
    CHECK(checker.matched_stop_string() == "###");
  }
  SUBCASE("the shorter one completes first") {
    StopChecker checker(with_stops({"abcd", "bc"}), kEos);
    CHECK(stream(checker, {"abcd"}) == "a");
    CHECK(checker.matched_stop_string() == "bc");
  }
  SUBCASE("same end: the longer one, which starts earlier") {
    StopChecker checker(with_stops({"c", "abc"}), kEos);
    CHECK(stream(checker, {"xab", "c"}) == "x");
    CHECK(checker.matched_stop_string() == "abc");
  }
  SUBCASE("held back for the longest possible start") {
    StopChecker checker(with_stops({"xyz", "yq"}), kEos);
    CHECK(checker.on_token(kText, "axy").released == "a");
    CHECK(checker.held_back() == "xy");
    CHECK(checker.on_token(kText, "q").finish_reason == FinishReason::kStop);
    CHECK(checker.text() == "ax");
    CHECK(checker.matched_stop_string() == "yq");
  }
}

TEST_CASE("max_tokens finishes with length and releases held-back text") {
  StopChecker checker(with_stops({"lo"}, 2), kEos);
  CHECK(checker.on_token(kText, "a").released == "a");
  const StopUpdate update = checker.on_token(kText, "Hel");
  CHECK(update.released == "Hel");
  CHECK(update.finish_reason == FinishReason::kLength);
  CHECK(checker.text() == "aHel");
  CHECK(checker.finish_reason() == FinishReason::kLength);
}

TEST_CASE("a stop string on the last allowed token still counts as stop") {
  StopChecker checker(with_stops({"lo"}, 2), kEos);
  (void)checker.on_token(kText, "a");
  CHECK(checker.on_token(kText, "lol").finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "a");
}

TEST_CASE("max_tokens of one") {
  StopChecker checker(with_stops({}, 1), kEos);
  const StopUpdate update = checker.on_token(kText, "word");
  CHECK(update.released == "word");
  CHECK(update.finish_reason == FinishReason::kLength);
}

TEST_CASE("end-of-sequence stops, its text excluded, held-back text released") {
  StopChecker checker(with_stops({"lo"}), kEos);
  CHECK(checker.on_token(kText, "Hel").released == "He");
  const StopUpdate update = checker.on_token(2, "</s>");
  CHECK(update.released == "l");
  CHECK(update.finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "Hel");
  CHECK(checker.matched_stop_token() == 2);
}

TEST_CASE("ignore_eos generates past end-of-sequence, but stop token ids still stop") {
  SamplingParams params = with_stops({});
  params.ignore_eos = true;
  params.stop_token_ids = {7};
  StopChecker checker(params, kEos);
  CHECK(checker.on_token(2, "</s>").released == "</s>");
  CHECK(!checker.finished());
  CHECK(checker.on_token(kText, "more").released == "more");
  const StopUpdate update = checker.on_token(7, "<|im_end|>");
  CHECK(update.finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "</s>more");
  CHECK(checker.matched_stop_token() == 7);
}

TEST_CASE("several end-of-sequence ids all stop") {
  const std::vector<std::int64_t> eos = {128001, 128009};
  StopChecker checker(SamplingParams{}, eos);
  CHECK(checker.on_token(128009, "").finish_reason == FinishReason::kStop);
}

TEST_CASE("finishing from outside releases held-back text") {
  StopChecker checker(with_stops({"lo"}), kEos);
  (void)checker.on_token(kText, "Hel");
  const StopUpdate update = checker.finish(FinishReason::kLength);
  CHECK(update.released == "l");
  CHECK(checker.text() == "Hel");
  CHECK_THROWS_AS(checker.finish(FinishReason::kStop), Error);
}

TEST_CASE("feeding a finished sequence is an error") {
  StopChecker checker(with_stops({}, 1), kEos);
  (void)checker.on_token(kText, "a");
  CHECK_THROWS_AS(checker.on_token(kText, "b"), Error);
}

TEST_CASE("empty pieces and multi-byte text") {
  StopChecker checker(with_stops({"。"}), kEos);
  CHECK(checker.on_token(kText, "").released.empty());
  CHECK(checker.on_token(kText, "日本").released == "日本");
  CHECK(checker.on_token(kText, "語。次").finish_reason == FinishReason::kStop);
  CHECK(checker.text() == "日本語");
}

// For random texts split at random points, the output is the text before the first
// stop string to complete, and what streamed out is exactly that: nothing released
// was ever taken back.
TEST_CASE("streaming output is independent of how the text is split") {
  const std::vector<std::string> stops = {"aab", "ba", "abba", "bbb"};
  std::mt19937 engine(12345);
  std::uniform_int_distribution<int> letter(0, 2);
  std::uniform_int_distribution<int> cut(0, 3);
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    for (int i = 0; i < 12; ++i)
      text += static_cast<char>('a' + letter(engine));  // a, b, c

    // Reference: feed one character at a time; stop at the first end position at
    // which some stop string is complete, cutting at the earliest such start.
    std::string expected = text;
    bool stopped = false;
    for (std::size_t end = 1; end <= text.size() && !stopped; ++end) {
      for (std::size_t start = 0; start < end && !stopped; ++start) {
        for (const std::string& stop : stops) {
          if (text.compare(start, end - start, stop) == 0) {
            expected = text.substr(0, start);
            stopped = true;
            break;
          }
        }
      }
    }

    std::vector<std::string> pieces;
    std::size_t at = 0;
    while (at < text.size()) {
      const std::size_t length = std::min<std::size_t>(text.size() - at, cut(engine));
      pieces.push_back(text.substr(at, length));
      at += length;
    }
    StopChecker checker(with_stops(stops), kEos);
    const std::string released = stream(checker, pieces);
    CAPTURE(text);
    CHECK(released + std::string(checker.held_back()) == (stopped ? expected : text));
    if (stopped) {
      CHECK(checker.finish_reason() == FinishReason::kStop);
      CHECK(released == expected);
      CHECK(checker.text() == expected);
    } else {
      CHECK(!checker.finished());
      (void)checker.finish(FinishReason::kLength);
      CHECK(checker.text() == text);
    }
  }
}

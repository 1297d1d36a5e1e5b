#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "common/tokenizer/bpe_merges.h"
#include "common/tokenizer/tokenizer.h"

using namespace conveyor;

namespace {

// The textbook loop: merge the lowest-ranked adjacent pair, leftmost first.
std::vector<std::int32_t> naive_merge(const BpeMerges& merges, std::vector<std::int32_t> s) {
  for (;;) {
    std::size_t best = s.size();
    std::int32_t best_rank = 0;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
      const BpeMerges::Merge m = merges.find(s[i], s[i + 1]);
      if (m.rank >= 0 && (best == s.size() || m.rank < best_rank)) {
        best = i;
        best_rank = m.rank;
      }
    }
    if (best == s.size()) return s;
    s[best] = merges.find(s[best], s[best + 1]).merged;
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

}  // namespace

TEST_CASE("the merge loop agrees with the textbook loop on short and long words") {
  // Symbols 0..3 and random merges among them and their products.
  std::mt19937 rng(7);
  BpeMerges merges;
  std::int32_t next_id = 4;
  for (std::int32_t rank = 0; rank < 60; ++rank) {
    const auto left = static_cast<std::int32_t>(rng() % static_cast<unsigned>(next_id));
    const auto right = static_cast<std::int32_t>(rng() % static_cast<unsigned>(next_id));
    merges.add(left, right, rank, next_id++);
  }
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<std::int32_t> word(1 + rng() % 90);  // both sides of the short-word cutoff
    for (auto& s : word)
      s = static_cast<std::int32_t>(rng() % 4);
    std::vector<std::int32_t> fast = word;
    merges.apply(fast);
    CHECK(fast == naive_merge(merges, word));
  }
}

TEST_CASE("equal ranks merge leftmost first; a pair listed twice keeps its first rank") {
  BpeMerges merges;
  merges.add(0, 0, 0, 1);  // a a -> aa
  merges.add(0, 0, 5, 2);  // ignored duplicate
  std::vector<std::int32_t> s = {0, 0, 0};
  merges.apply(s);
  CHECK(s == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("ignore_merges emits a whole-word token that merges cannot reach") {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre = "gpt2";
  d.tokens = {"a", "b", "c", "ab", "abc"};
  d.merges = {"a b"};  // nothing builds "abc"
  CHECK(Tokenizer(d).encode("abc") == std::vector<std::int32_t>{3, 2});
  d.ignore_merges = true;
  CHECK(Tokenizer(d).encode("abc") == std::vector<std::int32_t>{4});
  // llama.cpp implies it for the Llama-3 pre-tokenizer, which GGUF names.
  d.ignore_merges = false;
  d.pre = "llama-bpe";
  CHECK(Tokenizer(d).encode("abc") == std::vector<std::int32_t>{4});
}

TEST_CASE("bytes without a token of their own are dropped, as tokenizers does") {
  TokenizerData d;
  d.kind = TokenizerKind::kByteLevelBpe;
  d.pre = "gpt2";
  d.tokens = {"a", "b", "ab"};
  d.merges = {"a b"};
  CHECK(Tokenizer(d).encode("a-b") == std::vector<std::int32_t>{0, 1});
  CHECK(Tokenizer(d).encode("ab") == std::vector<std::int32_t>{2});
}

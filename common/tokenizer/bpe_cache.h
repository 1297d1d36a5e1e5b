// Remembers the ids of pre-tokens already merged. Batch prompts repeat the same
// words endlessly, and a lookup is far cheaper than the merge loop (about twice
// the encode throughput on English text).
//
// The tables are per thread: encode runs on many threads at once, and a shared
// table would need a lock (or at least a shared cache line) on every word. Each
// thread keeps a direct-mapped table per tokenizer for the few tokenizers it used
// last; a slot holds the word and its ids inline, so a lookup is one probe and
// no allocation, and a collision simply overwrites.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace conveyor {

class BpeCache {
 public:
  static constexpr std::size_t kMaxWordBytes = 46;  // longer words are rare: not cached
  static constexpr std::size_t kMaxIds = 16;

  BpeCache();

  // Appends the cached ids for word and returns true, or returns false.
  bool lookup(std::string_view word, std::vector<std::int32_t>& out) const;
  // Const: the cache is not part of the tokenizer's observable state.
  void insert(std::string_view word, const std::int32_t* ids, std::size_t count) const;

 private:
  // Distinguishes tokenizers in the per-thread tables. Never reused, unlike an
  // address, so a new tokenizer cannot see a destroyed one's entries.
  std::uint64_t owner_;
};

}  // namespace conveyor

// Remembers the ids of pre-tokens already merged. Batch prompts repeat the same
// words endlessly, and a lookup is far cheaper than the merge loop. Safe to use
// from many threads: shards with reader-writer locks keep contention low.
#pragma once

#include <array>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace conveyor {

class BpeCache {
 public:
  // Words longer than this are rare and not worth the memory.
  static constexpr std::size_t kMaxWordBytes = 48;

  // Appends the cached ids for word and returns true, or returns false.
  bool lookup(std::string_view word, std::vector<std::int32_t>& out) const;
  void insert(std::string_view word, const std::int32_t* ids, std::size_t count) const;

 private:
  static constexpr std::size_t kShards = 16;
  // Per shard. A full shard is emptied rather than tracked for recency: cheap, and
  // frequent words come straight back.
  static constexpr std::size_t kShardCapacity = 8192;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    mutable std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<std::int32_t>, Hash, std::equal_to<>> map;
  };
  static std::size_t shard_of(std::string_view word) {
    return std::hash<std::string_view>{}(word) % kShards;
  }

  mutable std::array<Shard, kShards> shards_;
};

}  // namespace conveyor

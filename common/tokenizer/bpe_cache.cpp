#include "common/tokenizer/bpe_cache.h"

#include <mutex>

namespace conveyor {

bool BpeCache::lookup(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  const Shard& shard = shards_[shard_of(word)];
  std::shared_lock lock(shard.mutex);
  const auto it = shard.map.find(word);
  if (it == shard.map.end()) return false;
  out.insert(out.end(), it->second.begin(), it->second.end());
  return true;
}

void BpeCache::insert(std::string_view word, const std::int32_t* ids, std::size_t count) const {
  if (word.size() > kMaxWordBytes) return;
  Shard& shard = shards_[shard_of(word)];
  std::unique_lock lock(shard.mutex);
  if (shard.map.size() >= kShardCapacity) shard.map.clear();
  shard.map.try_emplace(std::string(word), ids, ids + count);
}

}  // namespace conveyor

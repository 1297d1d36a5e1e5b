#include "common/tokenizer/bpe_cache.h"

#include <array>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>

namespace conveyor {
namespace {

constexpr std::size_t kSlots = 4096;  // per tokenizer and thread: 512 KiB
constexpr std::size_t kTablesPerThread = 4;

struct Slot {
  std::uint64_t hash = 0;
  std::uint8_t length = 0;
  std::uint8_t count = 0;  // 0: empty
  char word[BpeCache::kMaxWordBytes];
  std::int32_t ids[BpeCache::kMaxIds];
};

struct Table {
  std::uint64_t owner = 0;
  std::unique_ptr<Slot[]> slots;
};

struct ThreadTables {
  std::array<Table, kTablesPerThread> tables;
  std::size_t next_victim = 0;

  Table* find(std::uint64_t owner) {
    for (Table& t : tables) {
      if (t.owner == owner) return &t;
    }
    return nullptr;
  }
  Table& claim(std::uint64_t owner) {
    if (Table* t = find(owner)) return *t;
    Table& t = tables[next_victim];
    next_victim = (next_victim + 1) % kTablesPerThread;
    t.owner = owner;
    if (!t.slots) t.slots = std::make_unique<Slot[]>(kSlots);
    for (std::size_t i = 0; i < kSlots; ++i) {
      t.slots[i].count = 0;
    }
    return t;
  }
};

ThreadTables& thread_tables() {
  thread_local ThreadTables tables;
  return tables;
}

std::atomic<std::uint64_t> next_owner{1};

}  // namespace

BpeCache::BpeCache() : owner_(next_owner.fetch_add(1, std::memory_order_relaxed)) {}

bool BpeCache::lookup(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.size() > kMaxWordBytes) return false;
  Table* table = thread_tables().find(owner_);
  if (table == nullptr) return false;
  const std::uint64_t hash = std::hash<std::string_view>{}(word);
  const Slot& slot = table->slots[hash % kSlots];
  if (slot.count == 0 || slot.hash != hash || slot.length != word.size() ||
      std::memcmp(slot.word, word.data(), word.size()) != 0) {
    return false;
  }
  out.insert(out.end(), slot.ids, slot.ids + slot.count);
  return true;
}

void BpeCache::insert(std::string_view word, const std::int32_t* ids, std::size_t count) const {
  if (word.size() > kMaxWordBytes || count == 0 || count > kMaxIds) return;
  const std::uint64_t hash = std::hash<std::string_view>{}(word);
  Slot& slot = thread_tables().claim(owner_).slots[hash % kSlots];
  slot.hash = hash;
  slot.length = static_cast<std::uint8_t>(word.size());
  slot.count = static_cast<std::uint8_t>(count);
  std::memcpy(slot.word, word.data(), word.size());
  std::memcpy(slot.ids, ids, count * sizeof(std::int32_t));
}

}  // namespace conveyor

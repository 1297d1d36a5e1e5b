#include "common/tokenizer/bpe_merges.h"

#include <algorithm>

namespace conveyor {
namespace {

std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

BpeMerges::BpeMerges(std::size_t expected) {
  std::size_t cap = 16;
  while (cap < expected * 2) {
    cap *= 2;
  }
  slots_.resize(cap);
}

void BpeMerges::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(std::max<std::size_t>(16, old.size() * 2), Slot{});
  size_ = 0;
  for (const Slot& s : old) {
    if (s.key != kEmpty) {
      add(static_cast<std::int32_t>(s.key >> 32), static_cast<std::int32_t>(s.key & 0xffffffffu),
          s.merge.rank, s.merge.merged);
    }
  }
}

void BpeMerges::add(std::int32_t left, std::int32_t right, std::int32_t rank, std::int32_t merged) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t k = key(left, right);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == k) return;
    if (slots_[i].key == kEmpty) {
      slots_[i].key = k;
      slots_[i].merge = {rank, merged};
      ++size_;
      return;
    }
  }
}

BpeMerges::Merge BpeMerges::find(std::int32_t left, std::int32_t right) const {
  if (slots_.empty()) return {};
  const std::uint64_t k = key(left, right);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = mix(k) & mask;; i = (i + 1) & mask) {
    if (slots_[i].key == k) return slots_[i].merge;
    if (slots_[i].key == kEmpty) return {};
  }
}

void BpeMerges::apply_short(std::vector<std::int32_t>& symbols) const {
  // Most pre-tokens are a handful of symbols: a scan for the best pair over a
  // small array beats a heap, and picks the same pair (lowest rank, leftmost).
  Merge pairs[kShortWord];
  std::size_t n = symbols.size();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    pairs[i] = find(symbols[i], symbols[i + 1]);
  }
  while (n > 1) {
    std::size_t best = n;
    for (std::size_t i = 0; i + 1 < n; ++i) {
      if (pairs[i].rank >= 0 && (best == n || pairs[i].rank < pairs[best].rank)) best = i;
    }
    if (best == n) break;
    symbols[best] = pairs[best].merged;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    --n;
    for (std::size_t i = best; i + 1 < n; ++i) {
      pairs[i] = pairs[i + 1];
    }
    if (best > 0) pairs[best - 1] = find(symbols[best - 1], symbols[best]);
    if (best + 1 < n) pairs[best] = find(symbols[best], symbols[best + 1]);
  }
}

void BpeMerges::apply(std::vector<std::int32_t>& symbols) const {
  const std::size_t n = symbols.size();
  if (n < 2) return;
  if (n <= kShortWord) {
    apply_short(symbols);
    return;
  }
  // A doubly linked list over the symbols, and a min-heap of candidate merges
  // keyed by (rank, position). Entries go stale when a neighbour merges; they are
  // recognised on pop by re-checking the pair, as tokenizers' Word::merge_all does.
  struct Candidate {
    std::int32_t rank;
    std::int32_t pos;
    std::int32_t merged;
  };
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  thread_local std::vector<std::int32_t> prev;
  thread_local std::vector<std::int32_t> next;
  thread_local std::vector<Candidate> heap;
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<std::int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::int32_t>(i + 1) : -1;
  }
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const Merge m = find(symbols[i], symbols[i + 1]);
    if (m.rank >= 0) heap.push_back({m.rank, static_cast<std::int32_t>(i), m.merged});
  }
  std::make_heap(heap.begin(), heap.end(), later);
  constexpr std::int32_t kGone = -1;
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate top = heap.back();
    heap.pop_back();
    const std::int32_t left = top.pos;
    if (symbols[left] == kGone) continue;
    const std::int32_t right = next[left];
    if (right < 0) continue;
    const Merge m = find(symbols[left], symbols[right]);
    if (m.merged != top.merged) continue;  // the pair changed since this entry was pushed
    symbols[left] = top.merged;
    symbols[right] = kGone;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) {
      const Merge before = find(symbols[prev[left]], symbols[left]);
      if (before.rank >= 0) {
        heap.push_back({before.rank, prev[left], before.merged});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    if (next[left] >= 0) {
      const Merge after = find(symbols[left], symbols[next[left]]);
      if (after.rank >= 0) {
        heap.push_back({after.rank, left, after.merged});
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
  }
  std::size_t out = 0;
  for (std::int32_t i = 0; i >= 0; i = next[i]) {
    symbols[out++] = symbols[i];
  }
  symbols.resize(out);
}

}  // namespace conveyor

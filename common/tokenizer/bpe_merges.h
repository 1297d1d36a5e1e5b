// The merge table of a rank-ordered BPE and the merge loop itself. Byte-level BPE
// and the tokenizer.json flavour of SentencePiece-style BPE both run it: symbols
// are token ids, and the adjacent pair with the lowest rank merges first, the
// leftmost among equals (what the tokenizers library and llama.cpp both do).
#pragma once

#include <cstdint>
#include <vector>

namespace conveyor {

class BpeMerges {
 public:
  struct Merge {
    std::int32_t rank = -1;
    std::int32_t merged = -1;
  };

  BpeMerges() = default;
  explicit BpeMerges(std::size_t expected);

  // Later duplicates of a pair are ignored: the first (lowest) rank is the one that counts.
  void add(std::int32_t left, std::int32_t right, std::int32_t rank, std::int32_t merged);

  // rank -1 when the pair does not merge.
  Merge find(std::int32_t left, std::int32_t right) const;

  std::size_t size() const { return size_; }

  // Merges symbols in place until no adjacent pair merges.
  void apply(std::vector<std::int32_t>& symbols) const;

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
  struct Slot {
    std::uint64_t key = kEmpty;
    Merge merge;
  };
  static std::uint64_t key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
  void grow();
  static constexpr std::size_t kShortWord = 32;
  void apply_short(std::vector<std::int32_t>& symbols) const;

  // Open addressing with linear probing: lookups are the inner loop of encoding.
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace conveyor

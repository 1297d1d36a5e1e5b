// Finds special and added tokens (<|im_start|>, <|eot_id|>, ...) in raw text
// before any normalisation or pre-tokenization, so they become single ids and
// never reach BPE. The leftmost match wins, and the longest at that position, as
// in the tokenizers library.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/tokenizer/tokenizer_data.h"
#include "common/tokenizer/vocab.h"

namespace conveyor {

// A stretch of the input: a matched token (token >= 0) or a run of plain text.
struct TextFragment {
  std::size_t offset = 0;
  std::size_t length = 0;
  std::int32_t token = -1;
};

class SpecialTokenMatcher {
 public:
  // From data.added_tokens when present; otherwise every control, unknown and
  // user-defined token of the vocabulary. Throws Error(kMalformed) for an added
  // token whose id is outside the vocabulary.
  SpecialTokenMatcher(const Vocab& vocab, const TokenizerData& data);

  // Cuts text into fragments that cover it in order; whitespace swallowed by
  // lstrip/rstrip belongs to the token's fragment. Without parse_special only
  // non-special added tokens (user-defined ones) are matched.
  void split(std::string_view text, bool parse_special, std::vector<TextFragment>& out) const;

  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::int32_t id;
    bool special;
    bool lstrip;
    bool rstrip;
    bool single_word;
  };
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;  // sorted by byte
    std::int32_t entry = -1;
  };
  void insert(std::string_view content, const Entry& entry);
  // The entry of the longest usable token starting at pos, and its end.
  std::int32_t longest_at(std::string_view text, std::size_t pos, bool parse_special,
                          std::size_t& end) const;

  std::vector<Entry> entries_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

}  // namespace conveyor

// Finds special and added tokens (<|im_start|>, <|eot_id|>, ...) in raw text
// before any normalisation or pre-tokenization, so they become single ids and
// never reach BPE. The leftmost match wins, and the longest at that position, as
// in the tokenizers library.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/tokenizer_data.h"
#include "common/tokenizer/vocab.h"

namespace conveyor {

// Bytes [begin, end) of a text.
struct TextRange {
  std::size_t begin = 0;
  std::size_t end = 0;
};

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
  // The same, with special tokens matched only where the whole token text lies
  // inside one of special_ranges (sorted, not overlapping): a chat template's
  // markup is parsed for special tokens, the messages between it are not.
  void split(std::string_view text, std::span<const TextRange> special_ranges,
             std::vector<TextFragment>& out) const;

  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::int32_t id;
    bool special;
    bool lstrip;
    bool rstrip;
    bool single_word;
  };
  // A radix trie: each edge carries a whole run of bytes (a slice of labels_), so a
  // token costs a node or two whatever its length, not a node per byte.
  struct Node {
    std::size_t label_begin = 0;  // the bytes on the edge into this node
    std::size_t label_length = 0;
    std::int32_t entry = -1;
    std::vector<std::pair<unsigned char, std::int32_t>> children;  // by first label byte
  };
  void insert(std::string_view content, const Entry& entry);
  std::string_view label(std::int32_t node) const {
    return std::string_view(labels_).substr(nodes_[node].label_begin, nodes_[node].label_length);
  }
  std::int32_t child(std::int32_t node, unsigned char byte) const;
  // The entry of the longest usable token starting at pos, and its end. A special
  // token is usable only when it ends at or before special_limit.
  std::int32_t longest_at(std::string_view text, std::size_t pos, std::size_t special_limit,
                          std::size_t& end) const;

  std::vector<Entry> entries_;
  std::vector<Node> nodes_;
  std::string labels_;
  bool first_byte_[256] = {};
};

}  // namespace conveyor

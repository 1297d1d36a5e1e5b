// GPT-2 style byte-level BPE (GPT-2, Llama-3, Qwen2, SmolLM2): the text is cut by
// the pre-tokenizer, each piece's bytes are spelled with the byte-level alphabet,
// and merges apply by rank within each piece.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/bpe_cache.h"
#include "common/tokenizer/bpe_merges.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer_data.h"
#include "common/tokenizer/tokenizer_model.h"
#include "common/tokenizer/vocab.h"

namespace conveyor {

class ByteLevelBpe final : public TokenizerModel {
 public:
  // Keeps a reference to vocab, which must outlive this model. Throws
  // Error(kMalformed) for a merge that names a token outside the vocabulary and
  // Error(kUnsupported) for an unknown pre-tokenizer.
  ByteLevelBpe(const Vocab& vocab, const TokenizerData& data);

  void encode(std::string_view run, bool at_text_start,
              std::vector<std::int32_t>& out) const override;
  void append_bytes(std::int32_t id, std::string& out) const override;
  bool strips_leading_space() const override { return false; }

 private:
  void encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const;

  const Vocab& vocab_;
  PreTokenizer pre_;
  BpeMerges merges_;
  std::array<std::int32_t, 256> byte_symbol_{};  // the single-character token per byte, or -1
  bool ignore_merges_ = false;
  BpeCache cache_;
};

// Adds the merges in data.merges to table, ranked by position. Throws
// Error(kMalformed) naming the first merge whose parts or result are not tokens.
void load_merges(const Vocab& vocab, const std::vector<std::string>& lines, BpeMerges& table);

}  // namespace conveyor

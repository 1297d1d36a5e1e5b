// SentencePiece-style BPE (Llama-2, Mistral, TinyLlama): spaces become "▁", a
// "▁" prefix may be added, symbols start as single characters and merge, and
// characters the vocabulary lacks fall back to <0xNN> byte tokens.
//
// Two merge orders exist in the wild and give different ids in rare cases:
// by the score of the merged token (SentencePiece itself and llama.cpp; used when
// the vocabulary has scores, as GGUF files do) and by merge rank (the tokenizers
// library; used for tokenizer.json, which has merges and no scores).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/bpe_merges.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/tokenizer_data.h"
#include "common/tokenizer/tokenizer_model.h"
#include "common/tokenizer/vocab.h"

namespace conveyor {

class SentencePieceBpe final : public TokenizerModel {
 public:
  // Keeps a reference to vocab, which must outlive this model. Throws
  // Error(kMalformed) when there are neither scores nor merges to merge by.
  SentencePieceBpe(const Vocab& vocab, const TokenizerData& data);

  void encode(std::string_view run, bool at_text_start,
              std::vector<std::int32_t>& out) const override;
  void append_bytes(std::int32_t id, std::string& out) const override;
  bool strips_leading_space() const override { return add_space_prefix_; }

 private:
  void encode_by_score(std::string_view text, std::vector<std::int32_t>& out) const;
  void encode_by_rank(std::string_view text, std::vector<std::int32_t>& out) const;
  // The id for one final symbol: its token, else its bytes, else the unknown token.
  void emit_symbol(std::string_view text, std::vector<std::int32_t>& out) const;
  void emit_bytes(std::string_view text, std::vector<std::int32_t>& out) const;
  bool mergeable(std::int32_t id) const;

  const Vocab& vocab_;
  PreTokenizer pre_;  // applied after spaces became "▁"; usually no stages
  BpeMerges merges_;
  bool by_score_ = true;
  bool add_space_prefix_ = true;
  SpacePrefixRule prefix_rule_ = SpacePrefixRule::kEveryRun;
  bool byte_fallback_ = true;
  std::int32_t unk_id_ = -1;
};

}  // namespace conveyor

// The validated token table every tokenizer model reads: id <-> text, types,
// scores and the byte-fallback tokens. Building one checks the data a model file
// supplied, so a malformed vocabulary is an error here and never a crash later.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

class Vocab {
 public:
  // Throws Error(kMalformed) for sizes that disagree, unknown token types, byte
  // tokens not spelled <0xNN>, and special ids outside the table;
  // Error(kOutOfRange) for a token (or added token) longer than kMaxTokenBytes.
  explicit Vocab(const TokenizerData& data);

  std::int32_t size() const { return static_cast<std::int32_t>(tokens_.size()); }
  bool contains(std::int64_t id) const { return id >= 0 && id < size(); }
  const std::string& text(std::int32_t id) const { return tokens_[id]; }
  TokenType type(std::int32_t id) const { return types_.empty() ? TokenType::kNormal : types_[id]; }
  float score(std::int32_t id) const { return scores_.empty() ? 0.0f : scores_[id]; }
  bool has_scores() const { return !scores_.empty(); }

  // -1 when no token has this text. When several do, the last one wins, as in llama.cpp.
  std::int32_t find(std::string_view text) const;

  // The <0xNN> token for a byte, or -1.
  std::int32_t byte_token(std::uint8_t b) const { return byte_tokens_[b]; }
  // The byte a kByte token stands for, or -1 for any other token.
  int byte_value(std::int32_t id) const;

  // Control and unknown tokens: markup, not text.
  bool is_control(std::int32_t id) const {
    const TokenType t = type(id);
    return t == TokenType::kControl || t == TokenType::kUnknown;
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::vector<std::string> tokens_;
  std::vector<TokenType> types_;
  std::vector<float> scores_;
  std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>> ids_;
  std::array<std::int32_t, 256> byte_tokens_{};
  std::vector<std::int16_t> byte_values_;  // per id; empty when there are no byte tokens
};

}  // namespace conveyor

#include "common/tokenizer/vocab.h"

#include <limits>

#include "common/status.h"
#include "common/tokenizer/token_text.h"

namespace conveyor {
namespace {

void check_id(const char* what, std::int64_t id, std::size_t n) {
  if (id < -1 || id >= static_cast<std::int64_t>(n)) {
    fail(ErrorCode::kMalformed, std::string("tokenizer ") + what + " " + std::to_string(id) +
                                    " is outside the vocabulary of " + std::to_string(n) +
                                    " tokens");
  }
}

}  // namespace

Vocab::Vocab(const TokenizerData& data)
    : tokens_(data.tokens), types_(data.token_types), scores_(data.scores) {
  const std::size_t n = tokens_.size();
  if (n == 0) fail(ErrorCode::kMalformed, "tokenizer vocabulary is empty");
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    fail(ErrorCode::kMalformed, "tokenizer vocabulary has too many tokens");
  }
  if (!types_.empty() && types_.size() != n) {
    fail(ErrorCode::kMalformed, "tokenizer has " + std::to_string(types_.size()) +
                                    " token types for " + std::to_string(n) + " tokens");
  }
  if (!scores_.empty() && scores_.size() != n) {
    fail(ErrorCode::kMalformed, "tokenizer has " + std::to_string(scores_.size()) + " scores for " +
                                    std::to_string(n) + " tokens");
  }
  check_id("bos id", data.bos_id, n);
  check_id("eos id", data.eos_id, n);
  check_id("unknown-token id", data.unk_id, n);
  for (std::int64_t id : data.eot_ids) {
    check_id("end-of-turn id", id, n);
  }

  for (const AddedToken& t : data.added_tokens) {
    check_token_length(t.id, t.content);
  }

  byte_tokens_.fill(-1);
  ids_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::int32_t>(i);
    check_token_length(id, tokens_[i]);
    ids_.insert_or_assign(tokens_[i], id);
    if (types_.empty()) continue;
    const auto raw = static_cast<std::int32_t>(types_[i]);
    if (raw < static_cast<std::int32_t>(TokenType::kUndefined) ||
        raw > static_cast<std::int32_t>(TokenType::kByte)) {
      fail(ErrorCode::kMalformed,
           "token " + std::to_string(i) + " has unknown token type " + std::to_string(raw));
    }
    if (types_[i] != TokenType::kByte) continue;
    const int b = parse_byte_token(tokens_[i]);
    if (b < 0) {
      fail(ErrorCode::kMalformed,
           "byte token " + std::to_string(i) + " is spelled \"" + tokens_[i] + "\", not <0xNN>");
    }
    if (byte_values_.empty()) byte_values_.assign(n, -1);
    byte_values_[i] = static_cast<std::int16_t>(b);
    byte_tokens_[static_cast<std::size_t>(b)] = id;
  }
  // Vocabularies without token types (tokenizer.json) still spell their byte
  // fallback tokens <0xNN>; find them by name.
  if (types_.empty()) {
    for (int b = 0; b < 256; ++b) {
      static const char* const kHex = "0123456789ABCDEF";
      const std::string name = std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">";
      const std::int32_t id = find(name);
      if (id < 0) continue;
      if (byte_values_.empty()) byte_values_.assign(n, -1);
      byte_values_[id] = static_cast<std::int16_t>(b);
      byte_tokens_[b] = id;
    }
  }
}

std::int32_t Vocab::find(std::string_view text) const {
  const auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

int Vocab::byte_value(std::int32_t id) const {
  return byte_values_.empty() ? -1 : byte_values_[id];
}

}  // namespace conveyor

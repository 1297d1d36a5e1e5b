#include "common/tokenizer/tokenizer.h"

#include <algorithm>

#include "common/tokenizer/byte_level_bpe.h"
#include "common/tokenizer/sentencepiece_bpe.h"
#include "common/tokenizer/special_tokens.h"
#include "common/tokenizer/unicode_nfc.h"
#include "common/tokenizer/utf8.h"
#include "common/tokenizer/vocab.h"

namespace conveyor {
namespace {

// Control tokens that end a turn in the families we serve, as llama.cpp
// recognises them by text when a file names no end-of-turn id.
bool ends_turn(std::string_view text) {
  static constexpr std::string_view kNames[] = {
      "<|eot_id|>",    "<|eom_id|>",    "<|im_end|>", "<|end|>",
      "<end_of_turn>", "<|endoftext|>", "<EOT>",      "<|end_of_text|>",
  };
  return std::find(std::begin(kNames), std::end(kNames), text) != std::end(kNames);
}

std::int32_t narrow_id(std::int64_t id) {
  return id < 0 ? -1 : static_cast<std::int32_t>(id);
}

}  // namespace

Tokenizer::Tokenizer(const TokenizerData& data)
    : kind_(data.kind),
      vocab_(std::make_unique<Vocab>(data)),
      bos_id_(narrow_id(data.bos_id)),
      eos_id_(narrow_id(data.eos_id)),
      unk_id_(narrow_id(data.unk_id)),
      add_bos_(data.add_bos),
      add_eos_(data.add_eos),
      // GGUF files do not record the normaliser; Qwen2's tokenizer.json has NFC.
      normalize_nfc_(data.normalize_nfc || (data.pre_regexes.empty() && data.pre == "qwen2")),
      chat_template_(data.chat_template) {
  // A pad id outside the table is harmless to tokenizing; it is dropped, not fatal.
  pad_id_ = vocab_->contains(data.pad_id) ? narrow_id(data.pad_id) : -1;
  if (add_bos_ && bos_id_ < 0) fail(ErrorCode::kMalformed, "tokenizer adds BOS but has no BOS id");
  if (add_eos_ && eos_id_ < 0) fail(ErrorCode::kMalformed, "tokenizer adds EOS but has no EOS id");
  switch (data.kind) {
    case TokenizerKind::kByteLevelBpe:
      model_ = std::make_unique<ByteLevelBpe>(*vocab_, data);
      break;
    case TokenizerKind::kSentencePieceBpe:
      model_ = std::make_unique<SentencePieceBpe>(*vocab_, data);
      break;
    default:
      fail(ErrorCode::kUnsupported, "unknown tokenizer kind");
  }
  specials_ = std::make_unique<SpecialTokenMatcher>(*vocab_, data);

  if (eos_id_ >= 0) eog_ids_.push_back(eos_id_);
  for (std::int64_t id : data.eot_ids) {
    eog_ids_.push_back(narrow_id(id));
  }
  for (std::int32_t id = 0; id < vocab_->size(); ++id) {
    if (vocab_->type(id) == TokenType::kControl && ends_turn(vocab_->text(id))) {
      eog_ids_.push_back(id);
    }
  }
  std::sort(eog_ids_.begin(), eog_ids_.end());
  eog_ids_.erase(std::unique(eog_ids_.begin(), eog_ids_.end()), eog_ids_.end());
}

Expected<std::shared_ptr<const Tokenizer>> Tokenizer::create(const TokenizerData& data) {
  return to_expected(
      [&]() -> std::shared_ptr<const Tokenizer> { return std::make_shared<Tokenizer>(data); });
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                            bool parse_special) const {
  std::string repaired;
  if (!utf8::is_valid(text)) {
    repaired = utf8::sanitize(text);
    text = repaired;
  }
  thread_local std::vector<TextFragment> fragments;
  fragments.clear();
  specials_->split(text, parse_special, fragments);
  return encode_fragments(text, fragments, add_special);
}

std::vector<std::int32_t> Tokenizer::encode_segments(std::span<const TextSegment> segments,
                                                     bool add_special) const {
  std::string text;
  std::vector<TextRange> special_ranges;
  for (const TextSegment& segment : segments) {
    const std::size_t begin = text.size();
    if (utf8::is_valid(segment.text)) {
      text.append(segment.text);
    } else {
      text.append(utf8::sanitize(segment.text));
    }
    if (!segment.parse_special || text.size() == begin) continue;
    if (!special_ranges.empty() && special_ranges.back().end == begin) {
      special_ranges.back().end = text.size();
    } else {
      special_ranges.push_back({begin, text.size()});
    }
  }
  thread_local std::vector<TextFragment> fragments;
  fragments.clear();
  specials_->split(text, special_ranges, fragments);
  return encode_fragments(text, fragments, add_special);
}

std::vector<std::int32_t> Tokenizer::encode_fragments(std::string_view text,
                                                      const std::vector<TextFragment>& fragments,
                                                      bool add_special) const {
  std::vector<std::int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && add_bos_) out.push_back(bos_id_);
  for (const TextFragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      continue;
    }
    const std::string_view run = text.substr(f.offset, f.length);
    if (normalize_nfc_) {
      const std::string normalized = nfc_normalize(run);
      model_->encode(normalized, f.offset == 0, out);
    } else {
      model_->encode(run, f.offset == 0, out);
    }
  }
  if (add_special && add_eos_) out.push_back(eos_id_);
  return out;
}

void Tokenizer::append_piece(std::int32_t id, bool skip_special, std::string& out) const {
  if (!vocab_->contains(id)) return;
  const TokenType type = vocab_->type(id);
  if (type == TokenType::kControl || type == TokenType::kUnknown) {
    if (!skip_special) out.append(vocab_->text(id));
    return;
  }
  if (type == TokenType::kUserDefined) {
    // Added tokens are stored as their literal text, not in the model's spelling.
    out.append(vocab_->text(id));
    return;
  }
  model_->append_bytes(id, out);
}

bool Tokenizer::strips_leading_space() const {
  return model_->strips_leading_space();
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (std::int32_t id : ids) {
    append_piece(id, skip_special, bytes);
  }
  if (model_->strips_leading_space() && !bytes.empty() && bytes.front() == ' ') bytes.erase(0, 1);
  return utf8::sanitize(bytes);
}

std::string Tokenizer::token_to_piece(std::int32_t id) const {
  std::string out;
  append_piece(id, false, out);
  return out;
}

std::int32_t Tokenizer::vocab_size() const {
  return vocab_->size();
}

const std::string& Tokenizer::token_text(std::int32_t id) const {
  static const std::string kNone;
  return vocab_->contains(id) ? vocab_->text(id) : kNone;
}

std::int32_t Tokenizer::find_token(std::string_view text) const {
  return vocab_->find(text);
}

bool Tokenizer::is_special(std::int32_t id) const {
  return vocab_->contains(id) && vocab_->is_control(id);
}

bool Tokenizer::is_end_of_generation(std::int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

}  // namespace conveyor

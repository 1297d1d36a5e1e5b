// A tokenizer built from TokenizerData: text -> ids the way Hugging Face's
// tokenizers (and llama.cpp, for GGUF files) produce them, and ids -> text.
// Immutable after construction and safe to share between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

class SpecialTokenMatcher;
class TokenizerModel;
class Vocab;
struct TextFragment;

// A piece of a text to encode, and whether special tokens written in it become
// their ids (template markup) or stay text (anything a user supplied).
struct TextSegment {
  std::string_view text;
  bool parse_special = false;
};

class Tokenizer {
 public:
  // Throws Error: kMalformed for a vocabulary that contradicts itself (bad byte
  // tokens, merges naming unknown tokens, ids outside the table), kUnsupported for
  // rules this implementation does not have (an unknown pre-tokenizer name).
  explicit Tokenizer(const TokenizerData& data);
  // The same, with the error as a Status.
  static Expected<std::shared_ptr<const Tokenizer>> create(const TokenizerData& data);

  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text to ids. Invalid UTF-8 is first repaired (each maximal invalid subpart
  // becomes U+FFFD, as Python's errors="replace" does). add_special: add BOS/EOS
  // where the model asks for them. parse_special: special tokens written in the
  // text (<|im_start|>) become their ids; otherwise they are tokenized as text,
  // which is what untrusted user content needs. User-defined added tokens are
  // always matched, as in tokenizers and llama.cpp.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special = true,
                                   bool parse_special = false) const;

  // Encodes the segments' texts joined, as one text: normalisation, pre-tokenization
  // and merges see the whole of it, so the ids equal encode(joined, add_special,
  // true) whenever the segments without parse_special hold no special-token text.
  // A special token becomes its id only where its whole text lies inside
  // parse_special segments; elsewhere it is tokenized as text. Each segment's
  // invalid UTF-8 is repaired on its own.
  std::vector<std::int32_t> encode_segments(std::span<const TextSegment> segments,
                                            bool add_special = false) const;

  // Ids to text; invalid UTF-8 in the result (a sequence cut mid-character)
  // becomes U+FFFD, one per maximal invalid subpart (tokenizers' ByteFallback
  // decoder writes one per byte token instead; the two agree on any text that
  // encode produced). skip_special drops control tokens (BOS, <|im_end|>, ...).
  // Ids outside the vocabulary produce nothing.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special = false) const;

  // The raw bytes of one token, possibly part of a UTF-8 character; special
  // tokens give their text. Empty for ids outside the vocabulary.
  std::string token_to_piece(std::int32_t id) const;

  // Appends the bytes id contributes to a decoded text (nothing for a skipped
  // special token or an id outside the vocabulary). Streaming decoders build on it.
  void append_piece(std::int32_t id, bool skip_special, std::string& out) const;
  // Decoding drops one leading space from the whole text (SentencePiece's prefix).
  bool strips_leading_space() const;

  std::int32_t vocab_size() const;
  TokenizerKind kind() const { return kind_; }
  // The token's text as the vocabulary spells it ("Ġthe", "▁the", "<|im_end|>").
  const std::string& token_text(std::int32_t id) const;
  // -1 when no token has this exact text.
  std::int32_t find_token(std::string_view text) const;
  bool is_special(std::int32_t id) const;  // a control or unknown token

  std::int32_t bos_id() const { return bos_id_; }  // -1 when absent
  std::int32_t eos_id() const { return eos_id_; }
  std::int32_t unk_id() const { return unk_id_; }
  std::int32_t pad_id() const { return pad_id_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  // EOS, the file's end-of-turn ids, and control tokens whose text marks an end
  // of turn (<|eot_id|>, <|im_end|>, <|endoftext|>, ...), sorted.
  const std::vector<std::int32_t>& end_of_generation_ids() const { return eog_ids_; }
  bool is_end_of_generation(std::int32_t id) const;

  const std::string& chat_template() const { return chat_template_; }

 private:
  // Encodes text already cut into special tokens and plain runs.
  std::vector<std::int32_t> encode_fragments(std::string_view text,
                                             const std::vector<TextFragment>& fragments,
                                             bool add_special) const;

  TokenizerKind kind_;
  std::unique_ptr<Vocab> vocab_;
  std::unique_ptr<TokenizerModel> model_;
  std::unique_ptr<SpecialTokenMatcher> specials_;
  std::int32_t bos_id_ = -1;
  std::int32_t eos_id_ = -1;
  std::int32_t unk_id_ = -1;
  std::int32_t pad_id_ = -1;
  bool add_bos_ = false;
  bool add_eos_ = false;
  bool normalize_nfc_ = false;
  std::vector<std::int32_t> eog_ids_;
  std::string chat_template_;
};

}  // namespace conveyor

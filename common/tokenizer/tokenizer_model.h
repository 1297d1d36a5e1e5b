// The part of a tokenizer that differs between byte-level BPE and
// SentencePiece-style BPE: turning a run of plain text (no special tokens) into
// ids, and a token back into bytes. Tokenizer does everything around it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

class TokenizerModel {
 public:
  virtual ~TokenizerModel() = default;

  // Appends the ids for one run of valid UTF-8 text that lies between special
  // tokens. at_text_start: the run begins the whole input.
  virtual void encode(std::string_view run, bool at_text_start,
                      std::vector<std::int32_t>& out) const = 0;

  // Appends the bytes an ordinary (non-special) token stands for.
  virtual void append_bytes(std::int32_t id, std::string& out) const = 0;

  // Decoding drops one leading space: the prefix encoding added.
  virtual bool strips_leading_space() const = 0;
};

}  // namespace conveyor

// Incremental detokenization for generation: ids arrive one at a time, and what
// comes out is always complete UTF-8. A token may end in the middle of a
// multi-byte character (byte-level BPE splits emoji across tokens); those bytes
// are held back until the character completes.
//
// Concatenating every push() and the final finish() gives exactly
// Tokenizer::decode() of the same ids.
#pragma once

#include <cstdint>
#include <string>

#include "common/tokenizer/tokenizer.h"

namespace conveyor {

class StreamDecoder {
 public:
  // Keeps a reference to tokenizer, which must outlive the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = true);

  // The text this id completes; empty while a character is still partial.
  // Bytes that can no longer become a valid character come out as U+FFFD.
  std::string push(std::int32_t id);

  // The held-back bytes of an unfinished character, as U+FFFD; the decoder is
  // then ready for a new sequence.
  std::string finish();

  // Forgets held-back bytes and starts a new sequence.
  void reset();

  std::size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_;
  bool at_start_ = true;  // nothing has been produced yet
  std::string pending_;
};

}  // namespace conveyor

#include "common/tokenizer/stream_decoder.h"

#include "common/tokenizer/utf8.h"

namespace conveyor {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(&tokenizer), skip_special_(skip_special) {}

std::string StreamDecoder::push(std::int32_t id) {
  tokenizer_->append_piece(id, skip_special_, pending_);
  if (at_start_ && !pending_.empty()) {
    // The space a SentencePiece prefix added is not part of the text.
    if (tokenizer_->strips_leading_space() && pending_.front() == ' ') pending_.erase(0, 1);
    at_start_ = false;
  }
  std::string out;
  std::size_t pos = 0;
  while (pos < pending_.size()) {
    const utf8::Sequence seq = utf8::examine(pending_, pos);
    if (seq.truncated) break;  // may still complete: keep it
    if (seq.valid) {
      out.append(pending_, pos, seq.length);
    } else {
      out.append(utf8::kReplacement);
    }
    pos += seq.length;
  }
  pending_.erase(0, pos);
  return out;
}

std::string StreamDecoder::finish() {
  std::string out = utf8::sanitize(pending_);
  reset();
  return out;
}

void StreamDecoder::reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace conveyor

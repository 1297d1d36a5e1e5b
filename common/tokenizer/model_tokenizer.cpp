#include "common/tokenizer/model_tokenizer.h"

#include <utility>

namespace conveyor {

std::string too_many_tokens_message(std::uint64_t tokens, std::int64_t vocab_size) {
  return "the tokenizer has " + std::to_string(tokens) +
         " tokens, more than the model's vocabulary of " + std::to_string(vocab_size);
}

Expected<ModelTokenizer> accept_model_tokenizer(Expected<TokenizerData> read,
                                                std::int64_t vocab_size) {
  ModelTokenizer out;
  if (!read.ok()) {
    const ErrorCode code = read.status().code();
    if (code != ErrorCode::kUnsupported && code != ErrorCode::kNotFound) return read.status();
    out.status = read.status();
    return out;
  }
  const std::size_t n = read->tokens.size();
  if (vocab_size >= 0 && n > static_cast<std::uint64_t>(vocab_size)) {
    return Status(ErrorCode::kMalformed, too_many_tokens_message(n, vocab_size));
  }
  out.data = std::move(read).value();
  return out;
}

}  // namespace conveyor

// What a model load keeps of the tokenizer stored with the model. GGUF files and
// Hugging Face directories both decide through accept_model_tokenizer(), so the two
// formats treat the same tokenizer problem the same way: a model whose tokenizer
// Conveyor does not implement still loads (inspect and --prompt-ids need only the
// weights), while a tokenizer that is broken or contradicts the weights fails the load.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

struct ModelTokenizer {
  std::optional<TokenizerData> data;  // empty when the model goes without a tokenizer
  Status status;                      // why data is empty; OK when it is not
};

// The outcome of reading a model's tokenizer, judged against the model's vocab_size
// (its embedding rows):
//   - read failed with kUnsupported (a kind not implemented) or kNotFound (none
//     stored): no tokenizer, that status kept;
//   - read failed otherwise: that error;
//   - more tokens than vocab_size: kMalformed, since their ids would index past the
//     embedding. Fewer is normal: vocabularies are padded to a round row count.
Expected<ModelTokenizer> accept_model_tokenizer(Expected<TokenizerData> read,
                                                std::int64_t vocab_size);

// The message accept_model_tokenizer gives for more tokens than vocab_size, for
// readers that check the count before reading the tokens themselves.
std::string too_many_tokens_message(std::uint64_t tokens, std::int64_t vocab_size);

}  // namespace conveyor

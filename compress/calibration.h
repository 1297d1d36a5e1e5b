// Calibration (and evaluation) text to tokens: the model's own tokenizer, BOS as its
// configuration says, special-token markup left as text; the first `max_tokens` of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/model_source.h"

namespace conveyor::compress {

// Throws Error(kUnsupported) when the model has no tokenizer (with its reason) and
// Error(kInvalidArgument) for max_tokens < 2 or a text of fewer than 2 tokens; messages
// start with `flag` ("--calib").
std::vector<std::int32_t> text_tokens(const ModelSource& source, const std::string& text,
                                      std::int64_t max_tokens, const std::string& flag);

// Reads a text file whole. Throws Error(kNotFound / kIo) naming `flag` and the path,
// Error(kInvalidArgument) for an empty file.
std::string read_text_file(const std::string& path, const std::string& flag);

// Consecutive sequences of at most `context` tokens: how calibration tokens are run
// through the reference forward.
std::vector<std::int64_t> calibration_sequences(std::int64_t tokens, std::int64_t context);

}  // namespace conveyor::compress

// TokenizerData as JSON, every field, for a Conveyor model directory's
// conveyor-model.json: the vocabulary, merges, special ids, matching rules and chat
// template of whatever the source model carried (a GGUF file's tokenizer.ggml.* as much
// as a tokenizer.json), so that the compressed model tokenises and chats as its source.
// Tokens and other byte strings that are not UTF-8 are stored as hex (json_fields.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer_data.h"

namespace conveyor {

nlohmann::ordered_json tokenizer_data_to_json(const TokenizerData& data);

// Throws Error(kMalformed) naming `where` and the field for a missing or mistyped
// field, an unknown kind or rule, a token type outside 0..6, scores or token types
// whose count is not the token count, a special or added token id outside the
// vocabulary, or a merge that is not two tokens separated by a space.
TokenizerData tokenizer_data_from_json(const nlohmann::json& json,
                                       const std::string& where = "tokenizer");

}  // namespace conveyor

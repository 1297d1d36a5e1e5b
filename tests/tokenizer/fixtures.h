// Access to tests/fixtures/tokenizer/, written by scripts/make-tokenizer-fixtures.py.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/tokenizer/chat_template.h"
#include "common/tokenizer/tokenizer_data.h"

namespace conveyor::tokfix {

std::string path(const std::string& relative);
nlohmann::json read_json(const std::string& relative);

// One corpus text and what Hugging Face made of it.
struct Case {
  std::string name;
  std::string input;  // raw bytes, possibly invalid UTF-8
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> ids_specials_as_text;  // special tokens not parsed
  std::string decoded;
  std::string decoded_skip_special;
};

// "<name>.expected.json"
std::vector<Case> expected_cases(const std::string& name);

// A "*.data.json" file: TokenizerData as a GGUF file would fill it.
TokenizerData load_data(const std::string& relative);

// chat_templates.json: a conversation as [{"role", "content"}, ...].
std::vector<ChatMessage> messages_of(const nlohmann::json& j);
// A template's bos/eos token: a string, or null for none.
std::string text_or_empty(const nlohmann::json& j);

}  // namespace conveyor::tokfix

// One request of a batch job, as intake parsed it from an input line: the OpenAI
// Batch JSONL shape ({"custom_id", "method", "url", "body"}) or the convenience rows
// ({"prompt": ...} or {"messages": [...]}, custom_id generated from the line number).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/tokenizer/chat_template.h"
#include "worker/sampling/sampling_params.h"

namespace conveyor {

enum class Endpoint {
  kChatCompletions,  // "/v1/chat/completions": `messages`, output chat.completion
  kCompletions,      // "/v1/completions": `prompt`, output text_completion
};

struct BatchRequest {
  std::int64_t line_number = 0;  // 1-based line of the input file
  std::string custom_id;
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::optional<std::string> model;  // body.model, when given

  std::vector<ChatMessage> messages;                    // kChatCompletions
  std::string prompt;                                   // kCompletions, given as text
  std::optional<std::vector<std::int32_t>> prompt_ids;  // kCompletions, given as token ids

  // max_tokens (or max_completion_tokens), temperature, top_p, top_k, min_p, seed,
  // stop, presence/frequency/repetition penalty, logprobs/top_logprobs, ignore_eos.
  SamplingParams sampling;
  std::int32_t n = 1;  // choices, each an independent sequence
};

// Why a line, or a request, produced an error line instead of a result.
struct RequestError {
  std::int64_t line_number = 0;  // 0 when not tied to an input line
  std::string custom_id;         // "line-<N>" when the line has no usable custom_id
  std::string code;              // OpenAI-style: "invalid_json", "invalid_request", ...
  std::string message;           // names the field or limit, and the line number
};

// The error of input line `line_number`: its message starts "line N: ".
inline RequestError line_error(std::int64_t line_number, std::string custom_id, std::string code,
                               std::string_view message) {
  return RequestError{line_number, std::move(custom_id), std::move(code),
                      "line " + std::to_string(line_number) + ": " + std::string(message)};
}

}  // namespace conveyor

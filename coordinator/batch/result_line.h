// Output lines of a batch job in the OpenAI Batch output format, one JSON object per
// line, each ending in '\n':
//   {"id": "batch_req_<24 hex>", "custom_id", "response": {"status_code": 200,
//    "request_id": "req_<32 hex>", "body": <chat.completion | text_completion>},
//    "error": null}
//   {"id": "batch_req_<24 hex>", "custom_id", "response": null,
//    "error": {"code", "message", "line"}}
// Lines are valid UTF-8 even when a token's text is not (a token can hold part of a
// multi-byte character): invalid sequences are written as U+FFFD, and chat log-probs
// carry each token's exact bytes in "bytes".
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "coordinator/batch/batch_request.h"
#include "worker/sampling/finish_reason.h"
#include "worker/sampling/sampler.h"

namespace conveyor {

// One finished choice of a request.
struct ChoiceOutput {
  std::string text;  // the decoded output, stop string already removed
  FinishReason finish_reason = FinishReason::kStop;
  std::vector<std::int32_t> tokens;    // generated tokens: completion_tokens counts these
  std::vector<SampleResult> logprobs;  // one per token, when request.sampling.logprobs
};

// The raw bytes a token decodes to (possibly an incomplete UTF-8 sequence).
using TokenText = std::function<std::string(std::int32_t)>;

struct ResultMeta {
  std::string model;         // the served model's name, as "model" in the body
  std::int64_t created = 0;  // unix seconds
};

// Log-probabilities of -inf (and anything below) are written as this, as OpenAI and
// vLLM do: JSON has no infinity.
inline constexpr double kLogprobFloor = -9999.0;

// The result line of a request: a chat.completion for kChatCompletions, a
// text_completion for kCompletions, with choices indexed in `choices` order and usage
// {prompt_tokens, completion_tokens (all choices' tokens), total_tokens}. Log-probs
// only when request.sampling.logprobs:
//  - chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token",
//    "logprob", "bytes"}]}]};
//  - completions: {"tokens", "token_logprobs", "top_logprobs": [{text: logprob}],
//    "text_offset"}, the offsets counting code points from the start of the output,
//    as vLLM counts them. When two alternatives share a text, the likelier is kept.
// `token_text` is called only for log-prob tokens.
std::string format_result_line(const BatchRequest& request, std::int64_t prompt_tokens,
                               std::span<const ChoiceOutput> choices, const ResultMeta& meta,
                               const TokenText& token_text);

// The error line for a request or an input line; "line" only when error.line_number
// is nonzero.
std::string format_error_line(const RequestError& error);

}  // namespace conveyor

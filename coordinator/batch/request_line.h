// One input line of a batch file -> a BatchRequest, or the RequestError that becomes
// its error line. Each line is judged on its own: a bad line fails only itself.
//
// Accepted shapes:
//  - OpenAI Batch: {"custom_id": str, "method": "POST", "url": URL, "body": {...}} with
//    URL "/v1/chat/completions" (body.messages) or "/v1/completions" (body.prompt).
//  - Convenience rows, an object without "body", "method" or "url": {"messages": [...]}
//    (chat) or {"prompt": ...} (completions), the sampling fields beside them. The
//    custom_id is the row's own, else "request-<line>": stable across reruns, which
//    resume depends on.
//
// Body fields read (everything else is ignored, as real batch files carry fields such
// as stream_options or response_format):
//  - messages: [{role, content}]; role system | user | assistant | developer (read as
//    system); content a string, or an array of {"type": "text", "text": str} parts
//    joined with "\n" (as vLLM joins them).
//  - prompt: a string, an array of token ids, or a one-element array of a string.
//  - model; max_tokens or max_completion_tokens (if both, they must agree; if neither,
//    RequestLineLimits::default_max_tokens); temperature; top_p; top_k (-1 or 0: off);
//    min_p; seed (0 .. 2^64-1); stop (string or array of strings); stop_token_ids;
//    n (1 .. max_n); presence_penalty; frequency_penalty; repetition_penalty;
//    ignore_eos.
//  - chat: logprobs (bool) and top_logprobs (int >= 0, no cap of 20);
//    completions: logprobs (int k >= 0: log-probs with k alternatives; null: off).
//  - Refused because they would not be honoured: stream: true, echo: true, a non-empty
//    logit_bias, tools or functions, response_format other than {"type": "text"}, a
//    suffix, best_of > 1.
// A JSON null counts as an absent field.
//
// Not checked here, because it needs the model: the model name, prompt ids and
// stop_token_ids against the vocabulary, top_logprobs against the vocabulary
// (SamplingParams::validate(vocab_size)), the prompt's length against the context,
// and custom_id uniqueness across the file. Intake does those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "coordinator/batch/batch_request.h"

namespace conveyor {

// RequestError::code values produced by parse_request_line.
namespace request_error_code {
inline constexpr char kLineTooLong[] = "line_too_long";  // longer than max_line_bytes
inline constexpr char kInvalidUtf8[] = "invalid_utf8";   // not UTF-8; the message has the offset
inline constexpr char kInvalidJson[] = "invalid_json";   // not JSON, not an object, too deep
inline constexpr char kMissingField[] = "missing_field";
inline constexpr char kInvalidField[] = "invalid_field";  // wrong type, out of range, refused
inline constexpr char kUnsupportedUrl[] = "unsupported_url";
}  // namespace request_error_code

struct RequestLineLimits {
  std::size_t max_line_bytes = 1 << 20;
  std::int32_t default_max_tokens = 1024;  // when the body gives neither max_tokens form
  std::int32_t max_n = 16;
  std::size_t max_custom_id_bytes = 512;
  // Objects and arrays nested deeper than this are refused before parsing, so that a
  // hostile line costs no more than its bytes.
  int max_depth = 64;
};

// An empty or whitespace-only line: not a request, and not an error either (a
// trailing blank line is common in hand-written files). The caller skips it.
struct BlankLine {
  std::int64_t line_number = 0;
};

using ParsedLine = std::variant<BatchRequest, RequestError, BlankLine>;

// Parses one line (without its '\n'; a trailing '\r' is whitespace). `line_number` is
// 1-based and goes into the request, the generated custom_id and every error message
// ("line 7: body.temperature must be a number, got string"). An error's custom_id is
// the line's when it could be read, else "line-<N>". Never throws for bad input.
ParsedLine parse_request_line(std::string_view line, std::int64_t line_number,
                              const RequestLineLimits& limits);

// Only whitespace: a BlankLine to the parser.
bool is_blank_line(std::string_view line);

// The error of a line of `length` bytes, over limits.max_line_bytes; for readers that
// keep only the start of such a line.
RequestError line_too_long(std::int64_t line_number, std::uint64_t length,
                           const RequestLineLimits& limits);

}  // namespace conveyor

// Fuzz target for the batch-file line parser (coordinator/batch/request_line.h): every
// line of a user's JSONL file goes through it.
// Sources it needs:
//   fuzz/request_line_fuzz.cpp
//   coordinator/batch/request_line.cpp
//   coordinator/batch/request_body.cpp
//   coordinator/batch/json_fields.cpp
//   common/json_depth.cpp
//   common/tokenizer/utf8.cpp
//   worker/sampling/sampling_params.cpp
//   common/status.cpp
// (and nlohmann-json's headers)
// The input is one line. The parser must never throw, and its answer must keep the
// promises the header makes: a request is valid and within the limits, an error has
// one of the documented codes and names the line, a blank line is exactly a line of
// whitespace.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "coordinator/batch/request_line.h"

namespace {

namespace code = conveyor::request_error_code;

constexpr std::int64_t kLine = 7;

bool documented_code(const std::string& c) {
  return c == code::kLineTooLong || c == code::kInvalidUtf8 || c == code::kInvalidJson ||
         c == code::kMissingField || c == code::kInvalidField || c == code::kUnsupportedUrl;
}

void check_request(const conveyor::BatchRequest& request,
                   const conveyor::RequestLineLimits& limits) {
  if (request.line_number != kLine) std::abort();
  // The limit binds a row's own custom_id, not the one made up for a row without.
  if (request.custom_id.empty() ||
      (request.custom_id.size() > limits.max_custom_id_bytes && request.custom_id != "request-7")) {
    std::abort();
  }
  if (request.n < 1 || request.n > limits.max_n) std::abort();
  if (!request.sampling.validate().ok()) std::abort();
  if (request.endpoint == conveyor::Endpoint::kChatCompletions && request.messages.empty()) {
    std::abort();
  }
  if (request.endpoint == conveyor::Endpoint::kCompletions && request.prompt.empty() &&
      !request.prompt_ids.has_value()) {
    std::abort();
  }
}

void check_line(std::string_view line, const conveyor::RequestLineLimits& limits) {
  const conveyor::ParsedLine parsed = conveyor::parse_request_line(line, kLine, limits);
  const bool fits = line.size() <= limits.max_line_bytes;
  if (std::holds_alternative<conveyor::BlankLine>(parsed) !=
      (fits && conveyor::is_blank_line(line))) {
    std::abort();
  }
  if (const auto* error = std::get_if<conveyor::RequestError>(&parsed)) {
    if (!documented_code(error->code)) std::abort();
    if (error->line_number != kLine || error->custom_id.empty()) std::abort();
    if (!error->message.starts_with("line 7: ")) std::abort();
    if ((error->code == code::kLineTooLong) == fits) std::abort();
  }
  if (const auto* request = std::get_if<conveyor::BatchRequest>(&parsed)) {
    check_request(*request, limits);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  check_line(line, conveyor::RequestLineLimits{});
  // Tight limits reach the too-long, too-deep and too-many paths with short inputs.
  conveyor::RequestLineLimits tight;
  tight.max_line_bytes = 256;
  tight.max_n = 2;
  tight.max_custom_id_bytes = 8;
  tight.max_depth = 4;
  check_line(line, tight);
  return 0;
}

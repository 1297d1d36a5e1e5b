// The body of one request line: an ordinary /v1/chat/completions or /v1/completions
// request, read into a BatchRequest. Used by parse_request_line, which handles the
// envelope (size, UTF-8, JSON, custom_id, method, url).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "coordinator/batch/batch_request.h"
#include "coordinator/batch/request_line.h"

namespace conveyor {

// Fills request.messages or request.prompt/prompt_ids (by request.endpoint), model,
// sampling and n from `body`, whose fields messages name as `prefix` + field ("body."
// for OpenAI rows, "" for convenience rows). Calls SamplingParams::validate().
// Throws LineRejection (json_fields.h) for the first problem found.
void read_request_body(const nlohmann::json& body, const std::string& prefix,
                       const RequestLineLimits& limits, BatchRequest& request);

}  // namespace conveyor
